"""The pure Plotly builders of `xai_core.eval_figures`: a hand-made `Evaluation` in, figures checked as data."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.report import eval_figures
from xai_core import Agreement, Evaluation

FRACTIONS = np.linspace(0, 1, 11)


def _score(auc: float) -> dict:
    curve = np.clip(1 - FRACTIONS / (2 * auc), 0, 1)
    return {"deletion_auc": auc, "insertion_auc": 1 - auc, "deletion_curve": curve, "insertion_curve": 1 - curve,
            "road_morf": -0.1, "road_lerf": -0.05, "road_combined": 0.03, "confidence_change": -0.2,
            "sanity_spearman": None, "sanity_passed": None}


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    methods = ("gradcam", "hirescam", "layercam")
    rho = np.array([[1.0, 1.0, 0.8], [1.0, 1.0, 0.8], [0.8, 0.8, 1.0]])
    return Evaluation(
        scores={"gradcam": _score(0.2), "hirescam": _score(0.2), "layercam": _score(0.3), "random": _score(0.45)},
        agreement=Agreement(methods, rho, rho - 0.1 * (rho < 1), (("gradcam", "hirescam", "same gradient"),)),
        fractions=FRACTIONS, target=281, target_label="tabby", target_probability=0.5, model="m", layers=("head",),
        timings={}, notes=(), settings={},
    )


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_curves_one_line_per_method_and_a_dashed_random_baseline(evaluation, kind):
    fig = eval_figures.build_curves(evaluation, kind)
    names = [trace.name.split(" ")[0] for trace in fig.data]
    assert names == ["gradcam", "hirescam", "layercam", "random"]
    dashes = [trace.line.dash for trace in fig.data]
    assert dashes == ["solid", "solid", "solid", "dash"]
    np.testing.assert_allclose(fig.data[2].y, evaluation.scores["layercam"][f"{kind}_curve"])
    np.testing.assert_allclose(fig.data[0].x, FRACTIONS)
    assert f"AUC {evaluation.scores['layercam'][f'{kind}_auc']:.3f}" in fig.data[2].name
    assert "tabby" in fig.layout.yaxis.title.text and kind.capitalize() in fig.layout.title.text


@pytest.mark.parametrize("metric", ["spearman", "iou"])
def test_agreement_matrix_marks_pairs_identical_by_construction(evaluation, metric):
    fig = eval_figures.build_agreement(evaluation, metric)
    heatmap = fig.data[0]
    assert heatmap.type == "heatmap" and list(heatmap.x) == list(evaluation.agreement.methods)
    np.testing.assert_allclose(np.asarray(heatmap.z, dtype=float), getattr(evaluation.agreement, metric))
    text = np.asarray(heatmap.text)
    assert eval_figures.IDENTICAL_MARK in text[0, 1] and eval_figures.IDENTICAL_MARK in text[1, 0]
    assert eval_figures.IDENTICAL_MARK not in text[0, 2] and eval_figures.IDENTICAL_MARK not in text[0, 0]
    assert "identical by construction" in fig.layout.title.text and "same gradient" in fig.layout.title.text


def test_unknown_kind_or_metric_is_refused(evaluation):
    with pytest.raises(ValueError, match="kind"):
        eval_figures.build_curves(evaluation, "road")
    with pytest.raises(ValueError, match="metric"):
        eval_figures.build_agreement(evaluation, "pearson")


def test_score_table_has_one_row_per_method_and_the_baseline_last(evaluation):
    table = eval_figures.score_table(evaluation)
    assert table["method"] == ["gradcam", "hirescam", "layercam", "random (baseline)"]
    labels = [label for _, label, _, _ in eval_figures.SCORE_COLUMNS]
    assert list(table) == ["method", *labels, "sanity check"]
    assert all(len(column) == 4 for column in table.values())
    assert table["Deletion AUC ↓"] == [0.2, 0.2, 0.3, 0.45]
    assert table["Sanity Spearman ↓"] == [None] * 4 and table["sanity check"] == ["-"] * 4


def test_sanity_bars_are_red_above_the_threshold(evaluation):
    scores = {m: dict(s) for m, s in evaluation.scores.items()}
    scores["gradcam"].update(sanity_spearman=0.1, sanity_passed=True)
    scores["layercam"].update(sanity_spearman=0.8, sanity_passed=False)
    checked = Evaluation(**{**evaluation.__dict__, "scores": scores})
    fig = eval_figures.build_sanity(checked, threshold=0.5)
    bars = fig.data[0]
    assert list(bars.y) == ["gradcam", "layercam"] and list(bars.x) == [0.1, 0.8]
    assert bars.marker.color[0] != bars.marker.color[1] and bars.marker.color[1] == "#d62728"
    table = eval_figures.score_table(checked)
    assert table["sanity check"] == ["passed", "-", "failed", "-"]


def test_headline_names_the_best_maps_and_those_that_do_not_beat_random(evaluation):
    scores = {m: dict(s) for m, s in evaluation.scores.items()}
    scores["layercam"].update(deletion_auc=0.5)  # worse than the random map's 0.45
    text = eval_figures.headline(Evaluation(**{**evaluation.__dict__, "scores": scores}))
    lines = text.splitlines()
    assert "**gradcam**" in lines[0] and "0.2," in lines[0] and "0.45)" in lines[0]
    assert lines[0].startswith("- Probability falls fastest when **gradcam**'s pixels")  # the space kept
    assert "**gradcam**" in lines[1] and "0.8," in lines[1] and "0.55)" in lines[1]
    assert lines[2] == "- 2 of 3 maps beat the random map on both; not layercam."
    assert len(lines) == 3  # p = 0.5: no caution
    unlikely = eval_figures.headline(Evaluation(**{**evaluation.__dict__, "target_probability": 0.0003}))
    assert len(unlikely.splitlines()) == 4 and "only 0.0003" in unlikely and "near zero" in unlikely


NAMES = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM", "layercam": "Layer<CAM> & co"}


def _partial(evaluation, scored: tuple[str, ...], pending: tuple[str, ...]) -> Evaluation:
    """`evaluation` as `evaluate` hands it to `on_partial`: only `scored` maps have their curves, no
    ROAD scores while "road" is pending, no sanity keys while "sanity" is."""
    road = {"road_morf", "road_lerf", "road_combined"}
    scores = {}
    for method, score in evaluation.scores.items():
        keep = {k: v for k, v in score.items() if not (k in road and "road" in pending)
                and not (k.startswith("sanity") and "sanity" in pending)}
        scores[method] = keep if method in scored + ("random",) else {}
    return Evaluation(**{**evaluation.__dict__, "scores": scores, "pending": pending})


def test_builders_name_methods_as_asked(evaluation):
    for kind in ("deletion", "insertion"):
        names = [t.name.split(" (AUC")[0] for t in eval_figures.build_curves(evaluation, kind, NAMES).data]
        assert names == ["Grad-CAM", "HiResCAM", "Layer<CAM> & co", "random"]
    heatmap = eval_figures.build_agreement(evaluation, "spearman", NAMES).data[0]
    assert list(heatmap.x) == list(heatmap.y) == ["Grad-CAM", "HiResCAM", "Layer<CAM> & co"]
    assert "Layer&lt;CAM&gt; &amp; co vs Grad-CAM" in heatmap.customdata[2][0]  # hover text is HTML
    assert eval_figures.score_table(evaluation, NAMES)["method"] == [
        "Grad-CAM", "HiResCAM", "Layer<CAM> & co", "random (baseline)"]
    assert "**Grad-CAM**" in eval_figures.headline(evaluation, NAMES)


def test_a_partial_evaluation_shows_only_what_is_computed(evaluation):
    first = _partial(evaluation, ("gradcam",), ("deletion_insertion", "road", "sanity"))
    curves = eval_figures.build_curves(first, "deletion")
    assert [t.name.split(" ")[0] for t in curves.data] == ["gradcam", "random"]
    full = eval_figures.build_curves(evaluation, "deletion")
    assert curves.data[0].line.color == full.data[0].line.color  # a method keeps its colour
    table = eval_figures.score_table(first)
    assert table["method"] == ["gradcam", "random (baseline)"]
    assert "ROAD MoRF ↓" not in table and "Sanity Spearman ↓" not in table and "Deletion AUC ↓" in table
    assert table["sanity check"] == [eval_figures.PENDING_MARK, "-"]
    assert "1 of 1 maps" in eval_figures.headline(first)
    after_road = eval_figures.score_table(_partial(evaluation, ("gradcam", "hirescam", "layercam"), ("sanity",)))
    assert "ROAD MoRF ↓" in after_road and len(after_road["method"]) == 4
    assert after_road["sanity check"] == [eval_figures.PENDING_MARK] * 3 + ["-"]


def test_html_table_and_headline_are_escaped_for_the_report(evaluation):
    page = eval_figures.score_table_html(evaluation, NAMES)
    assert page.startswith("<table class='scores'><thead><tr><th") and page.endswith("</tbody></table>")
    assert "<td>Layer&lt;CAM&gt; &amp; co</td>" in page and "Layer<CAM>" not in page
    assert page.count("<tr>") == 5  # the header and 4 rows
    assert "<td>0.2</td>" in page and "<td>0.45</td>" in page and "<td>-0.2</td>" in page  # 3 significant digits
    assert "title='lower is better. Area under the class probability" in page
    headline = eval_figures.headline_html(evaluation, NAMES)
    assert headline.startswith("<ul class='headline'><li>") and headline.count("<li>") == 3
    assert "<strong>Grad-CAM</strong>" in headline and "3 of 3 maps beat the random map on both." in headline
    unlikely = {**evaluation.__dict__, "target_label": "<script>", "target_probability": 0.0003}
    unsafe = eval_figures.headline_html(Evaluation(**unlikely), NAMES)
    assert unsafe.count("<li>") == 4 and "&lt;script&gt;" in unsafe and "<script>" not in unsafe
