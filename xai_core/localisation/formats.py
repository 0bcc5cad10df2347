"""Readers of the annotation formats: a COCO instances JSON (boxes, polygons, and RLE masks where
pycocotools is installed) and a folder of Pascal VOC XML files (parsed with defusedxml, which
refuses entity expansion and external entities in files from elsewhere)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path, PurePosixPath
from typing import Optional, Union

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, parse

from ..errors import InvalidGroundTruthError
from .truth import Box, GroundTruth, GroundTruths, _finite


def read_coco(path: Union[str, Path]) -> GroundTruths:
    """{image file name: GroundTruth} of a COCO instances JSON: each annotation's polygons (or its
    RLE mask) where it has a segmentation, else its box [x, y, w, h]; several annotations of one
    image united, labels from its categories. Raises `InvalidGroundTruthError` naming the file when
    it is not such a JSON, or holds RLE masks and pycocotools is not installed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InvalidGroundTruthError(f"The ground truth file {path.name} is not valid JSON "
                                      f"({type(err).__name__}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise InvalidGroundTruthError(f"The ground truth file {path.name} is not a COCO instances JSON (it needs "
                                      "'images' and 'annotations' lists).")
    try:
        images = {img["id"]: (str(img["file_name"]), _size(img.get("width"), img.get("height")))
                  for img in data["images"]}
        names = {c["id"]: str(c["name"]) for c in data.get("categories") or []}
    except (TypeError, KeyError):
        raise InvalidGroundTruthError(f"{path.name}: every image needs an id and a file_name, every category an id "
                                      "and a name.") from None
    truths: dict[str, GroundTruth] = {}
    for number, ann in enumerate(data["annotations"], start=1):
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise InvalidGroundTruthError(f"{path.name}: annotation {number} names no image of its 'images' list.")
        file_name, size = images[ann["image_id"]]
        truth = _coco_annotation(ann, names.get(ann.get("category_id")), size, path.name, number)
        key = PurePosixPath(Path(file_name).as_posix()).as_posix().removeprefix("./")
        truths[key] = truths[key].merged(truth) if key in truths else truth
    return GroundTruths(truths)


def _coco_annotation(ann: dict, label: Optional[str], size, name: str, number: int) -> GroundTruth:
    """One annotation as a GroundTruth: its segmentation where it has one, else its box."""
    where = f"{name}: annotation {number}"
    labels = (label,) if label else ()
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, dict):
        if not {"counts", "size"} <= set(segmentation):
            raise InvalidGroundTruthError(f"{where} has a segmentation that is neither polygons nor RLE.")
        if importlib.util.find_spec("pycocotools") is None:
            raise InvalidGroundTruthError(f"{where} is an RLE mask, which needs pycocotools: pip install pycocotools.")
        return GroundTruth(rles=(segmentation,), size=size, source=name, labels=labels)
    if isinstance(segmentation, list) and segmentation:
        polygons = tuple(_polygon(p, where) for p in segmentation)
        return GroundTruth(polygons=polygons, size=size, source=name, labels=labels)
    bbox = ann.get("bbox")
    values = [_finite(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else None
    if values is None or None in values:
        raise InvalidGroundTruthError(f"{where} has neither a segmentation nor a box [x, y, width, height].")
    x, y, w, h = values
    box = Box(x, y, x + w, y + h, label)
    if box.empty:
        return GroundTruth(size=size, source=name, notes=(f"{where}: the box has no area and was left out.",))
    return GroundTruth(boxes=(box,), size=size, source=name, labels=labels)


def _polygon(points, where: str) -> tuple[float, ...]:
    values = [_finite(v) for v in points] if isinstance(points, list) else []
    if len(values) < 6 or len(values) % 2 or None in values:
        raise InvalidGroundTruthError(f"{where} has a polygon that is not a list of x, y pairs (3 points or more).")
    return tuple(values)


def read_voc_folder(folder: Union[str, Path]) -> GroundTruths:
    """{relative path of each XML file under `folder`: GroundTruth} of Pascal VOC annotations (as
    ImageNet's localisation boxes come): each <object>'s <name> and <bndbox>, whose 1-based inclusive
    pixel bounds become the box (xmin - 1, ymin - 1, xmax, ymax). Raises `InvalidGroundTruthError`
    naming a malformed file, or when the folder holds no XML file."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".xml" and p.is_file())
    if not files:
        raise InvalidGroundTruthError(f"The folder {folder.name} holds no Pascal VOC XML files.")
    return GroundTruths({p.relative_to(folder).as_posix(): read_voc(p) for p in files})


def read_voc(path: Union[str, Path]) -> GroundTruth:
    """The boxes of one Pascal VOC XML file (see `read_voc_folder`)."""
    path = Path(path)
    try:
        root = parse(str(path)).getroot()
    except DefusedXmlException:
        raise InvalidGroundTruthError(f"The annotation {path.name} declares XML entities or external references, "
                                      "which are refused for safety; Pascal VOC files need none.") from None
    except (ParseError, OSError, UnicodeDecodeError) as err:
        raise InvalidGroundTruthError(f"The annotation {path.name} is not well-formed XML "
                                      f"({type(err).__name__}).") from None
    if root.tag != "annotation":
        raise InvalidGroundTruthError(f"The annotation {path.name} is not Pascal VOC (its root is <{root.tag}>, "
                                      "not <annotation>).")
    size = root.find("size")
    image_size = None if size is None else _size(_text(size, "width"), _text(size, "height"))
    boxes, notes = [], []
    for number, obj in enumerate(root.iter("object"), start=1):
        label = (_text(obj, "name") or "").strip() or None
        bounds = obj.find("bndbox")
        values = [_finite(_text(bounds, k)) for k in ("xmin", "ymin", "xmax", "ymax")] if bounds is not None else [None]
        if None in values:
            raise InvalidGroundTruthError(f"{path.name}: object {number} has no <bndbox> with numeric xmin, ymin, "
                                          "xmax and ymax.")
        box = Box(values[0] - 1, values[1] - 1, values[2], values[3], label)
        if box.empty:
            notes.append(f"{path.name}: object {number}'s box has no area and was left out.")
        elif box not in boxes:
            boxes.append(box)
    labels = tuple(dict.fromkeys(b.label for b in boxes if b.label))
    return GroundTruth(boxes=tuple(boxes), size=image_size, source=path.name, notes=tuple(notes), labels=labels)


def _text(element, tag: str) -> Optional[str]:
    child = element.find(tag)
    return None if child is None else child.text


def _size(width, height) -> Optional[tuple[int, int]]:
    w, h = _finite(width), _finite(height)
    return (int(w), int(h)) if w and h and w > 0 and h > 0 else None


__all__ = ["read_coco", "read_voc", "read_voc_folder"]
