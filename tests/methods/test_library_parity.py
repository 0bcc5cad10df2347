"""Every map equals pytorch-grad-cam's for the same model, layer and target (the oracle). Where a
map projects onto the first principal component (EigenCAM, EigenGrad-CAM, eigen_smooth), the
library's projection takes our sign convention first (`_eigen_sign`, `device_cams.SIGN_RULE`)."""

from __future__ import annotations

import numpy as np
import pytest
from pytorch_grad_cam import (
    AblationCAM, EigenCAM, EigenGradCAM, FinerCAM, FullGrad, GradCAM, GradCAMElementWise,
    GradCAMPlusPlus, HiResCAM, KPCA_CAM, LayerCAM, ScoreCAM, ShapleyCAM, XGradCAM,
)

import xai_core
from xai_core.methods.reference import library_map as _library_map
from _eigen_sign import library_with_convention
from conftest import no_hooks_left

# Written out independently of xai_core's registry, so a wrong mapping there is caught.
ORACLE = {
    "gradcam": GradCAM, "hirescam": HiResCAM, "gradcam++": GradCAMPlusPlus, "xgradcam": XGradCAM,
    "layercam": LayerCAM, "eigencam": EigenCAM, "eigengradcam": EigenGradCAM,
    "gradcamelementwise": GradCAMElementWise, "kpcacam": KPCA_CAM, "scorecam": ScoreCAM,
    "ablationcam": AblationCAM, "fullgrad": FullGrad, "shapleycam": ShapleyCAM, "finercam": FinerCAM,
}
TOL = 1e-5


def library_map(*args, **kwargs):
    """`reference.library_map` with the library projecting by our sign convention."""
    with library_with_convention():
        return _library_map(*args, **kwargs)


def test_registry_is_the_library_list():
    assert xai_core.list_methods()[: len(ORACLE)] == list(ORACLE)
    # ours, not in the library (the attention methods: tests/methods/test_attention.py, TorchCAM's oracle)
    assert xai_core.list_methods()[len(ORACLE):] == ["fastscorecam", "legrad", "rollout", "relevance"]
    assert {m: xai_core.get_method(m).library_class for m in ORACLE} == ORACLE
    assert xai_core.get_method("fastscorecam").library_class is None


@pytest.fixture(scope="module", params=["layer4", "layer3"])
def all_maps(request, random_resnet, cat_path):
    """One `explain` call with every method at the layer."""
    return request.param, xai_core.explain(random_resnet, cat_path, methods=list(ORACLE), layer=request.param)


@pytest.mark.parametrize("method", list(ORACLE))
def test_every_method_matches_library(all_maps, random_resnet, cat_path, method):
    layer, result = all_maps
    x = random_resnet.preprocess(xai_core.load_image(cat_path))
    expected = library_map(random_resnet, method, [layer], x, result.target)
    ours = result.maps[method]
    assert ours.dtype == np.float32 and ours.shape == expected.shape == (64, 64)
    assert 0.0 <= ours.min() and ours.max() <= 1.0
    assert np.abs(ours - expected).max() <= TOL, f"{method} at {layer}"
    assert no_hooks_left(random_resnet.module)


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "layercam", "eigengradcam", "gradcam++"])
@pytest.mark.parametrize("aug_smooth,eigen_smooth", [(True, False), (False, True), (True, True)])
def test_smoothing_options_match_library(random_resnet, cat_path, method, aug_smooth, eigen_smooth):
    result = xai_core.explain(random_resnet, cat_path, methods=[method], layer="layer3",
                              target=281, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
    x = random_resnet.preprocess(xai_core.load_image(cat_path))
    expected = library_map(random_resnet, method, ["layer3"], x, 281, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
    assert np.abs(result.maps[method] - expected).max() <= TOL


@pytest.mark.parametrize("method", ["gradcam", "layercam", "eigencam", "ablationcam"])
def test_fused_layers_match_library(random_resnet, cat_path, method):
    result = xai_core.explain(random_resnet, cat_path, methods=[method], layer="layer2,layer3", target=7)
    x = random_resnet.preprocess(xai_core.load_image(cat_path))
    expected = library_map(random_resnet, method, ["layer2", "layer3"], x, 7)
    assert result.layers == ("layer2", "layer3")
    assert np.abs(result.maps[method] - expected).max() <= TOL


def test_gradcam_equals_hirescam_at_layer4_only(random_resnet, cat_path):
    at4 = xai_core.explain(random_resnet, cat_path, methods=["gradcam", "hirescam"], layer="layer4")
    at3 = xai_core.explain(random_resnet, cat_path, methods=["gradcam", "hirescam"], layer="layer3")
    assert np.abs(at4.maps["gradcam"] - at4.maps["hirescam"]).max() == 0.0
    assert any("identical by construction" in n for n in at4.notes)
    assert np.abs(at3.maps["gradcam"] - at3.maps["hirescam"]).max() > 1e-3
    assert not any("identical" in n for n in at3.notes)


@pytest.mark.parametrize("options", [{"kernel": "rbf", "gamma": 0.01}, {"kernel": "cosine", "gamma": None}])
def test_kpcacam_options_reach_the_library_class(random_resnet, cat_path, options):
    result = xai_core.explain(random_resnet, cat_path, methods=["kpcacam"], layer="layer3", target=3,
                              options={"kpcacam": options})
    x = random_resnet.preprocess(xai_core.load_image(cat_path))
    expected = library_map(random_resnet, "kpcacam", "layer3", x, 3, options=options)
    assert result.options["methods"] == {"kpcacam": options}
    assert np.abs(result.maps["kpcacam"] - expected).max() <= TOL
    default = xai_core.explain(random_resnet, cat_path, methods=["kpcacam"], layer="layer3", target=3)
    assert np.abs(default.maps["kpcacam"] - result.maps["kpcacam"]).max() > 1e-3, "the option must change the map"


def test_fastscorecam_with_top_k_above_the_channels_is_exact_scorecam(random_resnet, cat_path):
    """layer2 has 512 channels: top_k 600 scores them all, which is Score-CAM."""
    result = xai_core.explain(random_resnet, cat_path, methods=["fastscorecam"], layer="layer2", target=5,
                              batch_size=256, options={"fastscorecam": {"top_k": 600}})
    x = random_resnet.preprocess(xai_core.load_image(cat_path))
    expected = library_map(random_resnet, "scorecam", "layer2", x, 5, batch_size=256)
    assert np.abs(result.maps["fastscorecam"] - expected).max() <= TOL
