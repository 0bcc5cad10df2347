"""The grid pointing game (Böhle et al., CVPR 2022): localisation without annotations. Photos the
model classifies confidently (top-1 probability >= `min_confidence`; the most confident photo of
each class) are put four at a time, four different classes, in 2x2 grids at the model's input size;
each cell's class is explained on its grid, and a good map puts its mass in that cell. Every
baseline (the random map, the centre prior) scores 0.25 on average, so the game controls for the
centre bias of ordinary photos. Scores and summary: `grid_scores.py`; the results folder:
`grid_report.py`.

Each cell is the photo's own preprocessed picture (the model's resize and crop, as `explain` makes
it) downscaled to the cell's size with the model's interpolation; the grid goes to the model as a
ready input (`explain_batch` with a tensor), so no resize or crop changes it again and each
`Explanation.image` is the grid itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as F

from .. import versions
from ..errors import Cancelled, InvalidImageError, InvalidOptionError, NotEnoughClassesError
from ..explain import explain_batch, images_per_batch
from ..images import load_image
from ..methods import MethodsArg, method_specs
from ..models import LayerArg, ModelHandle, guard, layer_names
from ..models.preprocessing import normalise
from .grid_scores import GRID_BASELINES, baseline_maps, cell_bounds, cell_scores, summarize_grid
from .inputs import list_inputs

#: The most grids one call makes.
MAX_GRIDS = 10_000
#: Cells per grid (2x2), in reading order.
CELLS = 4

Progress = Callable[[str, int, int], Optional[bool]]


@dataclass(frozen=True)
class GridCell:
    """One cell's source: the photo's `path` relative to the input folder, the class the model
    gives it (`index`, `label`) and that class's probability on the photo alone."""

    path: str
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class GridScore:
    """The score of one map: `method`'s map (or a baseline's) of cell `cell`'s class on grid `grid`."""

    grid: int
    cell: int
    method: str
    mass: float
    hit: bool


@dataclass(frozen=True)
class GridMaps:
    """One grid as it was explained (given to `on_grid`, not kept): `picture` uint8 RGB [H, W, 3]
    (the model's input size), its `cells`, and per cell {method or baseline: float32 map [H, W]}."""

    grid: int
    picture: np.ndarray
    cells: tuple[GridCell, ...]
    maps: tuple[dict[str, np.ndarray], ...]


@dataclass(frozen=True)
class GridGame:
    """Result of `grid_pointing_game`. `cells[g]` are grid g's 4 sources in reading order (0 top-left,
    1 top-right, 2 bottom-left, 3 bottom-right); `scores` one per (grid, cell, method or baseline);
    `summary` as `grid_scores.summarize_grid` gives it per method, with the run's facts (JSON-safe)."""

    cells: tuple[tuple[GridCell, ...], ...]
    scores: tuple[GridScore, ...]
    summary: dict
    methods: tuple[str, ...]
    baselines: tuple[str, ...]
    model: str
    layers: tuple[str, ...]
    notes: tuple[str, ...]


def grid_pointing_game(handle: ModelHandle, photos_dir: str, methods: MethodsArg = ("gradcam",), *, grids: int = 10,
                       min_confidence: float = 0.5, seed: int = 0, layer: LayerArg = None,
                       progress: Optional[Progress] = None,
                       on_grid: Optional[Callable[[GridMaps], None]] = None,
                       exclude: Optional[Path] = None) -> GridGame:
    """Play the grid pointing game on the photos under `photos_dir` (a folder, a .txt list or a
    glob, as `batch` takes): `grids` 2x2 grids of 4 different confident classes (seeded by `seed`:
    the same call gives the same grids), each cell's class explained by `methods` at `layer`, every
    map scored with the baselines'. `progress(stage, done, total)` is called for "photos" (the
    classification) and "grids"; returning False cancels. `on_grid(GridMaps)` receives each grid
    with its maps as soon as it is explained (the result keeps only the scores); files under
    `exclude` (a results folder inside the photos' folder) are left out. Raises
    `NotEnoughClassesError` (fewer than 4 classes reach `min_confidence`), `InvalidOptionError`,
    `UnknownNameError`, `Cancelled`."""
    _check_options(grids, min_confidence, seed)
    method_ids = tuple(s.id for s in method_specs(methods))
    layers = tuple(layer_names(handle, layer))
    _, sources = list_inputs(photos_dir, exclude)
    shape = grid_shape(handle)
    chosen, pictures, notes = _select(handle, sources, min_confidence, shape, progress)
    if len(chosen) < CELLS:
        readable = len(sources) - len(notes)
        verb = "class reaches" if len(chosen) == 1 else "classes reach"
        raise NotEnoughClassesError(
            f"Only {len(chosen)} {verb} a probability of {min_confidence:g} in the {readable} readable photos, and "
            f"a grid needs {CELLS} different classes: lower --min-confidence (min_confidence) or add photos.")
    layout = make_grids(len(chosen), grids, seed)
    baselines = baseline_maps(shape)
    scores: list[GridScore] = []
    explain_notes: dict[str, None] = {}
    chunk = max(1, images_per_batch(handle) // CELLS)
    for first in range(0, len(layout), chunk):
        part = layout[first:first + chunk]
        grid_pictures = [build_grid([pictures[i] for i in cells], shape) for cells in part]
        pixels = torch.from_numpy(np.stack(grid_pictures)).permute(0, 3, 1, 2)
        x = normalise(handle.transforms, pixels).repeat_interleave(CELLS, dim=0)
        targets = [chosen[i].index for cells in part for i in cells]
        results = explain_batch(handle, x, method_ids, targets=targets, layer=list(layers))
        for n, cells in enumerate(part):
            g = first + n
            cell_maps = []
            for c in range(CELLS):
                result = results[n * CELLS + c]
                explain_notes.update(dict.fromkeys(result.notes))
                maps = {**{m: result.maps[m] for m in method_ids}, **baselines}
                for method, cam in maps.items():
                    mass, hit = cell_scores(cam, c)
                    scores.append(GridScore(g, c, method, mass, hit))
                cell_maps.append(maps)
            if on_grid is not None:
                on_grid(GridMaps(g, grid_pictures[n], tuple(chosen[i] for i in cells), tuple(cell_maps)))
        _report(progress, "grids", min(first + chunk, len(layout)), len(layout))
    all_notes = tuple(notes) + tuple(explain_notes)
    cells = tuple(tuple(chosen[i] for i in cells) for cells in layout)
    summary = {
        "model": handle.name, "layers": list(layers), "methods": summarize_grid(
            [vars(s) for s in scores], method_ids + GRID_BASELINES),
        "explained": list(method_ids), "baselines": list(GRID_BASELINES), "grids": len(layout),
        "cells": len(layout) * CELLS, "photos": len(sources), "unreadable": len(notes),
        "confident_classes": len(chosen), "min_confidence": float(min_confidence), "seed": int(seed),
        "grid_size": list(shape), "results_version": versions.RESULTS_VERSION, "notes": list(all_notes)}
    return GridGame(cells, tuple(scores), summary, method_ids, GRID_BASELINES, handle.name, layers, all_notes)


def _check_options(grids: int, min_confidence: float, seed: int) -> None:
    if isinstance(grids, bool) or not isinstance(grids, (int, np.integer)) or not 1 <= grids <= MAX_GRIDS:
        raise InvalidOptionError(f"The number of grids must be a whole number from 1 to {MAX_GRIDS}, not {grids!r}.")
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)) \
            or not 0.0 <= float(min_confidence) <= 1.0:
        raise InvalidOptionError(f"The minimum confidence is a probability from 0 to 1, not {min_confidence!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidOptionError(f"The seed must be a whole number, 0 or more, not {seed!r}.")


def _report(progress: Optional[Progress], stage: str, done: int, total: int) -> None:
    if progress is not None and progress(stage, done, total) is False:
        raise Cancelled("The computation was cancelled.")


def grid_shape(handle: ModelHandle) -> tuple[int, int]:
    """The model's input size (H, W): its preprocessing's crop."""
    crop = [int(s) for s in handle.transforms.crop_size]
    return (crop[0], crop[-1])


def cell_shapes(shape: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """The distinct (h, w) of the cells of a grid of `shape` (one for even sides)."""
    return tuple(dict.fromkeys((b - t, r - left) for t, b, left, r in cell_bounds(shape)))


def downscale(handle: ModelHandle, pixels: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """`pixels` (uint8 [N, H, W, 3], the model's preprocessed pictures) resized to `size` (h, w) with
    the model's interpolation, antialiased, as the preprocessing resizes: uint8 [N, h, w, 3]."""
    resized = F.resize(pixels.permute(0, 3, 1, 2), list(size), interpolation=handle.transforms.interpolation,
                       antialias=True)
    return resized.permute(0, 2, 3, 1).cpu().numpy()


def _select(handle: ModelHandle, sources: Sequence, min_confidence: float, shape: tuple[int, int],
            progress: Optional[Progress]) -> tuple[list[GridCell], list[dict], list[str]]:
    """The most confident photo of each class whose top-1 probability reaches `min_confidence`, by
    class index: their `GridCell`s, their cell pictures ({(h, w): uint8 [h, w, 3]} per cell size),
    and a note per unreadable file (left out). Photos go through the model a batch at a time."""
    best: dict[int, tuple[float, str, dict]] = {}
    notes: list[str] = []
    size = images_per_batch(handle)
    for first in range(0, len(sources), size):
        images, paths = [], []
        for source in sources[first:first + size]:
            try:
                images.append(load_image(source.file))
                paths.append(source.path)
            except InvalidImageError as err:
                notes.append(f"{source.path} was left out: {err}")
        if images:
            prepared = handle.prepare(images)
            with guard(handle), torch.inference_mode():
                probabilities = handle.module(prepared.x).softmax(-1).float()
            top_p, top_i = (t.tolist() for t in probabilities.max(dim=-1))
            wanted = [n for n, (p, i) in enumerate(zip(top_p, top_i))
                      if p >= min_confidence and (i not in best or p > best[i][0])]
            if wanted:
                small = {s: downscale(handle, prepared.pixels[wanted], s) for s in cell_shapes(shape)}
                for k, n in enumerate(wanted):
                    if top_i[n] not in best or top_p[n] > best[top_i[n]][0]:  # two in one batch
                        best[top_i[n]] = (top_p[n], paths[n], {s: small[s][k] for s in small})
        _report(progress, "photos", min(first + size, len(sources)), len(sources))
    order = sorted(best)
    cells = [GridCell(best[i][1], i, handle.categories[i], float(best[i][0])) for i in order]
    return cells, [best[i][2] for i in order], notes


def make_grids(classes: int, grids: int, seed: int = 0) -> list[tuple[int, int, int, int]]:
    """`grids` grids as 4 different indices into `classes` chosen classes each (cell order: reading
    order), drawn by `np.random.default_rng(seed)`: the same arguments give the same grids. No grid
    repeats another (same classes in the same cells) while other grids remain possible. Raises
    `InvalidOptionError` for fewer than 4 classes."""
    if classes < CELLS:
        raise InvalidOptionError(f"A grid needs {CELLS} different classes; there are {classes}.")
    rng = np.random.default_rng(seed)
    possible = classes * (classes - 1) * (classes - 2) * (classes - 3)
    seen: set = set()
    out: list[tuple[int, int, int, int]] = []
    while len(out) < grids:
        cells = tuple(int(i) for i in rng.choice(classes, CELLS, replace=False))
        if cells in seen and len(seen) < possible:
            continue
        seen.add(cells)
        out.append(cells)
    return out


def build_grid(cell_pictures: Sequence[dict], shape: tuple[int, int]) -> np.ndarray:
    """The 2x2 grid of `shape` (H, W) from 4 cells' pictures in reading order, each {(h, w): uint8
    [h, w, 3]} as `_select` keeps them (a cell takes the picture of its own size): uint8 [H, W, 3]."""
    grid = np.zeros((shape[0], shape[1], 3), dtype=np.uint8)
    for pictures, (top, bottom, left, right) in zip(cell_pictures, cell_bounds(shape)):
        grid[top:bottom, left:right] = pictures[(bottom - top, right - left)]
    return grid


__all__ = ["CELLS", "MAX_GRIDS", "GridCell", "GridGame", "GridMaps", "GridScore", "build_grid", "cell_shapes",
           "downscale", "grid_pointing_game", "grid_shape", "make_grids"]
