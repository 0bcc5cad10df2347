"""A CNN against a vision transformer: an attention method runs on the transformer only (the CNN's
map None, a note saying why), Grad-CAM on both; an attention method alone still gives the CNN's
predictions; one that applies to neither model is one sentence; two transformers compare their
attention maps."""

from __future__ import annotations

import pytest
import torch

import xai_core
from _hf import save_tiny_vit
from conftest import IMAGES
from xai_core.errors import InvalidOptionError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = ["ant", "bee", "cat"]
CAT = IMAGES / "cat.png"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = save_tiny_vit(tmp_path_factory.mktemp("compare_vit") / "vit", labels=LABELS, initializer_range=0.2)
    vit = xai_core.load_model(f"hf:{folder}", device="cpu")
    torch.manual_seed(0)
    cnn = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", labels=LABELS, input_size=32)
    return cnn, vit


def test_an_attention_method_runs_on_the_transformer_only(models):
    cnn, vit = models
    result = xai_core.compare_models(cnn, vit, CAT, ("gradcam", "rollout"))
    rollout = result.methods["rollout"]
    assert rollout.map_a is None and rollout.map_b is not None and rollout.map_b.shape == (32, 32)
    assert rollout.difference is None and rollout.spearman is None and rollout.top_iou is None
    assert rollout.note.startswith("Attention rollout ran on model B only: it does not apply to model A (")
    assert rollout.note.count(". ") == 0 and rollout.note in result.notes
    assert result.verdict("rollout") == rollout.note
    assert result.methods["gradcam"].map_a is not None and result.methods["gradcam"].spearman is not None
    assert "rollout" not in result.explanation_a.maps and result.target_label_a == result.target_label_b


def test_an_attention_method_alone_and_one_for_neither(models):
    cnn, vit = models
    result = xai_core.compare_models(vit, cnn, CAT, "rollout", target="bee")
    assert result.methods["rollout"].map_b is None and result.explanation_b.maps == {}
    assert result.target_label_b == "bee" and len(result.top_b) == 3 and 0 < result.probability_b < 1
    assert result.top_b[0][2] == max(p for _, _, p in result.top_b)
    with pytest.raises(InvalidOptionError, match="applies to neither model") as refused:
        xai_core.compare_models(cnn, cnn, CAT, "legrad")
    assert str(refused.value).count(". ") == 0


def test_two_transformers_compare_their_attention_maps(models, tmp_path):
    """Both models transformers: every attention method gives both maps and their agreement; a ViT
    against itself agrees exactly, against another draw of its weights it does not."""
    _, vit = models
    other = xai_core.load_model(f"hf:{save_tiny_vit(tmp_path / 'vit2', labels=LABELS, seed=1, initializer_range=0.2)}",
                                device="cpu")
    methods = ("rollout", "legrad", "gradcam")
    same = xai_core.compare_models(vit, vit, CAT, methods)
    for method in methods:
        compared = same.methods[method]
        assert compared.map_a is not None and compared.map_b is not None and compared.note is None
        assert compared.spearman == 1.0 and compared.top_iou == 1.0 and not compared.difference.any()
    redrawn = xai_core.compare_models(vit, other, CAT, methods)
    for method in methods:
        compared = redrawn.methods[method]
        assert compared.map_a is not None and compared.map_b is not None and compared.spearman < 1.0
        assert compared.difference.shape == compared.map_a.shape and compared.difference.any()
