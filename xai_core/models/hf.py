"""Model source `hf:PATH_OR_ID`: a Hugging Face image classifier (`AutoModelForImageClassification`)
from a local `save_pretrained` folder, or by hub id from the local Hugging Face cache. The network
is never tried, whatever the environment says: a hub id is looked up in the cache's folders
(`try_to_load_from_cache`), transformers only ever reads local folders (`local_files_only`), and
huggingface_hub's offline switch is held on while a model loads (`offline`), then set back; the
environment is left as it was. Code shipped with a model is never run (`trust_remote_code=False`).
A config that describes a model larger than the free memory is refused before it is built
(`memory.meta_bytes`). The model is wrapped in `HFClassifier` (images in, logits out), its labels
are `config.id2label`, its name is its folder's own name (never its path) or its hub id, and its
image processor becomes a torchvision `ImageClassification` (resize, centre crop, normalise),
checked against the processor itself (`hf_processor.py`).

transformers is optional: `pip install -r requirements-hf.txt`."""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import InvalidOptionError, InvalidWeightsError, WeightsUnavailableError
from .hf_processor import hf_transforms
from .memory import host_available_bytes, in_words, meta_bytes
from .specs import HF, RANDOM_WEIGHTS, SourceModel

CONFIG, PROCESSOR = "config.json", "preprocessor_config.json"
#: The weights argument that means "the folder's own weights" (load_model's default).
DEFAULT = "DEFAULT"
#: A hub id: `name` or `owner/name`.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
#: Config fields that say where, with what or in which dtype a model was saved (its tensors are
#: float32 once loaded), or switch on extra outputs at run time; none changes the logits.
_NOT_IDENTITY = frozenset({"_name_or_path", "_commit_hash", "transformers_version", "architectures", "dtype",
                           "torch_dtype", "output_attentions", "output_hidden_states", "return_dict"})


class HFClassifier(nn.Module):
    """A Hugging Face image classifier as a plain classifier: `forward(x)` maps images [B, 3, H, W]
    to logits [B, classes]; the model's `ModelOutput` is unwrapped here, once. `model` is the
    Hugging Face model and `config` its config. `interpolate`: pass `interpolate_pos_encoding=True`
    (a ViT run at another input size than it was trained for)."""

    def __init__(self, model: nn.Module, interpolate: bool = False) -> None:
        super().__init__()
        self.model = model
        self.interpolate = interpolate
        config = _identity_fields(model.config.to_dict())
        #: What, besides its tensors, decides the outputs (for `ModelHandle.fingerprint`): the
        #: model's class, its configuration (JSON, sorted keys) and `interpolate`, as built.
        self.identity = (f"{type(model).__module__}.{type(model).__qualname__}\n"
                         f"{json.dumps(config, sort_keys=True, default=str)}\ninterpolate={interpolate}")

    @property
    def config(self):
        return self.model.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = {"interpolate_pos_encoding": True} if self.interpolate else {}
        return self.model(pixel_values=x, **extra).logits


def is_hub_id(text: str) -> bool:
    """Whether `text` reads as a Hugging Face hub id (`name` or `owner/name`); such a text that is
    not a folder is looked up in the Hugging Face cache."""
    return bool(_HUB_ID.fullmatch(text)) and ".." not in text


@dataclass(frozen=True)
class _Place:
    """Where a model is: `target`, what loads it again from any folder (its absolute folder or hub
    id), its `name` (the folder's own name or the id; never a path), its weights' origin in words
    (no path), and the local folder holding its files (the cache's snapshot for an id), the only
    place transformers is given."""

    target: str
    name: str
    words: str
    folder: str


def load_hf(arch: str, weights: Union[str, os.PathLike, None], names: Optional[Sequence[str]] = None,
            input_size: Optional[int] = None) -> SourceModel:
    """Load `hf:arch` (a folder or a cached hub id), offline: the folder's weights (`weights`
    "DEFAULT") or random ones from its config (None), labelled `names` (default: `config.id2label`),
    at crop `input_size` (default: its processor's). Raises `WeightsUnavailableError` (not on this
    machine, no weights), `InvalidWeightsError` (unreadable or incomplete weights) or
    `InvalidOptionError` (no transformers, not an image classifier, larger than the free memory, a
    processor or input size that cannot be used)."""
    transformers, hub = _transformers()
    source = f"{HF}:{arch}"
    place = _place(arch.strip(), source, hub)
    if weights is not None and weights != DEFAULT:
        raise InvalidOptionError(f"{source} takes its weights from its own folder, not from {os.fspath(weights)!r}; "
                                 "give no weights (or DEFAULT), or none for random ones.")
    with offline(hub), _quiet(transformers):
        config = _config(place, source, transformers)
        title = f"{place.name} (Hugging Face, {config.model_type})"
        if names is not None and weights is not None and len(names) != config.num_labels:
            raise InvalidOptionError(f"{source} has {config.num_labels} classes but {len(names)} labels were "
                                     "given; give no labels or one per class.")
        if names is not None:
            config = _relabelled(config, names)
        auto = transformers.AutoModelForImageClassification
        _check_size(auto, config, source)
        model = _pretrained(auto, place, config, source) if weights is not None else auto.from_config(config)
        transforms = hf_transforms(_processor(place, source, transformers), source, input_size)
    crop = tuple(transforms.crop_size)
    interpolate = bool(input_size) and "interpolate_pos_encoding" in inspect.signature(model.forward).parameters
    module = HFClassifier(model, interpolate).to(torch.float32).eval()
    _check_input(module, crop, source, input_size)

    def build() -> nn.Module:
        return HFClassifier(auto.from_config(copy.deepcopy(config)), interpolate)

    return SourceModel(
        source=source, title=title, module=module, categories=names or _labels(config), transforms=transforms,
        weights_source=place.words if weights is not None else RANDOM_WEIGHTS,
        weights_file=place.folder if weights is not None else None, build=build,
        load_name=f"{HF}:{place.target}", name=f"{HF}:{place.name}",
    )


def _transformers():
    """The transformers and huggingface_hub packages; one sentence when they are not installed."""
    try:
        import huggingface_hub.constants
        import transformers
    except ImportError:
        raise InvalidOptionError("Hugging Face models need transformers; pip install -r requirements-hf.txt.") from None
    return transformers, huggingface_hub


class _Offline:
    """huggingface_hub's offline switch (`constants.HF_HUB_OFFLINE`), held on while any load runs
    (loads in several threads may overlap) and then set back to what it was. huggingface_hub reads
    `HF_HUB_OFFLINE` from the environment once, when it is first imported (often by timm, before
    any model is loaded), so setting the environment variable cannot be relied on; and the user's
    environment is theirs, so it is left alone."""

    def __init__(self) -> None:
        self._lock, self._loads, self._before = threading.Lock(), 0, False

    @contextmanager
    def __call__(self, hub) -> Iterator[None]:
        with self._lock:
            if not self._loads:
                self._before = hub.constants.HF_HUB_OFFLINE
                hub.constants.HF_HUB_OFFLINE = True
            self._loads += 1
        try:
            yield
        finally:
            with self._lock:
                self._loads -= 1
                if not self._loads:
                    hub.constants.HF_HUB_OFFLINE = self._before


#: `with offline(huggingface_hub):` no request to the hub can be made (see `_Offline`).
offline = _Offline()


@contextmanager
def _quiet(transformers) -> Iterator[None]:
    """No progress bars and no load report on the console while loading (the CLI's --json output
    stays alone on stdout); transformers' settings are restored afterwards."""
    logging = transformers.utils.logging
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _place(text: str, source: str, hub) -> _Place:
    """The folder `text` names, else the cached model of hub id `text`, found by reading the cache's
    folders (huggingface_hub's `try_to_load_from_cache`: no request, unlike transformers'
    `cached_file`, which builds request headers and may fetch a registry even with
    `local_files_only`)."""
    if not text:
        raise InvalidOptionError("hf: needs a folder or a Hugging Face hub id after it, e.g. hf:./my-vit.")
    path = os.path.expanduser(text)
    if os.path.isdir(path):
        folder = os.path.abspath(path)
        name = os.path.basename(folder.rstrip(os.sep)) or folder
        if not os.path.isfile(os.path.join(folder, CONFIG)):
            raise InvalidOptionError(f"{source} is a folder without {CONFIG}, so not a saved Hugging Face model; "
                                     "save one there with model.save_pretrained(folder) and "
                                     "processor.save_pretrained(folder).")
        return _Place(folder, name, f"the Hugging Face folder {name}", folder)
    if is_hub_id(text):
        try:
            found = hub.try_to_load_from_cache(text, CONFIG)
        except (OSError, ValueError):  # an id the cache cannot hold
            found = None
        if isinstance(found, str) and os.path.isfile(found):  # not None, nor "known to be missing"
            return _Place(text, text, f"the Hugging Face cache ({text})", os.path.dirname(found))
    raise WeightsUnavailableError(
        f"{source} is not on this machine (no such folder, nor in the Hugging Face cache) and models are loaded "
        "offline; save it with save_pretrained into a folder (model and image processor), or download it into the "
        "Hugging Face cache on a machine with internet (huggingface-cli download ID) and copy the cache here."
    )


def _check_size(auto, config, source: str) -> None:
    """Refuse (one sentence) a config whose model would not fit in the memory free now: it is built
    on the meta device first, and the count of its parameters stops as soon as it passes that (a
    model that cannot be built there is not checked, as before)."""
    free = host_available_bytes()
    need = None if free is None else meta_bytes(lambda: auto.from_config(copy.deepcopy(config)), free)
    if need is not None and need > free:
        raise InvalidOptionError(f"{source}'s {CONFIG} describes a model whose parameters alone need more than the "
                                 f"{in_words(free)} of memory free here, so it is not built; give a smaller model "
                                 "or free memory.")


def _identity_fields(data):
    """`data` (a config's dict, nested configs included) without the `_NOT_IDENTITY` fields."""
    if isinstance(data, dict):
        return {k: _identity_fields(v) for k, v in data.items() if k not in _NOT_IDENTITY}
    return data


def _config(place: _Place, source: str, transformers):
    """The model's config, once its config.json is known to describe an image classifier."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES as CLASSIFIERS

    try:
        with open(os.path.join(place.folder, CONFIG), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise InvalidOptionError(f"{source}'s {CONFIG} is not a JSON object; save the model again with save_pretrained.")
    kind = data.get("model_type")
    if kind not in CLASSIFIERS:
        what = f"a {kind!r} model" if isinstance(kind, str) and kind else f"a {CONFIG} without a model_type"
        raise InvalidOptionError(f"{source} holds {what}, not an image classifier that transformers' "
                                 "AutoModelForImageClassification loads (e.g. vit, deit, swin, beit, convnext).")
    try:
        return transformers.AutoConfig.from_pretrained(place.folder, local_files_only=True, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - any failure to read the config is the file's fault
        raise InvalidOptionError(f"{source}'s {CONFIG} cannot be read as a {kind} config ({type(err).__name__}); "
                                 "save the model again with save_pretrained.") from None


def _relabelled(config, names: Sequence[str]):
    """A copy of `config` with `names` as its classes (random weights get that many outputs)."""
    config = copy.deepcopy(config)
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    return config


def _labels(config) -> tuple[str, ...]:
    """`config.id2label` ordered by index (`class i` for an index it lacks)."""
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    return tuple(id2label.get(i, f"class {i}") for i in range(config.num_labels))


def _pretrained(auto, place: _Place, config, source: str) -> nn.Module:
    """The model with its own weights, every tensor of it read from them (a base model without its
    classifier is refused: its head would be random)."""
    try:
        model, info = auto.from_pretrained(place.folder, config=config, local_files_only=True,
                                           trust_remote_code=False, dtype=torch.float32, output_loading_info=True)
    except OSError:  # no weights file (the folder) or not downloaded (the cache)
        raise WeightsUnavailableError(f"{source} holds no weights transformers can read (model.safetensors or "
                                      "pytorch_model.bin); save the model with save_pretrained.") from None
    except Exception as err:  # noqa: BLE001 - a corrupt or foreign weights file
        raise InvalidWeightsError(f"{source}'s weights cannot be loaded into its {config.model_type} config "
                                  f"({type(err).__name__}); save the model again with save_pretrained.") from None
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        raise InvalidWeightsError(f"{source}'s weights lack {len(missing)} tensors of its image classifier (e.g. "
                                  f"{missing[0]!r}), so part of it would be random; give a fine-tuned classifier.")
    return model


def _processor(place: _Place, source: str, transformers):
    try:
        return transformers.AutoImageProcessor.from_pretrained(place.folder, local_files_only=True,
                                                               trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - a missing or unreadable preprocessor_config.json
        raise InvalidOptionError(f"{source} has no usable image processor ({PROCESSOR}: {type(err).__name__}); "
                                 "save it next to the model with processor.save_pretrained(folder).") from None


def _check_input(module: nn.Module, crop: tuple, source: str, input_size: Optional[int]) -> None:
    """Refuse (one sentence) a model that does not take images of the crop's size."""
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, crop[0], crop[-1]))
    except Exception as err:  # noqa: BLE001 - the model's own refusal (e.g. a fixed image size)
        size = f"{crop[0]}x{crop[-1]}"
        fix = "give another input_size or none" if input_size else "save it with a processor whose crop fits it"
        raise InvalidOptionError(f"{source} does not take {size} images ({type(err).__name__}); {fix}.") from None


__all__ = ["HFClassifier", "is_hub_id", "load_hf", "offline"]
