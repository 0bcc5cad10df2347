"""The scores by hand on small maps: ties in rank accuracy, IoU at half the maximum, the pointing
game's tolerance, the centre prior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xai_core.localisation import centre_prior, dilate, energy, iou, pointing_game, pointing_radius, rank_accuracy


def test_rank_accuracy_shares_the_places_among_tied_pixels():
    """Two places left for four pixels tied at 0.5, one of them in the object: it gets half a place."""
    cam = np.array([[1.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
    mask = np.array([[True, False, False], [True, False, True]])  # 3 pixels: the top 3 are 1.0 and two 0.5s
    assert rank_accuracy(cam, mask) == pytest.approx((1 + 2 * 1 / 4) / 3)
    # the order of the tied pixels does not matter
    assert rank_accuracy(cam[:, ::-1], mask[:, ::-1]) == rank_accuracy(cam, mask)


def test_energy_and_iou_by_hand():
    cam = np.array([[0.0, 0.2, 0.6], [0.1, 0.5, 1.0]])
    mask = np.array([[False, False, True], [False, True, True]])
    assert energy(cam, mask) == pytest.approx(2.1 / 2.4)
    # the region at or above half the maximum: 0.6, 0.5, 1.0 -> exactly the object
    assert iou(cam, mask) == 1.0
    assert iou(cam, np.array([[False, False, True], [False, False, False]])) == pytest.approx(1 / 3)


def test_the_tolerance_scales_with_the_map():
    assert pointing_radius((224, 224)) == 15
    assert pointing_radius((448, 600)) == 30
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    grown = dilate(mask, 2)
    assert grown.sum() == 13  # the disc of radius 2: centre, 4 + 4 at distance 1 and sqrt 2, 4 at 2
    assert grown[4, 6] and grown[5, 5] and not grown[5, 6]
    assert not dilate(np.zeros((3, 3), bool), 5).any()


def test_any_of_tied_maxima_in_the_object_is_a_hit():
    cam = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert pointing_game(cam, np.array([[False, False], [False, True]])) == 1.0
    assert pointing_game(cam, np.array([[False, True], [False, False]])) == 0.0


def test_the_centre_prior():
    prior = centre_prior((60, 80))
    assert prior.dtype == np.float32 and prior.shape == (60, 80) and prior.max() == pytest.approx(1.0)
    assert np.unravel_index(prior.argmax(), prior.shape) in {(29, 39), (29, 40), (30, 39), (30, 40)}
    # sigma a quarter of each side (15 rows, 20 columns), at pixel centres, scaled to a maximum of 1
    gauss = lambda dy, dx: np.exp(-0.5 * (dy / 15) ** 2 - 0.5 * (dx / 20) ** 2)  # noqa: E731
    assert prior[30, 40 + 20] == pytest.approx(gauss(0.5, 20.5) / gauss(0.5, 0.5), rel=1e-5)
    np.testing.assert_allclose(prior, prior[::-1, ::-1], atol=1e-7)


def test_maps_and_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        energy(np.zeros((3, 3)), np.zeros((3, 4), bool))


@pytest.mark.parametrize("seed", range(5))
def test_dilation_in_the_objects_window_equals_the_whole_maps(seed):
    """`dilate` runs the distance transform on the object's bounding box grown by the radius only:
    the same pixels as the transform of the whole map."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((60, 80), bool)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(0, 60), rng.integers(0, 80)
        mask[y:y + rng.integers(1, 12), x:x + rng.integers(1, 12)] = True
    for radius in (0.5, 1, 4.02, 15):
        np.testing.assert_array_equal(dilate(mask, radius), ndimage.distance_transform_edt(~mask) <= radius)
