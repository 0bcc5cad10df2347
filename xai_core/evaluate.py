"""`evaluate`: which explanation can be trusted? Faithfulness scores (deletion, insertion, ROAD,
confidence change) next to a random-map baseline, the model-randomization sanity check, and the
agreement between the methods' maps."""

from __future__ import annotations

import contextlib
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from . import _faithfulness as faith
from . import _timing
from ._sanity import SANITY_THRESHOLD, TOP_FRACTION, agreement_matrices, sanity_scores
from .errors import Cancelled, InvalidImageError, InvalidOptionError
from .explain import Explanation
from .images import ImageSource, load_image
from .methods import GAP_IDENTICAL, estimate_cost, list_methods
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
# module -> seconds per scored image (deletion/insertion and ROAD) of its last evaluation here
_OBSERVED_S: "weakref.WeakKeyDictionary[torch.nn.Module, float]" = weakref.WeakKeyDictionary()


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
    map that is not a registered method's). In a partial result (`pending` not empty) a score not
    computed yet is absent from its dict (a map still waiting for its curves has an empty dict)."""

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
    #: Maps equal to an earlier one within `SAME_MAP_TOLERANCE`, scored once: {method: scored as}.
    same_as: dict[str, str] = field(default_factory=dict)
    #: Stages still to come in a partial result handed to `evaluate`'s `on_partial`, in order:
    #: "deletion_insertion" (some maps), "road", "sanity". Empty in the complete result.
    pending: tuple[str, ...] = ()

    def summary(self) -> dict:
        """The scores as plain JSON-ready Python (lists, floats, None for NaN)."""
        return {
            "model": self.model,
            "target": {"index": self.target, "label": self.target_label, "score": self.target_probability},
            "layers": list(self.layers),
            "fractions": _plain(self.fractions),
            "scores": {m: {k: _plain(v) for k, v in s.items()} for m, s in self.scores.items()},
            "same_as": dict(self.same_as),
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

    def named_notes(self, names: Mapping[str, str]) -> tuple[str, ...]:
        """`notes` with each method called `names[method]` (e.g. its title) instead of its id."""
        failed = [m for m, s in self.scores.items() if s.get("sanity_passed") is False]
        return tuple(_notes(self.same_as, failed, lambda m: names.get(m, m)))


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
    other map's (ROAD's imputation runs meanwhile in background threads), ROAD, the sanity check.
    `on_partial(e)` gets the `Evaluation` so far after each of these (`e.pending` names the stages
    to come; the last call gets the complete result, the one returned). `progress(stage, done,
    total)` is called after each unit of work; returning False cancels. `batch_size` images go in
    one forward (default: 4 on CPU, where small batches are faster per image, 32 on GPU). Raises
    `InvalidOptionError` (steps out of 2..100, or an explanation of another model or image) and
    `Cancelled`. Every forward runs in the calling thread, holding `handle.lock` for one batch at
    a time."""
    started = time.perf_counter()
    batch_size = batch_size or faith.default_batch_size(handle)
    prepared = _prepare(handle, image, explanation, steps, road_percentiles, on_partial)
    x, methods, maps, rank_of = prepared.x, prepared.methods, prepared.maps, prepared.rank_of
    timings, results, reps, rank_maps = prepared.timings, prepared.results, prepared.reps, prepared.rank_maps
    chunks = _chunks(results.rep_of[RANDOM], results.rep_of[methods[0]], reps)
    checked = [m for m in methods if m in list_methods()] if sanity else []
    total = sum(faith.batch_count(len(c), steps, len(c), batch_size, ends=i == 0) for i, c in enumerate(chunks))
    tick = _Ticker(progress, total + 2 * len(road_percentiles) + bool(checked))
    later = ("road",) + (("sanity",) if checked else ())
    scorer = faith.Scorer(handle, x, explanation.target, batch_size)
    with contextlib.ExitStack() as stack:
        with _timing.timer(handle.device, timings, "deletion_insertion"):
            tick.stage, ends = "insert/delete", None
            for i, chunk in enumerate(chunks):
                # ROAD imputes in background threads while the maps are scored: from the second map on,
                # so that the first scores get both cores (from the start when there is one chunk only)
                if i == min(1, len(chunks) - 1):
                    road = stack.enter_context(faith.RoadJobs(scorer.x, rank_maps, road_percentiles))
                ends = _curves(scorer, chunk, maps, rank_of, steps, tick, ends, results.rows)
                results.report(("deletion_insertion",) * (i < len(chunks) - 1) + later)
        with _timing.timer(handle.device, timings, "road"):
            tick.stage = "ROAD"
            for rep, *values in zip(reps, *road.scores(scorer, tick)):
                results.rows[rep].update(zip(("road_morf", "road_lerf", "road_combined"), map(float, values)))
    _OBSERVED_S[handle.module] = (timings["deletion_insertion"] + timings["road"]) / _image_count(
        len(reps), steps, road_percentiles)
    if checked:
        results.report(("sanity",))
        with _timing.timer(handle.device, timings, "sanity"):
            tick.stage = "sanity check"
            relay = None if progress is None else (lambda *_: tick.progress(tick.stage, tick.done, tick.total))
            for method, rho_m in sanity_scores(handle, image, explanation, checked, relay).items():
                results.sanity[method].update(sanity_spearman=rho_m, sanity_passed=bool(rho_m <= SANITY_THRESHOLD))
            tick()
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
    the device; ROAD's imputations run in background threads while the curves are scored. Images
    go `group` at a time (bounding the imputed images held). `progress("images", done, total)`
    after each group; returning False cancels. Raises `InvalidOptionError` (naming the image),
    `InvalidImageError`, `Cancelled`."""
    images, explanations = list(images), list(explanations)
    if len(images) != len(explanations):
        raise InvalidOptionError(f"Give one explanation per image: {len(images)} images, {len(explanations)} explanations.")
    if not isinstance(group, int) or group < 1:
        raise InvalidOptionError(f"group must be a whole number of images, 1 or more, not {group!r}.")
    batch_size = batch_size or faith.default_batch_size(handle)
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
    bases = faith.probabilities(handle, torch.cat([p.x for p in prepared]), targets)
    tick = lambda: None  # noqa: E731  (progress is per group)
    timings: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        with _timing.timer(handle.device, timings, "deletion_insertion"):
            roads = [stack.enter_context(faith.RoadJobs(p.x, p.rank_maps, road_percentiles)) for p in prepared]
            items, spans = [], []
            for p, target in zip(prepared, targets):
                extra = faith.confidence_images(p.x, np.stack([p.maps[rep] for rep in p.reps]))
                makers = faith.curve_makers(p.x, [p.rank_of[rep] for rep in p.reps], steps, extra, True)
                spans.append(slice(len(items), len(items) + len(makers)))
                items += [(make, target) for make in makers]
            flat = faith.score_queue(handle, items, batch_size, tick)
            for p, base, span in zip(prepared, bases, spans):
                deletion, insertion, multiplied, _ = faith.assemble_curves(flat[span], len(p.reps), steps, float(base), None)
                _curve_rows(p.results.rows, p.reps, deletion, insertion, multiplied, float(base), steps)
        with _timing.timer(handle.device, timings, "road"):
            items, spans = [], []
            for road, target in zip(roads, targets):
                makers = road.makers(handle.device)
                spans.append(slice(len(items), len(items) + len(makers)))
                items += [(make, target) for make in makers]
            flat = faith.score_queue(handle, items, batch_size, tick)
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
    results: "_Results"
    reps: list
    rank_maps: np.ndarray


def _prepare(handle, image, explanation, steps, road_percentiles, on_partial) -> _Prepared:
    """What scoring `explanation`'s maps needs: the model's input, the maps with the random one,
    their ranks, the groups of equal maps (`_Results`) and their representatives' rank maps."""
    x = _check(handle, image, explanation, steps, road_percentiles)
    methods = list(explanation.maps)
    maps = {m: np.float32(explanation.maps[m]) for m in methods}
    maps[RANDOM] = random_map(tuple(x.shape[-2:]))
    rank_of = {m: faith.ranks(maps[m]) for m in maps}
    timings: dict[str, float] = {}
    rho, iou = agreement_matrices([maps[m] for m in methods], [rank_of[m] for m in methods])
    results = _Results(
        _same_map_groups(maps), methods + [RANDOM], timings, on_partial,
        agreement=Agreement(tuple(methods), rho, iou, _identical_pairs(handle, explanation)),
        fractions=np.linspace(0.0, 1.0, steps + 1), target=explanation.target, target_label=explanation.target_label,
        target_probability=explanation.target_probability, model=explanation.model, layers=explanation.layers,
        settings=_settings(steps, road_percentiles),
    )
    reps = list(results.rows)  # the methods' order, then the random map's (ROAD's noise follows it)
    rank_maps = np.stack([faith.rank_map(rank_of[rep], maps[rep].shape) for rep in reps])
    return _Prepared(x, methods, maps, rank_of, timings, results, reps, rank_maps)


def estimate_evaluation_seconds(handle: ModelHandle, explanation: Explanation, *, steps: int = 20,
                                road_percentiles: tuple[int, ...] = ROAD_PERCENTILES,
                                sanity: bool = True) -> float:
    """About how many seconds `evaluate(handle, image, explanation, steps=steps, sanity=sanity)`
    takes here: one forward per image (the deletion/insertion steps, the confidence change and
    ROAD's images, for each distinct map and the random one) at the seconds per image of the last
    evaluation with this model, or before any, at the scoring forward's timed speed times
    `_ROAD_SHARE` (ROAD's imputation shares the CPU); with `sanity`, plus the cost model's
    estimate of recomputing the registered methods' maps."""
    shape = tuple(np.shape(next(iter(explanation.maps.values()))))
    maps = {m: np.float32(cam) for m, cam in explanation.maps.items()}
    maps[RANDOM] = random_map(shape)
    per_image = _OBSERVED_S.get(handle.module) or faith.forward_seconds(handle) * _ROAD_SHARE
    seconds = _image_count(len(_same_map_groups(maps)), steps, road_percentiles) * per_image
    checked = [m for m in explanation.maps if m in list_methods()] if sanity else []
    if checked:
        seconds += sum(c.seconds for c in estimate_cost(handle, checked, list(explanation.layers)).values())
    return seconds


def _image_count(distinct_maps: int, steps: int, road_percentiles) -> int:
    """Images `evaluate` scores: the 2 shared end images, then per distinct map (the random one
    included) its deletion and insertion steps, its confidence change image and ROAD's images."""
    return 2 + distinct_maps * (2 * (steps - 1) + 1 + 2 * len(road_percentiles))


class _Results:
    """The scores so far: `rows` per representative of each group of equal maps, `sanity` per
    method; `report` makes them an `Evaluation` and hands it to `on_partial`."""

    def __init__(self, groups: dict[str, list[str]], order: list[str], timings: dict, on_partial, **fields) -> None:
        self.rep_of = {m: rep for rep, members in groups.items() for m in members}
        self.rows: dict[str, dict] = {rep: {} for rep in groups}
        self.sanity = {m: dict(sanity_spearman=None, sanity_passed=None) for m in order}
        self.same_as = {m: rep for m, rep in self.rep_of.items() if m != rep}
        self.order, self.timings, self.on_partial, self.fields = order, timings, on_partial, fields

    def report(self, pending: tuple[str, ...]) -> Evaluation:
        scores = {}
        for method in self.order:
            row = self.rows[self.rep_of[method]]
            scores[method] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in row.items()}
            if "sanity" not in pending and "deletion_auc" in row:
                scores[method].update(self.sanity[method])
        failed = [m for m in self.order if scores[m].get("sanity_passed") is False]
        result = Evaluation(scores=scores, timings=dict(self.timings), notes=tuple(_notes(self.same_as, failed, str)),
                            same_as=dict(self.same_as), pending=pending, **self.fields)
        if self.on_partial is not None:
            self.on_partial(result)
        return result


def _chunks(random_rep: str, first_rep: str, reps: list[str]) -> list[list[str]]:
    """The representative maps in scoring order: the random one's and the first method's together
    (the first scores worth showing), then each other map alone."""
    first = list(dict.fromkeys([random_rep, first_rep]))
    return [first] + [[rep] for rep in reps if rep not in first]


def _curves(scorer, chunk: list[str], maps: dict, rank_of: dict, steps: int, tick, ends, rows: dict):
    """Deletion/insertion curves and AUCs and the confidence change of the maps in `chunk`, into
    `rows`; returns the end images' probabilities (scored once, with the first chunk)."""
    extra = faith.confidence_images(scorer.x, np.stack([maps[rep] for rep in chunk]))  # scored in the same batches
    deletion, insertion, multiplied, ends = faith.deletion_insertion(
        scorer, [rank_of[rep] for rep in chunk], steps, tick, extra, ends)
    _curve_rows(rows, chunk, deletion, insertion, multiplied, scorer.base, steps)
    return ends


def _curve_rows(rows: dict, chunk: list[str], deletion, insertion, multiplied, base: float, steps: int) -> None:
    """Each map's deletion/insertion curves and AUCs and its confidence change, into `rows`."""
    fractions = np.linspace(0.0, 1.0, steps + 1)
    for i, rep in enumerate(chunk):
        rows[rep].update(
            deletion_auc=float(np.trapezoid(deletion[i], fractions)),
            insertion_auc=float(np.trapezoid(insertion[i], fractions)),
            deletion_curve=deletion[i].copy(), insertion_curve=insertion[i].copy(),
            confidence_change=float(multiplied[i] - base),
        )


def _settings(steps: int, road_percentiles) -> dict:
    return {
        "steps": steps,
        "deletion_substrate": "zero in the model's normalised space (the normalisation's mean colour)",
        "insertion_substrate": f"Gaussian blur, sigma {faith.BLUR_SIGMA:g} x the image side",
        "road_percentiles": list(road_percentiles),
        "random_map": f"uniform noise on a coarse grid, upsampled (seed {RANDOM_SEED})",
        "sanity_threshold": SANITY_THRESHOLD,
        "agreement_top_fraction": TOP_FRACTION,
    }


def _notes(same_as: dict[str, str], failed: list[str], name: Callable[[str], str]) -> list[str]:
    """The notes of an evaluation: maps scored as another's, maps that fail the sanity check; each
    method called `name(method)`."""
    scored_as: dict[str, list[str]] = {}
    for method, rep in same_as.items():
        scored_as.setdefault(rep, []).append(method)
    notes = [f"{', '.join(map(name, members))} scored as {name(rep)}: their maps are equal."
             for rep, members in scored_as.items()]
    if failed:
        verb, pronoun = ("changes", "it fails") if len(failed) == 1 else ("change", "they fail")
        notes.append(f"{', '.join(map(name, failed))} barely {verb} when the target layer and the layers after it "
                     f"are randomized (Spearman > {SANITY_THRESHOLD:g}): {pronoun} the sanity check of Adebayo et "
                     "al. 2018.")
    return notes


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


def _identical_pairs(handle: ModelHandle, explanation: Explanation) -> tuple[tuple[str, str, str], ...]:
    same = [m for m in GAP_IDENTICAL if m in explanation.maps]
    if len(same) < 2 or not all(handle.is_gap_linear(n) for n in explanation.layers):
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
