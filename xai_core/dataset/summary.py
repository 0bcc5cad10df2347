"""summary.json: per method the score means with 95% bootstrap intervals and the paired win rates
against the random map, the seconds per image, and the accuracy where the inputs have true labels."""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np

from ..faithfulness import RANDOM
from ..methods import get_method
from ..predict import is_correct
from .settings import EVAL_SCORES, Settings

BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 2000, 0


def bootstrap_ci(values: Iterable[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """Mean of `values` (NaNs dropped) with a 95% percentile-bootstrap interval: {"mean", "low",
    "high", "n"} (None for no values)."""
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(data.mean()), "low": float(low), "high": float(high), "n": int(data.size)}


def summarize(rows: Sequence[dict], settings: Settings) -> dict:
    """summary.json's content: counts, settings, accuracy (with true labels), and per method its
    seconds per image and, with evaluation, each score's mean and 95% bootstrap interval and the
    paired win rate against the random map (the share of images where the method's score is
    better than the random map's on the same image, with its interval)."""
    ok = [r for r in rows if r["error"] is None]
    summary: dict = {
        "files": len(rows), "explained": len(ok), "refused": len(rows) - len(ok),
        "settings": dataclasses.asdict(settings), "methods": {},
    }
    summary["target_label"] = next((r["target_label"] for r in ok), None) if settings.target is not None else None
    summary["seconds_per_image"] = bootstrap_ci(r["seconds"] for r in ok)
    labelled = [r for r in ok if r.get("true_label")]
    if labelled:
        summary["accuracy"] = bootstrap_ci([float(is_correct(r.get("label"), r.get("true_label"))) for r in labelled])
    for method in list(settings.methods) + ([RANDOM] if settings.evaluate else []):
        entry: dict = {"title": get_method(method).title if method != RANDOM else "Random map"}
        if method != RANDOM:
            entry["seconds"] = bootstrap_ci(r[f"{method}_seconds"] for r in ok)
        if settings.evaluate:
            for score, higher in EVAL_SCORES.items():
                entry[score] = bootstrap_ci(r[f"{method}_{score}"] for r in ok)
                if method != RANDOM:
                    wins = [float((r[f"{method}_{score}"] > r[f"{RANDOM}_{score}"]) == higher
                                  and r[f"{method}_{score}"] != r[f"{RANDOM}_{score}"]) for r in ok]
                    entry[f"{score}_win_rate"] = bootstrap_ci(wins)
        summary["methods"][method] = entry
    return summary


__all__ = ["BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "bootstrap_ci", "summarize"]
