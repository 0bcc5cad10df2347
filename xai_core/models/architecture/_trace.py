"""One traced forward pass: every module call in order, with input and output shapes, and on
request the (cloned) inputs and outputs of a few modules. Hooks are removed on exit, also on error."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class Call:
    """One call of a submodule. `start`/`end` number the pre-hook and the hook of every call in one
    sequence, so a call nests inside another when it starts after it and ends before it."""

    path: str
    start: int
    end: int
    input_shape: Optional[tuple[int, ...]]
    output_shape: Optional[tuple[int, ...]]


@dataclass(frozen=True, eq=False)
class Trace:
    """What `trace` recorded. `calls` are in start order; `outputs[path]` and `inputs[path]`
    (args, kwargs) exist for the captured paths, cloned so later in-place ops cannot change them."""

    input_shape: tuple[int, ...]
    calls: tuple[Call, ...]
    #: The model's output on the traced input (cloned).
    logits: object = None
    outputs: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)

    def count(self, path: str) -> int:
        """How many times the module at `path` ran."""
        return sum(1 for c in self.calls if c.path == path)

    def call(self, path: str) -> Call:
        """The single call of `path`; raises ValueError if it ran never or more than once."""
        found = [c for c in self.calls if c.path == path]
        if len(found) != 1:
            raise ValueError(f"Module {path!r} ran {len(found)} times in one forward pass, not once.")
        return found[0]

    def children_calls(self, parent: str) -> list[Call]:
        """Calls of the direct children of `parent`, in start order."""
        return [c for c in self.calls if c.path != parent and parent_path(c.path) == parent]


def parent_path(path: str) -> str:
    """'a.b.c' -> 'a.b'; a top-level child's parent is the root ''."""
    return path.rpartition(".")[0]


def ancestors(path: str) -> list[str]:
    """`path` and every module above it, innermost first, ending with the root ''."""
    chain = [path]
    while chain[-1]:
        chain.append(parent_path(chain[-1]))
    return chain


def probe_input(module: nn.Module, input_size: Sequence[int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A reproducible random image batch [batch, 3, H, W] on the module's device and dtype."""
    ref = next(module.parameters(), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *input_size, generator=gen).to(device=device, dtype=dtype)


def _shape(value: object) -> Optional[tuple[int, ...]]:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return None


def _clone(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def trace(module: nn.Module, x: torch.Tensor, capture: Iterable[str] = ()) -> Trace:
    """Run `module(x)` under `torch.no_grad()` with a pre-hook and a hook on every submodule (the
    root is ''), recording each call; the outputs and inputs of the modules in `capture` are kept.
    Only this thread's calls are recorded. Returns a `Trace`; the model's own errors propagate."""
    owner = threading.get_ident()
    wanted = set(capture)
    counter = [0]
    open_calls: dict[str, list] = {}
    done: list[Call] = []
    outputs: dict = {}
    inputs: dict = {}

    def pre(path: str):
        def hook(mod, args, kwargs):
            if threading.get_ident() != owner:
                return None
            open_calls.setdefault(path, []).append((counter[0], _shape(args[0]) if args else None))
            counter[0] += 1
            if path in wanted:
                inputs[path] = (_clone(args), _clone(kwargs))
            return None
        return hook

    def post(path: str):
        def hook(mod, args, output):
            if threading.get_ident() != owner:
                return None
            start, in_shape = open_calls[path].pop()
            done.append(Call(path, start, counter[0], in_shape, _shape(output)))
            counter[0] += 1
            if path in wanted:
                outputs[path] = _clone(output)
            return None
        return hook

    handles = []
    try:
        for path, sub in module.named_modules():
            handles.append(sub.register_forward_pre_hook(pre(path), with_kwargs=True))
            handles.append(sub.register_forward_hook(post(path)))
        with torch.no_grad():
            logits = _clone(module(x))
    finally:
        for handle in handles:
            handle.remove()
    calls = tuple(sorted(done, key=lambda c: c.start))
    return Trace(tuple(x.shape), calls, logits, outputs, inputs)
