"""`load_model` and the `ModelHandle` it returns."""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Union

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn

from . import zoo  # noqa: F401  (registers the models)
from .architecture import Head, describe, head_for, probe_input
from .checkpoints import Labels
from ..errors import InvalidOptionError, UnknownNameError, WeightsUnavailableError
from ..images import bounded_aspect
from .sources import SourceModel, is_source, load_source
from .specs import ModelSpec, get_model_spec
from .specs import list_models as builtin_models
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
    #: What was asked for: a built-in's name, or `torchvision:NAME` / `timm:NAME`.
    source: str = ""
    #: layer -> the `reshape_transform` mapping its output to [B, C, H, W] (None: already is).
    reshape_transforms: Mapping[str, Optional[Callable]] = field(default_factory=dict, repr=False)
    #: True for vision transformers (token or channels-last target layers).
    transformer: bool = False
    _heads: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def title(self) -> str:
        """The model's name for people (e.g. "ResNet-50 (torchvision, ImageNet)", "vit_b_16 (torchvision)")."""
        return self.spec.title

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


def load_model(
    name: str = AUTO,
    weights: Union[str, os.PathLike, None] = DEFAULT_WEIGHTS,
    labels: Optional[Labels] = None,
    device: Union[str, torch.device, None] = None,
    *,
    input_size: Optional[int] = None,
) -> ModelHandle:
    """Load a model in eval mode: a registered one (`list_models()`), `auto`, or a source
    `torchvision:NAME` (any torchvision classifier) / `timm:NAME`.

    `weights`: "DEFAULT", a weights tag (e.g. "IMAGENET1K_V1"; torchvision only), a path to a
    state-dict file (for a source: a user's checkpoint, class count inferred), or None for random
    weights. `labels` (sources only): a text file (one a line), a JSON list or a list of strings.
    `input_size` (sources only): the crop size, e.g. 64 for fast tests (a torchvision ViT / timm
    model is built for it). `auto` takes ResNet-50 when its weights can be had, else the bundled
    EfficientNet-Lite0, with a `notice` saying why and how to get ResNet-50.
    Raises `UnknownNameError`, `WeightsUnavailableError`, `InvalidWeightsError`, `InvalidOptionError`.
    """
    dev = _device(device)
    if is_source(name):
        return _from_source(load_source(name, weights, labels, input_size), dev)
    if name != AUTO and name not in builtin_models():
        return _from_models_file(name, weights, labels, input_size, dev)
    if labels is not None or input_size is not None:
        raise InvalidOptionError(
            f"labels and input_size apply to torchvision:NAME and timm:NAME models, not to {name!r}; "
            "e.g. use torchvision:resnet50 for a fine-tuned ResNet-50."
        )
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


def list_models(*, models_file: bool = True) -> list[str]:
    """The model ids `load_model` takes by name (besides "auto" and torchvision:/timm: sources):
    the built-in models, then the deployment's models file's (`xai_core.catalog`), which are the ids
    the dashboard's picker and its links use. `models_file=False`: the built-ins only. Raises
    `InvalidOptionError` (one sentence) for a malformed models file."""
    names = builtin_models()
    if models_file:
        from . import catalog  # catalog loads through load_model: imported here to avoid a cycle

        names += [e.name for e in catalog.entries() if e.name not in names]
    return names


def _from_models_file(name: str, weights, labels, input_size, device: torch.device) -> ModelHandle:
    """The models file's model `name` (its entry sets the weights and labels)."""
    from . import catalog

    offered = [e.name for e in catalog.entries()]
    if name not in offered:
        raise UnknownNameError(
            f"Unknown model {name!r}; choose {', '.join([AUTO] + builtin_models() + offered)}, torchvision:NAME or "
            "timm:NAME."
        )
    if weights != DEFAULT_WEIGHTS or labels is not None or input_size is not None:
        raise InvalidOptionError(f"The model {name!r} comes from the models file, which sets its weights and labels; "
                                 "load it without weights, labels or input_size.")
    return catalog.load_entry(name, device=device)


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
        source=spec.name,
    )


def _from_source(loaded: SourceModel, device: torch.device) -> ModelHandle:
    """A handle for a source model: layers, default layer and reshapes from `architecture.describe`,
    the default layer's head checked at once (and whether it is global-average-pool + linear)."""
    module = loaded.module.eval().to(device)
    crop = loaded.transforms.crop_size
    size = (crop[0], crop[-1])
    try:
        arch = describe(module, size)
    except ValueError as err:
        raise InvalidOptionError(f"{loaded.source} cannot be explained: {err}") from None
    head = head_for(module, arch.default_layer, probe_input(module, size))
    spec = ModelSpec(
        name=loaded.source,
        title=loaded.title,
        build=loaded.build,
        weights={},
        default_weights="",
        layer_names=tuple(arch.layers),
        default_layer=arch.default_layer,
        head=None,
        gap_linear_layers=frozenset({arch.default_layer} if head.gap_linear else ()),
    )
    handle = ModelHandle(
        name=loaded.source,
        spec=spec,
        module=module,
        categories=loaded.categories,
        layers=OrderedDict(arch.layers),
        default_layer=arch.default_layer,
        weights_source=loaded.weights_source,
        weights_file=loaded.weights_file,
        device=device,
        transforms=loaded.transforms,
        source=loaded.source,
        reshape_transforms=dict(arch.reshape_transforms),
        transformer=arch.transformer,
    )
    handle._heads[arch.default_layer] = head
    return handle


def _replace_notice(handle: ModelHandle, notice: str) -> ModelHandle:
    import dataclasses

    return dataclasses.replace(handle, notice=notice)


__all__ = ["ModelHandle", "load_model", "list_models", "default_device", "AUTO"]
