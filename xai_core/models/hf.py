"""Model source `hf:PATH_OR_ID`: a Hugging Face image classifier (`AutoModelForImageClassification`)
from a local `save_pretrained` folder, or by hub id from the local Hugging Face cache. The network
is never used (`local_files_only`, and `HF_HUB_OFFLINE=1` unless set), nor code shipped with a model
(`trust_remote_code=False`). The model is wrapped in `HFClassifier` (images in, logits out), its
labels are `config.id2label`, and its image processor becomes a torchvision `ImageClassification`
(resize, centre crop, normalise), checked against the processor itself (`hf_processor.py`).

transformers is optional: `pip install -r requirements-hf.txt`."""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import InvalidOptionError, InvalidWeightsError, WeightsUnavailableError
from .hf_processor import hf_transforms
from .specs import SourceModel

HF = "hf"
CONFIG, PROCESSOR = "config.json", "preprocessor_config.json"
RANDOM = "random initialisation (no pretrained weights)"
#: The weights argument that means "the folder's own weights" (load_model's default).
DEFAULT = "DEFAULT"
#: A hub id: `name` or `owner/name`.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


class HFClassifier(nn.Module):
    """A Hugging Face image classifier as a plain classifier: `forward(x)` maps images [B, 3, H, W]
    to logits [B, classes]; the model's `ModelOutput` is unwrapped here, once. `model` is the
    Hugging Face model and `config` its config. `interpolate`: pass `interpolate_pos_encoding=True`
    (a ViT run at another input size than it was trained for)."""

    def __init__(self, model: nn.Module, interpolate: bool = False) -> None:
        super().__init__()
        self.model = model
        self.interpolate = interpolate

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
    """Where a model is: `target` for `from_pretrained` (an absolute folder or a hub id), its `name`
    (the folder's base name or the id), its weights' origin in words (no path), and the folder
    holding its files (the cache's snapshot for an id)."""

    target: str
    name: str
    words: str
    folder: str


def load_hf(arch: str, weights: Union[str, os.PathLike, None], names: Optional[Sequence[str]] = None,
            input_size: Optional[int] = None) -> SourceModel:
    """Load `hf:arch` (a folder or a cached hub id): the folder's weights (`weights` "DEFAULT") or
    random ones from its config (None), labelled `names` (default: `config.id2label`), at crop
    `input_size` (default: its processor's). Raises `WeightsUnavailableError` (not on this machine,
    no weights), `InvalidWeightsError` (unreadable or incomplete weights) or `InvalidOptionError`
    (no transformers, not an image classifier, a processor or input size that cannot be used)."""
    transformers = _transformers()
    source = f"{HF}:{arch}"
    place = _place(arch.strip(), source, transformers)
    if weights is not None and weights != DEFAULT:
        raise InvalidOptionError(f"{source} takes its weights from its own folder, not from {os.fspath(weights)!r}; "
                                 "give no weights (or DEFAULT), or none for random ones.")
    with _quiet(transformers):
        config = _config(place, source, transformers)
        title = f"{place.name} (Hugging Face, {config.model_type})"
        if names is not None and weights is not None and len(names) != config.num_labels:
            raise InvalidOptionError(f"{source} has {config.num_labels} classes but {len(names)} labels were "
                                     "given; give no labels or one per class.")
        if names is not None:
            config = _relabelled(config, names)
        auto = transformers.AutoModelForImageClassification
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
        weights_source=place.words if weights is not None else RANDOM,
        weights_file=place.folder if weights is not None else None, build=build,
        load_name=f"{HF}:{place.target}",
    )


def _transformers():
    """The transformers package, loaded offline; one sentence when it is not installed."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when huggingface_hub is first imported
    try:
        import transformers
    except ImportError:
        raise InvalidOptionError("Hugging Face models need transformers; pip install -r requirements-hf.txt.") from None
    return transformers


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


def _place(text: str, source: str, transformers) -> _Place:
    """The folder `text` names, else the cached model of hub id `text`."""
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
            found = transformers.utils.cached_file(text, CONFIG, local_files_only=True,
                                                   _raise_exceptions_for_missing_entries=False)
        except (OSError, ValueError):  # not in the cache (nothing is downloaded)
            found = None
        if found:
            return _Place(text, text, f"the Hugging Face cache ({text})", os.path.dirname(found))
    raise WeightsUnavailableError(
        f"{source} is not on this machine (no such folder, nor in the Hugging Face cache) and models are loaded "
        "offline; save it with save_pretrained into a folder (model and image processor), or download it into the "
        "Hugging Face cache on a machine with internet (huggingface-cli download ID) and copy the cache here."
    )


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
        return transformers.AutoConfig.from_pretrained(place.target, local_files_only=True, trust_remote_code=False)
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
        model, info = auto.from_pretrained(place.target, config=config, local_files_only=True,
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
        return transformers.AutoImageProcessor.from_pretrained(place.target, local_files_only=True,
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


__all__ = ["HF", "HFClassifier", "is_hub_id", "load_hf"]
