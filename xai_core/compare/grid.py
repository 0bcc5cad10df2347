"""The common grid two models' maps are compared on: the part of the original image both pictures
cover (each `Geometry`'s footprint, padding left out), sampled at the finer of the two models' pixel
spacings; each map is brought onto it by bilinear interpolation (`on_grid`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..models import Geometry


@dataclass(frozen=True)
class Grid:
    """Pixel centres in the original image's coordinates: `xs` (one per column), `ys` (one per row),
    float64; `region` (left, top, right, bottom): the part of the original they tile."""

    region: tuple[float, float, float, float]
    xs: np.ndarray
    ys: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), as a map on this grid is shaped."""
        return len(self.ys), len(self.xs)


def footprint(geometry: Geometry) -> tuple[float, float, float, float]:
    """The part (left, top, right, bottom) of the original image `geometry`'s picture shows: its
    pixels' extents (centre +- half a pixel) clipped to the image, so a crop's padding is not part
    of it."""
    xs, ys = geometry.sources()
    (x0, x1), (y0, y1) = _extent(xs, geometry.original[0]), _extent(ys, geometry.original[1])
    return x0, y0, x1, y1


def common_grid(geometry_a: Geometry, geometry_b: Geometry) -> Grid:
    """The grid both pictures' maps are compared on: the intersection of their footprints, at the
    finer of the two pixel spacings along each axis. Raises ValueError when the geometries are of
    different originals or do not overlap (two pictures of one image always do)."""
    if tuple(geometry_a.original) != tuple(geometry_b.original):
        raise ValueError(f"The geometries are of different images ({geometry_a.original} and {geometry_b.original}).")
    fa, fb = footprint(geometry_a), footprint(geometry_b)
    region = (max(fa[0], fb[0]), max(fa[1], fb[1]), min(fa[2], fb[2]), min(fa[3], fb[3]))
    if not (region[2] > region[0] and region[3] > region[1]):
        raise ValueError("The two pictures share no part of the original image.")
    xs = _centres(region[0], region[2], min(_spacing(geometry_a, 0), _spacing(geometry_b, 0)))
    ys = _centres(region[1], region[3], min(_spacing(geometry_a, 1), _spacing(geometry_b, 1)))
    return Grid(region, xs, ys)


def picture_grid(geometry: Geometry) -> Grid:
    """The picture's own grid (what a model compared with one of identical geometry is compared on)."""
    xs, ys = geometry.sources()
    return Grid(footprint(geometry), xs, ys)


def on_grid(picture_map: np.ndarray, geometry: Geometry, grid: Grid) -> np.ndarray:
    """`picture_map` (float [H, W] on `geometry`'s picture) sampled bilinearly at `grid`'s pixel
    centres, float32 [h, w]; a centre beyond the picture's outer pixel centres takes the edge value:
    scipy's `ndimage.map_coordinates(order=1, mode="nearest")` at the grid's points (pinned by
    tests/compare/test_common_grid.py). A grid's points form rows and columns, so the bilinear
    interpolation is one linear interpolation per axis: two small matrix products, about four
    times faster than map_coordinates' per-point loop (which is why it is written out here)."""
    xs, ys = geometry.sources()
    picture_map = np.asarray(picture_map, dtype=np.float32)
    rows = _linear((grid.ys - ys[0]) / _step(ys), picture_map.shape[0])
    cols = _linear((grid.xs - xs[0]) / _step(xs), picture_map.shape[1])
    return rows @ picture_map @ cols.T


def _linear(coords: np.ndarray, count: int) -> np.ndarray:
    """The linear interpolation matrix [len(coords), count] reading `count` samples at the
    fractional indices `coords` (clamped to the first and last sample), float32."""
    weights = np.zeros((len(coords), count), np.float32)
    if count == 1:
        weights[:, 0] = 1.0
        return weights
    clamped = np.clip(coords, 0, count - 1)
    low = np.minimum(np.floor(clamped).astype(np.int64), count - 2)
    fraction = (clamped - low).astype(np.float32)
    at = np.arange(len(coords))
    weights[at, low] = 1.0 - fraction
    weights[at, low + 1] += fraction
    return weights


def image_on_grid(decoded: Image.Image, geometry: Geometry, grid: Grid) -> np.ndarray:
    """The decoded image's part under `grid` (its region) resized bilinearly to the grid, uint8
    [h, w, 3]: the picture both maps are drawn over."""
    sx = decoded.size[0] / geometry.original[0]
    sy = decoded.size[1] / geometry.original[1]
    x0, y0, x1, y1 = grid.region
    h, w = grid.shape
    part = decoded.convert("RGB").resize((w, h), Image.BILINEAR, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy))
    return np.asarray(part, dtype=np.uint8)


def _step(centres: np.ndarray) -> float:
    return float(centres[1] - centres[0]) if len(centres) > 1 else 1.0


def _spacing(geometry: Geometry, axis: int) -> float:
    return _step(geometry.sources()[axis])


def _extent(centres: np.ndarray, side: int) -> tuple[float, float]:
    half = _step(centres) / 2.0
    return max(float(centres[0]) - half, 0.0), min(float(centres[-1]) + half, float(side))


def _centres(start: float, end: float, spacing: float) -> np.ndarray:
    count = max(1, int(round((end - start) / spacing)))
    return start + (np.arange(count, dtype=np.float64) + 0.5) * ((end - start) / count)


__all__ = ["Grid", "common_grid", "footprint", "image_on_grid", "on_grid", "picture_grid"]
