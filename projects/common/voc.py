"""Minimal Pascal VOC reading and writing for the project scripts (no tuiops needed on the host)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

Box = tuple[str, float, float, float, float]
"""``(name, xmin, ymin, xmax, ymax)`` in pixels."""


def read_voc_boxes(path: str | Path) -> list[Box]:
    """The ``(name, xmin, ymin, xmax, ymax)`` of every ``<object>`` in a VOC file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML: {exc}") from exc
    out: list[Box] = []
    for k, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        if not name or bnd is None:
            raise ValueError(f"{path}: object {k} has no <name> or no <bndbox>")
        try:
            coords = [float(bnd.findtext(tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError as exc:
            raise ValueError(f"{path}: object {k} has a coordinate that is not a number") from exc
        out.append((name, coords[0], coords[1], coords[2], coords[3]))
    return out


def write_voc(path: str | Path, filename: str, size: tuple[int, int], boxes: Iterable[Box]) -> None:
    """Write a labelImg-style VOC file for an image of ``size`` = (width, height)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "images"
    ET.SubElement(root, "filename").text = filename
    ET.SubElement(root, "path").text = filename
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "Unknown"
    sz = ET.SubElement(root, "size")
    ET.SubElement(sz, "width").text = str(size[0])
    ET.SubElement(sz, "height").text = str(size[1])
    ET.SubElement(sz, "depth").text = "3"
    ET.SubElement(root, "segmented").text = "0"
    for name, x1, y1, x2, y2 in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (x1, y1, x2, y2), strict=True):
            ET.SubElement(bnd, tag).text = str(round(v))
    ET.indent(root, space="\t")
    Path(path).write_bytes(ET.tostring(root, encoding="utf-8") + b"\n")
