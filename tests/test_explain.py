"""`explain`: one shared pass, scoped hooks, meaning on the pretrained model, result contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xai_core
from xai_core import engine
from xai_core.methods import ACTIVATION, GRADIENT
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
    monkeypatch.setattr(engine.torch.autograd, "grad", lambda *a, **k: grads_calls.append(1) or real_grad(*a, **k))
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


def test_hooks_removed_after_success_and_after_failure(random_resnet, cat_path, monkeypatch):
    xai_core.explain(random_resnet, cat_path, methods=ONE_PASS + ["fullgrad"], layer="layer4")
    assert no_hooks_left(random_resnet.module)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure inside the pass")

    monkeypatch.setattr(engine, "_targets", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        xai_core.explain(random_resnet, cat_path, methods=["gradcam"], layer="layer4")
    assert no_hooks_left(random_resnet.module)
    assert torch.is_grad_enabled(), "grad mode must be restored after an error"


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
    methods = [m for m in xai_core.list_methods() if m != "scorecam"]
    result = xai_core.explain(lite, cat_path, methods=methods, layer="stage6")
    assert set(result.maps) == set(methods)
    assert all(np.isfinite(m).all() and m.max() > 0 for m in result.maps.values())
