"""summary.json's "localisation" (a run with ground truth), summarised as the faithfulness scores
are (`summary.py`): per method and per baseline (the random map, the centre prior) the four scores'
means with 95% bootstrap intervals, and per method the paired win rates against both baselines
(Wilson intervals), each content once; and the counts, in one line, of the files without ground
truth, the ground truth without a file, and the objects left out (outside the crop, empty)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from ..faithfulness import RANDOM
from ..localisation import CENTRE
from ..methods import get_method
from .summary import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, _bootstrap_many, _column, _distinct, _json_safe, _win_rate
from .settings import LOCALISATION_SCORES, Settings

#: Said beside every localisation figure: what the centre-prior baseline is for.
CENTRE_NOTE = ("Objects sit near the centre of most photos: a map that does not beat the centre prior shows nothing "
               "about the model.")
#: How many names a count line gives before "and N more".
_NAMED = 3
_TITLES = {RANDOM: "Random map", CENTRE: "Centre prior"}
#: What the note of a row whose target a ground truth label named says (`localised.localisation_values`).
_LABELLED = "label names the class"


def unmatched_truths(keys: Iterable[str], paths: Iterable[str]) -> list[str]:
    """The ground truth entries (`keys`, relative paths) that name none of the input's `paths`
    (compared as `GroundTruths.find` does: suffixes ignored), in order."""
    stems = {PurePosixPath(Path(p).as_posix()).with_suffix("").as_posix() for p in paths}
    return [k for k in keys if PurePosixPath(k).with_suffix("").as_posix() not in stems]


def _named(count: int, names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMED]) + (f" and {count - _NAMED} more" if count > _NAMED else "")
    return f" ({shown})" if shown else ""


def localisation_counts(rows: Sequence[dict], unmatched: Sequence[str]) -> dict:
    """{"images": explained files with ground truth, "scored", "no_ground_truth" (explained files
    without), "unmatched" (ground truth entries naming no input file), "outside" (the crop cut the
    object away), "empty" (no object: an empty mask, every box refused), "unusable", "noted" (rows
    with a note: a scaled mask, a clipped box, a label), "labelled" (whose target a label named)}."""
    ok = [r for r in rows if r["error"] is None]
    states = [r.get("ground_truth") for r in ok]
    return {"images": sum(s is not None for s in states), "scored": states.count("scored"),
            "no_ground_truth": states.count(None), "unmatched": len(unmatched), "outside": states.count("outside"),
            "empty": states.count("empty"), "unusable": states.count("unusable"),
            "noted": sum(bool(r.get("ground_truth_note")) for r in ok),
            "labelled": sum(_LABELLED in (r.get("ground_truth_note") or "") for r in ok)}


def localisation_line(rows: Sequence[dict], unmatched: Sequence[str]) -> str:
    """One line for people: how many explained files were scored against ground truth, and the
    files without ground truth and the ground truth without a file, counted and the first few named,
    and the objects left out (never an error)."""
    counts = localisation_counts(rows, unmatched)
    ok = [r for r in rows if r["error"] is None]
    line = f"Ground truth: {counts['scored']} of {len(ok)} explained files scored"
    if counts["no_ground_truth"]:
        missing = [r["path"] for r in ok if r.get("ground_truth") is None]
        line += f"; {counts['no_ground_truth']} without ground truth{_named(counts['no_ground_truth'], missing)}"
    if unmatched:
        many = len(unmatched) != 1
        line += (f"; {len(unmatched)} ground truth entr{'ies name' if many else 'y names'} no input "
                 f"file{_named(len(unmatched), list(unmatched))}")
    for state, words in (("outside", "object outside the crop"), ("empty", "empty ground truth (no object)"),
                         ("unusable", "ground truth that could not be used")):
        if counts[state]:
            which = [r["path"] for r in ok if r.get("ground_truth") == state]
            line += f"; {counts[state]} left out: {words}{_named(counts[state], which)}"
    if counts["labelled"]:
        line += f"; {counts['labelled']} target{'s' * (counts['labelled'] != 1)} named by a ground truth label"
    if counts["noted"]:
        line += f"; {counts['noted']} with a note (see the ground_truth_note column)"
    return line + "."


def localisation_summary(rows: Sequence[dict], settings: Settings, unmatched: Sequence[str] = ()) -> dict:
    """summary.json's "localisation" block (see the module): {"ground_truth": the file's or folder's
    name, "note": `CENTRE_NOTE`, "counts" (`localisation_counts`), "counts_note"
    (`localisation_line`), "maps": {map: {"title", "<score>": bootstrap entry with "not_scored",
    and for a method "<score>_win_rate_random" and "<score>_win_rate_centre" (Wilson entries: the
    share of images where the method's score is higher than the baseline's; a tie is no win)}}}.
    JSON-safe."""
    scored = _distinct([r for r in rows if r["error"] is None and r.get("ground_truth") == "scored"])
    maps = list(settings.methods) + [RANDOM, CENTRE]
    values = {m: {s: _column(scored, f"{m}_{s}") for s in LOCALISATION_SCORES} for m in maps}
    block: dict = {"ground_truth": Path(str(settings.ground_truth)).name, "note": CENTRE_NOTE,
                   "counts": localisation_counts(rows, unmatched), "counts_note": localisation_line(rows, unmatched),
                   "maps": {}}
    means = []
    for name in maps:
        entry: dict = {"title": _TITLES.get(name) or get_method(name).title}
        block["maps"][name] = entry
        for score in LOCALISATION_SCORES:
            means.append((entry, score, values[name][score]))
            if name not in _TITLES:
                for baseline in (RANDOM, CENTRE):
                    entry[f"{score}_win_rate_{baseline}"] = _win_rate(values[name][score], values[baseline][score],
                                                                      True)
    finite = [v[np.isfinite(v)] for _, _, v in means]
    for (entry, score, v), ci, kept in zip(means, _bootstrap_many(finite, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED),
                                           finite):
        entry[score] = {**ci, "interval": "bootstrap", "not_scored": int(v.size - kept.size)}
    return _json_safe(block)


__all__ = ["CENTRE_NOTE", "localisation_counts", "localisation_line", "localisation_summary", "unmatched_truths"]
