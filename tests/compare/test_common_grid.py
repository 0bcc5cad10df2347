"""Two models that preprocess differently (224 vs 256 pixels, other crops) are compared on the part
of the original image both see: the common grid covers exactly the intersection of the pictures'
footprints (padding left out), at the finer spacing, and a map resampled onto it samples the same
original pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import xai_core
from conftest import IMAGES
from xai_core.compare import common_grid, footprint, on_grid
from xai_core.models import Geometry

CAT = IMAGES / "cat.png"


def test_the_grid_covers_exactly_the_intersection():
    # a 400 x 300 original; A shows x 0-200, y 50-250; B's crop is padded beyond the right edge and
    # above the top (offset -20), so it shows x 150-400 (not 450), y 0-180 (not -20)
    a = Geometry((400, 300), (400, 300), (0, 0, 400, 300), (400, 300), (0, 50), (200, 200))
    b = Geometry((400, 300), (400, 300), (0, 0, 400, 300), (400, 300), (150, -20), (300, 200))
    assert footprint(b) == (150.0, 0.0, 400.0, 180.0)
    grid = common_grid(a, b)
    assert grid.region == (150.0, 50.0, 200.0, 180.0) and grid.shape == (130, 50)
    np.testing.assert_allclose(grid.xs, 150.5 + np.arange(50))
    # a map that is each pixel's original x (resp. y) lands on the grid as the grid's own x (y): bilinear is exact
    for geometry in (a, b):
        xs, ys = geometry.sources()
        h, w = geometry.picture[1], geometry.picture[0]
        np.testing.assert_allclose(on_grid(np.broadcast_to(xs[None, :], (h, w)) / 1000, geometry, grid) * 1000,
                                   np.broadcast_to(grid.xs[None, :], grid.shape), atol=1e-3)
        np.testing.assert_allclose(on_grid(np.broadcast_to(ys[:, None], (h, w)) / 1000, geometry, grid) * 1000,
                                   np.broadcast_to(grid.ys[:, None], grid.shape), atol=1e-3)


def test_resampling_is_scipys_bilinear():
    """`on_grid` (two interpolation matrices) samples as scipy's map_coordinates(order=1, mode="nearest")
    at the grid's points, edges included (a grid reaching beyond the outer pixel centres)."""
    a = Geometry((400, 300), (400, 300), (0, 0, 400, 300), (171, 128), (23, 0), (128, 128))
    b = Geometry((400, 300), (400, 300), (0, 0, 400, 300), (299, 224), (0, 0), (299, 224))
    grid = common_grid(a, b)
    cam = np.random.default_rng(0).random((128, 128), dtype=np.float32)
    xs, ys = a.sources()
    rows, cols = (grid.ys - ys[0]) / (ys[1] - ys[0]), (grid.xs - xs[0]) / (xs[1] - xs[0])
    assert rows.min() < 0 and rows.max() > 127  # the grid's edge rows lie beyond the picture's outer centres
    want = ndimage.map_coordinates(cam, np.stack(np.meshgrid(rows, cols, indexing="ij")), order=1, mode="nearest")
    np.testing.assert_allclose(on_grid(cam, a, grid), want, atol=1e-6)


def test_the_finer_spacing_and_scaled_pictures():
    # the same 400 x 300 image resized to 200 x 150 (A: 2 original pixels a picture pixel) and shown whole by B
    a = Geometry((400, 300), (400, 300), (0, 0, 400, 300), (200, 150), (0, 0), (200, 150))
    b = Geometry.identity((400, 300))
    grid = common_grid(a, b)
    assert grid.region == (0.0, 0.0, 400.0, 300.0) and grid.shape == (300, 400)
    with pytest.raises(ValueError):
        common_grid(a, Geometry.identity((40, 30)))


def test_224_against_256_pixels_is_compared_on_the_shared_region():
    torch.manual_seed(0)
    a = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu")
    torch.manual_seed(0)
    b = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=256)
    result = xai_core.compare_models(a, b, CAT, ("gradcam", "layercam"))
    fa, fb = footprint(result.explanation_a.geometry), footprint(result.explanation_b.geometry)
    assert not result.same_geometry and fa != fb
    assert result.region == (max(fa[0], fb[0]), max(fa[1], fb[1]), min(fa[2], fb[2]), min(fa[3], fb[3]))
    grid = common_grid(result.explanation_a.geometry, result.explanation_b.geometry)
    for compared in result.methods.values():
        assert compared.map_a.shape == compared.map_b.shape == compared.difference.shape == grid.shape
        assert compared.map_a.dtype == np.float32 and 0 <= compared.map_a.min() and compared.map_b.max() <= 1
    assert result.image.shape == grid.shape + (3,) and result.image.dtype == np.uint8
    assert any("compared on the part both see" in note for note in result.notes)
    # one network at two resolutions: its maps still agree (measured: Grad-CAM Spearman 0.97, LayerCAM 0.99)
    assert result.methods["gradcam"].spearman > 0.9, result.methods["gradcam"].spearman
