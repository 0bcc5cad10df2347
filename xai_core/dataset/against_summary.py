"""summary.json's "against" block (a run against a model B, `against.py`): model B's name and
fingerprint; per method the mean Spearman and mean top-20% IoU of the two models' maps with 95%
bootstrap intervals, overall and per class; each model's accuracy (Wilson intervals) and its paired
change where folders are classes; the keys of the least-agreeing images; model B's target layers;
and with evaluation each method's faithfulness scores of both models' maps with the paired change
B − A ("faithfulness"). The entries are
`summary.py`'s, and each content counts once, as there."""

from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

import numpy as np

from ..methods import get_method
from ..report import mean_agreement
from .settings import EVAL_SCORES, Settings
from .summary import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_ci, wilson_ci
from .summary import _bootstrap_many, _distinct, _json_safe  # this package's own helpers

#: How many keys "least_agreeing" lists at most.
LEAST_AGREEING = 50
_SCORES = ("spearman", "top_iou")


def image_class(row: dict) -> Optional[str]:
    """The class a row counts under in the per-class figures: its true label where its folder is
    one of model A's classes (`correct` is then not null), else model A's predicted label."""
    return row.get("true_label") if row.get("correct") is not None else row.get("label")


def against_summary(rows: Sequence[dict], settings: Settings) -> dict:
    """The "against" block of summary.json for `rows` (every file's row; the explained ones count):
    {"model", "fingerprint" (12 hex digits), "grouped_by", "compared" (explained images with model B's
    maps), "not_compared" (those without: model B does not know the class, see each row's b_note),
    "methods": {method: {"title", "spearman", "top_iou" (bootstrap entries), "classes": {class:
    {"spearman", "top_iou"}}}}, "accuracy_a", "accuracy_b" (Wilson entries over the images whose
    true label is that model's class), "accuracy_change" (B minus A over the images both can be
    right or wrong on, a paired bootstrap entry), "least_agreeing" (up to `LEAST_AGREEING` keys,
    lowest mean Spearman over the methods first; images with none left out), "layers" (model B's
    target layers), and with evaluation "faithfulness" (`faithfulness_change`)}. JSON-safe."""
    ok = [r for r in rows if r["error"] is None]
    block: dict = {"model": settings.against, "fingerprint": str(settings.against_fingerprint)[:12],
                   "grouped_by": "the true class where folders are model A's classes, else model A's predicted class",
                   "compared": sum(r.get("b_note") is None for r in ok),
                   "not_compared": sum(r.get("b_note") is not None for r in ok), "methods": {},
                   "layers": list(settings.against_layers)}
    block.update(_accuracies(ok))
    distinct = _distinct(ok)
    classes: dict[str, list[dict]] = defaultdict(list)
    for row in distinct:
        classes[str(image_class(row))].append(row)
    wanted: list[tuple[dict, str, np.ndarray]] = []
    for method in settings.methods:
        entry: dict = {"title": get_method(method).title, "classes": {}}
        block["methods"][method] = entry
        for score in _SCORES:
            wanted.append((entry, score, _values(distinct, f"{method}_{score}")))
        for name in sorted(classes):
            entry["classes"][name] = {}
            for score in _SCORES:
                wanted.append((entry["classes"][name], score, _values(classes[name], f"{method}_{score}")))
    entries = _bootstrap_many([values for _, _, values in wanted], BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
    for (target, score, _), ci in zip(wanted, entries):
        target[score] = {**ci, "interval": "bootstrap"}
    if settings.evaluate:
        block["faithfulness"] = faithfulness_change(distinct, settings.methods)
    means = [(mean_agreement(r, settings.methods), str(r["key"])) for r in ok]
    block["least_agreeing"] = [key for mean, key in sorted((m, k) for m, k in means if m is not None)][:LEAST_AGREEING]
    return _json_safe(block)


def faithfulness_change(rows: Sequence[dict], methods: Sequence[str]) -> dict:
    """{method: {score: {"a", "b", "change"}}} for each of `EVAL_SCORES`: model A's mean score of its
    maps, model B's of its own, and the paired change B − A, each a bootstrap entry (`summary.py`'s
    `bootstrap_ci`, the same resamples for the three) over the `rows` where both models' scores are
    finite (rows without a comparison, `b_note`, have none of model B's; each content once: give
    distinct rows), so the change's mean is B's mean minus A's."""
    out: dict = {}
    wanted: list[tuple[dict, str, np.ndarray]] = []
    for method in methods:
        out[method] = {}
        for score in EVAL_SCORES:
            a, b = (_column(rows, name) for name in (f"{method}_{score}", f"b_{method}_{score}"))
            both = np.isfinite(a) & np.isfinite(b)
            out[method][score] = {}
            wanted += [(out[method][score], "a", a[both]), (out[method][score], "b", b[both]),
                       (out[method][score], "change", b[both] - a[both])]
    entries = _bootstrap_many([values for _, _, values in wanted], BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
    for (target, name, _), ci in zip(wanted, entries):
        target[name] = {**ci, "interval": "bootstrap"}
    return out


def _column(rows: Sequence[dict], name: str) -> np.ndarray:
    return np.array([np.nan if r.get(name) is None else r[name] for r in rows], dtype=np.float64)


def _values(rows: Sequence[dict], name: str) -> np.ndarray:
    data = _column(rows, name)
    return data[np.isfinite(data)]


def _accuracies(ok: Sequence[dict]) -> dict:
    """Each model's accuracy and the paired change, over the images whose true label is that
    model's class (each (content, true label) once, as `summary.py`'s accuracy); {} without any."""
    labelled = _distinct([r for r in ok if r.get("true_label")], "true_label")
    out: dict = {}
    for key, column in (("accuracy_a", "correct"), ("accuracy_b", "b_correct")):
        known = [bool(r[column]) for r in labelled if r.get(column) is not None]
        if known:
            out[key] = wilson_ci(sum(known), len(known))
    both = [int(bool(r["b_correct"])) - int(bool(r["correct"])) for r in labelled
            if r.get("correct") is not None and r.get("b_correct") is not None]
    if both:
        out["accuracy_change"] = {**bootstrap_ci(both), "interval": "bootstrap"}
    return out


__all__ = ["LEAST_AGREEING", "against_summary", "faithfulness_change", "image_class"]
