"""Method options: declared in the registry, validated by one checker (for `explain` and
`estimate_cost`), recorded in `Explanation.options`, and unable to reach internal attributes."""

from __future__ import annotations

import numpy as np
import pytest

import xai_core
from xai_core.methods.cost import estimate_cost
from xai_core.methods import KPCA_KERNELS, OptionSpec
from conftest import no_hooks_left

#: Attributes `explain` sets on the library classes itself: never settable through options.
INTERNAL = ("model", "guard", "heads", "gap_heads", "batch_size", "progress", "device", "target_layers",
            "activations_and_grads", "detach", "reshape_transform")
TOP_K = "top_k (int >= 1, default 64)"
KPCA = "kernel (linear, poly, rbf, sigmoid or cosine, default sigmoid), gamma (float > 0 or None, default None)"


def test_declared_options():
    declared = {m: xai_core.get_method(m).options for m in xai_core.list_methods()}
    assert {m for m, opts in declared.items() if opts} == {"fastscorecam", "kpcacam", "legrad", "rollout"}
    assert xai_core.get_method("fastscorecam").defaults == {"top_k": 64}
    assert xai_core.get_method("kpcacam").defaults == {"kernel": "sigmoid", "gamma": None}
    assert set(KPCA_KERNELS) == {"linear", "poly", "rbf", "sigmoid", "cosine"}
    for opts in declared.values():
        assert all(isinstance(o, OptionSpec) and o.help for o in opts)
        assert not {o.name for o in opts} & set(INTERNAL)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"fastscorecam": {"top_k": 0}}, f"fastscorecam option top_k cannot be 0; its options are: {TOP_K}."),
        ({"fastscorecam": {"top_k": -3}}, f"fastscorecam option top_k cannot be -3; its options are: {TOP_K}."),
        ({"fastscorecam": {"top_k": "8"}}, f"fastscorecam option top_k must be an int, not '8'; its options are: {TOP_K}."),
        ({"fastscorecam": {"top_k": 2.5}}, f"fastscorecam option top_k must be an int, not 2.5; its options are: {TOP_K}."),
        ({"fastscorecam": {"top_k": True}}, f"fastscorecam option top_k must be an int, not True; its options are: {TOP_K}."),
        ({"fastscorecam": {"top_k": None}}, f"fastscorecam option top_k must not be None; its options are: {TOP_K}."),
        ({"fastscorecam": {"topk": 8}}, f"fastscorecam has no option 'topk'; its options are: {TOP_K}."),
        ({"fastscorecam": 8}, f"options for fastscorecam must be a dict of option values, not 8; its options are: {TOP_K}."),
        ({"kpcacam": {"kernel": "precomputed"}}, f"kpcacam option kernel cannot be 'precomputed'; its options are: {KPCA}."),
        ({"kpcacam": {"gamma": 0}}, f"kpcacam option gamma cannot be 0; its options are: {KPCA}."),
        ({"kpcacam": {"gamma": float("nan")}}, f"kpcacam option gamma must be a finite float, not nan; its options are: {KPCA}."),
        ({"gradcam": {"alpha": 1}}, "gradcam has no option 'alpha'; it takes no options."),
        ({"nope": {}}, "options name 'nope', which is not a method; methods with options are: kpcacam (kernel, gamma), "
                       "fastscorecam (top_k), legrad (blocks), rollout (head_fusion, discard_ratio)."),
        (["fastscorecam"], "options must map method ids to option dicts, e.g. {'fastscorecam': {'top_k': 32}}, "
                           "not ['fastscorecam']."),
    ],
)
def test_bad_options_raise_one_sentence_listing_the_valid_ones(random_resnet, cat_path, options, message):
    with pytest.raises(xai_core.InvalidOptionError) as info:
        xai_core.explain(random_resnet, cat_path, methods=["fastscorecam", "kpcacam"], options=options)
    assert str(info.value) == message
    with pytest.raises(xai_core.InvalidOptionError) as info:
        estimate_cost(random_resnet, ["fastscorecam"], "layer4", options=options)
    assert str(info.value) == message
    assert no_hooks_left(random_resnet.module)


@pytest.mark.parametrize("method", ["fastscorecam", "scorecam", "ablationcam", "kpcacam", "gradcam"])
@pytest.mark.parametrize("name", INTERNAL)
def test_internal_attributes_cannot_be_set_through_options(random_resnet, cat_path, method, name):
    with pytest.raises(xai_core.InvalidOptionError, match=f"^{method} has no option '{name}'; "):
        xai_core.explain(random_resnet, cat_path, methods=[method], options={method: {name: None}})


def test_options_are_recorded_and_reproduce_the_maps(random_resnet, cat_path):
    methods = ["gradcam", "kpcacam", "fastscorecam"]
    first = xai_core.explain(random_resnet, cat_path, methods, layer="layer3", target=9, batch_size=256,
                             options={"fastscorecam": {"top_k": 12}, "kpcacam": {"kernel": "rbf"}})
    assert first.options == {
        "aug_smooth": False,
        "eigen_smooth": False,
        "methods": {"kpcacam": {"kernel": "rbf", "gamma": None}, "fastscorecam": {"top_k": 12}},
    }
    again = xai_core.explain(random_resnet, cat_path, methods, layer="layer3", target=9, batch_size=256,
                             options=first.options["methods"])
    for method in methods:
        np.testing.assert_array_equal(again.maps[method], first.maps[method])
    # one options dict serves a call with fewer methods (as the sanity check makes); only its methods are recorded
    subset = xai_core.explain(random_resnet, cat_path, ["gradcam"], layer="layer3", target=9,
                              options=first.options["methods"])
    assert subset.options["methods"] == {}
    default = xai_core.explain(random_resnet, cat_path, ["fastscorecam"], layer="layer3", target=9, batch_size=256)
    assert default.options["methods"] == {"fastscorecam": {"top_k": 64}}
    assert not np.allclose(default.maps["fastscorecam"], first.maps["fastscorecam"])


def test_cost_follows_the_options(random_resnet):
    assert estimate_cost(random_resnet, "fastscorecam", "layer4")["fastscorecam"].passes == 64
    assert estimate_cost(random_resnet, "fastscorecam", "layer4",
                         options={"fastscorecam": {"top_k": 10}})["fastscorecam"].passes == 10
    assert estimate_cost(random_resnet, "fastscorecam", "layer4",  # above the layer's 2048 channels: all of them
                         options={"fastscorecam": {"top_k": 5000}})["fastscorecam"].passes == 2048
