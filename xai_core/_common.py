"""Small helpers shared by the verbs: image coercion, guarded forwards, layer parsing."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence, Union

import torch
from PIL import Image
from torch import nn

from .images import ImageSource, load_image
from .models import ModelHandle

LayerArg = Union[str, Sequence[str], None]


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


def layer_names(handle: ModelHandle, layer: LayerArg) -> list[str]:
    """Validated, de-duplicated layer names from a name, a comma list or a sequence."""
    if layer is None or layer == "":
        return [handle.default_layer]
    items = layer.split(",") if isinstance(layer, str) else list(layer)
    names: list[str] = []
    for item in items:
        name = handle.layer_name(str(item).strip())
        if name not in names:
            names.append(name)
    return names
