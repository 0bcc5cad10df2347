"""Candidate target layers and the default one, found from a traced forward pass.

Transformers (a module with an attention child is a block): each block's first normalisation,
pytorch-grad-cam's advice (`blocks[-1].norm1` for ViT, `layers[-1].blocks[-1].norm1` for Swin).
CNNs: the blocks of the spatial "spine" (modules with a 4-D output before the global pooling),
found by expanding the root's children until the list is at block level."""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

from torch import nn

from ._trace import Call, Trace, parent_path

#: Expand containers until at least this many block-level layers are listed.
MIN_BLOCKS = 3

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU, nn.Mish, nn.PReLU)


def is_attention(module: nn.Module) -> bool:
    """True for `nn.MultiheadAttention` and any module class named '...Attention' (timm's
    `Attention`, torchvision's `ShiftedWindowAttention`, ...)."""
    return isinstance(module, nn.MultiheadAttention) or type(module).__name__.endswith("Attention")


def is_norm(module: nn.Module) -> bool:
    """True for normalisation layers (LayerNorm, LayerNorm2d, RMSNorm, BatchNorm, GroupNorm...)."""
    return "Norm" in type(module).__name__ and not isinstance(module, nn.Identity)


def is_channels_last_norm(module: nn.Module) -> bool:
    """True for a `nn.LayerNorm` (or subclass named 'LayerNorm'), which normalises the last
    dimension: a 4-D output of it is [B, H, W, C]."""
    return isinstance(module, nn.LayerNorm) and type(module).__name__ in ("LayerNorm", "LayerNormFp32")


def _is_global_pool(module: nn.Module, call: Call) -> bool:
    name = type(module).__name__
    if "Adaptive" in name or "GlobalPool" in name:
        return True
    i, o = call.input_shape, call.output_shape
    return "Pool" in name and i is not None and o is not None and len(i) == 4 and (
        len(o) == 2 or (len(o) == 4 and o[2] * o[3] == 1 < i[2] * i[3])
    )


def transformer_layers(model: nn.Module, trace: Trace) -> list[str]:
    """For every transformer block (parent of an attention module), in forward order: its first
    child to run if that is a normalisation, else the block itself. Empty for a CNN."""
    blocks: list[str] = []
    for call in trace.calls:
        if call.path and is_attention(model.get_submodule(call.path)):
            block = parent_path(call.path)
            if block and block not in blocks and not is_attention(model.get_submodule(block)):
                blocks.append(block)
    found = []
    for block in blocks:
        kids = trace.children_calls(block)
        first = kids[0].path if kids else None
        if first and trace.count(first) == 1 and is_norm(model.get_submodule(first)):
            found.append(first)
        elif trace.count(block) == 1:
            found.append(block)
    return found


def _called_children(trace: Trace, parent: str) -> list[Call]:
    """Calls of the modules directly under `parent`, looking through containers that are never
    called themselves (a `ModuleList` of stages), in start order."""
    called = {c.path for c in trace.calls}

    def under(path: str) -> bool:
        above = parent_path(path)
        while above != parent:
            if not above or above in called:
                return False
            above = parent_path(above)
        return True

    return [c for c in trace.calls if c.path and c.path != parent and under(c.path)]


def cnn_layers(model: nn.Module, trace: Trace) -> list[str]:
    """Block-level modules of the spatial spine, in forward order; the last is the default."""
    pools = [c for c in trace.calls if c.path and _is_global_pool(model.get_submodule(c.path), c)]
    head_start = pools[-1].start if pools else float("inf")

    def spatial(call: Call) -> bool:
        shape = call.output_shape
        return (shape is not None and len(shape) == 4 and call.end < head_start and trace.count(call.path) == 1
                and not _is_global_pool(model.get_submodule(call.path), call))

    def kids(path: str) -> list[str]:
        found = []
        for call in _called_children(trace, path):
            if spatial(call):
                found.append(call.path)
            elif call.output_shape is None and trace.count(call.path) == 1 and container(call.path):
                found += kids(call.path)  # a wrapper returning a structure (Hugging Face's ModelOutput)
        return found

    def container(path: str) -> bool:
        return any(True for _ in model.get_submodule(path).children())

    level = kids("")
    while sum(map(container, level)) < MIN_BLOCKS:
        expandable = [p for p in level if container(p) and len(kids(p)) >= 2]
        if not expandable:
            break
        biggest = max(expandable, key=lambda p: sum(q.numel() for q in model.get_submodule(p).parameters()))
        i = level.index(biggest)
        level[i:i + 1] = kids(biggest)
    if not level:
        return []
    keep = [p for p in level if container(p)] or [
        p for p in level if isinstance(model.get_submodule(p), _ACTIVATIONS)
    ]
    if level[-1] not in keep:
        keep.append(level[-1])
    return keep


def candidate_layers(model: nn.Module, trace: Trace) -> tuple["OrderedDict[str, nn.Module]", Optional[str], bool]:
    """(layers {path: module} in forward order, the default layer's path, whether the model is a
    transformer). The default is the last candidate: a transformer's last block normalisation, a
    CNN's last block before global pooling. Layers is empty (default None) when none is found."""
    paths = transformer_layers(model, trace)
    transformer = bool(paths)
    if not paths:
        paths = cnn_layers(model, trace)
    layers = OrderedDict((p, model.get_submodule(p)) for p in paths)
    return layers, (paths[-1] if paths else None), transformer
