"""`ModelHandle`: a loaded model with everything needed to explain it, and the guard around its
shared module (`guard`, `GuardedModule`)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from .._names import split_names
from ..errors import InvalidOptionError, UnknownNameError
from .architecture import Head, head_for, probe_input
from .hf import HFClassifier
from .preprocessing import Prepared, prepare
from .specs import ModelSpec

#: A target layer argument: a name, a comma list or a sequence of names (None: the model's default).
LayerArg = Union[str, Sequence[str], None]


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A loaded model with everything needed to explain it. `module` is shared: never mutate it
    outside `xai_core` (hooks are added only inside `lock`-guarded, scoped sections)."""

    name: str
    spec: ModelSpec
    module: nn.Module
    categories: tuple[str, ...]
    layers: "OrderedDict[str, nn.Module]"
    default_layer: str
    #: Where the weights came from, in words, without any file-system path (safe for a public UI).
    weights_source: str
    device: torch.device
    transforms: nn.Module
    #: One-line notice for the user (e.g. why `auto` fell back to the bundled model), without any
    #: server path, or None.
    notice: Optional[str] = None
    #: The same notice for a dashboard's user, who has no command line (it names the server's hub
    #: cache, XAI_WEIGHTS and the models file instead of `--weights PATH`), or None: use `notice`.
    dashboard_notice: Optional[str] = None
    #: Absolute path of the weights file that was read (for the CLI and the API; the dashboard
    #: never shows it), or None (random weights).
    weights_file: Optional[str] = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: What was asked for: a built-in's name, or `torchvision:NAME` / `timm:NAME` / `hf:PATH_OR_ID`.
    source: str = ""
    #: layer -> the `reshape_transform` mapping its output to [B, C, H, W] (None: already is).
    reshape_transforms: Mapping[str, Optional[Callable]] = field(default_factory=dict, repr=False)
    #: True for vision transformers (token or channels-last target layers).
    transformer: bool = False
    #: The `load_model` keywords that load this model again in another process (a Ray actor): its
    #: name, its weights (a tag, or a file by its absolute path), labels given, input size.
    load_args: Mapping[str, object] = field(default_factory=dict, repr=False)
    _heads: dict = field(default_factory=dict, init=False, repr=False)

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of what decides this model's outputs: its architecture and every parameter
        and buffer (name, dtype, shape, bytes), its preprocessing (resize, crop, mean, std,
        interpolation) and its labels; for a Hugging Face model also the wrapped model's class and
        its configuration (activation, epsilons...: `HFClassifier.identity`). The same weights read
        from another file or place give the same fingerprint; retrained weights, or the same ones
        in another configuration, another. Computed once per handle."""
        digest = hashlib.sha256()
        digest.update(f"{type(self.module).__module__}.{type(self.module).__qualname__}\n".encode())
        if isinstance(self.module, HFClassifier):
            digest.update(f"{self.module.identity}\n".encode())
        for name, tensor in self.module.state_dict().items():
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{name} {flat.dtype} {tuple(tensor.shape)}\n".encode())
            digest.update(flat.view(torch.uint8).numpy())
        t = self.transforms
        steps = {k: getattr(t, k, None) for k in ("resize_size", "crop_size", "mean", "std", "antialias")}
        steps["interpolation"] = str(getattr(t, "interpolation", None))
        digest.update(repr(sorted(steps.items())).encode())
        digest.update("\n".join(self.categories).encode())
        return digest.hexdigest()

    @property
    def title(self) -> str:
        """The model's name for people (e.g. "ResNet-50 (torchvision, ImageNet)", "vit_b_16 (torchvision)")."""
        return self.spec.title

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's input for `image`: a float tensor [1, 3, H, W] on the model's device."""
        return self.prepare([image]).x

    def prepare(self, images: Sequence[Image.Image]) -> Prepared:
        """`images` (RGB PIL) as one batch on the model's device: the model's input and the
        pictures it was made from (`preprocessing.prepare`)."""
        return prepare(self.transforms, images, self.device)

    def display_image(self, image: Image.Image) -> np.ndarray:
        """`image` resized and cropped exactly as `preprocess` does, as uint8 RGB [H, W, 3]: the
        picture the maps are aligned with."""
        return self.prepare([image]).pixels[0].cpu().numpy()

    def head(self, layer: Optional[str]) -> Head:
        """The `Head` mapping the (raw) activations of `layer` to logits: a built-in's curated
        head, else `architecture.head_for`'s checked one (a replay head must be `bind`-ed to the
        input whose activations it gets). Built once per layer, under the lock."""
        name = self.layer_name(layer)
        with self.lock:
            if name not in self._heads:
                self._heads[name] = self._build_head(name)
            return self._heads[name]

    def is_gap_linear(self, layer: str) -> bool:
        """Whether `layer`'s head is global average pooling + a linear layer."""
        return layer in self.spec.gap_linear_layers or (self.spec.head is None and self.head(layer).gap_linear)

    def reshape(self, layer: str) -> Optional[Callable]:
        """The `reshape_transform` of `layer` (None for a [B, C, H, W] layer)."""
        return self.reshape_transforms.get(layer)

    def _build_head(self, name: str) -> Head:
        if self.spec.head is not None:
            module = self.spec.head(self.module, name)
            after = tuple(m for m in module.modules() if any(True for _ in m.parameters(recurse=False)))
            return Head(module, name, True, name in self.spec.gap_linear_layers, None, after)
        size = tuple(self.transforms.crop_size) * (2 // len(self.transforms.crop_size))
        return head_for(self.module, name, probe_input(self.module, size))

    def renamed(self, name: str, title: str, public: Callable[[str], str] = str,
                load_args: Optional[Mapping[str, object]] = None) -> "ModelHandle":
        """The same model under another `name` and `title` (module, lock, layers and the heads found
        so far are shared), its `weights_source` and `notice` passed through `public` (e.g. to name
        files as a models file writes them instead of by their server paths), loaded again by
        `load_args` (default: as before)."""
        renamed = dataclasses.replace(self, name=name, spec=dataclasses.replace(self.spec, title=title),
                                      weights_source=public(self.weights_source),
                                      notice=public(self.notice) if self.notice else self.notice,
                                      dashboard_notice=public(self.dashboard_notice) if self.dashboard_notice
                                      else self.dashboard_notice,
                                      load_args=dict(self.load_args if load_args is None else load_args))
        object.__setattr__(renamed, "_heads", self._heads)  # one module: its heads serve both names
        return renamed

    def layer_name(self, layer: Optional[str]) -> str:
        layer = layer or self.default_layer
        if layer not in self.layers:
            raise UnknownNameError(f"Unknown layer {layer!r} for {self.name}; choose one of: {', '.join(self.layers)}.")
        return layer

    def class_index(self, target: Union[int, str]) -> int:
        """Class index for an index or a label: a string that is one of the labels (case-insensitive)
        names that class, else a digit string is an index (labels "10", "20" name their classes).
        Raises `UnknownNameError`, or `InvalidOptionError` for an index out of range."""
        if isinstance(target, str):
            wanted = target.strip().lower()
            for i, label in enumerate(self.categories):
                if label.lower() == wanted:
                    return i
        if isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.strip().isdigit()):
            index = int(target)
            if not 0 <= index < len(self.categories):
                raise InvalidOptionError(f"Class index {index} is out of range; use 0 to {len(self.categories) - 1}.")
            return index
        example = f" (e.g. {self.categories[0]!r})" if self.categories else ""
        raise UnknownNameError(
            f"Unknown class {target!r}; give one of {self.name}'s class names{example} or an index 0-{len(self.categories) - 1}."
        )


def default_device() -> torch.device:
    """CUDA, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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
    """Validated, de-duplicated layer names from a name, a comma list or a sequence (none: the
    model's default layer). Raises `UnknownNameError`."""
    names = split_names(layer)
    if not names:
        return [handle.default_layer]
    return list(dict.fromkeys(handle.layer_name(name) for name in names))


__all__ = ["GuardedModule", "LayerArg", "ModelHandle", "default_device", "guard", "layer_names"]
