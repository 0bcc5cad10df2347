"""What a model's architecture offers an explanation: its candidate target layers and default
layer, the `reshape_transform` of each (vision transformers), and the head after a layer.

    arch = describe(model, (224, 224))      # one traced forward pass
    arch.layers, arch.default_layer, arch.reshape_transforms[arch.default_layer]
    head = head_for(model, arch.default_layer, probe_input(model, (224, 224)))
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from ._trace import Trace, probe_input, trace
from .heads import Head, head_for
from .layers import candidate_layers
from .reshape import ChannelsLast, TokenGrid, infer_reshape

#: Input size used when none is given (the usual ImageNet crop).
DEFAULT_INPUT_SIZE = (224, 224)


@dataclass(frozen=True, eq=False)
class Architecture:
    """Candidate target layers {path: module} in forward order, the default one, whether the
    model is a transformer, and each layer's `reshape_transform` (None for [B, C, H, W] layers),
    valid for `input_size`."""

    layers: "OrderedDict[str, nn.Module]"
    default_layer: str
    transformer: bool
    reshape_transforms: Mapping[str, Optional[Callable[[torch.Tensor], torch.Tensor]]]
    input_size: tuple[int, int]
    trace: Trace


def describe(model: nn.Module, input_size: Sequence[int] = DEFAULT_INPUT_SIZE) -> Architecture:
    """Trace one forward pass of `model` (in eval mode) on a random [1, 3, H, W] input and return
    its `Architecture`. Raises ValueError when the model is training or no target layer is found
    (the model's own errors, e.g. an input size it rejects, propagate)."""
    if model.training:
        raise ValueError("Put the model in eval mode before describing it.")
    size = (int(input_size[0]), int(input_size[1]))
    rec = trace(model, probe_input(model, size))
    layers, default, transformer = candidate_layers(model, rec)
    if default is None:
        raise ValueError(f"No target layer found in {type(model).__name__}: no block with a spatial or token output.")
    reshapes = {path: infer_reshape(model, rec, path) for path in layers}
    return Architecture(layers, default, transformer, reshapes, size, rec)


__all__ = ["Architecture", "describe", "head_for", "Head", "probe_input", "trace", "infer_reshape",
           "TokenGrid", "ChannelsLast"]
