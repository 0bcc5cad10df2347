"""Shared helpers of the attention tests: a batch of photos, and xai_core's raw attention maps."""

from __future__ import annotations

import torch

import xai_core
from xai_core.methods.attention import grid_maps
from xai_core.methods.attention_capture import attention_layout, capturing


def batch_of(handle, pictures, count: int = 1) -> torch.Tensor:
    """The model inputs of the first `count` of `pictures`, as one batch."""
    return torch.cat([handle.preprocess(xai_core.load_image(p)) for p in pictures[:count]])


def record(handle, x):
    """One forward of `x` recorded by xai_core's capture: (captured, layout, logits)."""
    layout = attention_layout(handle)
    with capturing(handle.module, layout.sites) as captured, torch.enable_grad():
        logits = handle.module(x.detach().requires_grad_(True))
    return captured, layout, logits


def ours(handle, cam_class, x, targets, options=None) -> torch.Tensor:
    """xai_core's raw grid maps [B, gh, gw] for `x`."""
    return grid_maps(cam_class, *record(handle, x), targets, options).detach()
