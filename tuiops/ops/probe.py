"""Probing one image file: header, truncation, perceptual hash, EXIF, full decode.

This module is what the scan's worker processes import, so it stays light: Pillow at
import time, imagehash (numpy, scipy) and exifread only when a probe asks for them.
Every probe returns a result for every file; a bad file is a status, never an exception.
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any, cast

from PIL import Image, UnidentifiedImageError

from tuiops.keys import compile_key_pattern, parse_key

#: ``files.checks`` bits: what a probe has looked at.
CHECK_HEADER = 1
CHECK_HASH = 2
CHECK_EXIF = 4
CHECK_VERIFY = 8
CHECK_ALL = CHECK_HEADER | CHECK_HASH | CHECK_EXIF | CHECK_VERIFY

#: Every status a file can have; ``missing`` is set by the scan, not by a probe.
STATUSES = ("ok", "wrong_ext", "truncated", "corrupt", "empty", "not_image", "unreadable", "missing")
BAD_STATUSES = ("wrong_ext", "truncated", "corrupt", "empty", "not_image", "unreadable")

#: Formats Pillow may identify a pool file as; loose-magic formats (TGA, …) are left out
#: so that a text file is never taken for an image.
OPEN_FORMATS = (
    "JPEG",
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "TIFF",
    "AVIF",
    "JPEG2000",
    "ICO",
    "PSD",
    "QOI",
    "PPM",
)

#: Content formats each file extension stands for.
EXTENSION_FORMATS: dict[str, frozenset[str]] = {
    ext: frozenset(fmts)
    for exts, fmts in (
        ((".jpg", ".jpeg", ".jpe", ".jfif", ".jif"), ("JPEG", "MPO")),
        ((".mpo",), ("MPO", "JPEG")),
        ((".png", ".apng"), ("PNG",)),
        ((".gif",), ("GIF",)),
        ((".webp",), ("WEBP",)),
        ((".bmp", ".dib"), ("BMP",)),
        ((".tif", ".tiff"), ("TIFF",)),
        ((".avif",), ("AVIF",)),
        ((".jp2", ".j2k", ".jpf", ".jpx"), ("JPEG2000",)),
        ((".ico",), ("ICO",)),
        ((".psd",), ("PSD",)),
        ((".qoi",), ("QOI",)),
        ((".ppm", ".pgm", ".pbm", ".pnm"), ("PPM",)),
    )
    for ext in exts
}

#: Useful EXIF tags (exifread names) and the keys they get in ``files.exif``.
EXIF_TAGS = {
    "Image Make": "make",
    "Image Model": "model",
    "Image DateTime": "datetime",
    "EXIF DateTimeOriginal": "datetime_original",
    "EXIF DateTimeDigitized": "datetime_digitized",
    "Image Orientation": "orientation",
    "Image Software": "software",
    "Image Artist": "artist",
    "Image Copyright": "copyright",
    "Image ImageDescription": "description",
    "EXIF LensModel": "lens",
    "EXIF ExifImageWidth": "exif_width",
    "EXIF ExifImageLength": "exif_height",
    "EXIF ISOSpeedRatings": "iso",
    "EXIF ExposureTime": "exposure_time",
    "EXIF FNumber": "f_number",
    "EXIF FocalLength": "focal_length",
    "EXIF ColorSpace": "color_space",
}
_EXIF_INT_KEYS = {"orientation", "exif_width", "exif_height", "iso"}
_EXIF_FORMATS = {"JPEG", "MPO", "TIFF", "PNG", "WEBP"}
_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})([ T]\d{2}:\d{2}:\d{2}.*)?$")

_TAIL = 1024
_TAIL_CHECKED = {"JPEG", "PNG", "GIF", "WEBP"}
#: Formats whose (even reduced) decode reads every byte of image data: a decode that
#: succeeds proves the file is complete although its tail looks cut.
_DECODE_PROVES_COMPLETE = {"JPEG", "MPO", "PNG", "WEBP", "BMP"}
_PNG_END = b"IEND\xaeB`\x82"

#: One probe result, in this order (see :data:`RESULT_FIELDS`).
Result = tuple[str, int | None, int | None, str | None, str | None, int | None, str | None, str | None, int]
RESULT_FIELDS = ("status", "width", "height", "format", "mode", "phash", "exif", "error", "checks")


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """What a probe does beyond reading the header, and how it parses image keys."""

    hash: bool = False
    exif: bool = False
    verify: bool = False
    key_pattern: str | None = None

    @property
    def wanted(self) -> int:
        """The ``checks`` bits a probe with these options aims for."""
        return (
            CHECK_HEADER
            | (CHECK_HASH if self.hash else 0)
            | (CHECK_EXIF if self.exif else 0)
            | (CHECK_VERIFY if self.verify else 0)
        )


def sniff(head: bytes) -> str | None:
    """The image format a file's first bytes announce, or None when they announce none."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return (
            "AVIF"
            if brand in (b"avif", b"avis")
            else "HEIF"
            if brand[:3] in (b"hei", b"mif", b"hev")
            else None
        )
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith(b"qoif"):
        return "QOI"
    return None


def truncation(fmt: str, head: bytes, tail: bytes, size: int) -> str | None:
    """Why a file of ``fmt`` looks cut short, from its first and last bytes; None if it does not.

    JPEG must end with the end-of-image marker FFD9 (after zero padding), PNG with its
    IEND chunk, GIF with the trailer 0x3B; WebP and BMP must be as long as their headers say.
    """
    if fmt in ("JPEG", "MPO"):
        end = tail.rstrip(b"\x00\r\n\t ")
        if not end.endswith(b"\xff\xd9"):
            return "truncated: no JPEG end marker (FFD9) at the end of the file"
    elif fmt == "PNG":
        if not tail.rstrip(b"\x00\r\n\t ").endswith(_PNG_END):
            return "truncated: no PNG IEND chunk at the end of the file"
    elif fmt == "GIF":
        if not tail.rstrip(b"\x00\r\n\t ").endswith(b";"):
            return "truncated: no GIF trailer (0x3B) at the end of the file"
    elif fmt == "WEBP" and len(head) >= 8:
        declared = int.from_bytes(head[4:8], "little") + 8
        if size < declared:
            return f"truncated: {size} bytes of the {declared} the WebP header declares"
    elif fmt == "BMP" and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        if declared and size < declared:
            return f"truncated: {size} bytes of the {declared} the BMP header declares"
    return None


@functools.lru_cache(maxsize=8)
def _key_rx(pattern: str) -> re.Pattern[str]:
    return compile_key_pattern(pattern)


def phash_int(img: Image.Image) -> int:
    """The 64-bit perceptual hash (imagehash.phash) of an image as a signed integer."""
    import imagehash
    import numpy as np

    bits = imagehash.phash(img).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big", signed=True)


#: How the hashes a scan stores now are made (``files.phash_method``): a JPEG is decoded
#: at the smallest scale (1/8, 1/4, 1/2) still at least 32×32, as grey (its luma), any
#: other image in full; then, as imagehash.phash does, grey, Lanczos to 32×32, the DCT's
#: 8×8 lowest frequencies against their median. Method 1, of older scans, decoded JPEGs
#: in colour at a scale at least 256×256; a non-JPEG's hash is the same by both methods.
#: Hashes of two methods are never compared: a JPEG's differ in 1 or 2 bits about a
#: third of the time.
PHASH_METHOD = 2
_HASH_SIDE = 32


def hash_pixels(img: Image.Image) -> Any:
    """The 32×32 grey pixels (uint8 array) a perceptual hash is computed from."""
    import numpy as np

    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img.resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.LANCZOS))


def phash_batch(pixels: list[Any]) -> list[int]:
    """The signed 64-bit perceptual hashes of many 32×32 grey arrays at once; each equals
    imagehash.phash of the image the array was made from (see :func:`hash_pixels`)."""
    import numpy as np
    from scipy.fftpack import dct

    if not pixels:
        return []
    # the same transform as imagehash's, one image per slice: ties (flat images) come out alike
    both = dct(dct(np.stack(pixels).astype(np.float64), axis=1), axis=2)
    flat = np.ascontiguousarray(both[:, :8, :8]).reshape(len(pixels), 64)
    bits = np.packbits(flat > np.median(flat, axis=1, keepdims=True), axis=1)
    return [int(v) for v in bits.view(">i8").ravel()]


def hash_decode(img: Image.Image) -> Any:
    """Decode an opened image for its hash by :data:`PHASH_METHOD`: its 32×32 grey pixels."""
    if img.format in ("JPEG", "MPO"):
        img.draft("L", (_HASH_SIDE, _HASH_SIDE))
    return hash_pixels(img)


def phash_file(path: str | os.PathLike[str]) -> int:
    """The perceptual hash of an image file by :data:`PHASH_METHOD`, as a scan stores it."""
    with Image.open(path) as img:
        return phash_batch([hash_decode(img)])[0]


def phash_hex(value: int) -> str:
    """The 16-digit hex form (as ``str(imagehash.ImageHash)``) of a stored signed hash."""
    return format(value & 0xFFFF_FFFF_FFFF_FFFF, "016x")


def read_exif(fh: Any) -> dict[str, Any]:
    """The useful EXIF tags of an open image file as a JSON-ready dict ({} when none)."""
    import logging

    import exifread

    logging.getLogger("exifread").setLevel(logging.CRITICAL)
    fh.seek(0)
    tags = exifread.process_file(fh, details=False, extract_thumbnail=False)
    out: dict[str, Any] = {}
    for tag, key in EXIF_TAGS.items():
        value = tags.get(tag)
        if value is None:
            continue
        if key in _EXIF_INT_KEYS:
            values = getattr(value, "values", None)
            if isinstance(values, list) and values and isinstance(values[0], int):
                out[key] = int(values[0])
                continue
        text = str(value).replace("\x00", "").strip()
        if not text:
            continue
        m = _EXIF_DATE.match(text) if key.startswith("datetime") else None
        if m:
            text = f"{m.group(1)}-{m.group(2)}-{m.group(3)}{(m.group(4) or '').replace('T', ' ')}"
        out[key] = text
    if any(t.startswith("GPS ") for t in tags):
        out["gps"] = True
    return out


def _load_all_frames(img: Image.Image) -> None:
    """Decode every frame of an image (one for most files)."""
    img.load()
    frames = getattr(img, "n_frames", 1)
    for i in range(1, frames):
        img.seek(i)
        img.load()


def _decode_error(exc: BaseException) -> tuple[str, str]:
    """The status and message of an exception raised while decoding pixels."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    low = str(exc).lower()
    if isinstance(exc, EOFError) or "truncat" in low or "premature end" in low:
        return "truncated", f"truncated: {text}"
    return "corrupt", f"cannot decode: {text}"


def _failed(status: str, fmt: str | None, message: str, checks: int = CHECK_ALL) -> Result:
    """The result of a file whose header could not be read."""
    return (status, None, None, fmt, None, None, None, message, checks)


def probe_file(path: bytes, size: int, display: str, opts: ProbeOptions) -> Result:
    """Probe one file and return its :data:`Result` (status, width, height, format, mode,
    phash, exif JSON, error, checks). Never raises for a bad file."""
    res = _probe_path(path, size, display, opts)
    if res[5] is None:
        return res
    return cast(Result, (*res[:5], phash_batch([res[5]])[0], *res[6:]))


def _probe_path(path: bytes, size: int, display: str, opts: ProbeOptions) -> tuple[Any, ...]:
    """A :data:`Result` whose phash is still the 32×32 pixels it is computed from."""
    if size == 0:
        return _failed("empty", None, "empty file (0 bytes)")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        return _failed("unreadable", None, f"cannot open: {exc.strerror}", 0)
    try:
        return _probe_open(fh, size, display, opts)
    except OSError as exc:
        return _failed("unreadable", None, f"cannot read: {exc.strerror or exc}", 0)
    finally:
        fh.close()


def _probe_open(fh: Any, size: int, display: str, opts: ProbeOptions) -> tuple[Any, ...]:
    head = fh.read(32)
    magic = sniff(head)
    fh.seek(max(0, size - _TAIL))
    tail = fh.read(_TAIL)
    fh.seek(0)
    ext = os.path.splitext(display)[1].lower()
    try:
        img = Image.open(fh, formats=OPEN_FORMATS)
    except Image.DecompressionBombError as exc:
        return _failed("unreadable", magic, f"decompression bomb: {exc}", 0)
    except UnidentifiedImageError:
        if magic is None:
            return _failed("not_image", None, f"not an image (starts with {head[:8].hex(' ')})")
        if magic == "HEIF":
            return _failed("not_image", magic, "HEIF/HEIC image: Pillow cannot read it")
        cut = truncation(magic, head, tail, size)
        if cut is not None:
            return _failed("truncated", magic, cut)
        return _failed("corrupt", magic, f"{magic} header is damaged")
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        cut = truncation(magic, head, tail, size) if magic else None
        status, message = _decode_error(exc)
        if cut is not None:
            status, message = "truncated", cut
        elif status == "corrupt" or magic in _TAIL_CHECKED:
            # the file ends as it should: a "truncated" read came from a damaged length field
            status, message = "corrupt", f"{magic or 'image'} header is damaged: {exc}"
        return _failed(status, magic, message)
    fmt = img.format or magic
    width, height = img.size
    mode = img.mode
    checks = CHECK_HEADER
    status = "ok"
    notes: list[str] = []
    expected = EXTENSION_FORMATS.get(ext)
    if expected is None or fmt not in expected:
        status = "wrong_ext"
        notes.append(f"{fmt} content but extension {ext or '(none)'!r}")
    cut = truncation(fmt, head, tail, size) if fmt else None
    limit = Image.MAX_IMAGE_PIXELS
    bomb = limit is not None and width * height > limit
    if bomb:
        notes.append(
            f"decompression bomb: {width}x{height} = {width * height} pixels (limit {limit}); not decoded"
        )
        checks |= CHECK_HASH | CHECK_VERIFY
    exif_json: str | None = None
    pixels: Any = None
    decoded = False
    if opts.verify and not bomb:
        try:
            _load_all_frames(img)
            decoded = True
            checks |= CHECK_VERIFY
        except Exception as exc:
            bad, message = _decode_error(exc)
            return (bad, width, height, fmt, mode, None, None, message, CHECK_ALL)
        if cut is not None:
            notes.append("no end marker at the end of the file, but the image decodes fully")
            cut = None
    if (cut is not None and not (opts.hash and fmt in _DECODE_PROVES_COMPLETE)) or bomb:
        if cut is not None:
            return ("truncated", width, height, fmt, mode, None, None, cut, CHECK_ALL & ~CHECK_VERIFY)
    elif opts.hash:
        try:
            if decoded:
                fh.seek(0)
                img = Image.open(fh, formats=OPEN_FORMATS)
            pixels = hash_decode(img)
            checks |= CHECK_HASH
        except Exception as exc:
            bad, message = _decode_error(exc)
            return (bad, width, height, fmt, mode, None, None, message, CHECK_ALL)
        if cut is not None:
            notes.append("no end marker at the end of the file, but the image decodes")
            cut = None
    if opts.exif:
        data: dict[str, Any] = {}
        if fmt in _EXIF_FORMATS:
            try:
                data = read_exif(fh)
            except Exception as exc:
                data = {"_error": f"{type(exc).__name__}: {exc}"}
        exif_json = json.dumps(data, ensure_ascii=False, sort_keys=True)
        checks |= CHECK_EXIF
    return (status, width, height, fmt, mode, pixels, exif_json, "; ".join(notes) or None, checks)


def probe_ping() -> bool:
    """A trivial task: does a worker process run at all?"""
    return True


def probe_chunk(
    root: bytes, paths: list[bytes], sizes: list[int], displays: list[str], opts: ProbeOptions
) -> list[tuple[Any, ...]]:
    """Probe a chunk of files below ``root``; one row per file: the :data:`Result` fields,
    then ``key``, ``booru``, ``fid`` parsed from the file name."""
    rx = _key_rx(opts.key_pattern) if opts.key_pattern else None
    out: list[list[Any]] = []
    hashed: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rel, size, display in zip(paths, sizes, displays, strict=True):
            try:
                res = _probe_path(os.path.join(root, rel), size, display, opts)
            except Exception as exc:
                res = _failed("corrupt", None, f"probe failed: {type(exc).__name__}: {exc}", 0)
            if res[5] is not None:
                hashed.append(len(out))
            if rx is not None:
                k = parse_key(display, rx)
                out.append([*res, k.key, k.booru, k.fid])
            else:
                out.append([*res, None, None, None])
    # the DCT of the whole chunk's hashes in one numpy call
    for i, value in zip(hashed, phash_batch([out[i][5] for i in hashed]), strict=True):
        out[i][5] = value
    return [tuple(row) for row in out]
