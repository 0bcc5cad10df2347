"""Model sources beyond the registry: `torchvision:NAME` (every torchvision classifier) and
`timm:NAME`, with pretrained weights (torchvision tags), a user's state-dict file (through
`checkpoints.load_checkpoint`) or random weights, and the labels and preprocessing that go with them;
`hf:PATH_OR_ID` (a Hugging Face image classifier) is loaded by `hf.py`."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torchvision
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

from .checkpoints import Labels, load_checkpoint, read_labels
from ..errors import InvalidOptionError, UnknownNameError, WeightsUnavailableError
from .hf import load_hf
from .specs import HF, RANDOM_WEIGHTS, SOURCE_PREFIXES, TIMM, TORCHVISION, SourceModel
from .weights import OFFLINE_ENV, cache_path, reachable
from .zoo import imagenet_categories

#: Resize / crop ratio of the usual ImageNet evaluation (256 / 224).
_RESIZE_RATIO = 256 / 224


def is_source(name: str) -> bool:
    """True for `torchvision:NAME`, `timm:NAME` and `hf:PATH_OR_ID`."""
    return isinstance(name, str) and name.partition(":")[0] in SOURCE_PREFIXES and ":" in name


def list_torchvision() -> list[str]:
    """Every torchvision image classifier, as `torchvision:NAME`."""
    return [f"{TORCHVISION}:{n}" for n in torchvision.models.list_models(module=torchvision.models)]


def load_source(source: str, weights: Union[str, os.PathLike, None], labels: Optional[Labels] = None,
                input_size: Optional[int] = None) -> SourceModel:
    """Build and load `source`. Raises `UnknownNameError`, `WeightsUnavailableError`,
    `InvalidWeightsError` or `InvalidOptionError` (bad labels, a size the model refuses)."""
    kind, _, arch = source.partition(":")
    names = read_labels(labels) if labels is not None else None
    if kind == HF:
        return load_hf(arch, weights, names, input_size)
    if kind == TORCHVISION:
        return _torchvision(arch, weights, names, input_size)
    return _timm(arch, weights, names, input_size)


def _default_labels(count: int, given: Optional[Sequence[str]], reference: Sequence[str]) -> tuple[str, ...]:
    if given is not None:
        return tuple(given)
    if count == len(reference):
        return tuple(reference)
    return tuple(f"class {i}" for i in range(count))


#: File name endings that make a weights string a path even when the file is missing.
_FILE_ENDINGS = (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl")


def _is_file_request(weights: object) -> bool:
    """A path-like object, an existing file, or a string that looks like a path (not a tag)."""
    if weights is None:
        return False
    if not isinstance(weights, str):
        return True
    return os.path.exists(weights) or os.path.sep in weights or weights.lower().endswith(_FILE_ENDINGS)


def _loaded_from_file(source, title, path, build, names, reference, transforms) -> SourceModel:
    path = os.path.abspath(os.fspath(path))
    ckpt = load_checkpoint(path, build, names, arch=source)
    categories = _default_labels(ckpt.num_classes, names, reference)
    return SourceModel(source, title, ckpt.module.eval(), categories, transforms,
                       f"the file {os.path.basename(path)}", path, lambda: build(ckpt.num_classes))


# --- torchvision -------------------------------------------------------------------------------


def _torchvision(arch: str, weights, names, input_size) -> SourceModel:
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise UnknownNameError(f"torchvision has no image classifier {arch!r}; "
                               "see torchvision.models.list_models(module=torchvision.models).")
    source, title = f"{TORCHVISION}:{arch}", f"{arch} (torchvision)"
    builder = torchvision.models.get_model_builder(arch)
    enum = torchvision.models.get_model_weights(arch)
    default = enum.DEFAULT
    extra = {"image_size": _vit_size(arch, input_size, default)} if arch.startswith("vit_") else {}

    def build(k: int) -> nn.Module:
        return builder(weights=None, num_classes=k, **extra)

    transforms = _sized(default.transforms(), input_size)
    reference = tuple(default.meta["categories"])
    if weights is None:
        count = len(names) if names is not None else len(reference)
        return SourceModel(source, title, build(count).eval(), _default_labels(count, names, reference),
                           transforms, RANDOM_WEIGHTS, None, lambda: build(count))
    tags = [w.name for w in enum]
    if isinstance(weights, str) and (weights == "DEFAULT" or weights in tags):
        member = default if weights == "DEFAULT" else enum[weights]
        return _torchvision_tag(source, title, builder, member, names, input_size)
    if not _is_file_request(weights) and not os.path.exists(str(weights)):
        raise UnknownNameError(f"{source} has no weights {weights!r}; use DEFAULT, {', '.join(tags)} or a file path.")
    return _loaded_from_file(source, title, weights, build, names, reference, transforms)


def _vit_size(arch: str, input_size: Optional[int], default) -> int:
    """The image size a torchvision ViT is built for: `input_size`, else the crop of its DEFAULT
    weights' transforms (518 px for vit_h_14, whose builder alone would say 224)."""
    size = int(input_size or default.transforms().crop_size[0])
    patch = int(arch.rsplit("_", 1)[1])
    if size % patch:
        raise InvalidOptionError(f"torchvision:{arch} cuts images into {patch}-pixel patches, so its input size must "
                                 f"be a multiple of {patch}, not {size}; e.g. {size - size % patch}.")
    return size


def _torchvision_tag(source, title, builder, member, names, input_size) -> SourceModel:
    reference = tuple(member.meta["categories"])
    if names is not None and len(names) != len(reference):
        raise InvalidOptionError(f"{source}'s {member.name} weights have {len(reference)} classes but "
                                 f"{len(names)} labels were given; give no labels or one per class.")
    cached = cache_path(member)
    file = os.path.basename(cached) if cached else ""
    if not (cached and os.path.isfile(cached)):
        host = "download.pytorch.org"
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0") or not reachable(host):
            raise WeightsUnavailableError(
                f"The {source} {member.name} weights are not on this machine and {host} cannot be reached; "
                f"put {file} (from {member.url}) into the torch hub cache's checkpoints folder, or pass a file."
            )
        where = f"torchvision {member.name}, downloaded into the torch hub cache"
    else:
        where = f"torchvision {member.name}, from the torch hub cache ({file})"
    module = builder(weights=member, progress=True).eval()  # torchvision's hash-checked loading
    return SourceModel(source, title, module, tuple(names or reference), _sized(member.transforms(), input_size),
                       where, cached, lambda: builder(weights=None, num_classes=len(reference)))


def _sized(transforms: ImageClassification, input_size: Optional[int]) -> ImageClassification:
    """`transforms` with crop `input_size` (resize scaled alike), or unchanged for None."""
    if not input_size:
        return transforms
    ratio = transforms.resize_size[0] / transforms.crop_size[0]
    return ImageClassification(crop_size=int(input_size), resize_size=round(input_size * ratio),
                               mean=transforms.mean, std=transforms.std, interpolation=transforms.interpolation,
                               antialias=transforms.antialias)


# --- timm --------------------------------------------------------------------------------------


def _timm_module():
    try:
        import timm
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        raise InvalidOptionError("timm is not installed; pip install -r requirements.txt.") from None
    return timm


def _timm(arch: str, weights, names, input_size) -> SourceModel:
    timm = _timm_module()
    if not timm.is_model(arch):
        raise UnknownNameError(f"timm has no model {arch!r}; see timm.list_models().")
    source, title = f"{TIMM}:{arch}", f"{arch} (timm)"
    if weights is not None and not _is_file_request(weights):
        raise WeightsUnavailableError(
            f"timm's pretrained {arch} weights come from the Hugging Face hub, which cannot be reached offline; "
            "give it a state-dict file instead (weights = \"FILE\" in the models file, --weights FILE on the command "
            "line, weights=PATH in Python) or no weights for random ones."
        )
    extra = {"img_size": input_size} if input_size else {}

    def build(k: Optional[int]) -> nn.Module:
        classes = {} if k is None else {"num_classes": k}
        try:
            return timm.create_model(arch, pretrained=False, **classes, **extra)
        except TypeError:  # a CNN takes no img_size: any input size is fine
            return timm.create_model(arch, pretrained=False, **classes)

    probe = build(None)
    transforms = _sized(timm_transforms(probe), input_size)
    reference = imagenet_categories()
    if weights is None:
        own = int(getattr(probe, "num_classes", 0) or 0)  # 0: built without a classifier (DINOv2's)
        count = len(names) if names is not None else (own or len(reference))
        module = probe if count == own else build(count)
        return SourceModel(source, title, module.eval(), _default_labels(count, names, reference), transforms,
                           RANDOM_WEIGHTS, None, lambda: build(count))
    return _loaded_from_file(source, title, weights, build, names, reference, transforms)


def timm_transforms(model: nn.Module) -> ImageClassification:
    """timm's evaluation preprocessing of `model` (`resolve_data_config` + `create_transform`:
    resize, center crop, normalise) as one torchvision `ImageClassification` with the same steps."""
    from timm.data import create_transform, resolve_data_config

    pipeline = create_transform(**resolve_data_config({}, model=model))
    steps = {type(t).__name__: t for t in pipeline.transforms}
    resize, crop, norm = steps["Resize"], steps["CenterCrop"], steps["Normalize"]
    size = resize.size if isinstance(resize.size, int) else resize.size[0]
    interpolation = resize.interpolation if isinstance(resize.interpolation, InterpolationMode) else \
        InterpolationMode.BICUBIC
    return ImageClassification(crop_size=int(crop.size[0]), resize_size=int(size), mean=tuple(round(float(v), 6) for v in norm.mean),
                               std=tuple(round(float(v), 6) for v in norm.std), interpolation=interpolation)
