"""How a vision transformer's head pools its last block's tokens: one weight per token, probed once.

Classifiers read different tokens: the class token (ViT, DeiT), the mean of the patch tokens (BEiT
and data2vec-vision with mean pooling, CLIP's image classifier, timm's `global_pool="avg"`), the
class token joined with the patch mean (DINOv2), or the mean of two heads on the class and
distillation tokens (distilled DeiT). Attention rollout and gradient-weighted relevance read the
matching weighted sum of rows, so the weights are measured on the model rather than assumed.

The probe: the model's tail (last block's tokens -> logits) applied to tokens that are all equal (the
probe image's mean token), and `f`, the input of the classifier (every `nn.Linear` of the tail that
outputs [B, classes]; their inputs joined; the logits where there is none).
A token's weight is the Frobenius norm of the Jacobian d f / d token, normalised over tokens. For a
head that maps every token through the same function (a final norm) and then pools linearly (class
token, mean, concatenation of both, average of heads) this is exact: equal tokens make that function's
Jacobian the same for every token, so the norms are the pooling coefficients (concatenating the class
token with the patch mean gives 1/2 and 1/2 spread over the patches). Nothing in PyTorch, timm or
transformers reports how a head pools, so this is written here."""

from __future__ import annotations

import threading
from typing import Callable, Optional

import torch
from torch import nn

#: Jacobian rows computed per batched backward (`is_grads_batched`).
_CHUNK = 128


def token_weights(model: nn.Module, tail: Callable, tokens: torch.Tensor) -> Optional[tuple]:
    """The weight (summing to 1) of each of the N tokens of the last attention block, as the head
    pools them: `tail` maps that block's tokens [B, N, D] to the logits (the layout's, checked to
    reproduce them), `tokens` are the block's tokens on the probe input (its first image is used).
    None when the classifier's input does not depend on them. Raises what the model's code raises."""
    owner = threading.get_ident()
    equal = tokens[:1].detach().mean(dim=1, keepdim=True).expand_as(tokens[:1]).clone().requires_grad_(True)
    features: list = []

    def record(module, inputs, output):
        if threading.get_ident() == owner and isinstance(output, torch.Tensor) and output.dim() == 2:
            features.append((inputs[0], output))

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.enable_grad():
            logits = tail(equal)
    finally:
        for hook in hooks:
            hook.remove()
    heads = [i for i, o in features if o.shape == logits.shape and i.requires_grad]
    f = torch.cat([i.flatten(1) for i in heads], dim=1) if heads else logits
    norms = _jacobian_norms(f.float(), equal)
    total = float(norms.sum())
    if not total > 0:
        return None
    return tuple(float(w) for w in norms / total)


def _jacobian_norms(f: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """[N]: per token, the Frobenius norm of d f / d token, averaged over the batch."""
    batch, width = f.shape
    squared = torch.zeros(tokens.shape[:2], dtype=torch.float64, device=tokens.device)
    eye = torch.eye(width, dtype=f.dtype, device=f.device)
    for start in range(0, width, _CHUNK):
        rows = eye[start:start + _CHUNK]  # [c, F]
        cotangents = rows[:, None, :].expand(rows.shape[0], batch, width)
        try:
            (grads,) = torch.autograd.grad(f, tokens, cotangents, retain_graph=True, is_grads_batched=True,
                                           allow_unused=True)
        except RuntimeError:  # an op without a batching rule: one backward per row
            grads = [torch.autograd.grad(f, tokens, c, retain_graph=True, allow_unused=True)[0] for c in cotangents]
            grads = None if grads[0] is None else torch.stack(grads)
        if grads is not None:
            squared += torch.linalg.vector_norm(grads, dim=(0, 3)).double().square()  # one pass, no copy
    return squared.sqrt().mean(dim=0)


__all__ = ["token_weights"]
