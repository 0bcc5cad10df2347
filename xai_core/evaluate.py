"""`evaluate`: which explanation can be trusted? Faithfulness scores (deletion, insertion, ROAD,
confidence change) next to a random-map baseline, the model-randomization sanity check, and the
agreement between the methods' maps."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from . import _faithfulness as faith
from ._common import as_pil
from ._sanity import SANITY_THRESHOLD, TOP_FRACTION, agreement_matrices, randomized_handle, spearman
from .errors import Cancelled, InvalidOptionError
from .explain import GAP_IDENTICAL, Explanation, explain
from .images import ImageSource
from .methods import list_methods
from .models import ModelHandle

RANDOM = "random"
#: pytorch-grad-cam's ROAD percentiles used by its metrics tutorial (its classes default to 10..90).
ROAD_PERCENTILES = (20, 40, 60, 80)
#: Seed of the random baseline map: uniform noise on a coarse grid (the side / 32 like a CAM's
#: resolution, at least 4), upsampled bilinearly, so it is as smooth as the maps it is compared with.
RANDOM_SEED = 0
#: Maps that differ by at most this everywhere are scored once (e.g. gradcam = hirescam at a GAP layer).
SAME_MAP_TOLERANCE = 1e-5
#: `evaluate`'s wall time over that of its forwards alone on 2 cores, ROAD's imputation sharing the CPU
#: (EfficientNet-Lite0 at 224 px, 4 and 6 distinct maps; benchmarks/bench_evaluate.py prints both).
_ROAD_SHARE = 2.0


@dataclass(frozen=True)
class Agreement:
    """How much the methods' maps agree: `spearman[i, j]` and `iou[i, j]` (of the top 20% pixels)
    for `methods[i]`, `methods[j]`, float64 [k, k]. `identical_by_construction` lists the pairs whose
    maps are equal by construction, each as (method, method, reason)."""

    methods: tuple[str, ...]
    spearman: np.ndarray
    iou: np.ndarray
    identical_by_construction: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Evaluation:
    """Result of `evaluate`. `scores[method]` (and `scores["random"]`) holds floats
    `deletion_auc` (lower is better), `insertion_auc` (higher is better), `road_morf` (lower),
    `road_lerf` (higher), `road_combined` (higher), `confidence_change` (higher), float64 arrays
    `deletion_curve` / `insertion_curve` (target probability at `fractions`), and `sanity_spearman`
    (float) / `sanity_passed` (bool), both None when not checked (the random map, sanity=False, or a
    map that is not a registered method's)."""

    scores: dict[str, dict]
    agreement: Agreement
    fractions: np.ndarray
    target: int
    target_label: str
    target_probability: float
    model: str
    layers: tuple[str, ...]
    #: Seconds per stage: "deletion_insertion" (with the confidence change's images), "road" (after
    #: deletion/insertion: its imputation runs meanwhile in background threads), "sanity", "total".
    timings: dict[str, float]
    notes: tuple[str, ...]
    settings: dict

    def summary(self) -> dict:
        """The scores as plain JSON-ready Python (lists, floats, None for NaN)."""
        return {
            "model": self.model,
            "target": {"index": self.target, "label": self.target_label, "score": self.target_probability},
            "layers": list(self.layers),
            "fractions": _plain(self.fractions),
            "scores": {m: {k: _plain(v) for k, v in s.items()} for m, s in self.scores.items()},
            "agreement": {
                "methods": list(self.agreement.methods),
                "spearman": _plain(self.agreement.spearman),
                "iou": _plain(self.agreement.iou),
                "identical_by_construction": [
                    {"methods": [a, b], "reason": r} for a, b, r in self.agreement.identical_by_construction
                ],
            },
            "timings": self.timings,
            "notes": list(self.notes),
            "settings": self.settings,
        }


def evaluate(
    handle: ModelHandle,
    image: ImageSource,
    explanation: Explanation,
    *,
    steps: int = 20,
    sanity: bool = True,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    road_percentiles: tuple[int, ...] = ROAD_PERCENTILES,
    batch_size: Optional[int] = None,
) -> Evaluation:
    """Score every map of `explanation` (computed by `explain` on `handle` and `image`) and a random
    map the same way; see `Evaluation`. Deletion/insertion use `steps` steps of 1/steps of the
    pixels. With `sanity`, each registered method's map is recomputed on a copy of the model whose
    target layer and head are re-initialised. `progress(stage, done, total)` is called after each
    unit of work; returning False cancels. `batch_size` images go in one forward (default: 4 on
    CPU, where small batches are faster per image, 32 on GPU). Raises `InvalidOptionError` (steps
    out of 2..100, or an explanation of another model or image) and `Cancelled`. Every forward runs in the calling thread,
    holding `handle.lock` for one batch at a time."""
    started = time.perf_counter()
    x = _check(handle, image, explanation, steps, road_percentiles)
    batch_size = batch_size or faith.default_batch_size(handle)
    methods = list(explanation.maps)
    shape = tuple(x.shape[-2:])
    maps = {m: np.float32(explanation.maps[m]) for m in methods}
    maps[RANDOM] = random_map(shape)
    groups = _same_map_groups(maps)  # representative -> members
    reps = list(groups)
    rank_of = {m: faith.ranks(maps[m]) for m in maps}
    checked = [m for m in methods if m in list_methods()] if sanity else []
    total = faith.batch_count(len(reps), steps, len(reps), batch_size) + 2 * len(road_percentiles)
    total += bool(checked)
    tick = _Ticker(progress, total)
    timings: dict[str, float] = {}
    scorer = faith.Scorer(handle, x, explanation.target, batch_size)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    per_rep = _faithfulness(scorer, [maps[m] for m in reps], [rank_of[m] for m in reps], fractions,
                            road_percentiles, tick, timings)
    scores = _score_dicts(per_rep, groups, methods + [RANDOM])
    notes = [f"{', '.join(g[1:])} scored as {g[0]}: their maps are equal." for g in groups.values() if len(g) > 1]
    if checked:
        with _timed(timings, "sanity"):
            tick.stage = "sanity check"
            notes += _sanity(handle, image, explanation, checked, maps, scores, tick)
            tick()
    rho, iou = agreement_matrices([maps[m] for m in methods], [rank_of[m] for m in methods])
    timings["total"] = time.perf_counter() - started
    return Evaluation(
        scores=scores,
        agreement=Agreement(tuple(methods), rho, iou, _identical_pairs(handle, explanation)),
        fractions=fractions,
        target=explanation.target,
        target_label=explanation.target_label,
        target_probability=explanation.target_probability,
        model=explanation.model,
        layers=explanation.layers,
        timings=timings,
        notes=tuple(notes),
        settings={
            "steps": steps,
            "deletion_substrate": "zero in the model's normalised space (the normalisation's mean colour)",
            "insertion_substrate": f"Gaussian blur, sigma {faith.BLUR_SIGMA:g} x the image side",
            "road_percentiles": list(road_percentiles),
            "random_map": f"uniform noise on a coarse grid, upsampled (seed {RANDOM_SEED})",
            "sanity_threshold": SANITY_THRESHOLD,
            "agreement_top_fraction": TOP_FRACTION,
        },
    )


def estimate_evaluation_seconds(handle: ModelHandle, explanation: Explanation, *, steps: int = 20,
                                road_percentiles: tuple[int, ...] = ROAD_PERCENTILES) -> float:
    """About how many seconds `evaluate(handle, image, explanation, steps=steps)` takes here: one
    forward per image (the deletion/insertion steps, the confidence change and ROAD's images, for
    each distinct map and the random one) at the scoring forward's timed speed, times
    `_ROAD_SHARE` for ROAD's imputation running meanwhile."""
    shape = tuple(np.shape(next(iter(explanation.maps.values()))))
    maps = {m: np.float32(cam) for m, cam in explanation.maps.items()}
    maps[RANDOM] = random_map(shape)
    images = 2 + len(_same_map_groups(maps)) * (2 * (steps - 1) + 1 + 2 * len(road_percentiles))
    return images * faith.forward_seconds(handle) * _ROAD_SHARE


def _faithfulness(scorer, maps: list, rank_list: list, fractions, percentiles, tick, timings: dict) -> dict:
    """Every faithfulness score of `maps` (one row each), timed per stage into `timings`."""
    rank_maps = np.stack([faith.rank_map(r, maps[0].shape) for r in rank_list])
    with faith.RoadJobs(scorer.x, rank_maps, percentiles) as road:  # imputes while deletion runs
        with _timed(timings, "deletion_insertion"):
            tick.stage = "insert/delete"
            extra = faith.confidence_images(scorer.x, np.stack(maps))  # scored in the same batches
            steps = len(fractions) - 1
            deletion, insertion, multiplied = faith.deletion_insertion(scorer, rank_list, steps, tick, extra)
        with _timed(timings, "road"):
            tick.stage = "ROAD"
            morf, lerf, combined = road.scores(scorer, tick)
    change = multiplied - scorer.base
    return {
        "deletion_auc": np.trapezoid(deletion, fractions, axis=1),
        "insertion_auc": np.trapezoid(insertion, fractions, axis=1),
        "deletion_curve": deletion, "insertion_curve": insertion, "road_morf": morf, "road_lerf": lerf,
        "road_combined": combined, "confidence_change": change,
    }


@contextmanager
def _timed(timings: dict, key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - t0


def _score_dicts(per_rep: dict, groups: dict[str, list[str]], order: list[str]) -> dict[str, dict]:
    """One score dict per method (members of a group share their representative's row), in `order`."""
    scores = {}
    for i, members in enumerate(groups.values()):
        for method in members:
            scores[method] = {key: (values[i].copy() if values.ndim > 1 else float(values[i]))
                              for key, values in per_rep.items()}
            scores[method].update(sanity_spearman=None, sanity_passed=None)
    return {m: scores[m] for m in order}


def random_map(shape: tuple[int, int]) -> np.ndarray:
    """The baseline map: smooth, seeded uniform noise, float32 [H, W] in [0, 1]."""
    grid = (max(4, round(shape[0] / 32)), max(4, round(shape[1] / 32)))
    coarse = torch.from_numpy(np.random.default_rng(RANDOM_SEED).random(grid, dtype=np.float32))
    fine = torch.nn.functional.interpolate(coarse[None, None], size=shape, mode="bilinear", align_corners=False)
    cam = fine[0, 0].numpy()
    return np.float32((cam - cam.min()) / max(float(np.ptp(cam)), 1e-12))


def _check(handle: ModelHandle, image: ImageSource, explanation: Explanation, steps: int, percentiles) -> torch.Tensor:
    """The model's input for `image`, after checking the options and that `explanation` belongs to it."""
    if not 2 <= int(steps) <= 100:
        raise InvalidOptionError(f"steps must be 2 to 100 (got {steps}); 20 removes 5% of the pixels per step.")
    if not percentiles or not all(0 < p < 100 for p in percentiles):
        raise InvalidOptionError("ROAD percentiles must be between 0 and 100 (exclusive), e.g. (20, 40, 60, 80).")
    if explanation.model != handle.name:
        raise InvalidOptionError(
            f"The explanation was computed with {explanation.model}, not {handle.name}; "
            "evaluate it with the same model."
        )
    if not explanation.maps or RANDOM in explanation.maps:
        raise InvalidOptionError(
            f"The explanation needs at least one map, and none named {RANDOM!r} (the baseline's name)."
        )
    pil = as_pil(image)
    if not np.array_equal(handle.display_image(pil), explanation.image):
        raise InvalidOptionError("The explanation was computed for another image; evaluate it with its own image.")
    x = handle.preprocess(pil)
    for method, cam in explanation.maps.items():
        if tuple(np.shape(cam)) != tuple(x.shape[-2:]):
            raise InvalidOptionError(
                f"The {method} map is {np.shape(cam)} but the model's input is {tuple(x.shape[-2:])}; "
                "evaluate an explanation with the image and model it was computed for."
            )
    return x


def _same_map_groups(maps: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Maps equal within `SAME_MAP_TOLERANCE`, as {representative: [it and its equals]}."""
    groups: dict[str, list[str]] = {}
    for method, cam in maps.items():
        rep = next((r for r in groups if np.abs(maps[r] - cam).max() <= SAME_MAP_TOLERANCE), None)
        if rep is None:
            groups[method] = [method]
        else:
            groups[rep].append(method)
    return groups


def _sanity(handle, image, explanation: Explanation, methods: list[str], maps: dict, scores: dict, tick) -> list[str]:
    """Fill `sanity_spearman` / `sanity_passed` for `methods`; returns notes."""
    options = explanation.options or {}
    randomized = randomized_handle(handle, explanation.layers)
    # a slow (perturbation) method reports progress, so the user can still cancel
    relay = None if tick.progress is None else (lambda *_: tick.progress(tick.stage, tick.done, tick.total))
    again = explain(randomized, image, methods, target=explanation.target, layer=list(explanation.layers),
                    aug_smooth=bool(options.get("aug_smooth")), eigen_smooth=bool(options.get("eigen_smooth")),
                    progress=relay)
    failed = []
    for method in methods:
        rho = spearman(maps[method], again.maps[method])
        scores[method]["sanity_spearman"] = rho
        scores[method]["sanity_passed"] = bool(rho <= SANITY_THRESHOLD)
        if rho > SANITY_THRESHOLD:
            failed.append(method)
    if not failed:
        return []
    verb, pronoun = ("changes", "it fails") if len(failed) == 1 else ("change", "they fail")
    return [f"{', '.join(failed)} barely {verb} when the target layer and the layers after it are randomized "
            f"(Spearman > {SANITY_THRESHOLD:g}): {pronoun} the sanity check of Adebayo et al. 2018."]


def _identical_pairs(handle: ModelHandle, explanation: Explanation) -> tuple[tuple[str, str, str], ...]:
    same = [m for m in GAP_IDENTICAL if m in explanation.maps]
    if len(same) < 2 or not all(n in handle.spec.gap_linear_layers for n in explanation.layers):
        return ()
    reason = (f"{explanation.layers[0]} feeds global average pooling + a linear layer, so the gradient is the "
              "same at every location")
    return tuple((a, b, reason) for i, a in enumerate(same) for b in same[i + 1:])


class _Ticker:
    """Counts units of work and reports them to `progress(stage, done, total)`."""

    def __init__(self, progress, total: int) -> None:
        self.progress, self.total, self.done, self.stage = progress, total, 0, ""

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None and self.progress(self.stage, min(self.done, self.total), self.total) is False:
            raise Cancelled("Evaluation cancelled.")


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
