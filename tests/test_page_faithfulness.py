"""AppTest of the Faithfulness page (bundled EfficientNet-Lite0)."""

from __future__ import annotations

import numpy as np

import xai_core
from _apptest import AppTest, array as _array, chart as _chart, charts as _charts, errors as _errors
from _apptest import page as _page, run as _run


def _fast_faithfulness(app: AppTest, methods: list[str]) -> AppTest:
    """The Faithfulness page for `methods`, with 10% curve steps to keep the test short."""
    app.session_state["eval.methods"] = methods
    app.session_state["eval.steps"] = 10
    return _page(app, "faithfulness")


def test_faithfulness_page_scores_the_maps_against_a_random_baseline(app: AppTest, monkeypatch) -> None:
    methods = ["gradcam", "layercam", "eigencam"]
    _fast_faithfulness(app, methods)
    assert not _errors(app)
    intro = app.markdown[0].value
    assert "2202.00449" in intro and "1810.03292" in intro
    assert "Egyptian cat" in app.subheader[0].value
    table = app.dataframe[0].value
    assert list(table["method"]) == methods + ["random (baseline)"]
    assert {"Deletion AUC ↓", "Insertion AUC ↑", "ROAD combined ↑", "Confidence change ↑", "sanity check"} <= set(table)
    assert set(table["sanity check"][:3]) <= {"passed", "failed"} and table["sanity check"][3] == "-"
    for kind in ("deletion", "insertion"):
        traces = _chart(app, f"{kind}_curves")["data"]
        assert [t["name"].split(" ")[0] for t in traces] == methods + ["random"]
        np.testing.assert_allclose(_array(traces[0]["x"]), np.linspace(0, 1, 11))  # 10% steps
        aucs = [float(t["name"].split("AUC ")[1].rstrip(")")) for t in traces]  # the legend shows the table's AUCs
        np.testing.assert_allclose(aucs, table[f"{kind.capitalize()} AUC {'↓' if kind == 'deletion' else '↑'}"],
                                   atol=1e-3)
    assert list(_chart(app, "sanity_chart")["data"][0]["y"]) == methods
    for metric in ("spearman", "iou"):
        assert list(_chart(app, f"agreement_{metric}")["data"][0]["x"]) == methods
    # a rerun with the same settings comes from the cache
    calls = []
    for verb in ("explain", "evaluate"):
        real = getattr(xai_core, verb)
        monkeypatch.setattr(xai_core, verb, lambda *a, _real=real, _verb=verb, **k: calls.append(_verb) or _real(*a, **k))
    _run(app)
    assert calls == [] and list(app.dataframe[0].value["method"]) == methods + ["random (baseline)"]


def test_faithfulness_page_without_the_sanity_check(app: AppTest) -> None:
    _fast_faithfulness(app, ["gradcam"])
    assert _chart(app, "sanity_chart")
    app.toggle(key="w:eval.sanity").set_value(False)
    _run(app)
    assert not any(key.endswith("sanity_chart") for key in _charts(app))
    assert list(app.dataframe[0].value["sanity check"]) == ["-", "-"]
