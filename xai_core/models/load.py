"""`load_model` and `list_models`: a built-in model, a source (`torchvision:NAME`, `timm:NAME`,
`hf:PATH_OR_ID`), or an entry of the deployment's models file (`catalog`), as a `ModelHandle`."""

from __future__ import annotations

import dataclasses
import os
import re
from collections import OrderedDict
from typing import Optional, Union

import torch

from ..errors import InvalidOptionError, UnknownNameError, WeightsUnavailableError, XAIError
from . import catalog
from . import zoo  # noqa: F401  (registers the models)
from .architecture import describe, head_for, probe_input
from .catalog import CatalogEntry
from .checkpoints import Labels
from .handle import ModelHandle, default_device
from .memory import check_fits
from .sources import SourceModel, is_source, load_source
from .specs import AUTO, RANDOM_WEIGHTS, ModelSpec, builtin_models, get_model_spec
from .weights import WEIGHTS_ENV, how_to_get, load_into, resolve

#: The default model of `auto`, and the bundled fallback used when its weights cannot be had.
PREFERRED, FALLBACK = "resnet50", "efficientnet_lite0"
DEFAULT_WEIGHTS = "DEFAULT"


def load_model(
    name: str = AUTO,
    weights: Union[str, os.PathLike, None] = DEFAULT_WEIGHTS,
    labels: Optional[Labels] = None,
    device: Union[str, torch.device, None] = None,
    *,
    input_size: Optional[int] = None,
) -> ModelHandle:
    """Load a model in eval mode: a registered one (`list_models()`), `auto`, or a source
    `torchvision:NAME` (any torchvision classifier) / `timm:NAME` / `hf:PATH_OR_ID` (a Hugging Face
    image classifier: a `save_pretrained` folder, or a hub id already in the Hugging Face cache).

    `weights`: "DEFAULT", a weights tag (e.g. "IMAGENET1K_V1"; torchvision only), a path to a
    state-dict file (for a source: a user's checkpoint, class count inferred), or None for random
    weights (an `hf:` model takes its folder's weights, DEFAULT, or None). `labels` (sources only):
    a text file (one a line), a JSON list or a list of strings.
    `input_size` (sources only): the crop size, e.g. 64 for fast tests (a torchvision ViT / timm
    model is built for it). `auto` takes ResNet-50 when its weights can be had, else the bundled
    EfficientNet-Lite0, with a `notice` saying why and how to get ResNet-50.
    Raises `UnknownNameError`, `WeightsUnavailableError`, `InvalidWeightsError`, `InvalidOptionError`.
    """
    dev = _device(device)
    if is_source(name):
        loaded = load_source(name, weights, labels, input_size)
        return _from_source(loaded, dev, _source_args(name, weights, labels, input_size, loaded))
    if name != AUTO and name not in builtin_models():
        return _from_models_file(name, weights, labels, input_size, dev)
    if labels is not None or input_size is not None:
        raise InvalidOptionError(
            f"labels and input_size apply to torchvision:NAME, timm:NAME and hf:PATH models, not to {name!r}; "
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
        why = f"Using the bundled {handle.spec.title}: {reason[0].lower() + reason[1:]}; "
        return dataclasses.replace(  # one notice for the CLI and the API, one for the dashboard
            handle, notice=why + how_to_get(spec, spec.weights_record()) + ".",
            dashboard_notice=why + how_to_get(spec, spec.weights_record(), for_dashboard=True) + ".")


def list_models(*, models_file: bool = True) -> list[str]:
    """The model ids `load_model` takes by name (besides "auto" and torchvision:/timm: sources):
    the built-in models, then the deployment's models file's (`xai_core.catalog`), which are the ids
    the dashboard's picker and its links use. `models_file=False`: the built-ins only. Raises
    `InvalidOptionError` (one sentence) for a malformed models file."""
    names = builtin_models()
    if models_file:
        names += [e.name for e in catalog.entries() if e.name not in names]
    return names


def _from_models_file(name: str, weights, labels, input_size, device: torch.device) -> ModelHandle:
    """The models file's model `name` (its entry sets the weights and labels)."""
    offered = [e.name for e in catalog.entries()]
    if name not in offered:
        raise UnknownNameError(
            f"Unknown model {name!r}; choose {', '.join([AUTO] + builtin_models() + offered)}, torchvision:NAME, "
            "timm:NAME or hf:PATH."
        )
    if weights != DEFAULT_WEIGHTS or labels is not None or input_size is not None:
        raise InvalidOptionError(f"The model {name!r} comes from the models file, which sets its weights and labels; "
                                 "load it without weights, labels or input_size.")
    return load_entry(name, device=device)


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
        record, source, file = spec.weights_record(), RANDOM_WEIGHTS, None
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
        # a file (the caller's, or $XAI_WEIGHTS's) is named by its path; a tag stays a tag
        weights = file if not tagged or (record.url is not None and os.environ.get(WEIGHTS_ENV)) else str(weights)
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
        load_args={"name": spec.name, "weights": weights},
    )


def _source_args(name: str, weights, labels, input_size, loaded: SourceModel) -> dict:
    """`load_model`'s keywords that load `loaded` again: a tag stays a tag, a file is named by its
    absolute path, labels given are passed as the list they became (the source's own are not: they
    may repeat, e.g. ImageNet's two 'crane's); an `hf:` folder is named by its absolute path."""
    file_request = weights is not None and loaded.weights_file == os.path.abspath(os.fspath(weights))
    return {"name": loaded.load_name or name, "weights": loaded.weights_file if file_request else weights,
            "labels": list(loaded.categories) if labels is not None else None, "input_size": input_size}


def _from_source(loaded: SourceModel, device: torch.device, load_args: dict) -> ModelHandle:
    """A handle for a source model: layers, default layer and reshapes from `architecture.describe`,
    the default layer's head checked at once (and whether it is global-average-pool + linear), named
    by its `name` (else as asked for). A GPU without room for it refuses it in one sentence."""
    check_fits(loaded.module, device, loaded.source)
    module = loaded.module.eval().to(device)
    name = loaded.name or loaded.source
    crop = loaded.transforms.crop_size
    size = (crop[0], crop[-1])
    try:
        arch = describe(module, size)
    except ValueError as err:
        raise InvalidOptionError(f"{loaded.source} cannot be explained: {err}") from None
    head = head_for(module, arch.default_layer, probe_input(module, size))
    spec = ModelSpec(
        name=name,
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
        name=name,
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
        load_args=load_args,
    )
    handle._heads[arch.default_layer] = head
    return handle


def load_entry(entry: Union[str, CatalogEntry], device=None) -> ModelHandle:
    """Load the models file's model `entry` (a name or a `catalog.CatalogEntry`) with `load_model`;
    the handle is named by the entry's name and titled by its title, and its texts hold no absolute
    path. Raises `UnknownNameError`, `InvalidOptionError`, `WeightsUnavailableError` or
    `InvalidWeightsError`, each with one sentence naming the entry."""
    entry = catalog.get_entry(entry) if isinstance(entry, str) else entry
    kwargs: dict = {"device": device}
    for key in ("weights", "labels"):
        value = getattr(entry, key)
        if value is None:
            continue
        if os.path.isabs(value) and not os.path.isfile(value):
            error = WeightsUnavailableError if key == "weights" else InvalidOptionError
            raise error(entry.public(f"{entry.origin}: there is no {key} file {value}; check the path (a relative "
                                     "path starts at the models file's folder)."))
        kwargs[key] = value
    try:
        handle = load_model(entry.target or entry.source, **kwargs)
    except XAIError as err:
        raise type(err)(entry.public(f"{entry.origin}: {err}")) from None
    return handle.renamed(entry.name, entry.title, entry.public, load_args={"name": entry.name})


__all__ = ["AUTO", "DEFAULT_WEIGHTS", "FALLBACK", "PREFERRED", "list_models", "load_entry", "load_model"]
