"""No per-model cache keeps its model alive: after a model is used (the attention methods, Grad-CAM,
the cost estimate, the faithfulness estimate and the sanity check's randomized copy) and its handle
is dropped, the module is freed, for an `hf:` folder (loaded three times), timm's distilled DeiT
(whose head is timm's `forward_head`) and torchvision's ViT. Every cache is a WeakKeyDictionary keyed
by the module: a value that referenced its key (the attention layout's tail did) kept it forever."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

import xai_core
from _hf import save_tiny_vit
from _deps import need
from conftest import IMAGES
from xai_core.faithfulness.estimate import estimate_evaluation_seconds, observe_evaluation
from xai_core.faithfulness.sanity import randomized_handle
from xai_core.models.architecture import head_for, probe_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PICTURE = IMAGES / "cat.png"
METHODS = ["rollout", "legrad", "relevance", "gradcam"]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return save_tiny_vit(tmp_path_factory.mktemp("hf_free") / "vit", classes=5)


def _use(handle) -> list:
    """Use the model as the app does; weak references to its module and its randomized copy."""
    result = xai_core.explain(handle, PICTURE, methods=METHODS, target=1)
    xai_core.estimate_cost(handle, METHODS)
    observe_evaluation(handle, result, 4, (50,), 4, {"deletion_insertion": 0.1, "road": 0.1, "sanity": 0.1}, True)
    estimate_evaluation_seconds(handle, result, steps=4, sanity=True)
    randomized = randomized_handle(handle, list(result.layers))
    xai_core.explain(randomized, PICTURE, methods=METHODS, target=1)
    return [weakref.ref(handle.module), weakref.ref(randomized.module)]


def _freed(refs: list) -> bool:
    gc.collect()
    return all(ref() is None for ref in refs)


def test_an_hf_model_loaded_three_times_is_freed_each_time(hf_folder):
    refs = []
    for _ in range(3):
        handle = xai_core.load_model(f"hf:{hf_folder}", device="cpu")
        refs += _use(handle)
        del handle
    assert _freed(refs)


@pytest.mark.parametrize("name", ["timm:deit_tiny_distilled_patch16_224", "torchvision:vit_b_16"])
def test_a_timm_or_torchvision_vit_is_freed(name):
    if name.startswith("timm:"):
        need("timm")
    torch.manual_seed(0)
    handle = xai_core.load_model(name, weights=None, device="cpu", input_size=32)
    refs = _use(handle)
    del handle
    assert _freed(refs)


class _NoIsolation(torch.nn.Module):
    """Only a whole-model replay can serve as this model's head."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x) * (2 + x.mean())


def test_a_weak_replay_head_gives_the_same_logits_and_frees_its_model():
    import torchvision
    torch.manual_seed(0)
    model = _NoIsolation(torchvision.models.resnet18(num_classes=5)).eval()
    x = probe_input(model, (32, 32))
    head = head_for(model, "m.layer3", x)
    assert not head.exact
    weak = head.weakly()
    activations = torch.randn(1, 256, 2, 2)
    with torch.no_grad():
        assert torch.equal(weak(activations), head(activations))
    ref = weakref.ref(model)
    del model, head
    assert _freed([ref])
    with pytest.raises(ReferenceError):
        weak(activations)
