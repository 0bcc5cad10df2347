"""The Dataset page's figure builders and gallery helpers (`xai_core.dataset_figures`), without Streamlit."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from xai_core.report import dataset_figures as DF
from xai_core.dataset import Settings, summarize


def _row(path, label, probability, true_label=None, error=None, gradcam=0.2, random=0.3):
    return {"path": path, "key": path, "error": error, "label": None if error else label,
            "probability": None if error else probability, "true_label": true_label, "target": 1,
            "seconds": None if error else 0.05, "gradcam_seconds": None if error else 0.01,
            "gradcam_deletion_auc": None if error else gradcam, "gradcam_insertion_auc": None if error else 0.6,
            "gradcam_road_combined": None if error else 0.1, "random_deletion_auc": None if error else random,
            "random_insertion_auc": None if error else 0.5, "random_road_combined": None if error else 0.0}


ROWS = [_row("cat/a.png", "tabby", 0.9, "tabby"), _row("cat/b.png", "tiger cat", 0.3, "tabby", gradcam=0.4),
        _row("dog/c.png", "beagle", 0.7, "beagle", gradcam=0.1), _row("dog/bad.png", None, None, "beagle", "Not an image.")]


@pytest.fixture
def summary() -> dict:
    return summarize(ROWS, Settings("m", "w", ("gradcam",), None, ("stage7",), True, 4))


def test_score_intervals_are_error_bars_per_score_with_the_random_map(summary) -> None:
    fig = DF.build_score_intervals(summary)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    assert [a.text for a in fig.layout.annotations] == ["Deletion AUC ↓", "Insertion AUC ↑", "ROAD combined ↑"]
    deletion = fig.data[0]
    assert list(deletion.x) == ["Grad-CAM", "Random map"]
    entry = summary["methods"]["gradcam"]["deletion_auc"]
    assert deletion.y[0] == pytest.approx(entry["mean"]) == pytest.approx((0.2 + 0.4 + 0.1) / 3)
    assert deletion.error_y.array[0] == pytest.approx(entry["high"] - entry["mean"])
    assert deletion.error_y.arrayminus[0] == pytest.approx(entry["mean"] - entry["low"])
    assert "3 images" in fig.layout.title.text


def test_without_scores_the_seconds_are_shown() -> None:
    plain = summarize([{**r, **{k: None for k in r if k.startswith("random") or "auc" in k or "road" in k}}
                       for r in ROWS], Settings("m", "w", ("gradcam",), None, ("stage7",), False, 4))
    assert DF.scores_in(plain) == []
    fig = DF.build_score_intervals(plain)
    assert [a.text for a in fig.layout.annotations] == ["Seconds per image ↓"] and list(fig.data[0].x) == ["Grad-CAM"]


def test_win_rates_figure_and_table(summary) -> None:
    fig = DF.build_win_rates(summary)
    assert [t.name for t in fig.data] == ["Deletion AUC ↓", "Insertion AUC ↑", "ROAD combined ↑"]
    assert list(fig.data[0].x) == ["Grad-CAM"]  # the random map does not race itself
    assert fig.data[0].y[0] == pytest.approx(2 / 3)  # 0.2 and 0.1 beat 0.3, 0.4 does not
    table = DF.win_rate_table(summary)
    assert table["method"] == ["Grad-CAM"] and table["beats random on Deletion AUC ↓"][0].startswith("67% [")
    assert DF.interval_text(None) == "–"


def test_gallery_filters_sorting_and_pages() -> None:
    assert DF.classes(ROWS) == ["beagle", "tabby"]
    assert [DF.outcome(r) for r in ROWS] == ["right", "wrong", "right", "error"]
    assert [r["path"] for r in DF.filter_rows(ROWS, cls="tabby")] == ["cat/a.png", "cat/b.png"]
    assert [r["path"] for r in DF.filter_rows(ROWS, want="wrong")] == ["cat/b.png"]
    assert [r["path"] for r in DF.filter_rows(ROWS, want="error")] == ["dog/bad.png"]
    assert [r["path"] for r in DF.filter_rows(ROWS, low_only=True)] == ["cat/b.png"]
    assert "gradcam_deletion_auc" in DF.sortable_columns(ROWS) and "path" not in DF.sortable_columns(ROWS)
    by_auc = [r["path"] for r in DF.sort_rows(ROWS, "gradcam_deletion_auc")]
    assert by_auc == ["dog/c.png", "cat/a.png", "cat/b.png", "dog/bad.png"]  # no value: last
    assert [r["path"] for r in DF.sort_rows(ROWS, "gradcam_deletion_auc", descending=True)][-1] == "dog/bad.png"
    rows = [{"path": str(i)} for i in range(25)]
    assert DF.page_of(rows, 3, 12) == (rows[24:], 3)
    assert DF.page_of(rows, 9, 12) == (rows[24:], 3) and DF.page_of([], 1, 12) == ([], 1)


def test_a_proportion_is_shown_with_its_count_and_a_mean_without() -> None:
    won = {"mean": 1.0, "low": 0.6097, "high": 1.0, "k": 6, "n": 6, "interval": "wilson"}
    assert DF.interval_text(won) == DF.interval_text(won, percent=True) == "100% [61%, 100%] (6 of 6)"
    assert DF.interval_text(won, percent=False) == "1.000 [0.610, 1.000] (6 of 6)"
    mean = {"mean": 0.1234, "low": 0.1, "high": 0.15, "n": 40, "interval": "bootstrap"}
    assert DF.interval_text(mean) == "0.123 [0.100, 0.150]" and DF.interval_text(mean, percent=True) == "12% [10%, 15%]"
    assert DF.interval_text({"mean": None, "low": None, "high": None, "k": 0, "n": 0}) == "–"


def test_images_without_a_score_are_counted_in_the_table_and_hovers() -> None:
    rows = [*ROWS, _row("dog/d.png", "beagle", 0.8, "beagle", gradcam=float("nan"))]
    summary = summarize(rows, Settings("m", "w", ("gradcam",), None, ("stage7",), True, 4))
    win = summary["methods"]["gradcam"]["deletion_auc_win_rate"]
    assert (win["k"], win["n"]) == (2, 3)  # the image without a deletion score is no win, nor a loss
    table = DF.win_rate_table(summary)
    assert table["beats random on Deletion AUC ↓"][0].endswith("(2 of 3)")
    assert table["not scored"] == ["Deletion AUC ↓ 1"]
    fig = DF.build_win_rates(summary)
    assert list(fig.data[0].customdata[0]) == [2, 3] and "of %{customdata[1]} images" in fig.data[0].hovertemplate
    scores = DF.build_score_intervals(summary)
    assert scores.data[0].customdata[0][1] == ", 1 not scored" and scores.data[0].customdata[1][1] == ""
    assert "not scored" not in DF.win_rate_table(summarize(ROWS, Settings("m", "w", ("gradcam",), None,
                                                                          ("stage7",), True, 4)))


def test_the_gallerys_controls_have_one_vocabulary_and_apply_to_the_run(summary) -> None:
    """The sort menu's labels (the Dataset page's and the report's), and only the filters that apply."""
    choices = DF.sort_choices(ROWS, DF.method_titles(summary))
    assert choices == {"path": "file", "probability": "probability", "seconds": "seconds",
                       "gradcam_seconds": "Grad-CAM · seconds", "gradcam_deletion_auc": "Grad-CAM · deletion",
                       "gradcam_insertion_auc": "Grad-CAM · insertion", "gradcam_road_combined": "Grad-CAM · ROAD",
                       "random_deletion_auc": "Random map · deletion", "random_insertion_auc": "Random map · insertion",
                       "random_road_combined": "Random map · ROAD"}  # "target" (a class index) is not offered
    assert DF.column_label("results_version", {}) is None and DF.column_label("eigencam_seconds", {}) == "eigencam · seconds"
    assert list(DF.outcome_choices(ROWS)) == ["all", "correct", "wrong", "refused files"]
    untrue = [{**r, "true_label": None} for r in ROWS[:3]]
    assert list(DF.outcome_choices(untrue)) == ["all"] and DF.has_predictions(untrue)
    assert list(DF.outcome_choices(ROWS[3:])) == ["all", "refused files"] and not DF.has_predictions(ROWS[3:])


def test_the_target_fact_says_which_class_each_image_was_explained_for() -> None:
    assert DF.target_fact({"settings": {"target": None}}) == "target: each image’s top class"
    assert DF.target_fact({"settings": {"target": 281}, "target_label": "tabby"}) == "target: tabby"
    assert DF.target_fact({"settings": {"target": 3}}) == "target: class 3"
    located = {"settings": {"target": None}, "localisation": {"counts": {"labelled": 2}}}
    assert DF.target_fact(located) == ("target: each image’s top class, or the class its ground truth’s label names "
                                       "(2 images)")
    assert DF.target_fact({"settings": {}, "localisation": {"counts": {"labelled": 0}}}).endswith("top class")
    assert DF.target_fact({"settings": {}, "localisation": "hand-edited"}).endswith("top class")
