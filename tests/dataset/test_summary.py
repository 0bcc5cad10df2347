"""summary.json's statistics (`xai_core.dataset.summary`): Wilson intervals for proportions, NaN scores
left out and counted, JSON without NaN, accuracy only over folder names that are the model's
classes, and a bootstrap drawn in chunks (bounded memory) that gives the one-shot draw's numbers."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest

from xai_core.dataset import EVAL_SCORES, Settings, bootstrap_ci, columns, summarize
from xai_core.dataset import summary as S
from xai_core.models.zoo import imagenet_categories
from xai_core.predict import is_correct

FINGERPRINT = "0123456789abcdef" * 4
SETTINGS = Settings("m", FINGERPRINT, ("gradcam",), None, ("stage7",), True, 4)
NAN, INF = float("nan"), float("inf")


def _row(i: int, label: str = "tabby", true_label=None, **scores) -> dict:
    """A row of results.parquet for Grad-CAM with evaluation: scores 0.5 unless given."""
    row = dict.fromkeys(columns(["gradcam"], True))
    row.update(path=f"{i}.png", key=f"k{i}", label=label, probability=0.9, target=1, true_label=true_label,
               seconds=0.05, gradcam_seconds=0.01)
    row.update({f"{m}_{s}": 0.5 for m in ("gradcam", "random") for s in EVAL_SCORES})
    row.update(scores)
    return row


def _one_shot(values, resamples=S.BOOTSTRAP_RESAMPLES, seed=S.BOOTSTRAP_SEED) -> dict:
    """The bootstrap as it was written first: one (resamples, n) index array."""
    data = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(data.mean()), "low": float(low), "high": float(high), "n": int(data.size)}


def test_a_win_rate_is_a_proportion_with_a_wilson_interval_and_its_count() -> None:
    # 6 images: Grad-CAM beats the random map on deletion (lower) every time and on insertion never
    rows = [_row(i, gradcam_deletion_auc=0.1, random_deletion_auc=0.3, gradcam_insertion_auc=0.2,
                 random_insertion_auc=0.7) for i in range(6)]
    entry = summarize(rows, SETTINGS)["methods"]["gradcam"]
    won = entry["deletion_auc_win_rate"]
    assert (won["interval"], won["k"], won["n"], won["mean"]) == ("wilson", 6, 6, 1.0)
    assert won["low"] == pytest.approx(0.6097, abs=1e-3) and won["high"] == 1.0
    lost = entry["insertion_auc_win_rate"]
    assert (lost["k"], lost["n"], lost["mean"], lost["low"]) == (0, 6, 0.0, 0.0)
    assert lost["high"] == pytest.approx(0.3903, abs=1e-3)
    tied = entry["road_combined_win_rate"]  # 0.5 against 0.5: a tie is no win
    assert (tied["k"], tied["n"]) == (0, 6)
    assert entry["deletion_auc"]["interval"] == "bootstrap" and entry["seconds"]["interval"] == "bootstrap"
    half = S.wilson_ci(5, 10)  # the textbook value for 5 of 10: [0.237, 0.763]
    assert (half["low"], half["high"]) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        S.wilson_ci(7, 6)


def test_nan_scores_are_left_out_of_means_and_win_rates_and_counted() -> None:
    rows = [_row(0, gradcam_deletion_auc=0.1, random_deletion_auc=0.3),
            _row(1, gradcam_deletion_auc=0.4, random_deletion_auc=0.3),
            _row(2, gradcam_deletion_auc=NAN, random_deletion_auc=0.3),  # lower is better: NaN is no win
            _row(3, gradcam_deletion_auc=None, random_deletion_auc=0.3),
            _row(4, gradcam_deletion_auc=0.2, random_deletion_auc=NAN),  # no pair: left out of the win rate
            _row(5, error="Not an image.")]
    summary = summarize(rows, SETTINGS)
    entry = summary["methods"]["gradcam"]
    deletion = entry["deletion_auc"]
    assert deletion["not_scored"] == 2 and deletion["n"] == 3
    assert deletion["mean"] == pytest.approx((0.1 + 0.4 + 0.2) / 3)
    assert deletion == {**bootstrap_ci([0.1, 0.4, 0.2]), "interval": "bootstrap", "not_scored": 2}
    assert summary["methods"]["random"]["deletion_auc"]["not_scored"] == 1
    assert entry["insertion_auc"]["not_scored"] == 0 and entry["insertion_auc"]["n"] == 5
    win = entry["deletion_auc_win_rate"]
    assert (win["k"], win["n"]) == (1, 2)  # rows 0 (a win) and 1 (a loss) only


def test_a_summary_with_nan_and_inf_scores_is_strict_json() -> None:
    rows = [_row(0, gradcam_deletion_auc=NAN, random_insertion_auc=INF, gradcam_road_combined=-INF),
            _row(1, gradcam_insertion_auc=INF, random_insertion_auc=INF, seconds=NAN),
            _row(2, gradcam_road_combined=1e308, random_road_combined=1e308),
            _row(3, gradcam_road_combined=1e308, random_road_combined=NAN)]
    rows += [_row(4 + i, **{f"{m}_{s}": NAN for m in ("gradcam", "random") for s in EVAL_SCORES}) for i in range(2)]
    summary = summarize(rows, SETTINGS)
    text = json.dumps(summary, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    entry = summary["methods"]["gradcam"]
    assert entry["insertion_auc"]["not_scored"] == 3  # +inf is no score either
    assert entry["insertion_auc_win_rate"]["n"] == 2  # rows 2 and 3
    road = entry["road_combined"]  # 0.5, 1e308 and 1e308: their sum overflows, not their mean
    assert (road["not_scored"], road["n"]) == (3, 3) and road["mean"] == pytest.approx(1e308 / 3 * 2)
    assert road["low"] <= road["mean"] <= road["high"] == 1e308
    assert summary["seconds_per_image"]["n"] == 5


def test_synset_folder_names_give_no_accuracy_but_say_why() -> None:
    synsets = ["n01440764", "n01443537", "n01484850", "n01491361", "n01494475", "n01496331", "n01498041"]
    rows = [_row(i, label="tench", true_label=synsets[i % 7]) for i in range(21)]
    summary = summarize(rows, SETTINGS, categories=imagenet_categories())
    assert "accuracy" not in summary
    assert summary["accuracy_note"] == "folder names are not the model's classes: 0 of 7 match"
    assert summary["true_labels"] == {"distinct": 7, "classes": 0}
    json.dumps(summary, allow_nan=False)


def test_accuracy_is_over_the_folders_that_are_classes() -> None:
    folders = ["tench", "goldfish", "great_white_shark", "Tiger_Shark", "hammerhead", "n01496331", "my_cats"]
    # 3 images a folder; the model is right on the first image of each class folder, and always
    # "right" on the others if they counted ("my_cats" predicted as "my cats")
    rows = [_row(10 * f + i, label=(name if i == 0 else "tabby") if f < 5 else name.replace("_", " "),
                 true_label=name) for f, name in enumerate(folders) for i in range(3)]
    summary = summarize(rows, SETTINGS, categories=imagenet_categories())
    assert summary["accuracy_note"] == ("5 of 7 folder names are the model's classes; "
                                        "accuracy over their 15 images")
    assert summary["true_labels"] == {"distinct": 7, "classes": 5}
    acc = summary["accuracy"]
    assert (acc["k"], acc["n"], acc["interval"]) == (5, 15, "wilson")
    assert acc["mean"] == pytest.approx(1 / 3)
    assert acc["low"] == pytest.approx(S.wilson_ci(5, 15)["low"]) and acc["low"] < 1 / 3 < acc["high"]
    plain = summarize(rows, SETTINGS)  # without the model's labels: every labelled image counts
    assert (plain["accuracy"]["k"], plain["accuracy"]["n"]) == (11, 21) and "accuracy_note" not in plain


@pytest.mark.parametrize("pair", [("great_white_shark", "great white shark"), ("Tiger Shark", "tiger_shark"),
                                  (" tench ", "tench"), ("goldfish", "gold fish"), ("crane", "Crane_")])
def test_labels_are_matched_as_is_correct_matches_them(pair) -> None:
    true_label, category = pair
    rows = [_row(0, label=category, true_label=true_label)]
    summary = summarize(rows, SETTINGS, categories=[category])
    assert ("accuracy" in summary) == is_correct(category, true_label)


def test_the_chunked_bootstrap_gives_the_one_shot_numbers(monkeypatch) -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 37, 5000):  # 5000: 419 resamples a chunk at 16 MB
        values = rng.random(n) * 3 - 1
        want, got = _one_shot(values), bootstrap_ci(values)
        assert got["n"] == want["n"] and all(abs(got[k] - want[k]) <= 1e-12 for k in ("mean", "low", "high")), n
    values = list(rng.random(37))
    monkeypatch.setattr(S, "BOOTSTRAP_CHUNK_BYTES", 8 * 37 * 7)  # 7 resamples a chunk: 286 chunks
    for seed, resamples in ((0, 2000), (3, 999)):
        want, got = _one_shot(values, resamples, seed), bootstrap_ci(values, resamples=resamples, seed=seed)
        assert all(abs(got[k] - want[k]) <= 1e-12 for k in ("mean", "low", "high"))


def test_the_bootstrap_memory_is_bounded() -> None:
    values = np.random.default_rng(1).random(20_000)  # one-shot: 2 x 320 MB
    tracemalloc.start()
    try:
        ci = bootstrap_ci(values)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * S.BOOTSTRAP_CHUNK_BYTES
    assert ci["low"] < ci["mean"] < ci["high"] and ci["high"] - ci["low"] < 0.02


def test_a_summary_of_100000_rows() -> None:
    count = 100_000
    rng = np.random.default_rng(3)
    scores = {f"{m}_{s}": rng.random(count) for m in ("gradcam", "random") for s in EVAL_SCORES}
    scores["gradcam_deletion_auc"][rng.choice(count, 30, replace=False)] = np.nan
    scores["random_insertion_auc"][:10] = np.nan
    seconds = rng.random(count) * 0.1
    names = ["tench", "goldfish", "n01484850", "folder"]
    rows = [{**_row(i, label="tench" if i % 3 == 0 else "goldfish", true_label=names[i % 4]),
             **{k: float(v[i]) for k, v in scores.items()}, "seconds": float(seconds[i])} for i in range(count)]
    for i in range(99, count, 100):
        rows[i]["error"] = "Not an image."
    summary = summarize(rows, SETTINGS, categories=imagenet_categories())
    json.dumps(summary, allow_nan=False)
    ok = np.array([r["error"] is None for r in rows])
    assert (summary["files"], summary["explained"], summary["fingerprint"]) == (count, ok.sum(), FINGERPRINT[:12])
    for name, values in scores.items():
        method, score = name.split("_", 1)
        entry, kept = summary["methods"][method][score], values[ok]
        assert entry["n"] == np.isfinite(kept).sum() and entry["not_scored"] == (~np.isfinite(kept)).sum()
        assert entry["mean"] == pytest.approx(np.nanmean(kept), abs=1e-12)
        assert entry["low"] < entry["mean"] < entry["high"] and entry["high"] - entry["low"] < 0.005
    assert summary["seconds_per_image"]["mean"] == pytest.approx(seconds[ok].mean(), abs=1e-12)
    for score, higher in EVAL_SCORES.items():
        mine, rand = scores[f"gradcam_{score}"][ok], scores[f"random_{score}"][ok]
        both = np.isfinite(mine) & np.isfinite(rand)
        wins = (mine > rand if higher else mine < rand)[both]
        win = summary["methods"]["gradcam"][f"{score}_win_rate"]
        assert (win["k"], win["n"]) == (wins.sum(), both.sum()) and abs(win["mean"] - 0.5) < 0.01
        assert win["high"] - win["low"] == pytest.approx(2 * 1.96 * math.sqrt(0.25 / both.sum()), rel=0.01)
    labelled = ok & (np.arange(count) % 4 < 2)  # the tench and goldfish folders
    right = labelled & (np.arange(count) % 4 == np.where(np.arange(count) % 3 == 0, 0, 1))
    assert (summary["accuracy"]["k"], summary["accuracy"]["n"]) == (right.sum(), labelled.sum())
    assert summary["accuracy_note"] == (f"2 of 4 folder names are the model's classes; "
                                        f"accuracy over their {labelled.sum()} images")


def _entries(summary: dict) -> list[dict]:
    """Every mean and win rate of `summary` (the accuracy left out)."""
    entries = [summary["seconds_per_image"]]
    for entry in summary["methods"].values():
        entries += [value for value in entry.values() if isinstance(value, dict)]
    return entries


def test_a_byte_identical_copy_counts_once_in_every_mean_and_win_rate() -> None:
    """15 distinct photos and a copy of one (the row `copy_row` makes: the same content key and
    results, its own path and key): every mean and win rate has n 15 and the numbers of the 15
    alone; the summary says 2 files shared 1 content, in a sentence too."""
    rng = np.random.default_rng(5)
    rows = [_row(i, true_label="tabby", content_key=f"{i:032x}-{SETTINGS.digest()}",
                 seconds=float(rng.uniform(.1, 1)), gradcam_seconds=float(rng.uniform(.01, .1)),
                 **{f"{m}_{s}": float(rng.uniform()) for m in ("gradcam", "random") for s in EVAL_SCORES})
            for i in range(15)]
    copy = dict(rows[3], path="copy of 3.png", key="k-copy")
    alone, both = summarize(rows, SETTINGS), summarize(rows + [copy], SETTINGS)
    assert (both["files"], both["explained"]) == (16, 16)
    assert len(_entries(both)) == 1 + (1 + 3 + 3) + 3 and all(e["n"] == 15 for e in _entries(both))
    assert both["methods"] == alone["methods"] and both["seconds_per_image"] == alone["seconds_per_image"]
    assert both["duplicates"] == {"files": 2, "contents": 1} and alone["duplicates"] == {"files": 0, "contents": 0}
    assert both["duplicates_note"].startswith("2 files have the same content as another (1 distinct content)")
    assert "duplicates_note" not in alone and S.check_summary(json.loads(json.dumps(both)))


def test_accuracy_counts_each_content_once_per_folder_name() -> None:
    """A copy in the same class folder adds nothing to the accuracy; the same photo in another class
    folder is another labelled example (a right answer under one label, a wrong one under the other)."""
    rows = [_row(i, label="tabby", true_label="tabby", content_key=f"c{i}") for i in range(4)]
    same = dict(rows[0], path="tabby/copy.png", key="k-same")
    other = dict(rows[0], path="tiger cat/copy.png", key="k-other", true_label="tiger cat")
    summary = summarize(rows + [same, other], SETTINGS, categories=imagenet_categories())
    assert (summary["accuracy"]["k"], summary["accuracy"]["n"]) == (4, 5)
    assert summary["accuracy_note"].endswith("accuracy over their 5 images")
    assert summary["duplicates"] == {"files": 3, "contents": 1}
    assert summary["duplicates_note"].endswith("count each content once, the accuracy each content once per folder name")
    assert all(e["n"] == 4 for e in _entries(summary))
