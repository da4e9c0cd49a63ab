"""Images re-encoded (convert) or painted with their boxes (paint) while an action runs."""

from __future__ import annotations

import os
from typing import Any

from tuiops.fsutil import display_path
from tuiops.ops.fileops.acts import Action, ActionError, JobContext, open_source
from tuiops.ops.fileops.model import ConvertOptions


def encode_image(src: bytes, opts: ConvertOptions, ctx: JobContext) -> tuple[bytes, dict[str, Any]]:
    """Re-encode an image with Pillow (format, quality, largest side, metadata)."""
    import io

    from PIL import Image, UnidentifiedImageError

    fd = open_source(src, ctx)
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read()
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            exif = im.info.get("exif")
            icc = im.info.get("icc_profile")
            out: Image.Image = im
            if opts.max_side and max(im.size) > opts.max_side:
                s = opts.max_side / max(im.size)
                size = (max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s)))
                out = im.resize(size, Image.Resampling.LANCZOS)
            out = _mode_for(out, opts.format)
            buf = io.BytesIO()
            kwargs: dict[str, Any] = {}
            if opts.format in ("jpeg", "webp"):
                kwargs["quality"] = opts.quality
            if not opts.strip_metadata:
                if exif:
                    kwargs["exif"] = exif
                if icc:
                    kwargs["icc_profile"] = icc
            out.save(buf, format=opts.format.upper(), **kwargs)
            info = {
                "width": out.size[0],
                "height": out.size[1],
                "format": opts.format.upper(),
                "mode": out.mode,
            }
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ActionError(f"cannot convert {display_path(src)}: {_decode_error(exc)}") from exc
    return buf.getvalue(), info


def _decode_error(exc: BaseException) -> str:
    """Why Pillow could not decode an image, in words."""
    from PIL import Image

    if isinstance(exc, Image.DecompressionBombError):
        return f"not decoded, a decompression bomb ({exc})"
    return str(exc)


def paint_image(a: Action, ctx: JobContext) -> bytes:
    """Draw an action's boxes on its source image (see :mod:`tuiops.ops.paint`)."""
    from tuiops.imaging import render

    assert a.src is not None
    fd = open_source(a.src, ctx)
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read()
    from PIL import Image

    try:
        return render(raw, a.data or b"{}")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ActionError(f"cannot paint {display_path(a.src)}: {_decode_error(exc)}") from exc


def _mode_for(im: Any, fmt: str) -> Any:
    from PIL import Image

    if fmt == "jpeg":
        if im.mode in ("RGB", "L", "CMYK"):
            return im
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.getchannel("A"))
            return bg
        return im.convert("RGB")
    if fmt == "webp" and im.mode not in ("RGB", "RGBA"):
        return im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
    if fmt == "png" and im.mode == "CMYK":
        return im.convert("RGB")
    return im
