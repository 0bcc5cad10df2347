"""`xai_core.localise`: the aligned mask, each map's four scores beside the random map's and the
centre prior's, notes, and one clear sentence for bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

import xai_core
from xai_core.errors import InvalidGroundTruthError
from xai_core.localisation import CENTRE, Box, GroundTruth, Scores, centre_prior, score_map

SIZE = (400, 300)
OBJECT = (150, 100, 250, 200)  # a bright square in the middle of a dark image


@pytest.fixture(scope="module")
def explanation(lite):
    pixels = np.full((SIZE[1], SIZE[0], 3), 20, np.uint8)
    pixels[OBJECT[1]:OBJECT[3], OBJECT[0]:OBJECT[2]] = (230, 200, 40)
    return xai_core.explain(lite, Image.fromarray(pixels), methods=["gradcam", "eigencam"])


def test_a_box_scores_every_map_and_both_baselines(explanation):
    result = xai_core.localise(explanation, box=OBJECT)
    assert isinstance(result, xai_core.Localisation)
    assert result.mask.dtype == bool and result.mask.shape == explanation.maps["gradcam"].shape
    np.testing.assert_array_equal(result.mask, explanation.geometry.box_to_picture(*OBJECT))
    assert list(result.scores) == ["gradcam", "eigencam", "random", CENTRE]
    for name, cam in {**explanation.maps, CENTRE: centre_prior(result.mask.shape)}.items():
        assert result.scores[name] == score_map(cam, result.mask)  # recomputable by hand
    for scores in result.scores.values():
        assert isinstance(scores, Scores)
        assert all(0 <= v <= 1 for v in dataclasses.astuple(scores))
    assert result.radius == 15 and not result.outside and result.notes == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.radius = 1


def test_a_mask_array_a_mask_file_and_a_ground_truth_give_the_same_object(explanation, tmp_path):
    by_box = xai_core.localise(explanation, box=OBJECT)
    mask = np.zeros(SIZE[::-1], np.uint8)
    mask[OBJECT[1]:OBJECT[3], OBJECT[0]:OBJECT[2]] = 1
    by_array = xai_core.localise(explanation, mask=mask)
    Image.fromarray(mask * 255).save(tmp_path / "object.png")
    by_file = xai_core.localise(explanation, mask=tmp_path / "object.png")
    by_truth = xai_core.localise(explanation, truth=GroundTruth(boxes=(Box(*OBJECT),)))
    by_image = xai_core.localise(explanation, mask=Image.fromarray(np.stack([mask * 200] * 3, axis=-1)))
    for other in (by_array, by_file, by_truth, by_image):
        np.testing.assert_array_equal(other.mask, by_box.mask)
        assert other.scores == by_box.scores


def test_a_mask_of_another_size_is_scaled_with_a_note(explanation):
    half = np.zeros((SIZE[1] // 2, SIZE[0] // 2), bool)
    half[OBJECT[1] // 2:OBJECT[3] // 2, OBJECT[0] // 2:OBJECT[2] // 2] = True
    result = xai_core.localise(explanation, mask=half)
    np.testing.assert_array_equal(result.mask, xai_core.localise(explanation, box=OBJECT).mask)
    assert any("200x150" in n and "scaled" in n for n in result.notes)


def test_several_boxes_are_their_union_and_boxes_are_clipped(explanation):
    result = xai_core.localise(explanation, box=[(150, 100, 200, 200), (200, 100, 250, 200)])
    np.testing.assert_array_equal(result.mask, xai_core.localise(explanation, box=OBJECT).mask)
    clipped = xai_core.localise(explanation, box=(-50, -20, 100, 80))
    np.testing.assert_array_equal(clipped.mask, explanation.geometry.box_to_picture(0, 0, 100, 80))
    assert any("clipped" in n and "400x300" in n for n in clipped.notes)


def test_an_object_outside_the_crop_is_said_and_scores_nothing(explanation):
    result = xai_core.localise(explanation, box=(0, 0, 30, 300))  # the crop keeps columns ~38..362
    assert result.outside and not result.mask.any()
    assert any("outside the model's crop" in n for n in result.notes)
    assert all(math.isnan(v) for s in result.scores.values() for v in dataclasses.astuple(s))


def test_an_empty_mask_is_said_and_is_not_outside(explanation):
    result = xai_core.localise(explanation, mask=np.zeros((30, 40)))
    assert not result.outside and any("empty" in n for n in result.notes)
    assert math.isnan(result.scores["gradcam"].energy)


def test_an_explanation_without_geometry_takes_the_pictures_pixels(explanation):
    old = dataclasses.replace(explanation, geometry=None)
    result = xai_core.localise(old, box=(10, 20, 30, 40))
    assert result.mask.sum() == 400 and result.mask[20:40, 10:30].all()
    assert any("does not record" in n for n in result.notes)


@pytest.mark.parametrize("kwargs, words", [
    ({}, "Give the object once"),
    ({"box": OBJECT, "mask": np.ones((3, 3))}, "Give the object once"),
    ({"box": (10, 10, 10, 50)}, "is empty"),
    ({"box": (500, 10, 600, 50)}, "outside the image"),
    ({"box": (1, 2, 3)}, "four numbers"),
    ({"box": ("a", 2, 3, 4)}, "four numbers"),
    ({"box": (0, 0, float("nan"), 4)}, "four numbers"),
    ({"mask": np.ones((3, 3, 3))}, "2-D array"),
    ({"mask": np.array([["a"]])}, "2-D array"),
])
def test_bad_input_gets_one_sentence(explanation, kwargs, words):
    with pytest.raises(InvalidGroundTruthError, match=words) as err:
        xai_core.localise(explanation, **kwargs)
    assert "\n" not in str(err.value)


def test_a_mask_file_that_is_no_image_is_named(explanation, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InvalidGroundTruthError, match="broken.png"):
        xai_core.localise(explanation, mask=tmp_path / "broken.png")


def test_a_box_or_mask_on_the_picture_is_taken_in_the_pictures_own_pixels(explanation):
    """`on_picture`: a box drawn on the model's picture (the page's) is that rectangle of the maps;
    the aligned mask given back on the picture gives the same object and scores as the original's box."""
    height, width = explanation.maps["gradcam"].shape
    drawn = xai_core.localise(explanation, box=(60, 40, 170, 200), on_picture=True)
    expected = np.zeros((height, width), bool)
    expected[40:200, 60:170] = True
    np.testing.assert_array_equal(drawn.mask, expected)
    assert drawn.notes == () and drawn.scores["gradcam"] == score_map(explanation.maps["gradcam"], expected)
    by_box = xai_core.localise(explanation, box=OBJECT)
    again = xai_core.localise(explanation, mask=by_box.mask, on_picture=True)
    np.testing.assert_array_equal(again.mask, by_box.mask)
    assert again.scores == by_box.scores
    clipped = xai_core.localise(explanation, box=(-10, 0, 20, 10 ** 4), on_picture=True)
    assert clipped.mask.sum() == 20 * height and any("clipped" in n for n in clipped.notes)
    with pytest.raises(InvalidGroundTruthError, match="outside"):
        xai_core.localise(explanation, box=(width + 5, 0, width + 50, 10), on_picture=True)


def test_a_mask_files_bytes_are_a_mask_and_bytes_that_are_no_image_get_one_sentence(explanation, tmp_path):
    mask = np.zeros(SIZE[::-1], np.uint8)
    mask[OBJECT[1]:OBJECT[3], OBJECT[0]:OBJECT[2]] = 255
    Image.fromarray(mask).save(tmp_path / "object.png")
    by_bytes = xai_core.localise(explanation, mask=(tmp_path / "object.png").read_bytes())
    np.testing.assert_array_equal(by_bytes.mask, xai_core.localise(explanation, box=OBJECT).mask)
    with pytest.raises(InvalidGroundTruthError, match="The mask is not an image") as err:
        xai_core.localise(explanation, mask=b"%PDF-1.4 not a picture")
    assert "\n" not in str(err.value)
