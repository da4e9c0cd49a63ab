"""Dataset projects: create, build (here or on a host over SSH), list, show, mix and push.

A project is ``projects/NAME/`` of the workspace (:mod:`tuiops.ops.projects.model`); its
build runs the augmentation (:mod:`~tuiops.ops.projects.build`, here by
:mod:`~tuiops.ops.projects.build_local` or over SSH by
:mod:`~tuiops.ops.projects.build_remote`), whose outputs are collected and checked
(:mod:`~tuiops.ops.projects.outputs`). A mix (:mod:`~tuiops.ops.projects.mix`) reads the
builds (:mod:`~tuiops.ops.projects.sources`), maps their classes
(:mod:`~tuiops.ops.projects.classmap`), splits them (:mod:`~tuiops.ops.projects.split`),
writes one dataset (:mod:`~tuiops.ops.projects.mixout`, :mod:`~tuiops.ops.projects.mixfiles`)
and may pack it (:mod:`~tuiops.ops.projects.tarball`) and push it
(:mod:`~tuiops.ops.projects.push`).
"""

from tuiops.ops.projects.adopt import Adopted, adopt_project
from tuiops.ops.projects.build import build_project, clean_project
from tuiops.ops.projects.catalog import copy_examples, copy_examples_to, list_projects, show_project
from tuiops.ops.projects.classmap import build_class_map, parse_map
from tuiops.ops.projects.label import fetch_labels, send_for_labelling, undo_labels
from tuiops.ops.projects.mix import mix_projects
from tuiops.ops.projects.mixmodel import MixResult, PushResult
from tuiops.ops.projects.mixout import verify_output
from tuiops.ops.projects.model import (
    BuildResult,
    Project,
    build_staleness,
    build_state,
    ensure_common,
    load_project,
    new_project,
)
from tuiops.ops.projects.overview import mix_argv, projects_overview, recorded_mixes
from tuiops.ops.projects.push import push_tarball
from tuiops.ops.projects.sources import load_build
from tuiops.ops.projects.tarball import write_tarball

__all__ = [
    "Adopted",
    "BuildResult",
    "MixResult",
    "Project",
    "PushResult",
    "adopt_project",
    "build_class_map",
    "build_project",
    "build_staleness",
    "build_state",
    "clean_project",
    "copy_examples",
    "copy_examples_to",
    "ensure_common",
    "fetch_labels",
    "list_projects",
    "load_build",
    "load_project",
    "mix_argv",
    "mix_projects",
    "new_project",
    "parse_map",
    "projects_overview",
    "push_tarball",
    "recorded_mixes",
    "send_for_labelling",
    "show_project",
    "undo_labels",
    "verify_output",
    "write_tarball",
]
