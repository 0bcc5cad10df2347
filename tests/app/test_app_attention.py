"""AppTest of the attention methods in the dashboard: a deployment's models file (XAI_MODELS) offers a
tiny random Hugging Face ViT saved next to it (`source = "hf:models/tiny-vit"`). Picked in the
sidebar, the CAM page offers LeGrad, attention rollout and gradient-weighted relevance and draws
them with a note about attention; the Faithfulness page scores LeGrad. With the bundled CNN they are
not offered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xai_core
from _hf import save_tiny_vit
from _deps import need
from _apptest import AppTest, array as _array, chart as _chart, errors as _errors, heatmap_names as _heatmap_names
from _apptest import new_app, page as _page, run as _run

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")

ATTENTION = ["legrad", "rollout", "relevance"]
TITLES = {m: xai_core.get_method(m).title for m in ATTENTION + ["gradcam"]}
MODELS_FILE = '[[model]]\nname = "tiny-vit"\nsource = "hf:models/tiny-vit"\ntitle = "Tiny ViT"\n'


@pytest.fixture(scope="module")
def saved_vit(tmp_path_factory) -> Path:
    """A deployment folder: models.toml and, next to it, models/tiny-vit (5 classes, 3 blocks, 32 px)."""
    deploy = tmp_path_factory.mktemp("deploy")
    folder = deploy / "models" / "tiny-vit"
    save_tiny_vit(folder, blocks=3, labels=["ant", "bee", "cat", "dog", "eel"], initializer_range=0.2)
    (deploy / "models.toml").write_text(MODELS_FILE, encoding="utf-8")
    return deploy


def _vit_app(saved_vit: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app with the tiny ViT picked in the sidebar."""
    monkeypatch.setenv("XAI_MODELS", str(saved_vit / "models.toml"))
    monkeypatch.chdir(saved_vit.parent)  # the folder is found relative to the models file, not to here
    at = _run(new_app(monkeypatch))
    picker = at.radio(key="w:model")
    assert "Tiny ViT" in picker.options
    picker.set_value("tiny-vit")
    _run(at)
    assert not _errors(at)
    handle = at.session_state["run.model"][0]
    assert handle.name == "tiny-vit" and handle.transformer
    assert at.expander[0].label.startswith("Model: Tiny ViT")
    return at


def _offered(pills) -> list[str]:
    """The pills' options as method ids (AppTest may list them by their shown titles)."""
    ids = {title: m for m, title in ((m, xai_core.get_method(m).title) for m in xai_core.list_methods())}
    return [ids.get(option, option) for option in pills.options]


def test_cam_page_offers_and_draws_the_attention_methods(saved_vit, monkeypatch):
    at = _vit_app(saved_vit, monkeypatch)
    _page(at, "cam")
    assert not _errors(at)
    pills = at.pills(key="w:cam.methods")
    offered = _offered(pills)
    assert set(ATTENTION) <= set(offered) and "gradcam" in offered
    assert "read the transformer's attention" in pills.help
    pills.set_value(["gradcam", "legrad", "rollout"])
    _run(at)
    assert not _errors(at) and not at.exception
    grid = _chart(at, "cam_grid")
    assert _heatmap_names(grid) == [TITLES["gradcam"], TITLES["legrad"], TITLES["rollout"]]
    notes = [i.value for i in at.info]
    assert any("LeGrad and Attention rollout read the attention of the transformer's blocks" in n for n in notes), notes
    heading = next(h.value for h in at.subheader if h.value.startswith("Why"))
    assert "3 methods" in heading
    # each panel is a map over the 32x32 input; the attention maps are not flat, nor Grad-CAM's
    maps = {t["name"]: np.asarray(_array(t["z"]), dtype=float).reshape(-1) for t in grid["data"]
            if t["type"] == "heatmap"}
    assert all(z.size == 32 * 32 for z in maps.values()), {k: z.size for k, z in maps.items()}
    legrad, rollout = maps[TITLES["legrad"]], maps[TITLES["rollout"]]
    assert legrad.max() - legrad.min() > 0.5 and rollout.max() - rollout.min() > 0.5
    assert np.abs(legrad - rollout).max() > 0.05 and np.abs(legrad - maps[TITLES["gradcam"]]).max() > 0.05


def test_cam_page_with_the_bundled_cnn_does_not_offer_them(app: AppTest):
    _page(app, "cam")
    assert not _errors(app)
    pills = app.pills(key="w:cam.methods")
    offered = _offered(pills)
    assert "gradcam" in offered and not set(ATTENTION) & set(offered)
    assert "read the transformer's attention" not in pills.help
    assert "are not offered:" in pills.help and "it is a convolutional network" in pills.help  # and why


def test_faithfulness_page_scores_legrad(saved_vit, monkeypatch):
    at = _vit_app(saved_vit, monkeypatch)
    at.session_state["eval.methods"] = ["gradcam", "legrad"]
    at.session_state["eval.steps"] = 10
    _page(at, "faithfulness")
    assert not _errors(at) and not at.exception
    pills = at.pills(key="w:eval.methods")
    assert "legrad" in _offered(pills) and pills.value == ["gradcam", "legrad"]
    main = at.dataframe[0].value
    assert list(main["method"]) == [TITLES["gradcam"], TITLES["legrad"], "random (baseline)"]
    legrad = main[main["method"] == TITLES["legrad"]].iloc[0]
    for column in ("Deletion AUC ↓", "Insertion AUC ↑"):
        assert 0 <= float(legrad[column]) <= 1, column
    assert legrad["sanity check"] in ("passed", "failed")
    traces = _chart(at, "deletion_curves")["data"]
    assert [t["name"].split(" (AUC")[0] for t in traces] == [TITLES["gradcam"], TITLES["legrad"], "random"]
