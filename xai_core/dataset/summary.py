"""summary.json: per method the score means with 95% bootstrap intervals and the paired win rates
against the random map (Wilson intervals), the seconds per image, and the accuracy where the inputs'
true labels are the model's classes.

Every figure is an entry {"mean", "low", "high", "n", "interval"}: "interval" is "bootstrap" (a mean,
95% percentile bootstrap) or "wilson" (a proportion, 95% Wilson score interval; its entry also
carries "k", the count of successes out of "n"); a score's mean also says how many images were
"not_scored" (no finite score: left out). Files with the same content (a copy, the same photo in two
folders: rows with the same `content_key`) count once in every mean and win rate ("n" counts distinct
contents; "duplicates" says how many files shared one). Nothing in it is NaN or infinite (JSON-safe)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from typing import Iterable, Optional, Sequence

import jsonschema
import numpy as np

from .. import versions
from ..errors import InvalidOptionError
from ..faithfulness import RANDOM
from ..methods import get_method
from ..predict import is_correct, label_key
from .settings import EVAL_SCORES, Settings

BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 2000, 0
#: The bootstrap draws its resample indices this many bytes at a time (int64), whatever the size.
BOOTSTRAP_CHUNK_BYTES = 16 * 2**20
#: The normal quantile of a two-sided 95% interval.
_Z95 = 1.959963984540054


def _finite(values: Iterable[Optional[float]]) -> np.ndarray:
    """`values` as float64, None, NaN and ±inf dropped."""
    if not isinstance(values, np.ndarray) or values.dtype == object:
        values = [np.nan if v is None else v for v in values]
    data = np.asarray(values, dtype=np.float64).ravel()
    return data[np.isfinite(data)]


def _resampled_means(data: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, k): the means of each column of `data` (n, k) over `resamples` bootstrap resamples
    of its rows, the same resamples for every column. The indices are drawn in chunks of about
    `BOOTSTRAP_CHUNK_BYTES`, row after row, so they are those of one (resamples, n) draw of the
    same seed; a resample's means are (its index counts) · data / n, one matrix product per chunk."""
    n, k = data.shape
    rng = np.random.default_rng(seed)
    per = int(min(resamples, max(1, BOOTSTRAP_CHUNK_BYTES // (8 * n))))
    counts = np.empty((per, n), dtype=np.float64)
    means = np.empty((resamples, k), dtype=np.float64)
    for start in range(0, resamples, per):
        size = min(per, resamples - start)
        indices = rng.integers(0, n, size=(size, n))
        for row in range(size):
            counts[row] = np.bincount(indices[row], minlength=n)
        means[start:start + size] = counts[:size] @ data / n
        del indices  # before the next chunk's are drawn
    return means


def _bootstrap_many(columns: Sequence[np.ndarray], resamples: int, seed: int) -> list[dict]:
    """`bootstrap_ci` of each of `columns` (finite values only). Columns with the same number of
    values share their resample indices (same n and seed: the same draw), so each distinct n is
    drawn once and all its columns resampled together."""
    entries: list[dict] = [{"mean": None, "low": None, "high": None, "n": 0} for _ in columns]
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, column in enumerate(columns):
        if column.size:
            by_size[column.size].append(i)
    for size, members in by_size.items():
        data = np.stack([columns[i] for i in members], axis=1)
        scale = _scale(data)
        low, high = np.percentile(_resampled_means(data / scale, resamples, seed), [2.5, 97.5], axis=0) * scale
        for j, i in enumerate(members):
            entries[i] = {"mean": float((columns[i] / scale).mean() * scale), "low": float(low[j]),
                          "high": float(high[j]), "n": int(size)}
    return entries


def _scale(data: np.ndarray) -> float:
    """What to divide `data` by before summing it: 1, or for values so large that sums of them could
    overflow, a power of two near the largest (exact, so the numbers do not change)."""
    peak = float(np.abs(data).max())
    return 1.0 if peak < 2.0 ** 512 else math.ldexp(1.0, math.frexp(peak)[1] - 1)


def bootstrap_ci(values: Iterable[Optional[float]], resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> dict:
    """Mean of `values` (None, NaN and ±inf dropped) with a 95% percentile-bootstrap interval:
    {"mean", "low", "high", "n"} (None for no values). Memory stays bounded at any size (the
    resamples are drawn in chunks); the numbers are those of one (resamples, n) draw."""
    return _bootstrap_many([_finite(values)], int(resamples), int(seed))[0]


def wilson_ci(k: int, n: int) -> dict:
    """The proportion `k` of `n` with its 95% Wilson score interval: {"mean", "low", "high", "k",
    "n", "interval": "wilson"} (mean, low and high None when n is 0). E.g. 6 of 6: [0.61, 1]."""
    k, n = int(k), int(n)
    if not 0 <= k <= n:
        raise ValueError(f"A proportion needs 0 <= k <= n, not {k} of {n}.")
    if n == 0:
        return {"mean": None, "low": None, "high": None, "k": 0, "n": 0, "interval": "wilson"}
    p, z2 = k / n, _Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return {"mean": p, "low": 0.0 if k == 0 else max(0.0, centre - half),
            "high": 1.0 if k == n else min(1.0, centre + half), "k": k, "n": n, "interval": "wilson"}


def _column(rows: Sequence[dict], name: str) -> np.ndarray:
    """Column `name` of `rows` as float64, None as NaN."""
    return np.array([r.get(name) for r in rows], dtype=np.float64)


def _distinct(rows: Sequence[dict], *also: str) -> list[dict]:
    """`rows` with each content once: the first row of each `content_key` (with `also`: of each
    (content_key, those columns)); a row without a content key (written before they were recorded)
    is its own."""
    seen: set = set()
    out = []
    for row in rows:
        key = row.get("content_key")
        if key is not None:
            key = (key, *(row.get(c) for c in also))
            if key in seen:
                continue
            seen.add(key)
        out.append(row)
    return out


def _duplicates(ok: Sequence[dict], accuracy: bool) -> dict:
    """summary.json's "duplicates": {"files": the explained files whose content another explained
    file shares, "contents": how many distinct contents those are}, and with any a "duplicates_note"
    for people (`accuracy`: whether the summary has one, for the note)."""
    counts = Counter(r["content_key"] for r in ok if r.get("content_key") is not None)
    shared = [n for n in counts.values() if n > 1]
    out: dict = {"duplicates": {"files": sum(shared), "contents": len(shared)}}
    if shared:
        also = ", the accuracy each content once per folder name" if accuracy else ""
        out["duplicates_note"] = (f"{sum(shared)} files have the same content as another ({len(shared)} distinct "
                                  f"content{'s' * (len(shared) != 1)}): the means, intervals and win rates count "
                                  f"each content once{also}")
    return out


def _accuracy(ok: Sequence[dict], categories: Optional[Sequence[str]]) -> dict:
    """summary.json's accuracy keys: "accuracy" (a Wilson entry) over the explained rows with a true
    label, and with `categories` only over those whose true label is one of the model's classes,
    plus "accuracy_note" and "true_labels" ({"distinct", "classes"}) saying how many labels matched.
    Each (content, true label) pair counts once: a copy in the same class folder adds nothing, the
    same photo in two class folders counts once under each label (two labelled examples, which
    cannot both be right unless the labels are the same class)."""
    labelled = _distinct([r for r in ok if r.get("true_label")], "true_label")
    if not labelled:
        return {}
    out: dict = {}
    if categories is not None:
        classes = {label_key(c) for c in categories}
        distinct = {r["true_label"] for r in labelled}
        matched = {t for t in distinct if label_key(t) in classes}
        out["true_labels"] = {"distinct": len(distinct), "classes": len(matched)}
        if not matched:
            out["accuracy_note"] = f"folder names are not the model's classes: 0 of {len(distinct)} match"
            return out
        labelled = [r for r in labelled if r["true_label"] in matched]
        images = f"{len(labelled)} image{'s' * (len(labelled) != 1)}"
        out["accuracy_note"] = (f"{len(matched)} of {len(distinct)} folder names are the model's classes; "
                                f"accuracy over their {images}")
    pairs = Counter((r.get("label"), r["true_label"]) for r in labelled)
    right = sum(count for (label, true), count in pairs.items() if is_correct(label, true))
    out["accuracy"] = wilson_ci(right, len(labelled))
    return out


def _win_rate(method: np.ndarray, random: np.ndarray, higher: bool) -> dict:
    """The share of rows where `method` scores better than `random` (ties are no win), over the rows
    where both are finite, as a Wilson entry."""
    both = np.isfinite(method) & np.isfinite(random)
    m, r = method[both], random[both]
    wins = int(np.count_nonzero(m > r if higher else m < r))
    return wilson_ci(wins, int(both.sum()))


def _json_safe(value):
    """`value` with every non-finite float replaced by None (summary.json never holds NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_json_safe(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_versions(rows: Sequence[dict]) -> dict:
    """{"results_version": the version this xai_core writes, "rows_by_results_version": {version:
    how many of `rows` it computed}} ("unrecorded": rows written before versions were recorded)."""
    counts = Counter(row.get("results_version") for row in rows)
    return {"results_version": versions.RESULTS_VERSION,
            "rows_by_results_version": {"unrecorded" if v is None else str(v): n
                                        for v, n in sorted(counts.items(), key=lambda vn: (vn[0] is None, vn[0] or 0))}}


def summarize(rows: Sequence[dict], settings: Settings, categories: Optional[Sequence[str]] = None) -> dict:
    """summary.json's content: counts, settings, the model's fingerprint (12 hex digits), the
    results version of this xai_core and how many explained rows each version computed
    (`results_versions`: a rerun keeps the rows of another version unless refreshed), the
    accuracy (see below), and per method its seconds per image and, with evaluation, each score's
    mean (bootstrap entry, with "not_scored": the explained images without a finite score, left out
    of the mean) and the paired win rate against the random map ("<score>_win_rate", a Wilson entry:
    the share of images where the method's score is better than the random map's, over the images
    where both have a finite score; a tie is no win). Every mean and win rate counts each content
    once (the first row of each `content_key`: a copy has the same results, it is not another
    image), and "duplicates" ({"files", "contents"}, with a "duplicates_note" when there are any)
    says how many explained files shared content with another; "files", "explained" and "refused"
    count files.

    Accuracy, with true labels: without `categories` (the model's labels) over every explained
    image with a true label; with them only over the images whose true label is one of the model's
    classes (compared as `predict.is_correct` does), and "accuracy_note" says how many labels
    matched; when none does there is no "accuracy", only the note. It counts each (content, true
    label) once: a copy in the same folder adds nothing, one in another class folder is another
    labelled example (see `_accuracy`). JSON-safe: no NaN or inf."""
    ok = [r for r in rows if r["error"] is None]
    summary: dict = {
        "files": len(rows), "explained": len(ok), "refused": len(rows) - len(ok),
        "fingerprint": str(settings.fingerprint)[:12], "settings": dataclasses.asdict(settings), "methods": {},
    }
    summary["target_label"] = next((r["target_label"] for r in ok), None) if settings.target is not None else None
    summary["seconds_per_image"] = None  # filled below, all means at once
    summary.update(_accuracy(ok, categories))
    summary.update(results_versions(ok))
    summary.update(_duplicates(ok, "accuracy" in summary))
    ok = _distinct(ok)  # each content once in the means and win rates
    means: list[tuple[dict, str, np.ndarray]] = [(summary, "seconds_per_image", _column(ok, "seconds"))]
    methods = list(settings.methods) + ([RANDOM] if settings.evaluate else [])
    scores = {m: {s: _column(ok, f"{m}_{s}") for s in EVAL_SCORES} for m in methods} if settings.evaluate else {}
    for method in methods:
        entry: dict = {"title": get_method(method).title if method != RANDOM else "Random map"}
        summary["methods"][method] = entry
        if method != RANDOM:
            entry["seconds"] = None  # filled below, all means at once
            means.append((entry, "seconds", _column(ok, f"{method}_seconds")))
        for score, higher in (EVAL_SCORES.items() if settings.evaluate else ()):
            entry[score] = None
            means.append((entry, score, scores[method][score]))
            if method != RANDOM:
                entry[f"{score}_win_rate"] = _win_rate(scores[method][score], scores[RANDOM][score], higher)
    finite = [values[np.isfinite(values)] for _, _, values in means]
    for (entry, key, values), ci, kept in zip(means, _bootstrap_many(finite, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
                                              finite):
        entry[key] = {**ci, "interval": "bootstrap"}
        if key in EVAL_SCORES:
            entry[key]["not_scored"] = int(values.size - kept.size)
    return _json_safe(summary)


_NUMBER, _COUNT = {"type": ["number", "null"]}, {"type": "integer", "minimum": 0}
#: A figure's entry: a value with its interval, or none (a mean of None).
_ENTRY = {"type": ["object", "null"], "properties": {"low": _NUMBER, "high": _NUMBER, "k": _COUNT, "n": _COUNT,
                                                     "not_scored": _COUNT, "interval": {"type": "string"}},
          "anyOf": [{"properties": {"mean": {"type": "null"}}},
                    {"properties": {"mean": {"type": "number"}, "low": {"type": "number"}, "high": {"type": "number"}},
                     "required": ["mean", "low", "high"]}]}
_STRINGS = {"type": "array", "items": {"type": "string"}}
#: A map's figures (a method, the random map, the centre prior): its title and entries.
_MAP = {"type": "object", "properties": {"title": {"type": "string"}}, "additionalProperties": _ENTRY}
_CONCEPT = {"type": "object", "required": ["index", "labels", "importance"], "properties": {
    "index": _COUNT, "importance": _NUMBER, "importance_low": _NUMBER, "importance_high": _NUMBER, "crops": _STRINGS,
    "labels": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"},
                                                                           "probability": {"type": "number"}}}}}}
#: A class's concepts (`concepts.dataset_concepts`): which class, how many images, the concepts, the areas.
_CLASS = {"type": "object", "required": ["kind", "label", "images", "folder", "concepts"], "properties": {
    "kind": {"enum": ["predicted", "true"]}, "label": {"type": "string"}, "index": _COUNT, "images": _COUNT,
    "folder": {"type": "string"}, "concepts": {"type": "array", "items": _CONCEPT},
    "fidelity": {"type": "object", "additionalProperties": _NUMBER}, "notes": _STRINGS}}
_CONCEPTS = {"type": "object", "required": ["k", "classes", "skipped"], "properties": {
    "k": _COUNT, "layer": {"type": "string"}, "min_images": _COUNT, "classes": {"type": "array", "items": _CLASS},
    "skipped": {"type": "object", "additionalProperties": _COUNT}, "missing": _COUNT, "notes": _STRINGS}}
#: The form of summary.json that readers (the Dataset page, the report) rely on: what `summarize` writes.
SUMMARY_SCHEMA = {
    "type": "object", "required": ["settings"],
    "properties": {
        "files": _COUNT, "explained": _COUNT, "refused": _COUNT, "fingerprint": {"type": "string"},
        "input": {"type": "string"}, "input_root": {"type": "string"}, "target_label": {"type": ["string", "null"]},
        "accuracy_note": {"type": "string", "minLength": 1}, "accuracy": _ENTRY, "seconds_per_image": _ENTRY,
        "true_labels": {"type": "object"}, "duplicates_note": {"type": "string", "minLength": 1},
        "duplicates": {"type": "object", "properties": {"files": _COUNT, "contents": _COUNT}},
        "settings": {"type": "object", "properties": {
            "model": {"type": "string"}, "methods": _STRINGS, "layers": _STRINGS, "target": {"type": ["integer", "null"]},
            "evaluate": {"type": "boolean"}, "steps": {"type": "integer"}}},
        "methods": {"type": "object", "additionalProperties": _MAP},
        "localisation": {"type": "object", "required": ["maps"], "properties": {  # with ground truth
            "ground_truth": {"type": "string"}, "note": {"type": "string"}, "counts_note": {"type": "string"},
            "counts": {"type": "object", "additionalProperties": _COUNT},
            "maps": {"type": "object", "additionalProperties": _MAP}}},
        "against": {"type": "object", "required": ["model", "methods"], "properties": {  # with a model B
            "model": {"type": "string"}, "fingerprint": {"type": "string"}, "grouped_by": {"type": "string"},
            "compared": _COUNT, "not_compared": _COUNT, "least_agreeing": _STRINGS,
            "accuracy_a": _ENTRY, "accuracy_b": _ENTRY, "accuracy_change": _ENTRY, "layers": _STRINGS,
            "faithfulness": {"type": "object", "additionalProperties": {  # with --eval: method -> score -> a, b, change
                "type": "object", "additionalProperties": {"type": "object", "additionalProperties": _ENTRY}}},
            "methods": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "title": {"type": "string"}, "spearman": _ENTRY, "top_iou": _ENTRY,
                "classes": {"type": "object", "additionalProperties": {
                    "type": "object", "additionalProperties": _ENTRY}}}}}}},
        "concepts": _CONCEPTS,  # with --concepts
    },
}


def check_summary(summary: object, name: str = "") -> dict:
    """`summary` (summary.json's content as read) if it has the form `summarize` writes (checked with
    jsonschema against `SUMMARY_SCHEMA`); raises `InvalidOptionError` with one sentence otherwise
    (`name`: the results folder's, for the sentence)."""
    try:
        jsonschema.validate(summary, SUMMARY_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "its top level"
        raise InvalidOptionError(f"The results folder {name + ' ' if name else ''}has a summary.json that is not "
                                 f"one the batch command writes (at {where}); run the batch command again.") from None
    return summary  # type: ignore[return-value]


__all__ = ["BOOTSTRAP_CHUNK_BYTES", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "SUMMARY_SCHEMA", "bootstrap_ci",
           "check_summary", "results_versions", "summarize", "wilson_ci"]
