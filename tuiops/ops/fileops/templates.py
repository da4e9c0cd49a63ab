"""Target-name templates: ``{field}`` parts rendered as polars expressions."""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING, Any

from tuiops.errors import UsageError
from tuiops.ops.fileops.model import FIELD_ALIASES

if TYPE_CHECKING:
    import polars as pl


_SPEC_RX = re.compile(r"^0?(\d+)d$")


def parse_template(template: str) -> list[tuple[str, str | None, int | None]]:
    """Split a ``{field}`` template into (literal, field, zero-pad width) parts."""
    parts: list[tuple[str, str | None, int | None]] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(
            f"bad template {template!r}: {exc}", hint="fields look like {booru} or {fid:08d}"
        ) from exc
    for literal, fld, spec, conv in parsed:
        width = None
        if fld is not None:
            if conv:
                raise UsageError(f"template {template!r}: conversions like !{conv} are not supported")
            if spec:
                m = _SPEC_RX.match(spec)
                if m is None:
                    raise UsageError(
                        f"template {template!r}: format {spec!r} is not supported", hint="use {fid:08d}"
                    )
                width = int(m.group(1))
            fld = FIELD_ALIASES.get(fld, fld)
        parts.append((literal, fld, width))
    for literal, _, _ in parts:
        if "\x00" in literal or any(c in ("..",) for c in literal.split("/")):
            raise UsageError(f"template {template!r} must stay inside the target folder (no '..')")
    return parts


def template_fields(*templates: str) -> list[str]:
    out: dict[str, None] = {}
    for t in templates:
        for _, fld, _ in parse_template(t):
            if fld is not None:
                out[fld] = None
    return list(out)


def render_template(parts: list[tuple[str, str | None, int | None]]) -> pl.Expr:
    import polars as pl

    pieces: list[pl.Expr] = []
    for literal, fld, width in parts:
        if literal:
            pieces.append(pl.lit(literal))
        if fld is not None:
            e = pl.col(f"_f_{fld}")
            if width:
                e = e.str.zfill(width)
            pieces.append(e)
    return pl.concat_str(pieces) if pieces else pl.lit("")


def stem_expr(name: pl.Expr) -> pl.Expr:
    """A file name without its last extension (a leading dot does not start one)."""
    import polars as pl

    cut = name.str.replace(r"\.[^.]*$", "")
    return pl.when(cut == "").then(name).otherwise(cut)


def field_value(name: str, dtype: Any) -> pl.Expr:
    """A selection column as safe text for a path component (null → ``none``)."""
    import polars as pl

    e = pl.col(name).cast(pl.String)
    if name not in ("dir", "relpath"):
        e = e.str.replace_all("/", "_", literal=True).str.replace_all("\x00", "", literal=True)
        e = pl.when(e.is_in([".", ".."])).then(pl.lit("_")).otherwise(e)
    return pl.when(e.is_null() | (e == "")).then(pl.lit("none") if name != "dir" else pl.lit("")).otherwise(e)
