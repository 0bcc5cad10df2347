"""`explain`: one shared pass, scoped hooks, meaning on the pretrained model, result contract."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import xai_core
from xai_core.methods import shared_pass
from xai_core.methods import ACTIVATION, ATTENTION, GRADIENT
from xai_core.methods.reference import library_map
from conftest import CAT_CLASSES, no_hooks_left

ONE_PASS = xai_core.list_methods(GRADIENT) + xai_core.list_methods(ACTIVATION)


def test_the_eight_classic_methods_share_one_pass():
    assert {"gradcam", "hirescam", "gradcam++", "xgradcam", "layercam", "eigencam", "eigengradcam",
            "gradcamelementwise"} <= set(ONE_PASS)


def test_one_forward_one_backward_stopping_at_the_target_layer(random_resnet, cat_path, monkeypatch):
    module = random_resnet.module
    module.zero_grad(set_to_none=True)  # the library's own backward (other tests) fills .grad
    forwards, earlier_backwards = [], []
    h1 = module.register_forward_pre_hook(lambda m, i: forwards.append(1))
    h2 = module.layer3.register_full_backward_hook(lambda m, gi, go: earlier_backwards.append(1))
    grads_calls = []
    real_grad = torch.autograd.grad
    monkeypatch.setattr(shared_pass.torch.autograd, "grad", lambda *a, **k: grads_calls.append(1) or real_grad(*a, **k))
    try:
        methods = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam", "eigencam", "eigengradcam",
                   "gradcamelementwise"]
        result = xai_core.explain(random_resnet, cat_path, methods=methods, layer="layer4", target=3)
    finally:
        h1.remove()
        h2.remove()
    assert len(forwards) == 1, "all eight methods must share one forward pass"
    assert len(grads_calls) == 1, "and one backward pass"
    assert earlier_backwards == [], "the backward must stop at the target layer"
    assert all(p.grad is None for p in module.parameters()), "no gradient may flow into the weights"
    assert set(result.maps) == set(methods)


def _fail_after(module: torch.nn.Module, monkeypatch, check) -> list:
    """Make `module` (a layer after the target layer) raise when it runs, after recording what
    `check()` says at that moment (while our hooks are registered). Returns the records."""
    seen = []

    def boom(*args, **kwargs):
        seen.append(check())
        raise RuntimeError("simulated failure inside the pass")

    monkeypatch.setattr(module, "forward", boom)
    return seen


def _hooked(module: torch.nn.Module) -> bool:
    return bool(module._forward_hooks)


def test_hooks_removed_after_success_and_after_failure(random_resnet, cat_path, monkeypatch):
    module = random_resnet.module
    xai_core.explain(random_resnet, cat_path, methods=ONE_PASS + ["fullgrad"], layer="layer4")
    xai_core.factorize(random_resnet, cat_path, n_components=2, layer="layer4")
    assert no_hooks_left(module)

    # the shared pass: avgpool runs after layer4, whose recording hook must exist at that moment
    seen = _fail_after(module.avgpool, monkeypatch, lambda: _hooked(module.layer4))
    with pytest.raises(RuntimeError, match="simulated"):
        xai_core.explain(random_resnet, cat_path, methods=["gradcam", "eigencam"], layer="layer4")
    assert seen == [True], "the failure must happen while the shared pass's hooks are registered"
    assert no_hooks_left(module)
    assert torch.is_grad_enabled(), "grad mode must be restored after an error"

    # factorize's recording
    seen.clear()
    with pytest.raises(RuntimeError, match="simulated"):
        xai_core.factorize(random_resnet, cat_path, n_components=2, layer="layer4")
    assert seen == [True]
    assert no_hooks_left(module)

    # FullGrad's own hooks (the library's, on every layer with a bias). The caught error is kept, as
    # a caller showing it would: its traceback holds the library object, so that object's __del__
    # cannot be what removes the hooks.
    monkeypatch.undo()
    seen = _fail_after(module.fc, monkeypatch, lambda: sum(map(_hooked, module.modules())))
    with pytest.raises(RuntimeError, match="simulated") as kept:
        xai_core.explain(random_resnet, cat_path, methods=["fullgrad"], layer="layer4", target=3)
    assert len(seen) == 1 and seen[0] > 50, "FullGrad's hooks must be registered when the failure happens"
    assert no_hooks_left(module) and kept.value
    assert all(p.grad is None for p in module.parameters())


@pytest.mark.parametrize("method", [m for m in xai_core.list_methods() if m not in xai_core.list_methods(ATTENTION)])
def test_no_gradient_left_on_the_shared_model(random_resnet, cat_path, method):
    """The cached model serves every session: no explanation may leave a `.grad` on it (FullGrad's
    full backward fills every parameter's, ShapleyCAM's keeps a second-order graph)."""
    module = random_resnet.module
    module.zero_grad(set_to_none=True)  # the library's own backward (other tests) may have filled them
    layer = "layer1" if method == "scorecam" else "layer4"  # 256 channels to score, not 2048
    # aug_smooth runs several backward passes: checked for each kind of gradient target and FullGrad
    for aug_smooth in (False, True) if method in ("gradcam", "finercam", "shapleycam", "fullgrad") else (False,):
        xai_core.explain(random_resnet, cat_path, methods=[method], layer=layer, aug_smooth=aug_smooth,
                         eigen_smooth=aug_smooth, batch_size=256, options={"fastscorecam": {"top_k": 8}})
        held = [name for name, p in module.named_parameters() if p.grad is not None]
        assert held == [], f"{method} (aug_smooth={aug_smooth}) left .grad on {len(held)} parameters"


@pytest.fixture(scope="module")
def small_resnet():
    """A random-weight ResNet-18 at 64 pixels, this module's own: its `.grad`s may be set freely."""
    torch.manual_seed(0)
    return xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64)


def _give_some_grads(module: torch.nn.Module) -> dict:
    """The caller's own state: a `.grad` on every third parameter (3.0, 4.0, ...), None elsewhere.
    Returns {name: (the .grad object, a copy of its values)}."""
    module.zero_grad(set_to_none=True)
    held = {}
    for i, (name, p) in enumerate(module.named_parameters()):
        if i % 3 == 0:
            p.grad = torch.full_like(p, 3.0 + i)
            held[name] = (p.grad, p.grad.clone())
    return held


def _assert_grads_kept(module: torch.nn.Module, held: dict) -> None:
    for name, p in module.named_parameters():
        if name in held:
            grad, values = held[name]
            assert p.grad is grad, f"{name}: the caller's .grad tensor was replaced or dropped"
            assert torch.equal(p.grad, values), f"{name}: the caller's .grad values changed"
        else:
            assert p.grad is None, f"{name}: a .grad was left where the caller had none"


def test_fullgrad_keeps_the_callers_gradients(small_resnet, cat_path, monkeypatch):
    """FullGrad's full backward fills every parameter's `.grad` (and the library zeroes them first):
    the `.grad` tensors the caller had are put back exactly, after success and after failure, and
    the map is the one computed without them."""
    module = small_resnet.module
    module.zero_grad(set_to_none=True)
    clean = xai_core.explain(small_resnet, cat_path, ["fullgrad"], target=3).maps["fullgrad"]

    held = _give_some_grads(module)
    assert 0 < len(held) < len(list(module.parameters()))
    result = xai_core.explain(small_resnet, cat_path, ["fullgrad"], target=3)
    _assert_grads_kept(module, held)
    np.testing.assert_array_equal(result.maps["fullgrad"], clean)
    assert clean.max() > 0.5

    # the library's reference (the parity tests' oracle) too
    x = small_resnet.preprocess(xai_core.load_image(cat_path))
    library_map(small_resnet, "fullgrad", small_resnet.default_layer, x, 3)
    _assert_grads_kept(module, held)

    # and after a failure inside FullGrad's pass (hooks registered, gradients set aside)
    seen = _fail_after(module.fc, monkeypatch, lambda: module.layer1[0].conv1.weight.grad is None)
    with pytest.raises(RuntimeError, match="simulated"):
        xai_core.explain(small_resnet, cat_path, ["fullgrad"], target=3)
    assert seen == [True], "the failure must happen while the caller's gradients are set aside"
    assert no_hooks_left(module)
    _assert_grads_kept(module, held)
    module.zero_grad(set_to_none=True)


def test_no_gradient_left_by_factorize(random_resnet, cat_path):
    random_resnet.module.zero_grad(set_to_none=True)
    xai_core.factorize(random_resnet, cat_path, n_components=2, layer="layer4")
    assert all(p.grad is None for p in random_resnet.module.parameters())


def test_notes_name_methods_by_their_titles(random_resnet, cat_path):
    methods = ["gradcam", "hirescam", "xgradcam", "eigencam", "kpcacam", "shapleycam", "fullgrad"]
    notes = xai_core.explain(random_resnet, cat_path, methods=methods, layer="layer4").notes
    assert any(n.startswith("Grad-CAM = HiResCAM = XGrad-CAM are identical by construction at layer4") for n in notes)
    assert any(n.startswith("FullGrad ignores the target layer") for n in notes)
    assert any(n.startswith("ShapleyCAM uses the ReST target") for n in notes)
    assert any(n.startswith("EigenCAM and KPCA-CAM ignore the target class") for n in notes)
    ids = re.compile(r"\b(" + "|".join(map(re.escape, xai_core.list_methods())) + r")\b")
    assert not [n for n in notes if ids.search(n)], "notes are for users: titles, not ids"


def test_result_contract_on_pretrained_model(lite, cat_path):
    result = xai_core.explain(lite, cat_path, methods="gradcam,layercam")
    assert result.target in CAT_CLASSES
    assert result.target_label == lite.categories[result.target]
    assert 0.0 < result.target_probability <= 1.0
    assert result.layers == (lite.default_layer,)
    assert result.image.dtype == np.uint8 and result.image.shape == (224, 224, 3)
    for cam in result.maps.values():
        assert cam.dtype == np.float32 and cam.shape == (224, 224)
        assert cam.min() >= 0.0 and cam.max() <= 1.0 and cam.max() > 0.5
    assert {"forward", "backward", "gradcam", "layercam", "total"} <= set(result.timings)


def test_target_by_name_and_by_index(lite, cat_path):
    by_name = xai_core.explain(lite, cat_path, methods=["gradcam"], target="tabby")
    by_index = xai_core.explain(lite, cat_path, methods=["gradcam"], target=281)
    assert by_name.target == by_index.target == 281
    np.testing.assert_array_equal(by_name.maps["gradcam"], by_index.maps["gradcam"])
    other = xai_core.explain(lite, cat_path, methods=["gradcam"], target="espresso")
    assert np.abs(other.maps["gradcam"] - by_name.maps["gradcam"]).max() > 0.05


def test_gradcam_points_at_the_cat_not_the_border(lite, cat_path):
    """The cat fills the centre of the sample photo: the map's mass must sit there."""
    cam = xai_core.explain(lite, cat_path, methods=["gradcam"], layer="head").maps["gradcam"]
    centre = cam[56:168, 56:168].mean()
    border = np.concatenate([cam[:28].ravel(), cam[-28:].ravel()]).mean()
    assert centre > border


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"methods": ["nope"]}, xai_core.UnknownNameError),
        ({"methods": []}, xai_core.InvalidOptionError),
        ({"layer": "layer9"}, xai_core.UnknownNameError),
        ({"target": 1000}, xai_core.InvalidOptionError),
        ({"target": "not a class"}, xai_core.UnknownNameError),
    ],
)
def test_bad_options_raise_clear_errors(lite, cat_path, kwargs, error):
    with pytest.raises(error) as info:
        xai_core.explain(lite, cat_path, **{"methods": ["gradcam"], **kwargs})
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message
    assert no_hooks_left(lite.module)


def test_every_method_runs_on_the_bundled_model(lite, cat_path):
    """Smoke test over the registry on the second architecture (scorecam excluded: 1280 passes)."""
    methods = [m for m in xai_core.methods_for(lite) if m != "scorecam"]
    assert not set(xai_core.list_methods(ATTENTION)) & set(methods)  # a CNN: the attention methods are not offered
    result = xai_core.explain(lite, cat_path, methods=methods, layer="stage6")
    assert set(result.maps) == set(methods)
    assert all(np.isfinite(m).all() and m.max() > 0 for m in result.maps.values())


def test_finercam_on_a_model_with_fewer_than_four_classes_compares_with_all_the_others(cat_path):
    """pytorch-grad-cam's Finer-CAM compares with the classes ranked 1-3; a 3-class model has only 2
    others, which are then its comparison (the library's ranking would index past the classes)."""
    torch.manual_seed(0)
    handle = xai_core.load_model("torchvision:resnet18", weights=None, labels=["a", "b", "c"], input_size=64,
                                 device="cpu")
    result = xai_core.explain(handle, cat_path, methods=["finercam", "gradcam"], layer="layer3")
    assert np.isfinite(result.maps["finercam"]).all() and result.maps["finercam"].max() > 0
    assert not np.allclose(result.maps["finercam"], result.maps["gradcam"])
