"""Small helpers shared by the verbs: image coercion, guarded forwards, name-list parsing."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence, Union

import torch
from PIL import Image
from torch import nn

from .errors import InvalidOptionError
from .images import ImageSource, load_image
from .methods import MethodSpec, get_method
from .models import ModelHandle

LayerArg = Union[str, Sequence[str], None]
MethodsArg = Union[str, Sequence[str]]


def as_pil(image: Union[ImageSource, Image.Image]) -> Image.Image:
    """A PIL RGB image from anything `load_image` accepts."""
    return load_image(image)


@contextmanager
def guard(handle: ModelHandle) -> Iterator[None]:
    """Serialise one forward through the shared module (hooks are thread-filtered, but adding or
    removing a hook while another thread iterates the module's hook dict is not safe)."""
    with handle.lock:
        yield


class GuardedModule:
    """Callable running `module` under the handle's guard, batch by batch (for the library's
    perturbation loops, so a long Score-CAM never holds the model for more than one batch)."""

    def __init__(self, handle: ModelHandle, module: nn.Module) -> None:
        self._handle, self._module = handle, module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with guard(self._handle):
            return self._module(x)


def split_names(value: Union[str, Sequence[str], None], lower: bool = False) -> list[str]:
    """The names in a comma list or a sequence, stripped (and lower-cased with `lower`), without
    empty items or repeats, in their order. The one parser of every comma list (methods, layers)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = (str(item).strip() for item in items)
    return list(dict.fromkeys(n.lower() if lower else n for n in names if n))


def method_specs(methods: MethodsArg) -> list[MethodSpec]:
    """The `MethodSpec`s of a method id, a comma list or a sequence of ids, without repeats.
    Raises `UnknownNameError`, and `InvalidOptionError` when no method is named."""
    specs = [get_method(method_id) for method_id in split_names(methods, lower=True)]
    if not specs:
        raise InvalidOptionError("Choose at least one method.")
    return specs


def layer_names(handle: ModelHandle, layer: LayerArg) -> list[str]:
    """Validated, de-duplicated layer names from a name, a comma list or a sequence (none: the
    model's default layer). Raises `UnknownNameError`."""
    names = split_names(layer)
    if not names:
        return [handle.default_layer]
    return list(dict.fromkeys(handle.layer_name(name) for name in names))


_POOL: Optional[ThreadPoolExecutor] = None


def worker_pool() -> ThreadPoolExecutor:
    """Threads for per-image CPU work of a batch (decoding, resizing): Pillow and torch release the
    GIL, so a batch's images are prepared in parallel while the model's device waits less."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="xai-worker")
    return _POOL
