"""`reshape_transform`s for vision transformers, inferred from a traced forward pass.

A token layer's output [B, N, C] holds `prefix` class/distillation/register tokens and then a
gh x gw grid of patch tokens; a channels-last layer (Swin) outputs [B, H, W, C]. Both become the
[B, C, H, W] maps pytorch-grad-cam expects, exactly as its tutorials' hand-written transforms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from ._trace import Trace
from .layers import is_channels_last_norm

#: How many times the patch grid may have been halved (pooling ViTs) before a token layer.
_MAX_HALVINGS = 5


@dataclass(frozen=True)
class TokenGrid:
    """[B, prefix + height * width, C] -> [B, C, height, width], dropping the prefix tokens."""

    prefix: int
    height: int
    width: int

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        grid = tensor[:, self.prefix:, :].reshape(tensor.size(0), self.height, self.width, tensor.size(2))
        return grid.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class ChannelsLast:
    """[B, H, W, C] -> [B, C, H, W]."""

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.permute(0, 3, 1, 2)


def patch_grid(model: nn.Module, trace: Trace) -> Optional[tuple[int, int]]:
    """(gh, gw) of the patch embedding: the output of the first convolution whose stride equals
    its kernel size (> 1), else the input size over a `patch_size` attribute; None if neither."""
    for call in trace.calls:
        mod = model.get_submodule(call.path)
        if isinstance(mod, nn.Conv2d) and mod.kernel_size == mod.stride and max(mod.stride) > 1:
            if call.output_shape is not None and len(call.output_shape) == 4:
                return call.output_shape[2], call.output_shape[3]
    for owner in (model, getattr(model, "patch_embed", None)):
        size = getattr(owner, "patch_size", None)
        if size is not None:
            ph, pw = (size, size) if isinstance(size, int) else tuple(size)[:2]
            return trace.input_shape[2] // ph, trace.input_shape[3] // pw
    return None


def infer_reshape(model: nn.Module, trace: Trace, path: str) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """The `reshape_transform` for the layer at `path`: None for a [B, C, H, W] layer,
    `ChannelsLast` for a LayerNorm's [B, H, W, C] output, `TokenGrid` for [B, N, C] tokens.
    Raises ValueError when a token layer's grid cannot be inferred."""
    shape = trace.call(path).output_shape
    if shape is None:
        raise ValueError(f"Layer {path!r} does not output a tensor.")
    if len(shape) == 4:
        return ChannelsLast() if is_channels_last_norm(model.get_submodule(path)) else None
    if len(shape) != 3:
        raise ValueError(f"Layer {path!r} outputs shape {shape}; a target layer needs [B, C, H, W] or [B, N, C].")
    grid = patch_grid(model, trace)
    if grid is None:
        raise ValueError(f"Cannot find the patch grid of layer {path!r}'s {shape[1]} tokens.")
    tokens = shape[1]
    gh, gw = grid
    for _ in range(_MAX_HALVINGS + 1):
        if 0 <= tokens - gh * gw < gh * gw:
            return TokenGrid(tokens - gh * gw, gh, gw)
        gh, gw = (gh + 1) // 2, (gw + 1) // 2
    raise ValueError(f"Layer {path!r}'s {tokens} tokens do not fit the {grid[0]}x{grid[1]} patch grid.")
