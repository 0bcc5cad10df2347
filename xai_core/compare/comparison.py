"""What `compare_models` returns: `Comparison` (both models' predictions and, per method, a
`MethodComparison` of the two maps on the common grid) and `Comparison.verdict`, one line in words."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InvalidOptionError, UnknownNameError
from ..explain import Explanation
from ..localisation import energy
from .agreement import centre_of_mass

#: Spearman bands and their words (lower bounds, best first): >= 0.7 strongly, >= 0.4 moderately,
#: >= 0.1 weakly; below 0.1 (negative included) the maps do not agree at all.
AGREEMENT_BANDS = ((0.7, "strongly"), (0.4, "moderately"), (0.1, "weakly"))
#: A centre-of-mass shift under this share of the picture's side counts as "stayed in place".
STILL = 0.05


@dataclass(frozen=True)
class MethodComparison:
    """One method's two maps on the common grid. `map_a`, `map_b`: float32 [h, w] in [0, 1], None
    where the method does not apply to that model; `difference`: map_b - map_a, float32 in [-1, 1];
    `spearman`: rank correlation of the pixels (NaN where a map is constant); `top_iou`: IoU of each
    map's top 20% of pixels (NaN where a map is constant); the three None when a map is None, and
    `note` then says why in one sentence."""

    method: str
    title: str
    map_a: Optional[np.ndarray]
    map_b: Optional[np.ndarray]
    difference: Optional[np.ndarray]
    spearman: Optional[float]
    top_iou: Optional[float]
    note: Optional[str] = None


@dataclass(frozen=True)
class Comparison:
    """Two models asked the same question about one image. `top_a`, `top_b`: each model's five most
    probable classes ((index, label, probability), best first); `target_*`, `probability_*`: the class
    each model explains (the same label, unless target="own") and its probability; `image`: the part
    of the original both models see, uint8 [h, w, 3] on the common grid (the picture itself when both
    preprocess alike: `same_geometry`); `methods`: method id -> `MethodComparison`; `explanation_a`,
    `explanation_b`: each model's own `Explanation` (maps on its own picture); `notes`: sentences for
    people; `region`: (left, top, right, bottom) of the original image the common grid covers."""

    model_a: str
    model_b: str
    top_a: tuple
    top_b: tuple
    target_label_a: str
    target_label_b: str
    target_a: int
    target_b: int
    probability_a: float
    probability_b: float
    image: np.ndarray
    methods: dict[str, MethodComparison]
    explanation_a: Explanation
    explanation_b: Explanation
    notes: tuple[str, ...]
    same_geometry: bool
    region: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    def verdict(self, method: str, mask: Optional[np.ndarray] = None) -> str:
        """One line in words from `method`'s numbers: how well the maps agree (`AGREEMENT_BANDS`),
        then, with `mask` (bool [h, w] on the common grid: the object), the share of each map's mass
        on the object (`localisation.energy`), else where model B's mass moved (centre of mass).
        Raises `UnknownNameError` for a method not compared, `InvalidOptionError` for a mask of
        another shape."""
        if method not in self.methods:
            raise UnknownNameError(f"{method!r} was not compared; choose one of: {', '.join(self.methods)}.")
        return verdict(self.methods[method], mask)


def agreement_words(rho: float) -> str:
    """The words for a Spearman correlation: "agree strongly", ..., "do not agree at all" (the band of
    the value shown, rounded to 2 decimals, so 0.698 shown as 0.70 agrees strongly)."""
    for bound, word in AGREEMENT_BANDS:
        if round(rho, 2) >= bound:
            return f"agree {word}"
    return "do not agree at all"


def verdict(compared: MethodComparison, mask: Optional[np.ndarray] = None) -> str:
    """`Comparison.verdict` for one `MethodComparison` (a pure function of its numbers and maps)."""
    title = compared.title
    if compared.map_a is None or compared.map_b is None:
        return compared.note or f"{title} ran on one model only, so there is nothing to compare."
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != compared.map_a.shape:
            raise InvalidOptionError(f"The object mask must cover the common grid, {compared.map_a.shape[1]} x "
                                     f"{compared.map_a.shape[0]} pixels, not {mask.shape[1]} x {mask.shape[0]}.")
    rho = compared.spearman
    if rho is None or math.isnan(rho):
        head = f"{title}'s maps cannot be ranked against each other (a map is constant, so Spearman is undefined)"
    else:
        head = f"{title}'s maps {agreement_words(rho)} (Spearman {rho:.2f})"
    where = _on_object(compared, mask) if mask is not None else _moved(compared)
    return f"{head}; {where}."


def _on_object(compared: MethodComparison, mask: np.ndarray) -> str:
    share_a, share_b = energy(compared.map_a, mask), energy(compared.map_b, mask)
    if not mask.any():
        return "the object mask is empty, so nothing can be said about the object"
    if math.isnan(share_a) or math.isnan(share_b):
        return "a map is zero everywhere, so nothing can be said about the object"
    shares = f"model B puts {share_b:.0%} of its map on the object, model A {share_a:.0%}"
    if share_a < 0.5 <= share_b:
        return f"model B moved its attention from the background to the object ({shares})"
    if share_b < 0.5 <= share_a:
        return f"model B moved its attention from the object to the background ({shares})"
    return shares


def _moved(compared: MethodComparison) -> str:
    com_a, com_b = centre_of_mass(compared.map_a), centre_of_mass(compared.map_b)
    if com_a is None or com_b is None:
        return "a map is zero everywhere, so its mass has no place"
    dx, dy = com_b[0] - com_a[0], com_b[1] - com_a[1]
    if math.hypot(dx, dy) < STILL:
        return "model B's map stayed in place"
    ways = ([("right" if dx > 0 else "left")] if abs(dx) >= STILL / 2 else []) + \
           ([("down" if dy > 0 else "up")] if abs(dy) >= STILL / 2 else [])
    return f"model B's map moved {' and '.join(ways)} (its centre of mass by {math.hypot(dx, dy):.0%} of the picture)"


__all__ = ["AGREEMENT_BANDS", "Comparison", "MethodComparison", "STILL", "agreement_words", "verdict"]
