"""AppTest of the Faithfulness page (bundled EfficientNet-Lite0)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

import xai_core
from _apptest import AppTest, array as _array, chart as _chart, charts as _charts, errors as _errors
from _apptest import page as _page, run as _run
from pages import _live, _panels
from xai_core.report import eval_figures, image_report_html

ROOT = Path(__file__).resolve().parents[2]
#: At `head` (pooling + linear) Grad-CAM = HiResCAM (one is scored as the other), and EigenCAM
#: fails the sanity check: the page has a note of each kind to name by title.
METHODS = ["gradcam", "hirescam", "layercam", "eigencam"]
TITLES = {m: xai_core.get_method(m).title for m in METHODS}


def _fast_faithfulness(app: AppTest, methods: list[str], layer: str | None = None) -> AppTest:
    """The Faithfulness page for `methods`, with 10% curve steps to keep the test short."""
    app.session_state["eval.methods"] = methods
    app.session_state["eval.steps"] = 10
    if layer is not None:
        app.session_state["cam.layer"] = layer
    return _page(app, "faithfulness")


def _texts(app: AppTest) -> list[str]:
    """Every text the page shows: headings, Markdown, captions, alerts, table cells, and each chart's
    whole spec (trace names, axis labels, tick labels, hover texts, titles)."""
    texts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "success")
             for e in getattr(app, kind)]
    for frame in app.dataframe:
        texts += [str(cell) for column in frame.value.columns for cell in [column, *frame.value[column]]]
    return texts + [json.dumps(spec) for spec in _charts(app).values()]


def _live_draws(monkeypatch) -> list[tuple[tuple[str, ...], int]]:
    """Records (pending stages, number) of each partial result the page draws while scoring."""
    drawn, real = [], _live.live

    def spy(draw):
        return real(lambda value, n: drawn.append((value.pending, n)) or draw(value, n))

    monkeypatch.setattr(_live, "live", spy)
    return drawn


def test_faithfulness_page_scores_the_maps_against_a_random_baseline(app: AppTest, monkeypatch) -> None:
    drawn = _live_draws(monkeypatch)
    _fast_faithfulness(app, METHODS, layer="head")
    assert not _errors(app)
    assert any("2202.00449" in m.value and "1810.03292" in m.value for m in app.markdown)  # the intro
    assert "Egyptian cat" in app.subheader[0].value
    titles = [TITLES[m] for m in METHODS]
    main, more = (frame.value for frame in app.dataframe)  # the main scores, and the others (an expander)
    assert list(main["method"]) == list(more["method"]) == titles + ["random (baseline)"]
    table = main.join(more.drop(columns="method"))
    assert list(main.columns) == ["method", "Deletion AUC ↓", "Insertion AUC ↑", "ROAD combined ↑", "sanity check"]
    assert {"Deletion AUC ↓", "Insertion AUC ↑", "ROAD combined ↑", "Confidence change ↑", "sanity check"} <= set(table)
    assert set(table["sanity check"][:4]) <= {"passed", "failed"} and table["sanity check"][4] == "-"
    for kind in ("deletion", "insertion"):
        traces = _chart(app, f"{kind}_curves")["data"]
        assert [t["name"].split(" (AUC")[0] for t in traces] == titles + ["random"]
        np.testing.assert_allclose(_array(traces[0]["x"]), np.linspace(0, 1, 11))  # 10% steps
        aucs = [float(t["name"].split("AUC ")[1].rstrip(")")) for t in traces]  # the legend shows the table's AUCs
        np.testing.assert_allclose(aucs, table[f"{kind.capitalize()} AUC {'↓' if kind == 'deletion' else '↑'}"],
                                   atol=1e-3)
    assert list(_chart(app, "sanity_chart")["data"][0]["y"]) == titles
    for metric in ("spearman", "iou"):
        assert list(_chart(app, f"agreement_{metric}")["data"][0]["x"]) == titles
    # the UI names methods by their titles everywhere, notes included; ids stay in the API
    notes = [i.value for i in app.info]
    assert "HiResCAM scored as Grad-CAM: their maps are equal." in notes
    assert any("EigenCAM" in n and "barely change" in n for n in notes)
    for text in _texts(app):
        assert not re.search(r"gradcam|hirescam|layercam|eigencam", text), text
    # partial results were drawn while scoring (each map's curves, then ROAD, then the sanity check) ...
    assert drawn and all(pending for pending, _ in drawn)
    # ... and none of them is left on the page: one table, one chart of each kind, no pending mark
    assert len(app.dataframe) == 2 and not any(key.startswith("live") for key in _charts(app))
    assert not any(eval_figures.PENDING_MARK in text for text in _texts(app))
    # a rerun with the same settings comes from the cache, and replays no partial result
    calls, drawn[:] = [], []
    for verb in ("explain", "evaluate"):
        real = getattr(xai_core, verb)
        monkeypatch.setattr(xai_core, verb, lambda *a, _real=real, _verb=verb, **k: calls.append(_verb) or _real(*a, **k))
    _run(app)
    assert calls == [] and drawn == []
    assert list(app.dataframe[0].value["method"]) == titles + ["random (baseline)"]
    assert len(app.dataframe) == 2 and not any(key.startswith("live") for key in _charts(app))
    assert not any(eval_figures.PENDING_MARK in text for text in _texts(app))


def test_the_page_states_the_expected_time_and_its_report_holds_the_scores(app: AppTest, monkeypatch) -> None:
    captured, bars, real_progress = {}, [], _panels.progress
    monkeypatch.setattr(_panels, "report_button", lambda *a, **k: captured.update(args=a, kwargs=k))
    monkeypatch.setattr(_panels, "progress", lambda label, estimate: bars.append((label, estimate))
                        or real_progress(label, estimate))
    _fast_faithfulness(app, ["gradcam", "layercam"])
    # the bar under the title (and a caption until the first scores) gives the expected time up front
    assert [label for label, _ in bars] == ["Scoring 2 maps and a random baseline"] and bars[0][1] > 0
    title, figs, settings, notes = captured["args"]
    page = image_report_html(title, figs, settings, notes, captured["kwargs"]["sections"])
    headings = [heading for heading, _ in captured["kwargs"]["sections"]]
    assert headings == ["Headline", "Scores"]
    assert "<table class='scores'>" in page and "Deletion AUC ↓" in page and "<td>Grad-CAM</td>" in page
    assert "<td>LayerCAM</td>" in page and "<td>random (baseline)</td>" in page
    assert "<ul class='headline'>" in page and "beat the random map" in page
    assert settings["model"].startswith("EfficientNet-Lite0") and settings["methods"] == "Grad-CAM, LayerCAM"
    for path in (str(ROOT), str(Path.home()), "site-packages", "/tmp/"):
        assert path not in page


def test_faithfulness_page_without_the_sanity_check(app: AppTest) -> None:
    _fast_faithfulness(app, ["gradcam"])
    assert _chart(app, "sanity_chart")
    app.toggle(key="w:eval.sanity").set_value(False)
    _run(app)
    assert not any(key.endswith("sanity_chart") for key in _charts(app))
    assert list(app.dataframe[0].value["sanity check"]) == ["-", "-"]
