"""Import and export label sets and detection runs: YOLO txt, Pascal VOC XML, COCO JSON.

Import
    A label file's image is found by its key (the file's stem, or a COCO entry's
    ``file_name``, through the workspace's key pattern); the image must be in the store
    (a scanned pool) with its size. Class names map to the workspace class map by name;
    the map is never re-ordered by a file (an empty map takes the first file's classes,
    in the file's order). Every line/object is checked (field count,
    numbers, NaN/inf, class id, width/height > 0, inside the image within a tolerance;
    coordinates within the tolerance are kept as written, never clipped). A detection
    outside its image is a measurement, not a mistake: it is kept as written and
    counted, unless the import asks to clip or drop such detections. Problems are
    reported per file and line: by default the bad lines and files are skipped and the
    rest is stored; with ``strict`` any problem rejects the whole import. A file (or a
    COCO image) whose every box had a problem is left out, listed and counted apart: only
    an empty file (or one of blank lines, or a COCO image without annotations) is an image
    with no objects. Either way an import is one transaction: it is stored completely or
    not at all.

Export
    Writes the files of a set or run: YOLO (one ``.txt`` per image of the set, also
    empty ones, plus ``classes.txt`` from the workspace map), VOC (one ``.xml`` per
    image), COCO (one JSON file). A folder export is staged and renamed into place, so
    a failure leaves nothing new behind; existing files are never overwritten unless
    asked.
"""

from tuiops.ops.labels.exporting import export_detections, export_labels, not_carried
from tuiops.ops.labels.importing import detect_format, import_detections, import_labels
from tuiops.ops.labels.model import ExportResult, ImportRejected, ImportResult, Tolerance
from tuiops.ops.labels.prepare import lookup_items

__all__ = [
    "ExportResult",
    "ImportRejected",
    "ImportResult",
    "Tolerance",
    "detect_format",
    "export_detections",
    "export_labels",
    "import_detections",
    "import_labels",
    "lookup_items",
    "not_carried",
]
