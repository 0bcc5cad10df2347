"""What `evaluate` returns (`Evaluation`, `Agreement`), how partial results are assembled as the
scores come in (`Results`), and the evaluation's notes and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ..errors import Cancelled
from .curves import BLUR_SIGMA
from .baseline import RANDOM_SEED
from .sanity import SANITY_THRESHOLD, TOP_FRACTION

#: Every score of an `Evaluation`, with whether a higher value is better.
HIGHER_IS_BETTER = {"deletion_auc": False, "insertion_auc": True, "road_morf": False, "road_lerf": True,
                    "road_combined": True, "confidence_change": True}


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
            "fractions": plain(self.fractions),
            "scores": {m: {k: plain(v) for k, v in s.items()} for m, s in self.scores.items()},
            "same_as": dict(self.same_as),
            "agreement": {
                "methods": list(self.agreement.methods),
                "spearman": plain(self.agreement.spearman),
                "iou": plain(self.agreement.iou),
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
        return tuple(evaluation_notes(self.same_as, failed, lambda m: names.get(m, m)))


class Results:
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
        result = Evaluation(scores=scores, timings=dict(self.timings), notes=tuple(evaluation_notes(self.same_as, failed, str)),
                            same_as=dict(self.same_as), pending=pending, **self.fields)
        if self.on_partial is not None:
            self.on_partial(result)
        return result


def evaluation_settings(steps: int, road_percentiles) -> dict:
    """`Evaluation.settings`: how the scores were made, in words and numbers."""
    return {
        "steps": steps,
        "deletion_substrate": "zero in the model's normalised space (the normalisation's mean colour)",
        "insertion_substrate": f"Gaussian blur, sigma {BLUR_SIGMA:g} x the image side",
        "road_percentiles": list(road_percentiles),
        "random_map": f"uniform noise on a coarse grid, upsampled (seed {RANDOM_SEED})",
        "sanity_threshold": SANITY_THRESHOLD,
        "agreement_top_fraction": TOP_FRACTION,
    }


def evaluation_notes(same_as: dict[str, str], failed: list[str], name: Callable[[str], str]) -> list[str]:
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


class Ticker:
    """Counts units of work and reports them to `progress(stage, done, total)`."""

    def __init__(self, progress, total: int) -> None:
        self.progress, self.total, self.done, self.stage = progress, total, 0, ""

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None and self.progress(self.stage, min(self.done, self.total), self.total) is False:
            raise Cancelled("Evaluation cancelled.")


def plain(value):
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


__all__ = ["Agreement", "Evaluation", "HIGHER_IS_BETTER", "Results", "Ticker", "evaluation_notes",
           "evaluation_settings", "plain"]
