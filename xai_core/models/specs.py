"""The model registry: `ModelSpec` records (torchvision `WeightsEnum` / timm registry style), and
`SourceModel`, what a model source (`sources.py`, `hf.py`) loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

from torch import nn
from torchvision.transforms._presets import ImageClassification

from .._registry import Registry

#: The model sources besides the built-in models: `torchvision:NAME`, `timm:NAME`, `hf:FOLDER_OR_ID`.
TORCHVISION, TIMM, HF = "torchvision", "timm", "hf"
SOURCE_PREFIXES = (TORCHVISION, TIMM, HF)
#: The weights source (`ModelHandle.weights_source`) of a model built without pretrained weights.
RANDOM_WEIGHTS = "random initialisation (no pretrained weights)"


@dataclass(frozen=True)
class WeightsRecord:
    """One set of pretrained weights: where they live, and the metadata travelling with them."""

    tag: str
    #: Download URL (torchvision's, hash-checked) or None for weights bundled in a package.
    url: Optional[str]
    #: Path of a bundled weights file (a callable, so importing the spec costs nothing).
    bundled_file: Optional[Callable[[], str]]
    #: Factory of the preprocessing the weights were trained with (a torchvision transform).
    transforms: Callable[[], nn.Module]
    #: Callable returning the class labels, from torchvision's weights metadata.
    categories: Callable[[], Sequence[str]]
    #: The torchvision weights enum member, when there is one (used for its hash-checked download).
    torchvision_weights: object = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything `load_model` needs to build, load and explain one architecture."""

    name: str
    title: str
    #: Builds the architecture with random weights.
    build: Callable[[], nn.Module]
    weights: Mapping[str, WeightsRecord]
    default_weights: str
    #: Selectable target layers, in forward order (names of top-level children of the module).
    layer_names: tuple[str, ...]
    default_layer: str
    #: head(module, layer) -> module mapping that layer's activations to logits; None: found by
    #: `architecture.head_for` (the sources `torchvision:` and `timm:`).
    head: Optional[Callable[[nn.Module, str], nn.Module]]
    #: Layers whose head is global average pooling followed by a linear layer (Grad-CAM ==
    #: HiResCAM there by construction).
    gap_linear_layers: frozenset[str] = field(default_factory=frozenset)
    #: Turns a state dict of the original checkpoint into one for `build()`'s module.
    adapt_state_dict: Callable[[dict], dict] = lambda sd: sd

    def weights_record(self, tag: Optional[str] = None) -> WeightsRecord:
        return self.weights[tag or self.default_weights]


@dataclass(frozen=True, eq=False)
class SourceModel:
    """A model from a source: `module` in eval mode (on the CPU), its labels and preprocessing,
    where its weights came from (in words, no path) and the file (or folder) read (or None).
    `load_name`: the name that loads it again from any folder (e.g. an `hf:` folder made
    absolute), when it differs from `source`; `name`: the model's name on pages and in reports,
    when it differs from `source` (an `hf:` folder is named by its own name, never by its path)."""

    source: str
    title: str
    module: nn.Module
    categories: tuple[str, ...]
    transforms: ImageClassification
    weights_source: str
    weights_file: Optional[str]
    build: Callable[[], nn.Module]
    load_name: Optional[str] = None
    name: Optional[str] = None


#: The virtual model name: ResNet-50 when its weights can be had, else the bundled EfficientNet-Lite0.
AUTO = "auto"

_MODELS: Registry[ModelSpec] = Registry("model")


def register_model(factory: Callable[[], ModelSpec]) -> Callable[[], ModelSpec]:
    """Decorator: register the `ModelSpec` returned by `factory` under its own name."""
    spec = factory()
    _MODELS.register(spec.name, spec)
    return factory


def builtin_models() -> list[str]:
    """Names of the built-in (registered) models, without the virtual `auto` (`load.list_models`
    adds the models file's)."""
    return _MODELS.names()


def get_model_spec(name: str) -> ModelSpec:
    """The `ModelSpec` registered as `name`; raises `UnknownNameError`."""
    return _MODELS.get(name)


def children_after(module: nn.Module, layer: str) -> nn.Sequential:
    """The top-level children of `module` after `layer`, as a Sequential, with a Flatten inserted
    before the first Linear (torchvision classifiers flatten inside `forward`)."""
    names = [name for name, _ in module.named_children()]
    if layer not in names:
        raise KeyError(layer)
    tail: list[nn.Module] = []
    for _, child in list(module.named_children())[names.index(layer) + 1:]:
        if isinstance(child, nn.Linear) and not any(isinstance(m, nn.Flatten) for m in tail):
            tail.append(nn.Flatten(1))
        tail.append(child)
    return nn.Sequential(*tail)

