"""`report.concept_figures`: the importance bars with their intervals, the concept maps and the fidelity
curves, built from `concepts_summary` of a real `class_concepts` run and from hand-made summaries."""

from __future__ import annotations

import numpy as np
import pytest

import xai_core
from conftest import IMAGES
from xai_core.concepts import concepts_summary
from xai_core.report import concept_figures as CF

PHOTOS = sorted(str(p) for p in IMAGES.iterdir() if p.suffix in (".png", ".jpg"))


@pytest.fixture(scope="module")
def run(lite):
    result = xai_core.class_concepts(lite, PHOTOS, "tabby", n_concepts=4)
    return result, concepts_summary(result, [p.rsplit("/", 1)[-1] for p in PHOTOS])


def _summary(concepts, targets=("tabby",), fidelity=None) -> dict:
    return {"targets": list(targets), "images": 6, "method": "exact (linear head)", "residual": -0.5, "layer": "head",
            "concepts": concepts, "fidelity": fidelity or {}}


def _concept(index, importance, labels=("snow", "husky"), low=None, high=None, by_class=None) -> dict:
    return {"index": index, "labels": [{"label": x, "probability": 0.5} for x in labels], "importance": importance,
            "importance_low": low, "importance_high": high, "importance_by_class": by_class or {}}


def test_concept_title_names_the_number_and_the_first_labels():
    assert CF.concept_title(_concept(1, 0.3)) == "#2 · snow, husky"
    assert CF.concept_title(_concept(0, 0.3, labels=("a", "b", "c")), labels=1) == "#1 · a"
    assert CF.concept_title(_concept(4, 0.3, labels=())) == "#5"
    assert CF.concept_title(_concept(0, 0.3, labels=("tiger cat", "lynx")), glued=True) == "#1 · tiger\u00a0cat, lynx"


def test_the_bars_are_the_importances_most_important_first_with_their_intervals(run):
    result, summary = run
    fig = CF.build_concept_importance(summary)
    (bars,) = fig.data
    order = sorted(result.concepts, key=lambda c: -c.importance)
    assert list(bars.x) == pytest.approx([c.importance for c in order])
    assert list(bars.error_x.array) == pytest.approx([c.importance_high - c.importance for c in order])
    assert list(bars.error_x.arrayminus) == pytest.approx([c.importance - c.importance_low for c in order])
    shown = [y.replace("<br>", " ").replace("\u00a0", " ") for y in bars.y]
    assert shown == [CF.concept_title(summary["concepts"][c.index]) for c in order]
    assert bars.orientation == "h" and not fig.layout.showlegend


def test_two_classes_get_one_bar_each_from_their_own_images():
    concepts = [_concept(0, 0.2, by_class={"tabby": [0.3, 0.1, 0.5], "espresso": [0.1, 0.0, 0.2]}),
                _concept(1, 0.4, by_class={"tabby": [0.5, 0.4, 0.6], "espresso": [0.3, 0.2, 0.4]})]
    fig = CF.build_concept_importance(_summary(concepts, targets=("tabby", "espresso")))
    assert [t.name for t in fig.data] == ["tabby", "espresso"]
    assert list(fig.data[0].x) == [0.5, 0.3] and list(fig.data[1].x) == [0.3, 0.1]  # #2 (0.4) first
    assert list(fig.data[1].error_x.arrayminus) == pytest.approx([0.1, 0.1]) and fig.layout.showlegend


def test_a_missing_importance_is_drawn_last_without_an_error_bar():
    fig = CF.build_concept_importance(_summary([_concept(0, None), _concept(1, 0.1, low=0.0, high=0.2)]))
    assert list(fig.data[0].x) == [0.1, None] and list(fig.data[0].error_x.array) == pytest.approx([0.1, 0.0])


def test_labels_from_a_model_are_text_never_markup():
    hostile = "<b>x</b><a href='http://evil'>y</a>"
    fig = CF.build_concept_importance(_summary([_concept(0, 0.1, labels=(hostile,))], targets=(hostile,)))
    assert "<b>" not in fig.data[0].y[0] and "&lt;b&gt;" in fig.data[0].y[0]
    fidelity = {"removed": [0.9, 0.1], "random": [0.9, 0.5], "auc": 0.5, "auc_low": 0.4, "auc_high": 0.6}
    fig = CF.build_fidelity_curves(_summary([_concept(0, 0.1)], targets=(hostile,), fidelity=fidelity))
    title = fig.layout.annotations[0].text
    assert "<a " not in title and "&lt;a" in title


def test_the_maps_are_the_results_maps_over_the_picture_most_important_first(run, lite):
    result, summary = run
    picture = lite.display_image(xai_core.load_image(PHOTOS[1]))
    maps = result.maps(1)
    fig = CF.build_concept_maps(picture, maps, summary, columns=2)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    order = [c["index"] for c in CF.by_importance(summary)]
    assert [h.name for h in heatmaps] == [CF.concept_title(summary["concepts"][i], glued=True) for i in order]
    want = maps[order[0]].reshape(112, 2, 112, 2).mean(axis=(1, 3))  # heatmap_trace's 2 x 2 blocks
    assert np.allclose(np.asarray(heatmaps[0].z), want, atol=1e-6)
    assert sum(t.type == "image" for t in fig.data) == len(order)
    with pytest.raises(ValueError, match="3 maps for 4 concepts"):
        CF.build_concept_maps(picture, maps[:3], summary)


def test_the_fidelity_curves_are_the_results_with_their_areas(run):
    result, summary = run
    fig = CF.build_fidelity_curves(summary)
    removed, random = fig.data
    assert list(removed.y) == pytest.approx(result.fidelity["removed"])
    assert list(random.y) == pytest.approx(result.fidelity["random"])
    assert list(removed.x) == list(range(5))
    f = result.fidelity
    assert removed.name == f"by importance: AUC {f['auc']:.3f} [{f['auc_low']:.3f}, {f['auc_high']:.3f}]"
    assert random.name.startswith(f"random order: AUC {f['random_auc']:.3f} [")
    assert "tabby" in fig.layout.annotations[0].text and fig.layout.yaxis.tickformat == ".0%"
    with pytest.raises(ValueError, match="no fidelity curves"):
        CF.build_fidelity_curves(_summary([_concept(0, 0.1)]))


def test_the_caption_says_the_method_the_residual_and_the_images(run):
    _, summary = run
    text = CF.method_caption(summary)
    assert text.startswith("Importance: exact (linear head) share of the class logit over 6 images at layer head")
    assert f"{summary['residual']:+.3f}" in text and "bias" in text
    assert "the head's bias included" in CF.method_caption(dict(summary, method="first-order estimate"))
    assert CF.interval(None, 0, 1) == "–" and CF.interval(0.5, None, None) == "0.500"
