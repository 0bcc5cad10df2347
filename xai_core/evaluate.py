"""`evaluate`: which explanation can be trusted? Faithfulness scores (deletion, insertion, ROAD,
confidence change) next to a random-map baseline, the model-randomization sanity check, and the
agreement between the methods' maps."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from . import _timing
from .errors import Cancelled, InvalidImageError, InvalidOptionError
from .explain import Explanation
from .faithfulness.baseline import RANDOM, identical_pairs, random_map, same_map_groups
from .faithfulness.curves import (Scorer, assemble_curves, batch_count, chunk_curves, chunks, confidence_images, curve_makers,
                                  curve_rows, default_batch_size, probabilities, rank_map, ranks, score_queue)
from .faithfulness.estimate import observe_evaluation
from .faithfulness.results import Agreement, Evaluation, Results, Ticker, evaluation_settings
from .faithfulness.road import ROAD_PERCENTILES, RoadJobs, impute_together
from .faithfulness.sanity import SANITY_THRESHOLD, agreement_matrices, sanity_scores
from .images import ImageSource, load_image
from .methods import list_methods
from .models import ModelHandle


def evaluate(
    handle: ModelHandle,
    image: ImageSource,
    explanation: Explanation,
    *,
    steps: int = 20,
    sanity: bool = True,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    on_partial: Optional[Callable[[Evaluation], object]] = None,
    road_percentiles: tuple[int, ...] = ROAD_PERCENTILES,
    batch_size: Optional[int] = None,
) -> Evaluation:
    """Score every map of `explanation` (computed by `explain` on `handle` and `image`) and a random
    map the same way; see `Evaluation`. Deletion/insertion use `steps` steps of 1/steps of the
    pixels. With `sanity`, each registered method's map is recomputed, with the explanation's
    options, on a copy of the model whose target layer and head are re-initialised.

    The work runs in this order: the random map's and the first map's deletion/insertion, each
    other map's, ROAD (its imputations solved together on the handle's device), the sanity check.
    `on_partial(e)` gets the `Evaluation` so far after each of these (`e.pending` names the stages
    to come; the last call gets the complete result, the one returned). `progress(stage, done,
    total)` is called after each unit of work; returning False cancels. `batch_size` images go in
    one forward (default: 4 on CPU, where small batches are faster per image, 32 on GPU). Raises
    `InvalidOptionError` (steps out of 2..100, or an explanation of another model or image) and
    `Cancelled`. Every forward runs in the calling thread, holding `handle.lock` for one batch at
    a time."""
    started = time.perf_counter()
    batch_size = batch_size or default_batch_size(handle)
    prepared = _prepare(handle, image, explanation, steps, road_percentiles, on_partial)
    x, methods, maps, rank_of = prepared.x, prepared.methods, prepared.maps, prepared.rank_of
    timings, results, reps, rank_maps = prepared.timings, prepared.results, prepared.reps, prepared.rank_maps
    parts = chunks(results.rep_of[RANDOM], results.rep_of[methods[0]], reps)
    checked = [m for m in methods if m in list_methods()] if sanity else []
    total = sum(batch_count(len(c), steps, len(c), batch_size, ends=i == 0) for i, c in enumerate(parts))
    tick = Ticker(progress, total + 2 * len(road_percentiles) + bool(checked))
    later = ("road",) + (("sanity",) if checked else ())
    scorer = Scorer(handle, x, explanation.target, batch_size)
    with _timing.timer(handle.device, timings, "deletion_insertion"):
        tick.stage, ends = "insert/delete", None
        for i, chunk in enumerate(parts):
            ends = chunk_curves(scorer, chunk, maps, rank_of, steps, tick, ends, results.rows)
            results.report(("deletion_insertion",) * (i < len(parts) - 1) + later)
    with _timing.timer(handle.device, timings, "road"):
        tick.stage = "ROAD"
        road = RoadJobs(scorer.x, rank_maps, road_percentiles)
        for rep, *values in zip(reps, *road.scores(scorer, tick)):
            results.rows[rep].update(zip(("road_morf", "road_lerf", "road_combined"), map(float, values)))
    if checked:
        results.report(("sanity",))
        with _timing.timer(handle.device, timings, "sanity"):
            tick.stage = "sanity check"
            relay = None if progress is None else (lambda *_: tick.progress(tick.stage, tick.done, tick.total))
            for method, rho_m in sanity_scores(handle, image, explanation, checked, relay).items():
                results.sanity[method].update(sanity_spearman=rho_m, sanity_passed=bool(rho_m <= SANITY_THRESHOLD))
            tick()
    observe_evaluation(handle, explanation, steps, road_percentiles, batch_size, timings, bool(checked))
    timings["total"] = _timing.elapsed(handle.device, started)
    return results.report(())


def evaluate_batch(
    handle: ModelHandle,
    images: Sequence[ImageSource],
    explanations: Sequence[Explanation],
    *,
    steps: int = 20,
    road_percentiles: tuple[int, ...] = ROAD_PERCENTILES,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    group: int = 8,
) -> list[Evaluation]:
    """`evaluate` for many images (e.g. `explain_batch`'s results), without the sanity check: one
    `Evaluation` per image with the same scores `evaluate(..., sanity=False)` gives (deletion,
    insertion, confidence change, ROAD; each image's random map too). The forwards are batched
    across maps and images, `batch_size` images each, the deletion and insertion images made on
    the device; each group's ROAD imputations are solved together on the device. Images
    go `group` at a time (bounding the imputed images held). `progress("images", done, total)`
    after each group; returning False cancels. Raises `InvalidOptionError` (naming the image),
    `InvalidImageError`, `Cancelled`."""
    images, explanations = list(images), list(explanations)
    if len(images) != len(explanations):
        raise InvalidOptionError(f"Give one explanation per image: {len(images)} images, {len(explanations)} explanations.")
    if not isinstance(group, int) or group < 1:
        raise InvalidOptionError(f"group must be a whole number of images, 1 or more, not {group!r}.")
    batch_size = batch_size or default_batch_size(handle)
    out: list[Evaluation] = []
    for first in range(0, len(images), group):
        out += _evaluate_group(handle, images, explanations, range(first, min(first + group, len(images))),
                               steps, road_percentiles, batch_size)
        if progress is not None and progress("images", len(out), len(images)) is False:
            raise Cancelled("Evaluation cancelled.")
    return out


def _evaluate_group(handle, images, explanations, indices, steps, road_percentiles, batch_size) -> list[Evaluation]:
    started = time.perf_counter()
    prepared = []
    for i in indices:
        try:
            prepared.append(_prepare(handle, images[i], explanations[i], steps, road_percentiles, None))
        except (InvalidOptionError, InvalidImageError) as err:
            raise type(err)(f"Image {i + 1} of {len(images)}: {err}") from None
    targets = [p.results.fields["target"] for p in prepared]
    bases = probabilities(handle, torch.cat([p.x for p in prepared]), targets)
    tick = lambda: None  # noqa: E731  (progress is per group)
    timings: dict[str, float] = {}
    with _timing.timer(handle.device, timings, "deletion_insertion"):
        items, spans = [], []
        for p, target in zip(prepared, targets):
            extra = confidence_images(p.x, np.stack([p.maps[rep] for rep in p.reps]))
            makers = curve_makers(p.x, [p.rank_of[rep] for rep in p.reps], steps, extra, True)
            spans.append(slice(len(items), len(items) + len(makers)))
            items += [(make, target) for make in makers]
        flat = score_queue(handle, items, batch_size, tick)
        for p, base, span in zip(prepared, bases, spans):
            deletion, insertion, multiplied, _ = assemble_curves(flat[span], len(p.reps), steps, float(base), None)
            curve_rows(p.results.rows, p.reps, deletion, insertion, multiplied, float(base), steps)
    with _timing.timer(handle.device, timings, "road"):
        roads = [RoadJobs(p.x, p.rank_maps, road_percentiles) for p in prepared]
        impute_together(roads)  # the group's imputations in one batch
        items, spans = [], []
        for road, target in zip(roads, targets):
            makers = road.makers(handle.device)
            spans.append(slice(len(items), len(items) + len(makers)))
            items += [(make, target) for make in makers]
        flat = score_queue(handle, items, batch_size, tick)
        for p, road, base, span in zip(prepared, roads, bases, spans):
            for rep, *values in zip(p.reps, *road.combine(flat[span] - float(base))):
                p.results.rows[rep].update(zip(("road_morf", "road_lerf", "road_combined"), map(float, values)))
    share = {k: v / len(prepared) for k, v in timings.items()}
    share["total"] = _timing.elapsed(handle.device, started) / len(prepared)
    for p in prepared:
        p.timings.update(share)
    return [p.results.report(()) for p in prepared]


@dataclass
class _Prepared:
    x: torch.Tensor
    methods: list
    maps: dict
    rank_of: dict
    timings: dict
    results: "Results"
    reps: list
    rank_maps: np.ndarray


def _prepare(handle, image, explanation, steps, road_percentiles, on_partial) -> _Prepared:
    """What scoring `explanation`'s maps needs: the model's input, the maps with the random one,
    their ranks, the groups of equal maps (`Results`) and their representatives' rank maps."""
    x = _check(handle, image, explanation, steps, road_percentiles)
    methods = list(explanation.maps)
    maps = {m: np.float32(explanation.maps[m]) for m in methods}
    maps[RANDOM] = random_map(tuple(x.shape[-2:]))
    rank_of = {m: ranks(maps[m]) for m in maps}
    timings: dict[str, float] = {}
    rho, iou = agreement_matrices([maps[m] for m in methods], [rank_of[m] for m in methods])
    results = Results(
        same_map_groups(maps), methods + [RANDOM], timings, on_partial,
        agreement=Agreement(tuple(methods), rho, iou, identical_pairs(handle, methods, explanation.layers)),
        fractions=np.linspace(0.0, 1.0, steps + 1), target=explanation.target, target_label=explanation.target_label,
        target_probability=explanation.target_probability, model=explanation.model, layers=explanation.layers,
        settings=evaluation_settings(steps, road_percentiles),
    )
    reps = list(results.rows)  # the methods' order, then the random map's (ROAD's noise follows it)
    rank_maps = np.stack([rank_map(rank_of[rep], maps[rep].shape) for rep in reps])
    return _Prepared(x, methods, maps, rank_of, timings, results, reps, rank_maps)


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
    pil = load_image(image)
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


