"""`load_model` and the `ModelHandle` it returns."""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from . import zoo  # noqa: F401  (registers the models)
from .errors import InvalidOptionError, UnknownNameError, WeightsUnavailableError
from .images import bounded_aspect
from .specs import ModelSpec, get_model_spec, list_models
from .weights import how_to_get, load_into, resolve

AUTO = "auto"
#: The default model of `auto`, and the bundled fallback used when its weights cannot be had.
PREFERRED, FALLBACK = "resnet50", "efficientnet_lite0"
DEFAULT_WEIGHTS = "DEFAULT"


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
    #: Absolute path of the weights file that was read (for the CLI and the API; the dashboard
    #: never shows it), or None (random weights).
    weights_file: Optional[str] = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's input for `image`: a float tensor [1, 3, H, W] on the model's device."""
        return self.transforms(bounded_aspect(image)).unsqueeze(0).to(self.device)

    def display_image(self, image: Image.Image) -> np.ndarray:
        """`image` resized and cropped exactly as `preprocess` does, as uint8 RGB [H, W, 3]: the
        picture the maps are aligned with."""
        t = self.transforms
        x = TF.pil_to_tensor(bounded_aspect(image))
        x = TF.resize(x, t.resize_size, interpolation=t.interpolation, antialias=t.antialias)
        x = TF.center_crop(x, t.crop_size)
        return x.permute(1, 2, 0).numpy().copy()

    def head(self, layer: str) -> nn.Module:
        """Module mapping the activations of `layer` to logits."""
        return self.spec.head(self.module, self.layer_name(layer))

    def layer_name(self, layer: Optional[str]) -> str:
        layer = layer or self.default_layer
        if layer not in self.layers:
            raise UnknownNameError(f"Unknown layer {layer!r} for {self.name}; choose one of: {', '.join(self.layers)}.")
        return layer

    def class_index(self, target: Union[int, str]) -> int:
        """Class index for an index or a (case-insensitive) label; raises `UnknownNameError`."""
        if isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.strip().isdigit()):
            index = int(target)
            if not 0 <= index < len(self.categories):
                raise InvalidOptionError(f"Class index {index} is out of range; use 0 to {len(self.categories) - 1}.")
            return index
        wanted = str(target).strip().lower()
        for i, label in enumerate(self.categories):
            if label.lower() == wanted:
                return i
        raise UnknownNameError(f"Unknown class {target!r}; give an ImageNet class name (e.g. 'tabby') or an index 0-999.")


def default_device() -> torch.device:
    """CUDA, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_model(
    name: str = AUTO,
    weights: Union[str, os.PathLike, None] = DEFAULT_WEIGHTS,
    device: Union[str, torch.device, None] = None,
) -> ModelHandle:
    """Load a registered model (or `auto`) in eval mode.

    `weights`: "DEFAULT", a weights tag of the model (e.g. "IMAGENET1K_V1"), a path to a state-dict
    file, or None for random weights. `auto` takes ResNet-50 when its weights can be had, else the
    bundled EfficientNet-Lite0, with a `notice` saying why and how to get ResNet-50.
    Raises `UnknownNameError`, `WeightsUnavailableError` or `InvalidWeightsError`.
    """
    dev = _device(device)
    if name != AUTO:
        return _load(get_model_spec(name), weights, dev)
    try:
        return _load(get_model_spec(PREFERRED), weights, dev)
    except WeightsUnavailableError as err:
        if weights not in (DEFAULT_WEIGHTS, None) and not _is_tag(get_model_spec(PREFERRED), weights):
            raise  # an explicit file that is missing must not be silently replaced
        spec = get_model_spec(PREFERRED)
        handle = _load(get_model_spec(FALLBACK), DEFAULT_WEIGHTS, dev)
        reason = str(err).split(";")[0]
        notice = (
            f"Using the bundled {handle.spec.title}: {reason[0].lower() + reason[1:]}; "
            + how_to_get(spec, spec.weights_record()) + "."
        )
        return _replace_notice(handle, notice)


def _is_tag(spec: ModelSpec, weights: object) -> bool:
    return isinstance(weights, str) and (weights == DEFAULT_WEIGHTS or weights in spec.weights)


def _device(device: Union[str, torch.device, None]) -> torch.device:
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, ValueError, AssertionError) as err:
        raise InvalidOptionError(f"Device {str(device)!r} is not available here ({str(err).splitlines()[0]}); use cpu.") from None
    return dev


def _load(spec: ModelSpec, weights: Union[str, os.PathLike, None], device: torch.device) -> ModelHandle:
    module = spec.build()
    if weights is None:
        record, source, file = spec.weights_record(), "random initialisation (no pretrained weights)", None
    else:
        tagged = _is_tag(spec, weights)
        if not tagged and re.fullmatch(r"[A-Z0-9_]+", str(weights)) and not os.path.exists(str(weights)):
            raise UnknownNameError(
                f"{spec.name} has no weights {weights!r}; use DEFAULT, {', '.join(spec.weights)} or a file path."
            )
        tag = None if (not tagged or weights == DEFAULT_WEIGHTS) else str(weights)
        record = spec.weights_record(tag)
        loaded = resolve(spec, record, None if tagged else os.fspath(weights))
        load_into(module, spec, loaded.state_dict, loaded.source)
        source, file = loaded.source, loaded.file
    module.eval().to(device)
    layers = OrderedDict((n, module.get_submodule(n)) for n in spec.layer_names)
    return ModelHandle(
        name=spec.name,
        spec=spec,
        module=module,
        categories=tuple(record.categories()),
        layers=layers,
        default_layer=spec.default_layer,
        weights_source=source,
        weights_file=file,
        device=device,
        transforms=record.transforms(),
    )


def _replace_notice(handle: ModelHandle, notice: str) -> ModelHandle:
    import dataclasses

    return dataclasses.replace(handle, notice=notice)


__all__ = ["ModelHandle", "load_model", "list_models", "default_device", "AUTO"]
