"""Pascal VOC reader and writer: skeletons, object templates, byte-identical round trips."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tuiops.formats.voc import VocBox, VocHeader, parse_voc, read_voc, voc_document

LABELIMG = """<annotation>
\t<folder>images</folder>
\t<filename>danbooru_1.jpg</filename>
\t<path>/data/images/danbooru_1.jpg</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>640</width>
\t\t<height>480</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>head</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>10</xmin>
\t\t\t<ymin>20</ymin>
\t\t\t<xmax>100</xmax>
\t\t\t<ymax>200</ymax>
\t\t</bndbox>
\t</object>
\t<object>
\t\t<name>hand</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>1</truncated>
\t\t<difficult>1</difficult>
\t\t<bndbox>
\t\t\t<xmin>1</xmin>
\t\t\t<ymin>2</ymin>
\t\t\t<xmax>30</xmax>
\t\t\t<ymax>40</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""

RICH = """<?xml version="1.0" encoding="utf-8"?>
<!-- exported by a labelling tool -->
<annotation verified="yes" tool="cvat">
  <folder>train</folder>
  <filename>danbooru_2.png</filename>
  <source><database>booru</database><annotation>custom</annotation></source>
  <owner><name>curator</name></owner>
  <size><width>800</width><height>600</height><depth>3</depth></size>
  <segmented>0</segmented>
  <!-- first object -->
  <object>
    <name>upper_body</name>
    <pose>Frontal</pose>
    <truncated>0</truncated>
    <occluded>1</occluded>
    <difficult>0</difficult>
    <attributes><attribute><name>style</name><value>sketch</value></attribute></attributes>
    <bndbox><xmin>100.0</xmin><ymin>150.5</ymin><xmax>300.25</xmax><ymax>420</ymax></bndbox>
    <part><name>hand</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></part>
  </object>
  <extra_tag lang="en">kept &amp; escaped</extra_tag>
</annotation>
"""


def _boxes(doc):
    return [
        VocBox(name, float(a), float(b), float(c), float(d), extra)
        for _l, name, a, b, c, d, extra in doc.objects
    ]


HEADER = VocHeader("images", "danbooru_1.jpg", "/data/images/danbooru_1.jpg", 640, 480, 3)


@pytest.mark.parametrize("text", [LABELIMG, RICH])
def test_round_trip_is_byte_identical(text):
    doc, err = parse_voc(text.encode("utf-8"))
    assert err is None
    assert voc_document(doc.meta, _boxes(doc), HEADER) == text.encode("utf-8")


def test_fields_are_kept_in_extra_and_lines_are_found():
    doc, _ = parse_voc(RICH.encode())
    line, name, *coords, extra = doc.objects[0]
    assert (line, name, coords) == (11, "upper_body", ["100.0", "150.5", "300.25", "420"])
    fields = json.loads(extra)
    assert fields["pose"] == "Frontal" and fields["occluded"] == 1 and fields["difficult"] == 0
    assert "<attributes>" in fields["voc"] and "<part>" in fields["voc"]
    assert (doc.width, doc.height) == (800, 600)


def test_generated_document_is_what_labelimg_writes():
    doc, _ = parse_voc(LABELIMG.encode())
    boxes = [
        VocBox(
            b.name,
            b.x1,
            b.y1,
            b.x2,
            b.y2,
            json.dumps(
                {"truncated": 1 if b.name == "hand" else 0, "difficult": 1 if b.name == "hand" else 0}
            ),
        )
        for b in _boxes(doc)
    ]
    assert voc_document(None, boxes, HEADER).decode() == LABELIMG


def test_edits_change_only_what_changed():
    doc, _ = parse_voc(RICH.encode())
    (box,) = _boxes(doc)
    fields = json.loads(box.extra)
    fields["difficult"] = 1
    moved = VocBox("hand", 100.0, 150.5, 310.6, 420.0, json.dumps(fields))
    added = VocBox("text", 5.0, 6.0, 50.0, 60.0)
    out = voc_document(doc.meta, [moved, added], HEADER).decode()
    root = ET.fromstring(out)
    objs = root.findall("object")
    assert [o.findtext("name") for o in objs] == ["hand", "text"]
    assert [objs[0].find("bndbox").findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] == [
        "100.0",
        "150.5",
        "310.6",
        "420",
    ]
    assert objs[0].findtext("difficult") == "1" and objs[0].findtext("pose") == "Frontal"
    assert objs[0].find("part") is not None
    assert root.find("extra_tag").text == "kept & escaped"
    assert out.index("<extra_tag") > out.rindex("</object>")


def test_removed_objects_leave_tidy_whitespace():
    doc, _ = parse_voc(LABELIMG.encode())
    out = voc_document(doc.meta, [], HEADER).decode()
    assert out.endswith("\t<segmented>0</segmented>\n</annotation>\n")
    assert "object" not in out


def test_declared_latin1_file_round_trips():
    text = LABELIMG.replace("head", "têtê")
    data = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n' + text).encode("latin-1")
    doc, err = parse_voc(data)
    assert err is None and doc.objects[0][1] == "têtê"
    assert voc_document(doc.meta, _boxes(doc), HEADER) == data


@pytest.mark.parametrize(
    "data, message",
    [
        (b"this is not xml", "not valid XML"),
        (b"<annotation><object>", "not valid XML"),
        (b"<html><body/></html>", "root element is <html>"),
        (LABELIMG.replace("head", "h\xe9ad").encode("latin-1"), "not utf-8 text: byte 0xe9"),
    ],
)
def test_bad_files_are_reported(data, message):
    doc, err = parse_voc(data)
    assert doc is None and message in err


def test_read_voc_collects_objects_and_problems(tmp_path):
    (tmp_path / "danbooru_1.xml").write_text(LABELIMG)
    (tmp_path / "danbooru_2.xml").write_text("{not xml}")
    (tmp_path / "notes.txt").write_text("ignored")
    rr = read_voc(tmp_path)
    assert rr.found == 2
    assert rr.boxes["name"].to_list() == ["head", "hand"]
    assert rr.boxes["loc"].to_list() == ["object 1", "object 2"]
    assert rr.problems.rows()[0][:2] == ("danbooru_2.xml", None)


# -- coordinates: never rounded from VOC, whole pixels from other formats ------------------------------
def _moved(text: str, index: int, value: float) -> str:
    """The document after moving coordinate ``index`` (xmin, ymin, xmax, ymax) of the first object."""
    doc, _ = parse_voc(text.encode())
    boxes = _boxes(doc)
    b = boxes[0]
    coords = [b.x1, b.y1, b.x2, b.y2]
    coords[index] = value
    boxes[0] = VocBox(b.name, *coords, b.extra)
    return voc_document(doc.meta, boxes, HEADER).decode()


def test_a_moved_coordinate_of_a_whole_pixel_file_is_written_exactly():
    out = _moved(LABELIMG, 2, 100.4)
    first = ET.fromstring(out).find("object/bndbox")
    assert [first.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] == ["10", "20", "100.4", "200"]
    assert _moved(LABELIMG, 2, 101.0).count("<xmax>101</xmax>") == 1  # a whole number stays one
    back, _ = parse_voc(out.encode())
    assert float(back.objects[0][4]) == 100.4


@pytest.mark.parametrize("value", [310.123456789, 0.1 + 0.2, 1e-7, 1234.5])
def test_a_moved_coordinate_of_a_float_file_is_written_exactly(value):
    out = _moved(RICH, 2, value)
    back, _ = parse_voc(out.encode())
    text = back.objects[0][4]
    assert float(text) == value and "e" not in text.lower()


def test_float_coordinates_come_back_as_written():
    text = LABELIMG.replace("<xmin>10</xmin>", "<xmin>10.25</xmin>").replace(
        "<ymax>200</ymax>", "<ymax>199.999</ymax>"
    )
    doc, _ = parse_voc(text.encode())
    assert voc_document(doc.meta, _boxes(doc), HEADER).decode() == text


def test_boxes_from_another_format_are_written_in_whole_pixels():
    """labelImg's layout: each coordinate rounded to the nearest pixel, at most 0.5 px away."""
    values = (10.4, 20.5, 99.6, 200.49)
    out = voc_document(None, [VocBox("head", *values)], HEADER).decode()
    written = [
        float(ET.fromstring(out).find("object/bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")
    ]
    assert written == [10, 20, 100, 200]
    assert all(abs(w - v) <= 0.5 for w, v in zip(written, values, strict=True))


def _bulk_frame(doc, coords):
    import polars as pl

    _line, name, *texts, extra = doc.objects[0]
    return pl.DataFrame(
        {
            "name": [name],
            **{k: [float(v)] for k, v in zip(("x1", "y1", "x2", "y2"), coords, strict=True)},
            **{k: [t] for k, t in zip(("xmin", "ymin", "xmax", "ymax"), texts, strict=True)},
            "extra": [extra],
        }
    )


@pytest.mark.parametrize(
    "coords",
    [
        (10, 20, 100, 200),  # unchanged: the texts as read
        (10, 20, 100.4, 201),  # moved within the image
        (2.5e-7, 20, 1e20, 200),  # moved to values a float's shortest text writes with an exponent
        (0.1 + 0.2, 1e-5, 1234.5, 310.123456789),
    ],
)
def test_the_bulk_writer_writes_an_object_as_the_lossless_writer_does(coords):
    """A labelImg object laid out from frames is the element the lossless path writes, moved
    coordinates included: exactly, with no exponent."""
    from tuiops.formats.voc import object_xml, template_objects

    doc, _ = parse_voc(LABELIMG.encode())
    _line, name, *_texts, extra = doc.objects[0]
    bulk = template_objects(_bulk_frame(doc, coords))[0]
    lossless = "\t" + object_xml(VocBox(name, *coords, extra)) + "\n"
    assert bulk == lossless
    written = [ET.fromstring(bulk).findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
    assert [float(w) for w in written] == [float(c) for c in coords]
    assert not any("e" in w.lower() for w in written)


def test_bulk_documents_hold_every_object_in_order():
    """Objects go into their image's document in ``ord`` order, plain ones laid out and others
    (here RICH's, with attributes and parts) as written; an image without boxes has none."""
    import polars as pl

    from tuiops.formats.voc import template_documents

    objects = [*parse_voc(LABELIMG.encode())[0].objects, *parse_voc(RICH.encode())[0].objects]
    rows = [
        {
            "idx": 0,
            "ord": 2 - k,
            "name": name,
            "x1": float(a),
            "y1": float(b),
            "x2": float(c),
            "y2": float(d),
            "xmin": a,
            "ymin": b,
            "xmax": c,
            "ymax": d,
            "extra": extra,
        }
        for k, (_l, name, a, b, c, d, extra) in enumerate(objects)
    ]
    images = pl.DataFrame(
        {
            "idx": [1, 0],
            "file": ["b&1.jpg", "a.jpg"],
            "database": ["p", "p"],
            "width": [64, 640],
            "height": [48, 480],
            "depth": [1, 3],
        }
    )
    out = template_documents(images, pl.DataFrame(rows), "VOC2012")
    assert out["idx"].to_list() == [0, 1]
    first, second = (ET.fromstring(t) for t in out["text"].to_list())
    assert [o.findtext("name") for o in first.iter("object")] == ["upper_body", "hand", "head"]
    assert first.find("object/part/name").text == "hand" and first.findtext("size/depth") == "3"
    assert second.findtext("filename") == "b&1.jpg" and second.find("object") is None
