"""The attention methods: explanations made for vision transformers, computed from what one
explained forward recorded (`attention_capture`), for a whole batch at once.

- LeGrad (Bousselham et al. 2024): for each of the last `blocks` blocks, the gradient of that
  block's own class score with respect to its attention, clipped at zero and averaged over heads and
  query tokens; the patch columns are averaged over the blocks. A block's score is the model's own
  head applied to the block's mean token (TorchCAM 0.5's projection: its torchvision ViT rule, the
  mean token through the final norm and the classifier, generalised by letting the mean token stand
  for every token of the model's tail). Equal to TorchCAM's `LeGrad` within float noise.
- Attention rollout (Abnar & Zuidema 2020): per block, the heads fused (mean, max or min), the
  smallest `discard_ratio` of the fused weights dropped (jacobgil/vit-explain's option; the class
  token's attention to itself is kept), the identity added for the residual and the rows
  re-normalised; the blocks' matrices multiplied in order. Class-agnostic.
- Gradient-weighted relevance (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability",
  the self-attention rule): R = I, then R += mean over heads of (dy_t/dA (.) A) clipped at zero, times R,
  block by block, where y_t is the target logit.

Rollout and relevance read the row of the tokens the classifier reads: the rows weighted as the head
pools the last block's tokens (`attention_pooling`, probed once per model): the class token's row for
a class-token classifier, the patch rows' mean for mean pooling (BEiT, CLIP), half the class token's
and half the patches' mean for DINOv2, the class and distillation tokens' mean for distilled DeiT. Nothing here exists in pytorch-grad-cam or in TorchCAM beyond LeGrad on
torchvision ViTs, so it is written here; TorchCAM is the tests' oracle for LeGrad."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from ..errors import InvalidOptionError
from ..models import ModelHandle
from .attention_capture import Captured, Layout, attention_layout

#: Head fusions of attention rollout (jacobgil/vit-explain's choices).
HEAD_FUSIONS = ("mean", "max", "min")


class LeGrad:
    """LeGrad's maps [B, gh, gw] (raw: not normalised)."""

    needs_grad = True

    @staticmethod
    def grid_maps(captured: Captured, layout: Layout, logits: torch.Tensor, targets: torch.Tensor,
                  blocks: int = 4) -> torch.Tensor:
        count = len(layout.sites)
        chosen = range(count - min(blocks, count), count)
        columns = []
        with torch.enable_grad():
            for i in chosen:
                tokens = captured.tokens[i]
                pooled = tokens.mean(dim=1, keepdim=True).expand_as(tokens)
                scores = layout.tail(pooled).float()
                selected = scores.gather(1, targets[:, None]).sum()
                (grad,) = torch.autograd.grad(selected, captured.attentions[i], retain_graph=True)
                columns.append(grad.float().clamp(min=0).mean(dim=(1, 2))[:, layout.prefix:])
        return _grid(torch.stack(columns).mean(dim=0), layout)


class AttentionRollout:
    """Attention rollout's maps [B, gh, gw] (raw)."""

    needs_grad = False

    @staticmethod
    def grid_maps(captured: Captured, layout: Layout, logits: torch.Tensor, targets: torch.Tensor,
                  head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
        with torch.no_grad():
            relevance = None
            for attention in captured.attentions:
                attention = attention.float()
                fused = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1),
                         "min": lambda a: a.amin(dim=1)}[head_fusion](attention)
                if discard_ratio > 0:
                    fused = _discard(fused, discard_ratio)
                eye = torch.eye(fused.shape[-1], device=fused.device, dtype=fused.dtype)
                a = (fused + eye) / 2
                a = a / a.sum(dim=-1, keepdim=True)
                relevance = a if relevance is None else a @ relevance
            return _grid(_read(relevance, layout), layout)


class GradientRelevance:
    """Gradient-weighted attention relevance's maps [B, gh, gw] (raw)."""

    needs_grad = True

    @staticmethod
    def grid_maps(captured: Captured, layout: Layout, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        score = logits.gather(1, targets[:, None]).sum()
        grads = torch.autograd.grad(score, captured.attentions, retain_graph=True)
        relevance = None
        for attention, grad in zip(captured.attentions, grads):
            cam = (grad.float() * attention.detach().float()).clamp(min=0).mean(dim=1)
            if relevance is None:
                relevance = torch.eye(cam.shape[-1], device=cam.device, dtype=cam.dtype).expand_as(cam)
            relevance = relevance + cam @ relevance
        return _grid(_read(relevance, layout), layout)


def _discard(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """`fused` [B, N, N] with each image's smallest `ratio` of weights set to 0, except the class
    token's attention to itself (flat index 0), as vit-explain does."""
    flat = fused.reshape(fused.shape[0], -1).clone()
    k = int(flat.shape[-1] * ratio)
    if k:
        indices = flat.topk(k, dim=-1, largest=False).indices
        kept = torch.where(indices == 0, flat.gather(1, indices), torch.zeros((), dtype=flat.dtype, device=flat.device))
        flat.scatter_(1, indices, kept)
    return flat.reshape(fused.shape)


def _read(relevance: torch.Tensor, layout: Layout) -> torch.Tensor:
    """The row of the tokens the classifier reads: the rows weighted by `layout.weights` (how the
    head pools the last block's tokens), a single row where it reads one token (the class token's)."""
    weights = torch.as_tensor(layout.weights, dtype=relevance.dtype, device=relevance.device)
    read = weights.nonzero().flatten()
    if read.numel() == 1 and float(weights[read[0]]) == 1.0:
        row = relevance[:, int(read[0])]
    else:
        row = torch.einsum("bqk,q->bk", relevance, weights)
    return row[:, layout.prefix:]


def _grid(columns: torch.Tensor, layout: Layout) -> torch.Tensor:
    return columns.reshape(columns.shape[0], *layout.grid)


def check_applies(handle: ModelHandle, titles: Sequence[str]) -> None:
    """Raise `InvalidOptionError` (one sentence) when attention methods named by `titles` cannot run
    on `handle`'s model."""
    if not titles:
        return
    reason = attention_layout(handle).reason
    if reason:
        names = " and ".join(titles) if len(titles) < 3 else ", ".join(titles[:-1]) + f" and {titles[-1]}"
        verb = "needs" if len(titles) == 1 else "need"
        raise InvalidOptionError(f"{names} {verb} a vision transformer with global self-attention; {reason}.")


def grid_maps(cam_class: type, captured: Captured, layout: Layout, logits: torch.Tensor, targets: Sequence[int],
              options: Optional[dict] = None) -> torch.Tensor:
    """The raw maps [B, gh, gw] of one attention method for the recorded batch."""
    index = torch.as_tensor(list(targets), device=logits.device, dtype=torch.long)
    return cam_class.grid_maps(captured, layout, logits, index, **(options or {}))


__all__ = ["AttentionRollout", "GradientRelevance", "HEAD_FUSIONS", "LeGrad", "check_applies",
           "grid_maps"]
