"""The grid pointing game's scores (Böhle et al., CVPR 2022): for a map of one cell's class on a 2x2
grid, `mass` (the share of the map's positive mass inside that cell) and `hit` (the map's maximum lies
in it); the two baselines every map is compared with (the random map and a centre prior, each 0.25 on
average by construction); and the summary: per method the mean mass (95% bootstrap interval), the hit
rate and the win rates against each baseline (95% Wilson intervals)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..faithfulness import RANDOM
from ..faithfulness.baseline import random_map
from ..localisation import CENTRE, centre_prior
from .summary import bootstrap_ci, wilson_ci

#: The baselines of the grid pointing game, in the order they are reported.
GRID_BASELINES = (RANDOM, CENTRE)


def cell_bounds(shape: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
    """The 4 cells of an [H, W] grid as (top, bottom, left, right) pixel bounds (end exclusive), in
    reading order: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right. An odd side gives the
    extra row or column to the bottom or right cells."""
    h, w = int(shape[0]), int(shape[1])
    rows, cols = ((0, h // 2), (h // 2, h)), ((0, w // 2), (w // 2, w))
    return tuple((top, bottom, left, right) for top, bottom in rows for left, right in cols)


def cell_scores(cam: np.ndarray, cell: int) -> tuple[float, bool]:
    """(mass, hit) of `cam` (float [H, W]) for `cell` (0-3, `cell_bounds`' order): mass is the
    share of the map's positive mass (values above 0) inside the cell; hit is True when the map's
    maximum (the first in reading order where several pixels share it) lies in the cell. A map with
    no positive value points nowhere: mass 0, no hit."""
    cam = np.asarray(cam, dtype=np.float64)
    positive = np.clip(cam, 0.0, None)
    total = float(positive.sum())
    if not np.isfinite(total) or total <= 0.0:
        return 0.0, False
    top, bottom, left, right = cell_bounds(cam.shape)[cell]
    mass = float(positive[top:bottom, left:right].sum()) / total
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return min(1.0, mass), bool(top <= row < bottom and left <= col < right)


def baseline_maps(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The baselines' maps for a grid of `shape`: the random map (`faithfulness.baseline.random_map`,
    the same seeded map the faithfulness scores use) and the centre prior."""
    return {RANDOM: random_map(tuple(shape)), CENTRE: centre_prior(shape)}


def summarize_grid(rows: Sequence[dict], methods: Sequence[str]) -> dict:
    """Per method (and baseline) in `methods`, from `rows` ({"grid", "cell", "method", "mass",
    "hit"}, one per map): {"mass": mean with its 95% bootstrap interval, "hit": hit rate, and
    "win_random" / "win_centre": the share of (grid, cell) pairs where its mass beats the
    baseline's (ties are no win), each a proportion with its 95% Wilson interval}. The (grid, cell)
    pairs are taken as independent draws: with few photos, each photo comes back in several grids,
    so the intervals are narrower than a resampling of photos would give."""
    by_method: dict[str, dict[tuple[int, int], dict]] = {m: {} for m in methods}
    for row in rows:
        if row["method"] in by_method:
            by_method[row["method"]][(row["grid"], row["cell"])] = row
    out = {}
    for method in methods:
        mine = by_method[method]
        keys = sorted(mine)
        entry = {"mass": {**bootstrap_ci([mine[k]["mass"] for k in keys]), "interval": "bootstrap"},
                 "hit": wilson_ci(sum(bool(mine[k]["hit"]) for k in keys), len(keys))}
        for baseline in GRID_BASELINES:
            if method == baseline or baseline not in by_method:
                continue
            theirs = by_method[baseline]
            both = [k for k in keys if k in theirs]
            wins = sum(mine[k]["mass"] > theirs[k]["mass"] for k in both)
            entry[f"win_{baseline}"] = wilson_ci(wins, len(both))
        out[method] = entry
    return out


__all__ = ["GRID_BASELINES", "baseline_maps", "cell_bounds", "cell_scores", "summarize_grid"]
