"""The ground truth readers: a mask folder, a CSV, a COCO instances JSON (boxes, polygons, RLE), a
folder of Pascal VOC XML files; bad ground truth gets one sentence naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from xai_core.errors import InvalidGroundTruthError
from xai_core.localisation import (Box, GroundTruth, GroundTruths, aligned_mask, read_coco, read_csv_boxes,
                                   read_ground_truth, read_voc_folder)
from xai_core.models import Geometry

from _deps import need

SIZE = (40, 30)  # (width, height) of the images the ground truth below describes
IDENTITY = Geometry.identity(SIZE)


def _box_mask(*boxes) -> np.ndarray:
    mask = np.zeros(SIZE[::-1], bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def test_a_mask_folder_mirrors_the_inputs_relative_paths(tmp_path):
    (tmp_path / "cats").mkdir()
    object_ = np.zeros((15, 20), np.uint8)  # half the image's size: scaled, with a note
    object_[2:8, 4:10] = 3
    Image.fromarray(object_).save(tmp_path / "cats" / "tabby.png")
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "empty.png")
    truths = read_ground_truth(tmp_path)
    assert set(truths) == {"cats/tabby.png", "empty.png"}
    tabby = truths.find("cats/tabby.jpg")  # the image's own suffix
    assert tabby is not None and tabby.mask == tmp_path / "cats" / "tabby.png"
    assert truths.find("dogs/tabby.jpg") is None
    aligned = aligned_mask(IDENTITY, truth=tabby)
    np.testing.assert_array_equal(aligned.mask, _box_mask((8, 4, 20, 16)))
    assert any("scaled" in n and "tabby.png" in n for n in aligned.notes)
    empty = aligned_mask(IDENTITY, truth=truths.find("empty.jpeg"))
    assert not empty.present and not empty.mask.any() and any("empty" in n for n in empty.notes)


def test_a_csv_with_a_header_labels_duplicates_and_several_boxes(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("path,x0,y0,x1,y1,label\n"
                    "a.jpg,0,0,10,10,tabby\n"
                    "a.jpg,0,0,10,10,tabby\n"          # a duplicate row: the union is the same box
                    "a.jpg,20,5,30,25,tiger cat\n"      # a second box: their union
                    "./b/c.png,5,5,5,20\n"              # no area: left out, with a note
                    "b/c.png,-10,-10,8,9\n")            # clipped to the image when aligned
    truths = read_csv_boxes(path)
    assert set(truths) == {"a.jpg", "b/c.png"}
    a = truths["a.jpg"]
    assert a.boxes == (Box(0, 0, 10, 10, "tabby"), Box(20, 5, 30, 25, "tiger cat"))
    assert a.labels == ("tabby", "tiger cat")
    np.testing.assert_array_equal(aligned_mask(IDENTITY, truth=a).mask, _box_mask((0, 0, 10, 10), (20, 5, 30, 25)))
    c = truths["b/c.png"]
    assert len(c.boxes) == 1 and any("line 5" in n and "no area" in n for n in c.notes)
    aligned = aligned_mask(IDENTITY, truth=c)
    np.testing.assert_array_equal(aligned.mask, _box_mask((0, 0, 8, 9)))
    assert any("clipped" in n for n in aligned.notes)


def test_a_csv_without_a_header_is_read_from_its_first_row(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("a.jpg,0,1,2,3\n")
    assert read_ground_truth(path)["a.jpg"].boxes == (Box(0, 1, 2, 3),)


@pytest.mark.parametrize("text", ["a.jpg,0,1,2\n", "a.jpg,0,one,2,3\n", "a.jpg,0,1,2,nan\n", ",0,1,2,3\n"])
def test_a_malformed_csv_row_is_named(tmp_path, text):
    path = tmp_path / "mine.csv"
    path.write_text("a.jpg,0,0,1,1\n" + text)
    with pytest.raises(InvalidGroundTruthError, match=r"mine\.csv line 2"):
        read_ground_truth(path)


def _coco(tmp_path, annotations, images=None) -> str:
    data = {"images": images or [{"id": 1, "file_name": "pets/a.jpg", "width": 40, "height": 30},
                                 {"id": 2, "file_name": "b.jpg", "width": 80, "height": 60}],
            "annotations": annotations, "categories": [{"id": 7, "name": "tabby"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_boxes_and_polygons(tmp_path):
    path = _coco(tmp_path, [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [2, 3, 10, 5]},
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [0, 0, 40, 30],
         "segmentation": [[20, 10, 30, 10, 30, 20, 20, 20]]},  # the polygon, not the box, is the object
        {"id": 3, "image_id": 2, "category_id": 7, "bbox": [40, 30, 20, 20]},  # drawn on an 80x60 image
    ])
    truths = read_ground_truth(path)
    a = truths.find("pets/a.jpg")
    assert a.boxes == (Box(2, 3, 12, 8, "tabby"),) and a.labels == ("tabby",) and a.size == SIZE
    mask = aligned_mask(IDENTITY, truth=a).mask
    # Pillow's polygon fill covers the outline's pixels too: columns and rows 20..30
    np.testing.assert_array_equal(mask, _box_mask((2, 3, 12, 8), (20, 10, 31, 21)))
    b = aligned_mask(IDENTITY, truth=truths["b.jpg"])  # scaled from 80x60 to the 40x30 image
    np.testing.assert_array_equal(b.mask, _box_mask((20, 15, 30, 25)))
    assert any("80x60" in n and "scaled" in n for n in b.notes)


def test_coco_rle(tmp_path):
    coco_mask = need("pycocotools.mask")
    object_ = np.asfortranarray(_box_mask((5, 6, 15, 20)).astype(np.uint8))
    compressed = coco_mask.encode(object_)
    compressed["counts"] = compressed["counts"].decode("ascii")
    uncompressed = {"size": [30, 40], "counts": _uncompressed_counts(object_)}
    for rle in (compressed, uncompressed):
        path = _coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": rle, "iscrowd": 1}])
        truth = read_coco(path)["pets/a.jpg"]
        np.testing.assert_array_equal(aligned_mask(IDENTITY, truth=truth).mask, object_.astype(bool))


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.ravel(order="F")
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    return counts + [run]


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ('{"images": []}', "not a COCO instances JSON"),
    ('{"images": [{"id": 1}], "annotations": []}', "file_name"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 9, "bbox": [0, 0, 1, 1]}]}',
     "annotation 1 names no image"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "bbox": [0, 0, 1]}]}',
     "neither a segmentation nor a box"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "segmentation": [[0, 0, 1]]}]}',
     "polygon"),
])
def test_malformed_coco_is_named(tmp_path, text, words):
    path = tmp_path / "mine.json"
    path.write_text(text)
    with pytest.raises(InvalidGroundTruthError, match="mine.json") as err:
        read_ground_truth(path)
    assert words in str(err.value) and "\n" not in str(err.value)


def _voc(objects: str, size: str = "<size><width>40</width><height>30</height><depth>3</depth></size>") -> str:
    return f"<annotation><folder>n01</folder><filename>a</filename>{size}{objects}</annotation>"


def _object(name: str, xmin: int, ymin: int, xmax: int, ymax: int) -> str:
    return (f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def test_a_voc_folder(tmp_path):
    (tmp_path / "n01").mkdir()
    (tmp_path / "n01" / "a.xml").write_text(_voc(_object("n01", 1, 1, 10, 10) + _object("n01", 21, 6, 30, 25)))
    (tmp_path / "b.xml").write_text(_voc(_object("dog", 5, 5, 4, 9)))  # no area: left out, with a note
    truths = read_voc_folder(tmp_path)
    assert set(truths) == set(read_ground_truth(tmp_path)) == {"n01/a.xml", "b.xml"}
    a = truths.find("n01/a.JPEG")
    # VOC's bounds are 1-based and inclusive: xmin 1 .. xmax 10 is columns 0..9
    assert a.boxes == (Box(0, 0, 10, 10, "n01"), Box(20, 5, 30, 25, "n01")) and a.size == SIZE
    np.testing.assert_array_equal(aligned_mask(IDENTITY, truth=a).mask, _box_mask((0, 0, 10, 10), (20, 5, 30, 25)))
    b = truths["b.xml"]
    assert b.empty and any("b.xml" in n and "no area" in n for n in b.notes)
    assert not aligned_mask(IDENTITY, truth=b).present


@pytest.mark.parametrize("text, words", [
    ("<annotation><object>", "not well-formed XML"),
    ('<!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>', "entities"),  # defusedxml refuses
    ("<root/>", "not Pascal VOC"),
    (_voc("<object><name>a</name><bndbox><xmin>1</xmin></bndbox></object>"), "object 1"),
])
def test_malformed_voc_is_named(tmp_path, text, words):
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(InvalidGroundTruthError, match="bad.xml") as err:
        read_ground_truth(tmp_path)
    assert words in str(err.value)


def test_paths_that_are_no_ground_truth(tmp_path):
    with pytest.raises(InvalidGroundTruthError, match="neither a file nor a folder"):
        read_ground_truth(tmp_path / "missing")
    (tmp_path / "boxes.tsv").write_text("")
    with pytest.raises(InvalidGroundTruthError, match="neither a CSV"):
        read_ground_truth(tmp_path / "boxes.tsv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidGroundTruthError, match="no PNG masks"):
        read_ground_truth(tmp_path / "empty")
    (tmp_path / "header.csv").write_text("path,x0,y0,x1,y1\n")
    with pytest.raises(InvalidGroundTruthError, match="holds no boxes"):
        read_ground_truth(tmp_path / "header.csv")


def test_ground_truth_merges_as_a_union():
    one = GroundTruth(boxes=(Box(0, 0, 1, 1, "a"),), labels=("a",), notes=("x",))
    two = GroundTruth(boxes=(Box(0, 0, 1, 1, "a"), Box(1, 1, 2, 2)), polygons=((0, 0, 1, 0, 1, 1),), labels=("a",))
    merged = one.merged(two)
    assert merged.boxes == (Box(0, 0, 1, 1, "a"), Box(1, 1, 2, 2)) and merged.labels == ("a",)
    assert merged.polygons == two.polygons and merged.notes == ("x",)


def test_ground_truths_is_a_read_only_mapping_with_a_lookup_by_any_suffix():
    truths = GroundTruths({f"d{i % 100}/img{i}.png": GroundTruth(source=str(i)) for i in range(100_000)})
    assert len(truths) == 100_000 and "d7/img7.png" in truths and repr(truths) == "GroundTruths(100000 images)"
    assert truths.find("d7/img7.JPEG").source == "7" and truths.find("d7/img7.png").source == "7"
    assert truths.find("d8/img7.png") is None
    with pytest.raises(TypeError):
        truths["x.png"] = GroundTruth()  # type: ignore[index]
