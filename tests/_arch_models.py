"""Random-weight models of the representative families, small inputs, built once per session."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
import torchvision.models as tvm
from _deps import need

#: name -> (builder, input size). Every model is in eval mode with random weights.
FAMILIES = {
    "resnet18": (lambda: tvm.resnet18(weights=None), 64),
    "mobilenet_v3_small": (lambda: tvm.mobilenet_v3_small(weights=None), 64),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(weights=None), 64),
    "densenet121": (lambda: tvm.densenet121(weights=None), 64),
    "vgg11": (lambda: tvm.vgg11(weights=None), 64),
    "convnext_tiny": (lambda: tvm.convnext_tiny(weights=None), 64),
    "regnet_y_400mf": (lambda: tvm.regnet_y_400mf(weights=None), 64),
    "vit_b_16": (lambda: tvm.vit_b_16(weights=None, image_size=64), 64),
    "swin_t": (lambda: tvm.swin_t(weights=None), 64),
    "timm:deit_tiny_distilled_patch16_224": (
        lambda: _timm().create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=64), 64),
    # The register-token recipe of timm's `vit_*_reg4_gap_256` (no class token, 4 registers, average
    # pooling) and a class token plus 4 registers, at ViT-Tiny width.
    "timm:vit_tiny_reg4_gap": (lambda: _timm().create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=64, reg_tokens=4, class_token=False,
        global_pool="avg"), 64),
    "timm:vit_tiny_cls_reg4": (
        lambda: _timm().create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, reg_tokens=4), 64),
}

#: Families whose every candidate layer has an exact (isolated) head.
EXACT_FAMILIES = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "vgg11", "convnext_tiny",
                  "regnet_y_400mf"]


def _timm():
    return need("timm")


@lru_cache(maxsize=None)
def model(name: str) -> torch.nn.Module:
    """The family's model, seeded, in eval mode (shared between tests: never mutate it), with
    logits of order 1 so that comparisons mean something (see `_well_scaled`)."""
    build, _ = FAMILIES[name]
    torch.manual_seed(0)
    return _well_scaled(build(), size(name))


def _well_scaled(m: torch.nn.Module, side: int) -> torch.nn.Module:
    """Random initialisations give some models vanishing logits (torchvision's ViT head is zeros;
    MobileNetV3 and EfficientNet reach 1e-10 on small inputs): give zero weight matrices random
    values and set the batch norms' statistics from two random batches, then switch to eval."""
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0, 0.02)
        for bn in m.modules():
            if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average
        m.train()
        gen = torch.Generator().manual_seed(99)
        for _ in range(2):
            m(torch.randn(4, 3, side, side, generator=gen))
    return m.eval()


def size(name: str) -> int:
    return FAMILIES[name][1]


def image(name: str, seed: int = 1, batch: int = 1) -> torch.Tensor:
    """A random input for the family, different from the probe inputs `head_for` is given."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size(name), size(name), generator=gen)


def no_hooks(module: torch.nn.Module) -> bool:
    """True when no forward (pre-)hook is left on any submodule."""
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in module.modules())


def assert_same(got: torch.Tensor, want: torch.Tensor, rtol: float = 1e-4) -> None:
    """max |got - want| <= rtol * max |want|, for logits of a meaningful size."""
    got, want = got.detach(), want.detach()
    scale = float(want.abs().max())
    assert scale > 1e-3, f"logits too small ({scale:.1e}) for the comparison to mean anything"
    assert got.shape == want.shape
    diff = float((got - want).abs().max())
    assert diff <= rtol * scale, f"max |diff| {diff:.2e} > {rtol} x {scale:.2e}"
