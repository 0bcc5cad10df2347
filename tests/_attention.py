"""Shared helpers of the attention tests: a batch of photos, xai_core's raw attention maps, and the
tests' own oracles (attention computed from a timm block's weights, rollout from the paper)."""

from __future__ import annotations

import numpy as np
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


def max_diff(a, b) -> float:
    """The largest absolute difference of two maps (tensors or arrays of one shape), in float64."""
    a, b = (v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v)) for v in (a, b))
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.double() - b.double()).abs().max())


def timm_attentions(model, x) -> list[torch.Tensor]:
    """Each block's softmax(q k^T * scale) [B, heads, N, N], computed here from the block's own qkv
    projection and q/k norms, with the model's fused attention left as it is."""
    inputs = []
    hooks = [b.attn.register_forward_pre_hook(lambda m, args: inputs.append(args[0])) for b in model.blocks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    attentions = []
    with torch.no_grad():
        for block, tokens in zip(model.blocks, inputs):
            attn, (b, n, _) = block.attn, tokens.shape
            q, k, _ = attn.qkv(tokens).reshape(b, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            q, k = attn.q_norm(q), attn.k_norm(k)
            attentions.append((q * attn.scale @ k.transpose(-2, -1)).softmax(dim=-1))
    return attentions


def reference_rollout(attentions, prefix: int, grid, head_fusion: str, discard_ratio: float,
                      read=lambda rollout: rollout[0]) -> torch.Tensor:
    """Abnar & Zuidema's attention rollout in float64, one image at a time, with vit-explain's discard
    (the smallest share of the fused N x N weights set to 0, except flat index 0); `read` takes the
    row the classifier reads (default: the class token's), whose patch columns are the map."""
    maps = []
    for i in range(attentions[0].shape[0]):
        n = attentions[0].shape[-1]
        result = torch.eye(n, dtype=torch.float64)
        for attention in attentions:
            heads = attention[i].detach().double()
            fused = {"mean": heads.mean(0), "max": heads.max(0).values, "min": heads.min(0).values}[head_fusion]
            flat = fused.reshape(-1).clone()
            k = int(flat.numel() * discard_ratio)
            if k:
                order = flat.argsort()[:k]
                flat[order[order != 0]] = 0
            a = (flat.reshape(n, n) + torch.eye(n, dtype=torch.float64)) / 2
            a = a / a.sum(dim=-1, keepdim=True)
            result = a @ result
        maps.append(read(result)[prefix:].reshape(grid))
    return torch.stack(maps)
