"""Ground truth in dataset mode (`run`'s `ground_truth=`, the CLI's --ground-truth): each file's
ground truth found by its relative path (`GroundTruths.find`, suffix ignored), the class its box's
label names as that image's target, and the row's localisation columns (`localisation.localise`
of its explanation: each map and the two baselines, the four scores). Never an error: ground truth
that cannot be used leaves the row's scores empty and says why in its `ground_truth_note`."""

from __future__ import annotations

import functools
import hashlib
from typing import Optional, Sequence

from ..errors import InvalidGroundTruthError
from ..explain import Explanation
from ..localisation import GroundTruth, GroundTruths, localise, outline_text, read_ground_truth
from .settings import LOCALISATION_SCORES, Settings


@functools.lru_cache(maxsize=2)
def _read(path: str, digest: str) -> GroundTruths:
    """The ground truth of `path`, read once per content `digest` (each engine's process reads it)."""
    return read_ground_truth(path)


def ground_truths(settings: Settings) -> Optional[GroundTruths]:
    """The run's ground truth (None without): read once per process and content."""
    if not settings.localises:
        return None
    return _read(str(settings.ground_truth), str(settings.ground_truth_digest))


def truth_of(truths: Optional[GroundTruths], path: str) -> Optional[GroundTruth]:
    """The ground truth of the file at `path` (relative to the input), or None."""
    return None if truths is None else truths.find(path)


def with_truth(record: dict, truth: Optional[GroundTruth]) -> dict:
    """`record` whose `content_key` also names its ground truth: a copy of a photo with other ground
    truth (another path) is scored against its own, never given another file's scores."""
    if truth is None or record.get("content_key") is None:
        return record
    tag = hashlib.sha256(repr(truth).encode()).hexdigest()[:8]
    return {**record, "content_key": f"{record['content_key']}-{tag}"}


def image_targets(categories: Sequence[str], truths: Optional[GroundTruths], records: Sequence[dict],
                  target: Optional[int]):
    """`explain_batch`'s targets for `records`: `target` (the run's) without ground truth, else per
    image the class its first label that is one of `categories` (case-insensitive) names, else
    `target`."""
    if truths is None:
        return target
    classes: dict[str, int] = {}
    for index, label in enumerate(categories):
        classes.setdefault(label.strip().lower(), index)
    chosen = []
    for record in records:
        truth = truth_of(truths, record["source"].path)
        labels = truth.labels if truth is not None else ()
        chosen.append(next((classes[k] for k in (lb.strip().lower() for lb in labels) if k in classes), target))
    return chosen


def localisation_values(settings: Settings, truth: Optional[GroundTruth], explanation: Explanation) -> dict:
    """The row's localisation columns: {} without ground truth; else `ground_truth` (scored,
    outside, empty or unusable), `ground_truth_note` (the sentences of `localise`, and one when a
    label named the target; or None) and, when scored, `ground_truth_outline` (the aligned object's
    `localisation.outline_text`) and `{map}_{score}` for each method and baseline (NaN where undefined)."""
    if truth is None:
        return {}
    try:
        found = localise(explanation, truth=truth)
    except InvalidGroundTruthError as err:  # a mask that is not an image, RLE without pycocotools
        return {"ground_truth": "unusable", "ground_truth_note": str(err)}
    state = "outside" if found.outside else "scored" if found.mask.any() else "empty"
    notes = list(found.notes)
    named = str(explanation.target_label).strip().lower()
    if any(label.strip().lower() == named for label in truth.labels):  # `image_targets` chose it
        notes.append(f"The ground truth's label names the class {explanation.target_label}, so it is the target.")
    values: dict = {"ground_truth": state, "ground_truth_note": " ".join(notes) or None}
    if state == "scored":
        values["ground_truth_outline"] = outline_text(found.mask)  # what the galleries draw over the maps
        for name, scores in found.scores.items():
            values.update({f"{name}_{score}": float(getattr(scores, score)) for score in LOCALISATION_SCORES})
    return values


__all__ = ["ground_truths", "image_targets", "localisation_values", "truth_of", "with_truth"]
