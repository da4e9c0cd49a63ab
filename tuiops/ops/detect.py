"""Inference into the store: run YOLO weights over a selection or the whole pool.

Images stream through in batches: while the model works on one batch, threads read and
decode the next. Every finished batch's detections (composite ids, see
:func:`tuiops.store.db.box_frame`) and its ``run_images`` rows are appended to the
store in one transaction, buffered for a few seconds at most, so a killed run keeps
what it committed. Running the same command again continues with the images not yet
in ``run_images``: an image's boxes and its ``run_images`` row are written together,
so nothing is duplicated and nothing is skipped. Images that cannot be read or decoded
are recorded in ``detect_errors`` and skipped (``retry_errors`` tries them again).

Boxes are stored in the item's ``width``/``height`` frame: when the decoded file has
another size (a resized copy), its boxes are scaled. The model's class names are
mapped to the workspace class map by name (``class_map="index"`` keeps the indices).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuiops.errors import ConflictError, ExternalToolError, InputError, NotFoundError, TuiopsError, UsageError
from tuiops.fsutil import display_path, sha256_file
from tuiops.ops.base import CancelToken, JobHandle, ProgressFn, Reporter, job
from tuiops.ops.detect_batches import DetectBuffer, DetectPlan, predict_batch
from tuiops.ops.detect_threads import choose_threads, prepare_threads_env, uses_gpu
from tuiops.ops.usersql import authorize, check_where, where_error
from tuiops.store.frames import box_schema

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from tuiops.ops.cluster import ClusterOptions
    from tuiops.store import Store
    from tuiops.workspace import Workspace

#: Images per selection query (the pool is read in item-id order, this many at a time).
CHUNK_IMAGES = 4096

#: Finished batches are committed when this many images or seconds have gathered.
FLUSH_IMAGES = 1024
FLUSH_SECONDS = 5.0

#: Where the ultralytics settings and fonts live, relative to the workspace.
ULTRALYTICS_DIR = ".tuiops/ultralytics"

_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")

#: Formats OpenCV decodes itself; a file of these it cannot decode is corrupt (others go through Pillow).
_CV2_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF"})


# -- ultralytics set-up -----------------------------------------------------------------------------
def _any_font() -> Path | None:
    """A TrueType font that exists on this machine (matplotlib ships DejaVuSans)."""
    try:
        import matplotlib

        mpl = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if mpl.is_file():
            return mpl
    except ImportError:
        pass
    for folder in ("/usr/share/fonts", "/usr/local/share/fonts"):
        for root, _dirs, files in os.walk(folder):
            for f in sorted(files):
                if f.lower().endswith(".ttf"):
                    return Path(root) / f
    return None


def _install_fonts(folder: Path) -> None:
    """Put the fonts ultralytics looks for into its config folder, so it never downloads them."""
    missing = [n for n in _FONT_NAMES if not (folder / n).is_file()]
    if not missing:
        return
    font = _any_font()
    if font is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name in missing:
        tmp = folder / f".{name}.part"
        shutil.copyfile(font, tmp)
        os.replace(tmp, folder / name)


def prepare_ultralytics(ws: Workspace | None = None) -> Any:
    """Import ultralytics offline, with its settings in the workspace and fonts it can find.

    Before the first import ``YOLO_OFFLINE`` is set to ``true`` and, unless the user set
    one, ``YOLO_CONFIG_DIR`` points into the workspace (``.tuiops/ultralytics``); the thread
    cap the process was started with is noted and torch's OpenMP threads are told to sleep
    when they wait (:func:`tuiops.ops.detect_threads.prepare_threads_env`). Every call makes
    sure ultralytics' config folder holds ``Arial.ttf`` (a copy of a font that exists
    here), which its dataset checks want. Returns the ``ultralytics`` module.
    """
    os.environ["YOLO_OFFLINE"] = "true"
    prepare_threads_env()
    if "ultralytics" not in sys.modules and not os.environ.get("YOLO_CONFIG_DIR"):
        folder = (
            ws.root / ULTRALYTICS_DIR if ws is not None else Path.home() / ".cache" / "tuiops" / "ultralytics"
        )
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(folder)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # its logger keeps the stream it finds at import
            import ultralytics
            from ultralytics.utils import USER_CONFIG_DIR
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ExternalToolError(
            f"cannot import ultralytics: {exc}", hint="install it with `pip install ultralytics`"
        ) from exc
    _install_fonts(Path(USER_CONFIG_DIR))
    restore_pil_open()
    return ultralytics


def restore_pil_open() -> None:
    """Undo ultralytics' process-wide patch of ``PIL.Image.open``.

    On import ultralytics replaces ``PIL.Image.open`` with a wrapper that, on an unidentified
    image, tries to install and load a HEIF plugin; offline that turns "not an image" into an
    import error for every other part of the process (scanning, painting, converting).
    """
    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


@contextlib.contextmanager
def ultralytics_output(log: Path | None) -> Iterator[None]:
    """Send ultralytics' log lines and progress bars to ``log`` (appended) instead of stdout.

    stdout is where tuiops prints data; with ``log=None`` the chatter goes to stderr.
    """
    import logging

    target: Any
    if log is None:
        target = sys.stderr
        fh = None
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "a", encoding="utf-8")  # noqa: SIM115
        target = fh
    logger = logging.getLogger("ultralytics")
    saved = []
    for h in logger.handlers:
        if isinstance(h, logging.StreamHandler):
            saved.append((h, h.stream))
            _swap_stream(h, target)
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        for h, stream in saved:
            _swap_stream(h, stream)
        if fh is not None:
            fh.close()


def _swap_stream(handler: Any, stream: Any) -> None:
    """Point a logging handler at ``stream`` without flushing the old one, which may be
    closed already (the handler keeps whatever stdout was when ultralytics was imported,
    e.g. a capture buffer of an earlier command run in this process)."""
    with handler.lock:
        handler.stream = stream


def load_model(ws: Workspace | None, weights: str | os.PathLike[str]) -> Any:
    """Load YOLO weights (a ``.pt`` file) for inference; a clear error when that fails."""
    path = Path(weights)
    if not path.is_file():
        raise NotFoundError(f"weights file {display_path(path)} does not exist", hint="give a .pt file")
    prepare_ultralytics(ws)
    from ultralytics import YOLO

    try:
        with ultralytics_output(None):
            return YOLO(str(path))
    except Exception as exc:
        raise InputError(
            f"cannot load weights {display_path(path)}: {type(exc).__name__}: {exc}",
            hint="is it a YOLO .pt checkpoint written by ultralytics?",
        ) from exc


def class_mapping(model_names: dict[int, str], classes: Sequence[str], mode: str = "name") -> np.ndarray:
    """An array mapping each model class index to a workspace class id.

    ``mode="name"`` maps by class name (every model class must be in the class map);
    ``mode="index"`` keeps the indices (each must exist in the class map).
    """
    import numpy as np

    n = max(model_names) + 1 if model_names else 0
    out = np.full(n, -1, dtype=np.int64)
    if mode == "index":
        bad = [i for i in model_names if i >= len(classes)]
        if bad:
            raise InputError(
                f"the model has class index {bad[0]}, but the workspace class map has {len(classes)} classes",
                hint="add classes with `tuiops classes add`, or map by name",
            )
        for i in model_names:
            out[i] = i
        return out
    if mode != "name":
        raise UsageError(f"unknown class mapping {mode!r}: use 'name' or 'index'")
    index = {c: i for i, c in enumerate(classes)}
    missing = [name for name in model_names.values() if name not in index]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise InputError(
            f"the model's classes {shown} are not in the workspace class map",
            hint=f"add them with `tuiops classes add {' '.join(missing[:5])}`, or map by index (--class-map index)",
        )
    for i, name in model_names.items():
        out[i] = index[name]
    return out


# -- selection -------------------------------------------------------------------------------------
_SOURCE_SQL = """
    SELECT f.id AS file_id, p.name AS pool, f.relpath, i.key, i.booru, i.fid, f.keyed, f.item_id,
           f.size, f.mtime_ns, f.width, f.height, f.format, f.mode, f.phash, f.status, f.error,
           f.scanned, f.relpath_raw, p.root, f.width AS file_w, f.height AS file_h,
           i.width AS item_w, i.height AS item_h
    FROM files AS f {indexed}
    {join} pools p ON p.id = f.pool_id
    {join} items i ON i.id = f.item_id
"""
"""The columns of ``v_images`` (for ``--where``) plus what detection needs. Reading a chunk
walks ``files`` in item-id order (``INDEXED BY files_item``, and ``CROSS JOIN`` keeps files
the outer loop), so every chunk query starts where the last one stopped instead of
filtering the whole pool again."""

_NOT_DONE = "NOT EXISTS (SELECT 1 FROM run_images r WHERE r.run_id = ? AND r.item_id = s.item_id)"
_NOT_FAILED = "NOT EXISTS (SELECT 1 FROM detect_errors e WHERE e.run_id = ? AND e.item_id = s.item_id)"

_SELECT_SQL = (
    "SELECT s.item_id, MIN(s.file_id) AS file_id, s.root, s.relpath, s.relpath_raw, s.file_w, s.file_h, "
    "s.item_w, s.item_h FROM ("
    + _SOURCE_SQL.format(indexed="INDEXED BY files_item", join="CROSS JOIN")
    + ") AS s "
    "WHERE s.status = 'ok' AND s.item_id > ? {pool} AND ({where}) AND {todo} "
    "GROUP BY s.item_id ORDER BY s.item_id LIMIT ?"
)

_COUNT_SQL = (
    "SELECT count(DISTINCT s.item_id), count(DISTINCT CASE WHEN {todo} THEN s.item_id END) "
    "FROM (" + _SOURCE_SQL.format(indexed="", join="JOIN") + ") AS s "
    "WHERE s.status = 'ok' AND s.item_id IS NOT NULL {pool} AND ({where})"
)


def _sel_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "item_id": pl.Int64,
        "file_id": pl.Int64,
        "root": pl.String,
        "relpath": pl.String,
        "relpath_raw": pl.Binary,
        "file_w": pl.Int64,
        "file_h": pl.Int64,
        "item_w": pl.Int64,
        "item_h": pl.Int64,
    }


def _todo_sql(skip_errors: bool) -> str:
    return f"{_NOT_DONE} AND {_NOT_FAILED}" if skip_errors else _NOT_DONE


def count_selection(
    store: Store, where: str | None, *, pool: str | None, run_id: int, skip_errors: bool
) -> tuple[int, int]:
    """How many images (items with a file of status ``ok``) a selection holds, and how many
    of them the run has still to do."""
    sql = _COUNT_SQL.format(
        pool="AND s.pool = ?" if pool is not None else "", where=where or "1", todo=_todo_sql(skip_errors)
    )
    params: list[Any] = [run_id] + ([run_id] if skip_errors else [])
    if pool is not None:
        params.append(pool)
    try:
        with store.connection() as conn:
            if where:  # the chunks that follow read the same condition
                check_where(where)
                authorize(conn, sql, params, what=f"--where {where!r}")
            row = conn.execute(sql, params).fetchone()
    except TuiopsError:
        raise
    except Exception as exc:
        raise where_error(where or "", exc) from exc
    return int(row[0]), int(row[1])


def iter_selection(
    store: Store,
    where: str | None,
    *,
    pool: str | None,
    run_id: int,
    skip_errors: bool,
    chunk: int = CHUNK_IMAGES,
) -> Iterator[pl.DataFrame]:
    """The selected images not yet in the run, in item-id order, ``chunk`` at a time.

    Each frame has ``item_id``, ``file_id``, ``path`` (bytes), ``file_w``, ``file_h``,
    ``item_w``, ``item_h``: one file per item (the lowest file id with status ``ok``).
    """
    import polars as pl

    sql = _SELECT_SQL.format(
        pool="AND s.pool = ?" if pool is not None else "", where=where or "1", todo=_todo_sql(skip_errors)
    )
    last = -1
    while True:
        params: list[Any] = [last]
        if pool is not None:
            params.append(pool)
        params.append(run_id)
        if skip_errors:
            params.append(run_id)
        params.append(chunk)
        try:
            frame = store.read_frame(sql, params, _sel_schema())
        except Exception as exc:
            if where:
                raise where_error(where, exc) from exc
            raise
        if frame.height == 0:
            return
        last = int(frame["item_id"][-1])
        root = pl.col("root").cast(pl.Binary)
        rel = pl.coalesce(pl.col("relpath_raw"), pl.col("relpath").cast(pl.Binary))
        yield frame.select(
            "item_id",
            "file_id",
            pl.concat_str([root.bin.encode("hex"), pl.lit("2f"), rel.bin.encode("hex")])
            .str.decode("hex")
            .alias("path"),
            "file_w",
            "file_h",
            "item_w",
            "item_h",
        )
        if frame.height < chunk:
            return


def _explicit_chunks(images: pl.DataFrame, done: pl.DataFrame, chunk: int) -> Iterator[pl.DataFrame]:
    """Chunks of an explicit image list (``item_id``, ``path`` [, ``file_id``, sizes]) not yet done."""
    import polars as pl

    if "path" not in images.columns or "item_id" not in images.columns:
        raise UsageError("an explicit image list needs the columns item_id and path")
    frame = images.with_columns(pl.col("item_id").cast(pl.Int64))
    for col in ("file_id", "file_w", "file_h", "item_w", "item_h"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Int64).alias(col))
    path = pl.col("path")
    if frame.schema["path"] != pl.Binary:
        path = path.cast(pl.String).cast(pl.Binary)
    frame = (
        frame.select(
            "item_id",
            pl.col("file_id").cast(pl.Int64),
            path.alias("path"),
            *[pl.col(c).cast(pl.Int64) for c in ("file_w", "file_h", "item_w", "item_h")],
        )
        .unique("item_id", keep="first")
        .join(done, on="item_id", how="anti")
        .sort("item_id")
    )
    for start in range(0, frame.height, chunk):
        yield frame.slice(start, chunk)


# -- decoding --------------------------------------------------------------------------------------
def load_image(path: bytes | str) -> tuple[Any, str | None]:
    """Read and decode one image as a BGR array (EXIF orientation ignored, as the item's frame).

    Returns ``(array, None)`` or ``(None, reason)``; never raises for a bad file.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return None, f"cannot read the file: {exc.strerror or exc}"
    return decode_image(data)


def decode_image(data: bytes) -> tuple[Any, str | None]:
    """Decode the bytes of one image file as :func:`load_image` does; never raises."""
    import cv2
    import numpy as np

    if not data:
        return None, "the file is empty"
    from tuiops.ops.probe import sniff

    fmt = sniff(data[:32])
    if fmt is None:
        return None, "not an image file (no known image signature)"
    buf = np.frombuffer(data, np.uint8)
    arr = None
    with contextlib.suppress(cv2.error):
        arr = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is not None:
        return arr, None
    if fmt in _CV2_FORMATS:
        return None, f"cannot decode the {fmt} image (corrupt or truncated)"
    try:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"))
        return np.ascontiguousarray(rgb[:, :, ::-1]), None
    except Exception:
        return None, f"cannot decode the {fmt} image (corrupt or truncated)"


# -- the op ----------------------------------------------------------------------------------------
@dataclass
class DetectResult:
    """What a detection run did (and how fast)."""

    run: str
    weights: str
    weights_sha256: str
    selected: int = 0
    already_done: int = 0
    processed: int = 0
    detections: int = 0
    errors: int = 0
    resumed: bool = False
    seconds: float = 0.0
    model_seconds: float = 0.0
    wait_seconds: float = 0.0
    store_seconds: float = 0.0
    error_examples: list[dict[str, Any]] = field(default_factory=list)
    cluster: dict[str, Any] | None = None
    """With ``--cluster``: workers, tasks and where their time went (see ``ClusterStats``)."""
    threads: dict[str, Any] | None = None
    """A run here: torch's threads, the decoding threads, the batch and the cores (see ``ThreadPlan``)."""

    @property
    def images_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def outside_model_share(self) -> float:
        """The share of the wall time not spent in the model (decoding waits, storing, bookkeeping)."""
        return max(0.0, 1.0 - self.model_seconds / self.seconds) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["images_per_s"] = round(self.images_per_s, 2)
        d["outside_model_share"] = round(self.outside_model_share, 4)
        for k in ("seconds", "model_seconds", "wait_seconds", "store_seconds"):
            d[k] = round(d[k], 3)
        return d


def model_epoch(model: Any) -> int | None:
    ckpt = getattr(model, "ckpt", None) or {}
    epoch = ckpt.get("epoch") if isinstance(ckpt, dict) else None
    return int(epoch) + 1 if isinstance(epoch, int) and epoch >= 0 else None


def open_run(
    store: Store,
    run: str,
    *,
    weights: Path,
    sha: str,
    epoch: int | None,
    conf: float,
    iou: float,
    params: dict[str, Any],
    replace: bool,
    source: str | None,
    note: str | None,
) -> tuple[int, bool]:
    """The run's id, creating it (or replacing it); ``True`` when an existing run is continued."""
    import polars as pl

    row = store.execute(
        "SELECT id, weights_sha256, conf, iou, params FROM runs WHERE name = ?", (run,)
    ).fetchone()
    if row is not None and not replace:
        old_sha, old_conf, old_iou = row[1], row[2], row[3]
        old_params = json.loads(row[4]) if row[4] else {}
        if old_sha != sha:
            raise ConflictError(
                f"detection run {run!r} exists and was made with other weights "
                f"(sha256 {str(old_sha)[:12]}…, these are {sha[:12]}…)",
                hint="choose another --run name, or pass --replace to start it again",
            )
        changed = [
            k
            for k, old, new in (
                ("conf", old_conf, conf),
                ("iou", old_iou, iou),
                ("imgsz", old_params.get("imgsz"), params.get("imgsz")),
                ("max_det", old_params.get("max_det"), params.get("max_det")),
                ("class_map", old_params.get("class_map"), params.get("class_map")),
            )
            if old is not None and old != new
        ]
        if changed:
            raise ConflictError(
                f"detection run {run!r} exists with other settings ({', '.join(changed)})",
                hint="continue it with the same settings, choose another --run name, or pass --replace",
            )
        return int(row[0]), True
    empty_boxes = pl.DataFrame(schema=box_schema(stored=False, score=True))
    rid = store.create_run(
        run,
        empty_boxes,
        pl.DataFrame(schema={"item_id": pl.Int64}),
        source=source or "detect",
        fmt="ultralytics",
        weights=str(weights),
        weights_sha256=sha,
        epoch=epoch,
        conf=conf,
        iou=iou,
        params=params,
        note=note,
        replace=replace,
    )
    return rid, False


def detect(
    ws: Workspace,
    weights: str | os.PathLike[str],
    run: str,
    *,
    where: str | None = None,
    pool: str | None = None,
    images: pl.DataFrame | None = None,
    batch: int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    imgsz: int = 640,
    max_det: int = 300,
    device: str | None = None,
    threads: int | None = None,
    class_map: str = "name",
    epoch: int | None = None,
    replace: bool = False,
    retry_errors: bool = False,
    limit: int | None = None,
    source: str | None = None,
    note: str | None = None,
    model: Any = None,
    cluster: ClusterOptions | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> DetectResult:
    """Run ``weights`` over the selected images and append every detection to run ``run``.

    The selection is the pool's images (files with status ``ok``, one per item) matching
    ``where`` (a condition on ``v_images``) and ``pool``, or the explicit ``images``
    frame (``item_id``, ``path`` [, ``file_id``, ``item_w``, ``item_h``]). An existing run
    of the same name, weights and settings is continued (only images not yet in it are
    processed); other weights or settings are a conflict unless ``replace``. ``limit``
    stops after that many images (the rest stay for a later run). ``model`` passes an
    already loaded YOLO model for ``weights``. ``threads`` sets torch's CPU threads and
    ``batch`` the images per model call; left out, both are chosen from the cores this
    process may use (see :mod:`tuiops.ops.detect_threads`). With ``cluster`` the images
    are processed by the workers of a Dask cluster in image-range tasks and this process
    writes their results (see :mod:`tuiops.ops.cluster`); each worker chooses its own.
    """
    _check_args(batch, conf, iou, imgsz, threads, explicit=images is not None, where=where, pool=pool)
    store = ws.store
    wpath, model, sha = _load_weights(ws, weights, model)
    names = {int(k): str(v) for k, v in (model.names or {}).items()}
    cls_map = class_mapping(names, ws.classes, class_map)
    if pool is not None:
        store.pool_id(pool)
    pace = choose_threads(threads, batch, gpu=uses_gpu(device))
    settings = {"imgsz": imgsz, "max_det": max_det, "class_map": class_map, "where": where, "pool": pool}
    params = {**settings, "batch": batch or pace.batch, "device": device}
    run_id, resumed = open_run(
        store,
        run,
        weights=wpath,
        sha=sha,
        epoch=model_epoch(model) if epoch is None else epoch,
        conf=conf,
        iou=iou,
        params=params,
        replace=replace,
        source=source,
        note=note,
    )
    selected, already, chunks = _selection(store, run_id, images, where, pool, retry_errors, cluster)
    todo = max(0, selected - already) if limit is None else min(max(0, selected - already), limit)
    result = DetectResult(
        run=run,
        weights=str(wpath),
        weights_sha256=sha,
        selected=selected,
        already_done=already,
        resumed=resumed,
        threads=pace.to_dict() if cluster is None else None,
    )
    job_params: dict[str, Any] = {"run": run, "weights": str(wpath), "where": where, "pool": pool}
    job_params.update(conf=conf, iou=iou, imgsz=imgsz, batch=params["batch"])
    if cluster is not None:
        job_params["cluster"] = cluster.spec
    predict_args: dict[str, Any] = {
        "imgsz": imgsz,
        "conf": conf,
        "iou": iou,
        "max_det": max_det,
        "verbose": False,
    }
    if device is not None:
        predict_args["device"] = device
    with job(store, "detect", job_params, total=todo) as j:
        plan = DetectPlan(
            store=store,
            run_id=run_id,
            job_id=j.id,
            todo=todo,
            limit=limit,
            batch=batch,
            threads=threads,
            cls_map=cls_map,
            predict_args=predict_args,
            result=result,
            reporter=Reporter("detect", progress, cancel, total=todo),
            source=chunks,
            buffer=DetectBuffer(FLUSH_IMAGES, FLUSH_SECONDS),
            pace=pace,
        )
        _execute(ws, plan, model, wpath, cluster, j)
    plan.reporter.update(result.processed, f"{result.detections} boxes", force=True)
    return result


def _load_weights(ws: Workspace, weights: str | os.PathLike[str], model: Any) -> tuple[Path, Any, str]:
    """The weights' resolved path, their model (``model`` when one was passed) and SHA-256."""
    wpath = Path(weights).expanduser().resolve()
    if model is None:
        model = load_model(ws, wpath)
    else:
        prepare_ultralytics(ws)
    return wpath, model, sha256_file(wpath)


def _check_args(
    batch: int | None,
    conf: float,
    iou: float,
    imgsz: int,
    threads: int | None,
    *,
    explicit: bool,
    where: str | None,
    pool: str | None,
) -> None:
    """Refuse settings no run can use, before anything is loaded or recorded."""
    if batch is not None and batch < 1:
        raise UsageError(f"--batch must be at least 1 (got {batch})")
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise UsageError(f"--conf and --iou must lie within 0…1 (got {conf}, {iou})")
    if imgsz < 32:
        raise UsageError(f"--imgsz must be at least 32 (got {imgsz})")
    if explicit and (where is not None or pool is not None):
        raise UsageError("give either an explicit image list or --where/--pool, not both")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {threads})")


def _execute(
    ws: Workspace, plan: DetectPlan, model: Any, wpath: Path, cluster: ClusterOptions | None, j: JobHandle
) -> None:
    """Run a set-up plan here or on the cluster; the job's record gets the result either way."""
    result = plan.result
    t0 = time.perf_counter()
    try:
        if cluster is None or plan.todo == 0:
            _run_here(plan, model)
        else:
            from tuiops.ops.cluster import detect_on_cluster

            detect_on_cluster(ws, plan, wpath, cluster)
    finally:
        result.seconds = time.perf_counter() - t0
        j.result = result.to_dict()


def _selection(
    store: Store,
    run_id: int,
    images: pl.DataFrame | None,
    where: str | None,
    pool: str | None,
    retry_errors: bool,
    cluster: ClusterOptions | None,
) -> tuple[int, int, Iterator[pl.DataFrame]]:
    """How many images are selected, how many of them the run has done, and the chunks to do."""
    import polars as pl

    size = cluster.task_images if cluster is not None else CHUNK_IMAGES
    if images is not None:
        done = store.read_frame(
            "SELECT item_id FROM run_images WHERE run_id = ?"
            + ("" if retry_errors else " UNION SELECT item_id FROM detect_errors WHERE run_id = ?"),
            (run_id,) if retry_errors else (run_id, run_id),
            {"item_id": pl.Int64},
        )
        selected = int(images["item_id"].n_unique())
        already = int(
            images.select(pl.col("item_id").cast(pl.Int64))
            .unique()
            .join(done, on="item_id", how="semi")
            .height
        )
        return selected, already, _explicit_chunks(images, done, size)
    selected, remaining = count_selection(
        store, where, pool=pool, run_id=run_id, skip_errors=not retry_errors
    )
    chunks = iter_selection(store, where, pool=pool, run_id=run_id, skip_errors=not retry_errors, chunk=size)
    return selected, selected - remaining, chunks


def _run_here(plan: DetectPlan, model: Any) -> None:
    """The local loop: threads read and decode the next batch while the model works on this one."""
    loader = ThreadPoolExecutor(max_workers=plan.pace.decode)
    size = plan.pace.batch

    def batches() -> Iterator[pl.DataFrame]:
        for chunk in plan.chunks():
            for s in range(0, chunk.height, size):
                yield chunk.slice(s, size)

    def submit(meta: pl.DataFrame) -> list[Future]:
        return [loader.submit(load_image, p) for p in meta["path"].to_list()]

    result = plan.result
    pending: list[Future] = []
    try:
        it = batches()
        current = next(it, None)
        pending = submit(current) if current is not None else []
        while current is not None:
            tw = time.perf_counter()
            loaded = [f.result() for f in pending]
            result.wait_seconds += time.perf_counter() - tw
            nxt = next(it, None)
            pending = submit(nxt) if nxt is not None else []
            plan.add(predict_batch(model, current, loaded, plan.cls_map, plan.predict_args, plan.pace.torch))
            plan.reporter.update(result.processed + plan.pending, f"{result.detections} boxes")
            current = nxt
        plan.commit()
    except BaseException:
        for f in pending:
            f.cancel()
        try:
            with contextlib.suppress(Exception):
                plan.commit()
        finally:
            loader.shutdown(wait=True, cancel_futures=True)
        raise
    loader.shutdown(wait=True)
