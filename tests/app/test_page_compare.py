"""AppTest of the Compare models page: model A is the sidebar's (the bundled EfficientNet-Lite0), model B
another model the app offers (a models file's entries: the same network under another name, a random
1000-class ResNet-18 checkpoint with ImageNet's labels, one whose checkpoint is missing). Both
predictions, per method A's map | B's map | the difference B - A, the agreement table, the verdicts;
the link ?model=A&against=B; a model B that cannot be loaded is one sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import xai_core
from xai_core.predict import label_key
from _apptest import array, chart, errors, new_app, page, run

SAME = '[[model]]\nname = "my-lite"\nsource = "efficientnet_lite0"\ntitle = "My Lite model"\n'
MISSING = '[[model]]\nname = "broken"\nsource = "efficientnet_lite0"\nweights = "ckpt/missing.pt"\ntitle = "Broken"\n'
RANDOM = ('[[model]]\nname = "rand18"\nsource = "torchvision:resnet18"\nweights = "rand18.pt"\nlabels = "labels.txt"\n'
          'title = "ResNet-18, random weights"\n')


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Path:
    """A models file offering the three models above, and the random ResNet-18's files beside it."""
    folder = tmp_path_factory.mktemp("deploy")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), folder / "rand18.pt")
    labels, seen = [], set()
    for label in xai_core.load_model("efficientnet_lite0", device="cpu").categories:  # ImageNet's, made distinct
        labels.append(label if label_key(label) not in seen else f"{label} (2)")
        seen.add(label_key(label))
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    (folder / "models.toml").write_text(SAME + RANDOM + MISSING, encoding="utf-8")
    return folder


def _app(deployment: Path, monkeypatch: pytest.MonkeyPatch, **query: str):
    monkeypatch.setenv("XAI_MODELS", str(deployment / "models.toml"))
    at = new_app(monkeypatch)
    for key, value in query.items():
        at.query_params[key] = value
    return page(run(at), "compare")


def _rows(at) -> dict[str, dict]:
    return {m: chart(at, f"cmp_row_{m}") for m in ("gradcam", "layercam")}


def _heatmaps(spec: dict) -> list[dict]:
    return [t for t in spec["data"] if t["type"] == "heatmap"]


def test_a_model_compared_with_itself_agrees_fully(deployment, monkeypatch):
    at = _app(deployment, monkeypatch)
    assert not errors(at)
    assert at.radio(key="w:cmp.against").value == "my-lite"  # a models-file model first
    assert "auto" not in at.radio(key="w:cmp.against").options  # model A is not offered as model B
    headline = at.subheader[0].value
    label, percent = headline.split(" → ")[0].rsplit(" ", 1)
    assert headline == f"{label} {percent} → {label} {percent}" and percent.endswith("%")
    assert chart(at, "cmp_prediction_a")["data"][0]["y"] == chart(at, "cmp_prediction_b")["data"][0]["y"]
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Grad-CAM", "LayerCAM"]
    assert np.allclose(table["Spearman ρ"], 1.0) and np.allclose(table["Top-20% IoU"], 1.0)
    for method, spec in _rows(at).items():
        a, b, diff = _heatmaps(spec)
        assert [t["coloraxis"] for t in (a, b, diff)] == ["coloraxis", "coloraxis", "coloraxis2"]
        assert np.allclose(array(diff["z"]), 0.0)  # no difference at all
        axis = spec["layout"]["coloraxis2"]
        assert (axis["cmin"], axis["cmid"], axis["cmax"]) == (-1.0, 0.0, 1.0)
    verdicts = [m.value for m in at.markdown if m.value.startswith(("Grad-CAM's maps", "LayerCAM's maps"))]
    assert verdicts == ["Grad-CAM's maps agree strongly (Spearman 1.00); model B's map stayed in place.",
                        "LayerCAM's maps agree strongly (Spearman 1.00); model B's map stayed in place."]


def test_two_different_models_show_both_predictions_three_maps_and_a_verdict(deployment, monkeypatch):
    at = _app(deployment, monkeypatch, against="rand18")
    assert not errors(at) and at.radio(key="w:cmp.against").value == "rand18"
    lite = xai_core.predict(xai_core.load_model("efficientnet_lite0", device="cpu"), "assets/images/cat.png", 1)[0]
    a_side = at.subheader[0].value.split(" → ")[0]
    assert a_side == f"{lite.label} {lite.probability:.0%}"
    target = next(m.value for m in at.markdown if m.value.startswith("The maps explain"))
    assert f"“{lite.label}”" in target and "in model A" in target and "in model B" in target
    assert chart(at, "cmp_prediction_a")["layout"]["title"]["text"] == "Model A"
    assert chart(at, "cmp_prediction_b")["layout"]["title"]["text"] == "Model B"
    captions = [c.value for c in at.caption]
    assert "auto: EfficientNet-Lite0" in captions and "ResNet-18, random weights" in captions
    for method, spec in _rows(at).items():
        a, b, diff = _heatmaps(spec)
        titles = [t["text"] for t in spec["layout"]["annotations"]]
        assert titles[:3] == ["Model A", "Model B", "Difference B − A"]
        za, zb, zd = (np.asarray(array(t["z"]), float) for t in (a, b, diff))
        assert np.allclose(zd, zb - za, atol=1e-5) and not np.allclose(zd, 0)
        axis = spec["layout"]["coloraxis2"]  # centred on 0, wide enough for the largest change
        assert axis["cmid"] == 0 and axis["cmin"] == -axis["cmax"] and np.abs(zd).max() <= axis["cmax"] + 1e-6
    table = at.dataframe[0].value
    assert (table["Spearman ρ"].abs() <= 1).all() and ((table["Top-20% IoU"] >= 0) & (table["Top-20% IoU"] <= 1)).all()
    verdicts = [m.value for m in at.markdown if m.value.startswith(("Grad-CAM's maps", "LayerCAM's maps"))]
    assert len(verdicts) == 2 and all("Spearman" in v for v in verdicts)
    # each model's own top class instead
    at.selectbox(key="w:cmp.target").set_value("top:own")
    run(at)
    assert not errors(at)
    assert next(m.value for m in at.markdown if m.value.startswith("The maps explain")).startswith(
        "The maps explain each model's own top class")


def test_the_object_box_of_the_link_makes_the_verdict_weigh_the_object(deployment, monkeypatch):
    at = _app(deployment, monkeypatch, against="my-lite", box="60,40,170,200")
    assert not errors(at)
    verdicts = [m.value for m in at.markdown if m.value.startswith("Grad-CAM's maps")]
    assert verdicts and "of its map on the object" in verdicts[0]
    assert any(t["type"] == "contour" for t in chart(at, "cmp_row_gradcam")["data"])  # the outline on the maps
    assert any("magenta line" in c.value for c in at.caption)


def test_the_link_picks_model_a_and_model_b(deployment, monkeypatch):
    at = _app(deployment, monkeypatch, model="efficientnet_lite0", against="rand18")
    assert at.radio(key="w:model").value == "efficientnet_lite0"
    assert at.radio(key="w:cmp.against").value == "rand18" and not errors(at)
    assert "?model=efficientnet_lite0&against=rand18" in " ".join(c.value for c in at.caption).replace("\\", "")


def test_a_model_b_the_link_names_but_not_offered_gives_one_notice(deployment, monkeypatch):
    monkeypatch.setenv("XAI_MODELS", str(deployment / "models.toml"))
    at = new_app(monkeypatch)
    at.query_params["against"] = "/etc/passwd"
    run(at)
    notices = [w.value for w in at.sidebar.warning]  # shown once, by the first page the link opens
    assert len(notices) == 1 and "model B" in notices[0] and "not offered here" in notices[0]
    assert "/etc" not in notices[0] and not errors(at)
    page(at, "compare")
    assert at.radio(key="w:cmp.against").value == "my-lite"  # the default, and the page works


def test_a_model_b_that_cannot_be_loaded_is_one_sentence(deployment, monkeypatch):
    at = _app(deployment, monkeypatch)
    at.radio(key="w:cmp.against").set_value("broken")
    run(at)
    (error,) = errors(at)
    assert "ckpt/missing.pt" in error and "\n" not in error and "Traceback" not in error
    assert str(deployment) not in error
    assert at.radio(key="w:cmp.against").value == "broken"  # the choice stays; model A and the sidebar too
    assert at.radio(key="w:model").value == "auto" and any("Model A" in m.value for m in at.markdown)
    at.radio(key="w:cmp.against").set_value("my-lite")
    run(at)
    assert not errors(at) and at.dataframe[0].value["Spearman ρ"].iloc[0] == pytest.approx(1.0)


def test_a_method_of_one_model_only_runs_on_that_one_and_the_page_says_so(tmp_path, monkeypatch):
    """Model B a tiny random ViT (no label in common with ImageNet: each model explains its own top class):
    LeGrad applies to the transformer only, so its row has model B's map alone and the verdict says why."""
    from _hf import save_tiny_vit

    save_tiny_vit(tmp_path / "tiny-vit", blocks=2, labels=["widget", "gadget", "gizmo"])
    (tmp_path / "models.toml").write_text('[[model]]\nname = "vit"\nsource = "hf:tiny-vit"\ntitle = "Tiny ViT"\n',
                                          encoding="utf-8")
    at = _app(tmp_path, monkeypatch, against="vit")
    assert not errors(at)
    target = at.selectbox(key="w:cmp.target")
    assert target.options == ["each model's own top class"] and "share no label" in target.help
    pills = at.pills(key="w:cmp.methods")
    assert "LeGrad" in pills.help and "apply to one model only" in pills.help
    pills.set_value(["gradcam", "legrad"])
    run(at)
    assert not errors(at)
    row = chart(at, "cmp_row_legrad")
    assert [t["coloraxis"] for t in _heatmaps(row)] == ["coloraxis"]  # model B's map only, no difference
    texts = [a["text"] for a in row["layout"]["annotations"]]
    assert "not given for<br>model A" in texts
    verdict = next(m.value for m in at.markdown if m.value.startswith("LeGrad ran on model B only"))
    assert "does not apply to model A" in verdict
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Grad-CAM", "LeGrad"] and np.isnan(table["Spearman ρ"].iloc[1])
    assert next(m.value for m in at.markdown if m.value.startswith("The maps explain")).startswith(
        "The maps explain each model's own top class")


def test_a_class_model_b_does_not_know_is_refused_in_one_sentence(tmp_path, monkeypatch):
    """Model B knows three ImageNet labels, not the cat's: model A's top class cannot be asked of it."""
    from _hf import save_tiny_vit

    save_tiny_vit(tmp_path / "tiny-vit", blocks=1, labels=["ant", "bee", "eel"])
    (tmp_path / "models.toml").write_text('[[model]]\nname = "vit"\nsource = "hf:tiny-vit"\ntitle = "Tiny ViT"\n',
                                          encoding="utf-8")
    at = _app(tmp_path, monkeypatch, against="vit")
    (error,) = errors(at)
    assert error.startswith("Only model A knows the class") and "\n" not in error
    # the labels both know, in model A's order (bee 309, ant 310, eel 390)
    assert at.selectbox(key="w:cmp.target").options[2:] == ["bee", "ant", "eel"]
    at.selectbox(key="w:cmp.target").set_value("label:bee")
    run(at)
    assert not errors(at)
    assert "“bee”" in next(m.value for m in at.markdown if m.value.startswith("The maps explain"))


def test_without_a_models_file_model_b_is_a_model_whose_weights_are_here(monkeypatch):
    """Offline, ResNet-50's weights are missing: model B starts on the bundled model, not on a refusal."""
    monkeypatch.delenv("XAI_MODELS", raising=False)
    at = page(run(new_app(monkeypatch)), "compare")
    assert at.radio(key="w:cmp.against").value == "efficientnet_lite0" and not errors(at)
    assert at.dataframe[0].value["Spearman ρ"].iloc[0] == pytest.approx(1.0)  # auto loads that very model
