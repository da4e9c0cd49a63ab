"""Browsing the store: what the terminal app's panels show, read a page at a time.

A panel shows one *source*: the workspace catalog (pools, label sets, runs, matches, and the
dataset projects, hosts and mixes of :mod:`~tuiops.ops.browse.projects`, each opening into its
rows, a mix into its ratio table per project and class), a
pool folder (subfolders, then the files directly in it, with size, dimensions, label and
detection counts and the match score of each image), the boxes of a label set or a
detection run, the per-image results of a match, the result of any read-only SQL query,
or every box of one image (the panel that follows the other one's cursor).

Nothing here holds a Python structure per row. A source answers four kinds of requests:

- ``open``: the small fixed rows (``..`` and subfolders) and the first page, from an index
  (a millisecond on a 4M-file pool);
- ``ids_page``: the row ids of a page in the source's base order, by keyset (after or
  before a known row) or by offset, from the store's indexes;
- ``load_ids`` / ``load_fields``: whole columns (ids in base order, sizes, counts …) as
  numpy arrays and polars Series, for sorting, filtering and selecting by mask;
- ``fetch``: the display rows of a list of ids (a page: one indexed query), or, once a
  pool's columns are loaded, ``page_from_cache``: the same rows gathered from them.

Whole columns load in short slices through the store's Arrow reader (the library the
page reads use too, so a page never waits for a load), each field by the first thread
that asks for it; a pool loads everything a sort or mask needs in the background.

:class:`Pager` keeps one panel's state (base ids once loaded, the sorted and filtered
order, a window of fetched rows) and turns a row range into a page with the cheapest of
those requests. :func:`compute_order` sorts and filters whole columns with numpy/polars
(packed-key ``np.sort``: about 0.25 s for 4M rows here) and runs in a worker thread;
its result is installed by the UI thread.

Filters are SQL ``WHERE`` expressions (``size > 1e6 AND labels = 0``) over the fields of
the source (:attr:`Source.fields`, listed by :func:`describe_fields`), evaluated by polars
over the loaded columns, so filtering 4M rows does not scan the store again.
"""

from tuiops.imaging import DET_COLOR, LABEL_COLOR, BoxMark, render_preview
from tuiops.ops.browse.editor import edit_files, editor_command, launch_editor, make_folder, where_for_ids
from tuiops.ops.browse.find import find_rows, pick_row, search_mask
from tuiops.ops.browse.gallery import (
    Feed,
    PanelFeed,
    QueueFeed,
    Targets,
    Tile,
    copy_pager,
    excluded,
    render_tile,
)
from tuiops.ops.browse.jobs import JobRow, cancel_job, list_jobs
from tuiops.ops.browse.order import (
    ALL_MASK,
    Order,
    Selection,
    check_filter,
    compute_order,
    mask_expr,
    mask_ids,
    mask_regex,
    sort_positions,
    view_ids,
)
from tuiops.ops.browse.pager import Pager
from tuiops.ops.browse.pools import PoolSource
from tuiops.ops.browse.preview import ImageInfo, human_size, image_info
from tuiops.ops.browse.projects import HostsSource, MixesSource, MixSource, ProjectsSource, catalog_entries
from tuiops.ops.browse.source import Opened, Source
from tuiops.ops.browse.spec import Context, Spec, default_context, first_pool, normalise_folder
from tuiops.ops.browse.tables import MemorySource, SelectionSource, describe_fields, make_source, query_frame
from tuiops.store.schema import FOLDER_SQL, LISTED_SQL

__all__ = [
    "ALL_MASK",
    "DET_COLOR",
    "FOLDER_SQL",
    "LABEL_COLOR",
    "LISTED_SQL",
    "BoxMark",
    "Context",
    "Feed",
    "HostsSource",
    "ImageInfo",
    "JobRow",
    "MemorySource",
    "MixSource",
    "MixesSource",
    "Opened",
    "Order",
    "Pager",
    "PanelFeed",
    "PoolSource",
    "ProjectsSource",
    "QueueFeed",
    "Selection",
    "SelectionSource",
    "Source",
    "Spec",
    "Targets",
    "Tile",
    "cancel_job",
    "catalog_entries",
    "check_filter",
    "compute_order",
    "copy_pager",
    "default_context",
    "describe_fields",
    "edit_files",
    "editor_command",
    "excluded",
    "find_rows",
    "first_pool",
    "human_size",
    "image_info",
    "launch_editor",
    "list_jobs",
    "make_folder",
    "make_source",
    "mask_expr",
    "mask_ids",
    "mask_regex",
    "normalise_folder",
    "pick_row",
    "query_frame",
    "render_preview",
    "render_tile",
    "search_mask",
    "sort_positions",
    "view_ids",
    "where_for_ids",
]
