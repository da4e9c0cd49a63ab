"""Pascal VOC XML: one ``<annotation>`` file per image, boxes as ``<object>`` elements.

Coordinates are taken as absolute pixel coordinates exactly as written (no 1-based
shift), the convention of labelImg and CVAT.

Lossless: the reader keeps each file's document skeleton (the text before the root,
the root element with every child, attribute, comment and whitespace, a placeholder
where each ``<object>`` was, the text after it, the encoding) in the image's meta, and
each ``<object>`` element as written (``pose``, ``truncated``, ``difficult``,
``occluded``, unknown child tags, the coordinates' text such as ``100`` or ``100.0``)
in the box's extra. The writer puts the objects back into the skeleton, changing only
what changed in the store: the class name, a moved coordinate, one of the flat fields.
A labelImg file comes back byte-identical; any file comes back XML-structure-identical,
with these normalisations of ElementTree's serialiser: attribute values in double
quotes, an empty element as ``<tag />``, ``>``/``&`` escaped as entities, CDATA as
escaped text.

Coordinates of an object that came from VOC are never rounded: an unchanged one keeps
its text (``100``, ``100.0``, ``100.25``), a moved one is written exactly (``100`` for a
whole number, else the shortest decimal that reads back as the same float, ``100.4``).
A box without a VOC object (from YOLO, COCO, a detection) is written as labelImg
writes it, in whole pixels: each coordinate rounded to the nearest pixel, a change of
at most 0.5 px.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import polars as pl

from tuiops.formats import ReadResult, find_label_files, problems_frame, read_all

PLACEHOLDER = "tuiops-object"
FLAT_FIELDS = ("pose", "truncated", "difficult", "occluded")
COORDS = ("xmin", "ymin", "xmax", "ymax")

_DECL_ENC = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ROOT_START = re.compile(r"<annotation[\s/>]")
_OBJ_START = re.compile(r"<object[\s/>]")


#: One object as written: (line, name, xmin, ymin, xmax, ymax, extra JSON).
VocObject = tuple[int | None, str | None, str | None, str | None, str | None, str | None, str]


@dataclass
class VocFile:
    """One parsed annotation file."""

    meta: str
    width: int | None
    height: int | None
    objects: list[VocObject]


def parse_voc(data: bytes) -> tuple[VocFile | None, str | None]:
    """Parse one VOC file's bytes; returns ``(VocFile, None)`` or ``(None, message)``.

    Each object is ``(line, name, xmin, ymin, xmax, ymax, extra)`` with the texts as
    written (stripped) and the extra JSON.
    """
    bom = data.startswith(b"\xef\xbb\xbf")
    body = data[3:] if bom else data
    m = _DECL_ENC.match(body)
    enc = m.group(1).decode("ascii").lower() if m else "utf-8"
    try:
        text = body.decode(enc)
    except LookupError:
        return None, f"unknown encoding {enc!r} in the XML declaration"
    except UnicodeDecodeError as exc:
        bad_line = body.count(b"\n", 0, exc.start) + 1
        return None, (
            f"not {enc} text: byte 0x{body[exc.start]:02x} at offset {exc.start} (line {bad_line}); "
            "save the file as UTF-8 or declare its encoding"
        )
    try:
        parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
        parser.feed(body)
        root = parser.close()
    except ET.ParseError as exc:
        return None, f"not valid XML: {exc}"
    if root.tag != "annotation":
        return None, f"not a Pascal VOC annotation (the root element is <{root.tag}>, not <annotation>)"
    children = list(root)
    objects = [c for c in children if c.tag == "object"]
    lines: list[int | None] = [None] * len(objects)
    starts = [mo.start() for mo in _OBJ_START.finditer(text)]
    if len(starts) == len(objects):
        nl, last = 1, 0
        for j, pos in enumerate(starts):
            nl += text.count("\n", last, pos)
            last = pos
            lines[j] = nl
    out: list[VocObject] = []
    for obj, line in zip(objects, lines, strict=True):
        name = _text(obj.find("name"))
        bnd = obj.find("bndbox")
        x1, y1, x2, y2 = (_text(bnd.find(k)) if bnd is not None else None for k in COORDS)
        extra: dict[str, Any] = {}
        for k in FLAT_FIELDS:
            el = obj.find(k)
            if el is not None:
                extra[k] = _flat_value(el.text)
        tail, obj.tail = obj.tail, None
        extra["voc"] = ET.tostring(obj, encoding="unicode")
        obj.tail = tail
        out.append((line, name, x1, y1, x2, y2, json.dumps(extra, ensure_ascii=False, separators=(",", ":"))))
    for i, c in enumerate(children):
        if c.tag == "object":
            ph = ET.Element(PLACEHOLDER)
            ph.tail = c.tail
            root[i] = ph
    rs = _ROOT_START.search(text)
    prolog = text[: rs.start()] if rs else ""
    end = text.rfind("</annotation>")
    epilog = text[end + len("</annotation>") :] if end >= 0 else ""
    info: dict[str, Any] = {"prolog": prolog, "root": ET.tostring(root, encoding="unicode"), "epilog": epilog}
    if enc != "utf-8":
        info["encoding"] = enc
    if bom:
        info["bom"] = True
    size = root.find("size")
    width = _int(_text(size.find("width"))) if size is not None else None
    height = _int(_text(size.find("height"))) if size is not None else None
    meta = json.dumps({"voc": info}, ensure_ascii=False, separators=(",", ":"))
    return VocFile(meta, width, height, out), None


def _fromstring(text: str) -> ET.Element:
    """Parse XML text keeping comments and processing instructions."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    parser.feed(text)
    return parser.close()


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip()


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None


def _flat_value(text: str | None) -> int | str:
    t = (text or "").strip()
    if re.fullmatch(r"-?[0-9]+", t) and str(int(t)) == t:
        return int(t)
    return t


def read_voc(src: Path, *, on_file: Callable[[int, int], None] | None = None) -> ReadResult:
    """Read every ``*.xml`` under ``src``.

    ``files``: file_idx, path, meta, size_w, size_h (the ``<size>`` as written, or null).
    ``boxes``: file_idx, line, loc, name, xmin, ymin, xmax, ymax (texts), extra.
    """
    found = find_label_files(src, ".xml")
    paths = [p for p, _ in found]
    datas, errors = read_all(paths, on_file)
    bad: list[tuple[str, int | None, str]] = []
    f_idx: list[int] = []
    f_path: list[str] = []
    f_meta: list[str] = []
    f_w: list[int | None] = []
    f_h: list[int | None] = []
    cols: dict[str, list[Any]] = {k: [] for k in ("file_idx", "line", "loc", "name", *COORDS, "extra")}
    for i, (data, err) in enumerate(zip(datas, errors, strict=True)):
        rel = found[i][1]
        if data is None:
            bad.append((rel, None, err or "cannot read the file"))
            continue
        doc, perr = parse_voc(data)
        if doc is None:
            bad.append((rel, None, perr or "not a VOC file"))
            continue
        f_idx.append(i)
        f_path.append(rel)
        f_meta.append(doc.meta)
        f_w.append(doc.width)
        f_h.append(doc.height)
        for k, (line, name, x1, y1, x2, y2, extra) in enumerate(doc.objects):
            cols["file_idx"].append(i)
            cols["line"].append(line)
            cols["loc"].append(f"object {k + 1}")
            cols["name"].append(name)
            cols["xmin"].append(x1)
            cols["ymin"].append(y1)
            cols["xmax"].append(x2)
            cols["ymax"].append(y2)
            cols["extra"].append(extra)
    files = pl.DataFrame(
        {"file_idx": f_idx, "path": f_path, "meta": f_meta, "size_w": f_w, "size_h": f_h},
        schema={
            "file_idx": pl.Int64,
            "path": pl.String,
            "meta": pl.String,
            "size_w": pl.Int64,
            "size_h": pl.Int64,
        },
    )
    schema = {
        "file_idx": pl.Int64,
        "line": pl.Int64,
        "loc": pl.String,
        "name": pl.String,
        **dict.fromkeys(COORDS, pl.String),
        "extra": pl.String,
    }
    boxes = pl.DataFrame(cols, schema=schema)
    return ReadResult(files=files, boxes=boxes, problems=problems_frame(bad), found=len(paths))


# -- writing ----------------------------------------------------------------------------------------
@dataclass
class VocHeader:
    """What a generated (labelImg-style) document says about its image."""

    folder: str
    filename: str
    path: str
    width: int
    height: int
    depth: int = 3


@dataclass
class VocBox:
    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    extra: str | None = None


def labelimg_skeleton(h: VocHeader) -> str:
    """The root of a labelImg document without objects (tab-indented, as labelImg writes)."""
    return (
        "<annotation>\n"
        f"\t<folder>{escape(h.folder)}</folder>\n"
        f"\t<filename>{escape(h.filename)}</filename>\n"
        f"\t<path>{escape(h.path)}</path>\n"
        "\t<source>\n\t\t<database>Unknown</database>\n\t</source>\n"
        "\t<size>\n"
        f"\t\t<width>{h.width}</width>\n"
        f"\t\t<height>{h.height}</height>\n"
        f"\t\t<depth>{h.depth}</depth>\n"
        "\t</size>\n"
        "\t<segmented>0</segmented>\n"
        "</annotation>"
    )


def labelimg_object(box: VocBox, fields: dict[str, Any]) -> str:
    """One ``<object>`` as labelImg writes it (at depth 1, tab-indented)."""
    pose = fields.get("pose", "Unspecified")
    trunc = fields.get("truncated", 0)
    diff = fields.get("difficult", 0)
    c = [_coord_text(None, v, True) for v in (box.x1, box.y1, box.x2, box.y2)]
    occl = f"\t\t<occluded>{escape(str(fields['occluded']))}</occluded>\n" if "occluded" in fields else ""
    return (
        "<object>\n"
        f"\t\t<name>{escape(box.name)}</name>\n"
        f"\t\t<pose>{escape(str(pose))}</pose>\n"
        f"\t\t<truncated>{escape(str(trunc))}</truncated>\n"
        f"\t\t<difficult>{escape(str(diff))}</difficult>\n"
        f"{occl}"
        "\t\t<bndbox>\n"
        f"\t\t\t<xmin>{c[0]}</xmin>\n"
        f"\t\t\t<ymin>{c[1]}</ymin>\n"
        f"\t\t\t<xmax>{c[2]}</xmax>\n"
        f"\t\t\t<ymax>{c[3]}</ymax>\n"
        "\t\t</bndbox>\n"
        "\t</object>"
    )


def _coord_text(old: str | None, value: float, integer: bool) -> str:
    """A coordinate's text: ``old`` when it reads as ``value``; else ``value`` rounded to a whole
    pixel when ``integer`` (labelImg's layout, for boxes that did not come from VOC), else exact."""
    if old is not None:
        try:
            if float(old.strip()) == value:
                return old
        except ValueError:
            pass
    if integer:
        return str(round(value))
    return exact_text(value)


def exact_text(value: float) -> str:
    """The shortest decimal text that reads back as ``value`` (``100`` for 100.0, no exponent)."""
    v = float(value)
    if v.is_integer():
        return str(int(v))
    text = repr(v)
    if "e" in text or "E" in text:
        text = f"{v:.20f}".rstrip("0").rstrip(".")
    return text


def _object_element(box: VocBox) -> ET.Element:
    fields: dict[str, Any] = json.loads(box.extra) if box.extra else {}
    if not isinstance(fields, dict):
        fields = {}
    tpl = fields.get("voc")
    if not isinstance(tpl, str):
        return _fromstring(labelimg_object(box, fields))
    el = _fromstring(tpl)
    name = el.find("name")
    if name is None:
        name = ET.Element("name")
        name.tail = el.text
        el.insert(0, name)
    if (name.text or "").strip() != box.name:
        name.text = box.name
    bnd = el.find("bndbox")
    if bnd is None:
        bnd = ET.SubElement(el, "bndbox")
    olds = [bnd.find(k) for k in COORDS]
    for tag, old, value in zip(COORDS, olds, (box.x1, box.y1, box.x2, box.y2), strict=True):
        node = old if old is not None else ET.SubElement(bnd, tag)
        node.text = _coord_text(node.text, value, False)
    for k in FLAT_FIELDS:
        if k not in fields:
            continue
        flat = el.find(k)
        if flat is None:
            flat = ET.Element(k)
            pos = list(el).index(bnd)
            flat.tail = name.tail
            el.insert(pos, flat)
            flat.text = str(fields[k])
        elif _flat_value(flat.text) != fields[k]:
            flat.text = str(fields[k])
    return el


def voc_document(meta: str | None, boxes: Sequence[VocBox], header: VocHeader) -> bytes:
    """The bytes of one image's VOC file: its stored skeleton (or a labelImg one) with ``boxes``."""
    info: dict[str, Any] | None = None
    if meta:
        try:
            parsed = json.loads(meta)
            info = parsed.get("voc") if isinstance(parsed, dict) else None
        except ValueError:
            info = None
    if info and isinstance(info.get("root"), str):
        root = _fromstring(info["root"])
        prolog, epilog = str(info.get("prolog", "")), str(info.get("epilog", ""))
        enc, bom = str(info.get("encoding", "utf-8")), bool(info.get("bom", False))
    else:
        root = _fromstring(labelimg_skeleton(header))
        prolog, epilog, enc, bom = "", "\n", "utf-8", False
    elems = [_object_element(b) for b in boxes]
    slots = [i for i, c in enumerate(root) if c.tag == PLACEHOLDER]
    for k, el in enumerate(elems[: len(slots)]):
        el.tail = root[slots[k]].tail
        root[slots[k]] = el
    if len(elems) > len(slots):
        pos = slots[-1] + 1 if slots else len(root)
        sep = root.text if root.text is not None and not root.text.strip() else "\n\t"
        for el in elems[len(slots) :]:
            if pos > 0:
                prev = root[pos - 1]
                el.tail, prev.tail = prev.tail, sep
            else:
                el.tail, root.text = root.text if root.text is not None else "\n", sep
            root.insert(pos, el)
            pos += 1
    for i in reversed(slots[len(elems) :]):
        gone = root[i]
        if i > 0:
            root[i - 1].tail = gone.tail
        elif len(root) == 1:
            root.text = gone.tail
        del root[i]
    text = prolog + ET.tostring(root, encoding="unicode") + epilog
    data = text.encode(enc, errors="xmlcharrefreplace")
    return (b"\xef\xbb\xbf" + data) if bom else data


#: The ``<size><depth>`` of an image of each PIL mode (3 for a mode not listed).
MODE_DEPTH = {
    "1": 1,
    "L": 1,
    "P": 3,
    "RGB": 3,
    "RGBA": 4,
    "CMYK": 4,
    "LA": 2,
    "I;16": 1,
    "I": 1,
    "F": 1,
    "YCbCr": 3,
}


def mode_depth(mode: str | None) -> int:
    """The ``<size><depth>`` of an image of PIL mode ``mode`` (3 when unknown)."""
    return MODE_DEPTH.get(mode or "RGB", 3)


def voc_documents(
    images: pl.DataFrame,
    boxes: pl.DataFrame,
    *,
    check: Callable[[], None] | None = None,
    every: int = 256,
) -> list[bytes]:
    """The bytes of the VOC file of every line of ``images``, in its order (the lossless path).

    ``images``: ``item_id``, ``meta`` (the stored skeleton, or null for a labelImg one),
    ``folder``, ``filename``, ``path``, ``width``, ``height``, ``depth`` and optionally
    ``scale_x``, ``scale_y`` (the factors an image's boxes are multiplied by, for a resized
    image). ``boxes``: ``item_id``, ``name``, ``x1``, ``y1``, ``x2``, ``y2``, ``extra``, in
    each document's object order. ``check`` is called after every ``every``-th document (a
    cancel check).
    """
    by_item: dict[int, list[VocBox]] = {}
    for item, name, x1, y1, x2, y2, extra in boxes.select(
        "item_id", "name", "x1", "y1", "x2", "y2", "extra"
    ).iter_rows():
        by_item.setdefault(item, []).append(VocBox(name, x1, y1, x2, y2, extra))
    out: list[bytes] = []
    scaled = "scale_x" in images.columns
    cols = ["item_id", "meta", "folder", "filename", "path", "width", "height", "depth"]
    rows = images.select(*cols, *(("scale_x", "scale_y") if scaled else ()))
    for n, (item, meta, folder, filename, path, w, h, depth, *scale) in enumerate(rows.iter_rows()):
        header = VocHeader(folder, filename, path, int(w or 0), int(h or 0), int(depth))
        objs = by_item.get(item, [])
        if scale:
            sx, sy = scale
            objs = [VocBox(b.name, b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy, b.extra) for b in objs]
        out.append(voc_document(meta, objs, header))
        if check is not None and n % every == 0:
            check()
    return out


# -- objects for writers that lay out their own documents ------------------------------------------------
#: The tags of an ``<object>`` that its flat fields and coordinates describe completely.
PLAIN_TAGS = frozenset({"object", "name", "bndbox", *FLAT_FIELDS, *COORDS})
#: labelImg's value of a flat field an object does not state.
FLAG_DEFAULTS = {"pose": "Unspecified", "truncated": "0", "difficult": "0"}


def plain_object(extra: pl.Expr) -> pl.Expr:
    """True where a box's stored ``<object>`` (in its extra) holds nothing but the flat fields and
    coordinates (no other tag, attribute, comment), or where no object is stored: such an object
    is written again exactly from :data:`FLAT_FIELDS` and its coordinates."""
    tmpl = extra.str.json_path_match("$.voc")
    tags = tmpl.str.extract_all(r"<[^/\s>]+")
    known = tags.list.eval(pl.element().str.slice(1).is_in(list(PLAIN_TAGS))).list.all()
    return tmpl.is_null() | (known & ~tmpl.str.contains('="', literal=True))


def uncarried(extra: pl.Expr, *, flags_held: bool) -> dict[str, pl.Expr]:
    """What of a box's stored VOC object a target format cannot hold, as one boolean expression
    per flat field and ``other_tags``: True where the object states something the target loses.

    ``flags_held``: the target holds the flat fields (COCO ``attributes``, as a mix writes
    them); else it holds none of them (YOLO). A ``pose`` of ``Unspecified`` and flags of 0
    state nothing. No target but VOC holds other tags.
    """
    checks: dict[str, pl.Expr] = {}
    if not flags_held:
        checks = {
            "difficult": flag_text(extra, "difficult").fill_null("0") != "0",
            "truncated": flag_text(extra, "truncated").fill_null("0") != "0",
            "occluded": flag_text(extra, "occluded").fill_null("0") != "0",
            "pose": flag_text(extra, "pose").fill_null("Unspecified") != "Unspecified",
        }
    checks["other_tags"] = ~plain_object(extra)
    return {k: e.fill_null(False) for k, e in checks.items()}


def flag_text(extra: pl.Expr, field: str) -> pl.Expr:
    """The text of flat field ``field`` of a box's stored object (null when the object has none)."""
    return extra.str.json_path_match(f"$.{field}")


def object_xml(box: VocBox) -> str:
    """The ``<object>`` element of ``box`` as its stored object wrote it (or as labelImg does),
    with the box's class name and coordinates, indented for depth 1."""
    el = _object_element(box)
    el.tail = None
    return ET.tostring(el, encoding="unicode")


def object_flags(extra: str | None) -> dict[str, Any]:
    """The flat fields of a box's stored object (``pose``, ``truncated``, ``difficult``, ``occluded``)."""
    if not extra:
        return {}
    try:
        fields = json.loads(extra)
    except ValueError:
        return {}
    return {k: fields[k] for k in FLAT_FIELDS if isinstance(fields, dict) and k in fields}


# -- the vectorised path: documents laid out from frames --------------------------------------------
_TAG = {"x1": "xmin", "y1": "ymin", "x2": "xmax", "y2": "ymax"}


def xml_escape(expr: pl.Expr) -> pl.Expr:
    """The text of ``expr`` escaped for XML character data (``&``, ``<``, ``>``)."""
    return (
        expr.str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
    )


def _coord_texts(frame: pl.DataFrame, c: str) -> pl.Series:
    """The text of coordinate ``c`` of each box: the text as read where it reads as the value,
    else the value exactly (:func:`exact_text`: no exponent, ``100`` for a whole number)."""
    text = pl.col(_TAG[c])
    fast = pl.col(c).cast(pl.String).str.replace(r"\.0$", "")
    col = frame.select(
        pl.when(text.cast(pl.Float64, strict=False) == pl.col(c)).then(text).otherwise(fast).alias(c)
    ).to_series()
    slow = (
        col.str.contains("e", literal=True) & (frame[_TAG[c]].is_null() | (col != frame[_TAG[c]]))
    ).arg_true()
    if slow.len():
        values = frame[c].gather(slow).to_list()
        col = col.scatter(slow, [exact_text(v) for v in values])
    return col


def template_objects(boxes: pl.DataFrame) -> pl.Series:
    """The ``<object>`` text of every box (1 per line of ``boxes``, at depth 1, each ending in a newline).

    ``boxes``: ``name``, ``x1``, ``y1``, ``x2``, ``y2``, the coordinates' texts as read
    ``xmin``, ``ymin``, ``xmax``, ``ymax`` (null for none) and ``extra``. An object of
    nothing but the flat fields and coordinates (:func:`plain_object`) is laid out here in
    labelImg's layout with its stated ``pose``/``truncated``/``difficult``/``occluded``;
    any other is written from its stored element (other tags, attributes and comments kept).
    A coordinate keeps its text where that reads as its value, else is written exactly.
    """
    if boxes.height == 0:
        return pl.Series("o", [], pl.String)

    def field(k: str) -> pl.Expr:
        return xml_escape(flag_text(pl.col("extra"), k).fill_null(FLAG_DEFAULTS[k]))

    nums = boxes.select(_coord_texts(boxes, c) for c in ("x1", "y1", "x2", "y2"))
    occl = flag_text(pl.col("extra"), "occluded")
    laid_out = pl.concat_str(
        [
            pl.lit("\t<object>\n\t\t<name>"),
            xml_escape(pl.col("name")),
            pl.lit("</name>\n\t\t<pose>"),
            field("pose"),
            pl.lit("</pose>\n\t\t<truncated>"),
            field("truncated"),
            pl.lit("</truncated>\n\t\t<difficult>"),
            field("difficult"),
            pl.lit("</difficult>\n"),
            pl.when(occl.is_not_null())
            .then(pl.lit("\t\t<occluded>") + xml_escape(occl) + pl.lit("</occluded>\n"))
            .otherwise(pl.lit("")),
            pl.lit("\t\t<bndbox>\n\t\t\t<xmin>"),
            pl.col("_x1"),
            pl.lit("</xmin>\n\t\t\t<ymin>"),
            pl.col("_y1"),
            pl.lit("</ymin>\n\t\t\t<xmax>"),
            pl.col("_x2"),
            pl.lit("</xmax>\n\t\t\t<ymax>"),
            pl.col("_y2"),
            pl.lit("</ymax>\n\t\t</bndbox>\n\t</object>\n"),
        ]
    )
    frame = (
        boxes.select("name", "x1", "y1", "x2", "y2", "extra")
        .hstack(nums.rename(lambda c: f"_{c}"))
        .with_row_index("_row")
        .with_columns(plain_object(pl.col("extra")).alias("_plain"))
    )
    texts = frame.select(laid_out.alias("o"))["o"].to_list()
    other = frame.filter(~pl.col("_plain")).select("_row", "name", "x1", "y1", "x2", "y2", "extra")
    for row, name, x1, y1, x2, y2, extra in other.iter_rows():
        texts[row] = "\t" + object_xml(VocBox(name, x1, y1, x2, y2, extra)) + "\n"
    return pl.Series("o", texts, pl.String)


def template_documents(images: pl.DataFrame, boxes: pl.DataFrame, folder: str) -> pl.DataFrame:
    """``idx``, ``text``: the VOC XML of every image (labelImg's layout, 1 object per box; the
    vectorised path, for a dataset written in bulk).

    ``images``: ``idx``, ``file``, ``database`` (the ``<source>`` named), ``width``,
    ``height``, ``depth``. ``boxes``: ``idx``, ``ord`` (the object order) and the columns of
    :func:`template_objects`. ``folder``: the ``<folder>`` of every document.
    """
    boxes = boxes.sort("idx", "ord")
    objs = (
        boxes.select("idx", template_objects(boxes))
        .group_by("idx", maintain_order=True)
        .agg(pl.col("o").str.join("").alias("_objs"))
    )
    head = pl.concat_str(
        [
            pl.lit(f"<annotation>\n\t<folder>{escape(folder)}</folder>\n\t<filename>"),
            xml_escape(pl.col("file")),
            pl.lit("</filename>\n\t<source>\n\t\t<database>"),
            xml_escape(pl.col("database")),
            pl.lit("</database>\n\t</source>\n\t<size>\n\t\t<width>"),
            pl.col("width").cast(pl.String),
            pl.lit("</width>\n\t\t<height>"),
            pl.col("height").cast(pl.String),
            pl.lit("</height>\n\t\t<depth>"),
            pl.col("depth").cast(pl.String),
            pl.lit("</depth>\n\t</size>\n\t<segmented>0</segmented>\n"),
            pl.col("_objs").fill_null(""),
            pl.lit("</annotation>\n"),
        ]
    )
    return images.join(objs, on="idx", how="left").sort("idx").select("idx", head.alias("text"))


def labelmap_text(names: Sequence[str]) -> str:
    """A Datumaro/CVAT VOC label map (``labelmap.txt``) of ``names``, in class-id order.

    Each line is ``name:r,g,b::`` (no parts, no actions), the colour that of the VOC
    colour map for the class's index (background is not a class here).
    """
    from tuiops.errors import InputError

    lines = ["# label:color_rgb:parts:actions"]
    for i, name in enumerate(names):
        if ":" in name or name != name.strip() or name.startswith("#"):
            raise InputError(
                f"class {name!r} cannot be written to a VOC label map (labelmap.txt splits lines at ':', "
                "strips spaces and skips lines starting with '#')",
                hint="rename the class, e.g. with --map OLD=NEW",
            )
        r, g, b = _voc_colour(i + 1)
        lines.append(f"{name}:{r},{g},{b}::")
    return "\n".join(lines) + "\n"


def _voc_colour(index: int) -> tuple[int, int, int]:
    """The Pascal VOC colour map's colour of ``index`` (the bit-interleaving of the devkit)."""
    r = g = b = 0
    c = index
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return r, g, b
