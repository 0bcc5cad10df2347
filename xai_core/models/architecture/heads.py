"""The head after a target layer: a callable mapping the layer's activations to the logits.

Exact isolations are tried level by level up the module tree (the children a container runs after
the layer's branch, with the usual functional glue: flatten, global average pooling, ReLU, class
token, timm's `forward_head`) and each is accepted only if it reproduces the container's own output
on a probe input. Where no isolation reaches the logits, the head *replays* the lowest ancestor
that has one, with the layer's output replaced by the given activations (a scoped forward hook):
slower, correct by construction, and also checked. A wrong head is never returned."""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._trace import Trace, ancestors, parent_path, trace

#: A candidate is accepted when max |candidate - reference| <= RTOL * max |reference| + ATOL.
RTOL, ATOL = 1e-4, 1e-30
#: What a candidate that does not fit raises (AttributeError: a tensor step given a structured output,
#: e.g. Hugging Face's ModelOutput).
_TRIAL_ERRORS = (RuntimeError, TypeError, ValueError, IndexError, AttributeError)


class _GlobalAvgPool(nn.Module):
    """[B, C, H, W] -> [B, C] mean over space (functional pooling in a model's `forward`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


class _Relu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class _ClassToken(nn.Module):
    """[B, N, C] -> [B, C]: the first token (torchvision's ViT: `x[:, 0]` before `heads`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class _ForwardHead(nn.Module):
    """timm's `model.forward_head`; the model (or a weak reference to it: `Head.weakly`) is held
    without being registered as a child."""

    def __init__(self, model) -> None:
        super().__init__()
        self.__dict__["_model"] = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _held(self.__dict__["_model"]).forward_head(x)


def _held(model) -> nn.Module:
    """`model`, or the model a weak reference points to (ReferenceError once it is freed)."""
    if isinstance(model, weakref.ref):
        model = model()
        if model is None:
            raise ReferenceError("the model of this head has been freed")
    return model


def _weak(module):
    """`module` with every reference to the whole model made weak (`Head.weakly`)."""
    if isinstance(module, _ForwardHead):
        held = module.__dict__["_model"]
        return _ForwardHead(held if isinstance(held, weakref.ref) else weakref.ref(held))
    if isinstance(module, _Replay):
        weak = copy.copy(module)
        weak.model = module.model if isinstance(module.model, weakref.ref) else weakref.ref(module.model)
        weak.tail = _weak(module.tail)
        return weak
    if isinstance(module, nn.Sequential):
        children = [_weak(child) for child in module]
        changed = any(a is not b for a, b in zip(children, module))
        return nn.Sequential(*children) if changed else module
    return module


@dataclass(frozen=True, eq=False)
class Head:
    """activations -> logits for one layer. `exact`: an isolated tail (`module` is an
    `nn.Sequential`); else a replay of `replay_from` ('' = whole model) on the bound input.
    `gap_linear`: `module` is Sequential(AdaptiveAvgPool2d(1), Flatten, Linear) (Grad-CAM == HiResCAM).
    `after`: the parameterised leaf modules that run after the layer (what a sanity check
    re-initialises)."""

    module: Callable[[torch.Tensor], torch.Tensor]
    layer: str
    exact: bool
    gap_linear: bool
    replay_from: Optional[str]
    after: tuple

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        return self.module(activations)

    def weakly(self) -> "Head":
        """This head holding the whole model only by weak reference (its layers, children of the
        model, are held as before), for a cache keyed by the model: the cache must not keep its
        key alive. Calling it after the model is freed raises ReferenceError."""
        return replace(self, module=_weak(self.module))

    def bind(self, model: nn.Module, x: torch.Tensor) -> "Head":
        """This head for activations computed from input `x` (an exact head ignores the input, a
        replay head re-captures its anchor's inputs: one forward). Returns a new `Head`."""
        if self.exact:
            return self
        rec = trace(model, x, capture=[self.replay_from])
        old: _Replay = self.module  # type: ignore[assignment]
        inputs = rec.inputs[self.replay_from]
        return replace(self, module=_Replay(model, self.layer, self.replay_from, old.tail, inputs, x.shape[0]))


class _Replay:
    """Runs `anchor` on its captured inputs (repeated to the activations' batch size) with the
    layer's output replaced by the activations, then the anchor's exact tail."""

    def __init__(self, model: nn.Module, layer: str, anchor: str, tail: nn.Module, inputs: tuple, batch: int) -> None:
        self.model, self.layer, self.anchor, self.tail = model, layer, anchor, tail
        self.args, self.kwargs = inputs
        self.batch = batch

    def _batched(self, value: object, n: int) -> object:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == self.batch and n != self.batch:
            if self.batch != 1:
                raise ValueError(f"Bind the head to one sample: it holds {self.batch} and got {n} activations.")
            return value.expand(n, *value.shape[1:]).clone()
        return value

    def __call__(self, activations: torch.Tensor) -> torch.Tensor:
        n = activations.shape[0]
        args = tuple(self._batched(a, n) for a in self.args)
        kwargs = {k: self._batched(v, n) for k, v in self.kwargs.items()}
        owner = threading.get_ident()

        def swap(module, inputs, output):
            if threading.get_ident() != owner:
                return None
            if not isinstance(output, torch.Tensor) or output.shape != activations.shape:
                raise ValueError(f"Layer {self.layer!r} outputs {getattr(output, 'shape', type(output))}; "
                                 f"got activations of shape {tuple(activations.shape)}.")
            return activations.clone()

        model = _held(self.model)
        handle = model.get_submodule(self.layer).register_forward_hook(swap)
        try:
            out = model.get_submodule(self.anchor)(*args, **kwargs)
        finally:
            handle.remove()
        return self.tail(out)


def _close(got: object, want: object) -> bool:
    if not isinstance(got, torch.Tensor) or not isinstance(want, torch.Tensor) or got.shape != want.shape:
        return False
    if want.numel() == 0:
        return True
    tolerance = RTOL * float(want.abs().max()) + ATOL
    return bool(torch.isfinite(got).all()) and float((got - want).abs().max()) <= tolerance


def _try(step: Callable, x: torch.Tensor, want: object) -> bool:
    """Whether `step(x)` reproduces `want`; a step that raises does not fit the architecture."""
    try:
        with torch.no_grad():
            got = step(x)
    except _TRIAL_ERRORS:
        return False  # the candidate is rejected, never used
    return _close(got, want)


def _with_flatten(mods: list, after_pool: bool) -> list:
    for i, m in enumerate(mods):
        if after_pool and "Pool" in type(m).__name__:
            return mods[:i + 1] + [nn.Flatten(1)] + mods[i + 1:]
        if not after_pool and isinstance(m, nn.Linear):
            return mods[:i] + [nn.Flatten(1)] + mods[i:]
    return mods


def _level_candidates(model: nn.Module, rec: Trace, child: str) -> list[list[nn.Module]]:
    """Ways the parent of `child` may map the child's output to the parent's output."""
    parent = parent_path(child)
    end = rec.call(child).end
    later = [model.get_submodule(c.path) for c in rec.children_calls(parent) if c.start > end]
    cands = [later, _with_flatten(later, True), _with_flatten(later, False),
             [_GlobalAvgPool()] + later, [_Relu(), _GlobalAvgPool()] + later, [_ClassToken()] + later]
    if parent == "" and callable(getattr(model, "forward_head", None)):
        cands += [later[:j] + [_ForwardHead(model)] for j in range(len(later) + 1)]
    return cands


def _tails(model: nn.Module, rec: Trace, layer: str) -> dict:
    """{path: list of modules mapping that module's output to logits, or None}, for `layer` and
    its ancestors; the root's tail is empty. Each level is checked against the probe's outputs."""
    chain = ancestors(layer)
    tails: dict = {"": []}
    for child in reversed(chain[:-1]):
        above = tails[parent_path(child)]
        tails[child] = None
        if above is None or rec.count(child) != 1 or rec.count(parent_path(child)) != 1:
            continue
        want = rec.outputs[parent_path(child)] if parent_path(child) else rec.logits
        for cand in _level_candidates(model, rec, child):
            if _try(nn.Sequential(*cand), rec.outputs[child], want):
                tails[child] = cand + above
                break
    return tails


def _flat(mods: list) -> list:
    out = []
    for m in mods:
        if type(m) is nn.Sequential:
            out.extend(_flat(list(m)))
        elif not isinstance(m, (nn.Identity, nn.Dropout)):
            out.append(m)
    return out


def _gap_linear(mods: list) -> Optional[nn.Sequential]:
    """Sequential(AdaptiveAvgPool2d(1), Flatten, Linear) when `mods` is avg-pool (+ flatten) +
    Linear: `[0]` keeps [B, C, 1, 1], as HeadAblationCAM's pooled ablation expects."""
    flat = [m for m in _flat(mods) if not isinstance(m, nn.Flatten)]
    if len(flat) != 2 or not isinstance(flat[1], nn.Linear):
        return None
    pool = flat[0]
    avg = isinstance(pool, _GlobalAvgPool) or (
        isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size in (1, (1, 1))
    ) or (type(pool).__name__ == "SelectAdaptivePool2d" and getattr(pool, "pool_type", None) == "avg")
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), flat[1]) if avg else None


def head_for(model: nn.Module, layer: str, probe_input: torch.Tensor) -> Head:
    """The `Head` of `layer` (a module path), bound to `probe_input` (matters only for a replay head:
    `bind` it to the input whose activations it will get). Raises ValueError when the model is in
    training mode, the layer does not run exactly once, or no head reproduces the logits."""
    if model.training:
        raise ValueError("Put the model in eval mode before building a head.")
    chain = ancestors(layer)
    rec = trace(model, probe_input, capture=chain)
    call = rec.call(layer)
    acts = rec.outputs[layer]
    after = tuple(dict.fromkeys(
        m for c in rec.calls if c.start > call.end and c.path
        for m in [model.get_submodule(c.path)] if any(True for _ in m.parameters(recurse=False))
    ))
    tails = _tails(model, rec, layer)
    if tails[layer] is not None:
        gap = _gap_linear(tails[layer])
        if gap is not None and _try(gap, acts, rec.logits):
            return Head(gap, layer, True, True, None, after)
        module = nn.Sequential(*tails[layer])
        if _try(module, acts, rec.logits):
            return Head(module, layer, True, False, None, after)
    single = probe_input.shape[0] == 1 and isinstance(rec.logits, torch.Tensor)
    for anchor in chain[1:]:
        if tails[anchor] is None or rec.count(anchor) != 1:
            continue
        replay = _Replay(model, layer, anchor, nn.Sequential(*tails[anchor]), rec.inputs[anchor], probe_input.shape[0])
        if _try(replay, acts, rec.logits) and (
            not single or _try(replay, torch.cat([acts, acts]), torch.cat([rec.logits, rec.logits]))
        ):
            return Head(replay, layer, False, False, anchor, after)
    raise ValueError(f"No head after layer {layer!r} reproduces the model's output; choose another layer.")
