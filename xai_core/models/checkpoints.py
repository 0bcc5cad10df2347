"""A user's checkpoint: a state dict read with `torch.load(weights_only=True)` only, its class count
(from the classifier's weight) and its labels. Every mismatch raises `InvalidWeightsError` with one
sentence saying what was expected and what was found."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn

from ..errors import InvalidOptionError, InvalidWeightsError, WeightsUnavailableError

#: Keys under which training scripts nest the state dict (Lightning: state_dict; many: model).
NESTING_KEYS = ("state_dict", "model", "model_state_dict")
#: Prefixes added by DataParallel / DistributedDataParallel and by Lightning modules.
WRAPPER_PREFIXES = ("module.", "model.")
#: Bytes of a legacy (non-zip) torch file scanned for the classes a pickled model references.
_SCAN_BYTES = 64 << 20

Labels = Union[str, os.PathLike, Sequence[str]]


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A loaded checkpoint: `module` (eval mode) built with `num_classes` outputs, its labels
    (`class 0`, `class 1`, ... when none were given), and the classifier's module paths."""

    module: nn.Module
    categories: tuple[str, ...]
    num_classes: int
    classifier: tuple[str, ...]
    source: str


def load_checkpoint(path: Union[str, os.PathLike], build: Callable[[int], nn.Module], labels: Optional[Labels] = None,
                    arch: str = "the model") -> Checkpoint:
    """Read the state dict at `path`, infer its class count, build `build(num_classes)` (random
    weights) and load it. `arch` names the architecture in messages. Raises
    `WeightsUnavailableError` (no file), `InvalidWeightsError` (not a state dict of `arch`, or a
    class count that differs from the labels') or `InvalidOptionError` (an unreadable labels file)."""
    path = os.fspath(path)
    state = read_state_dict(path)
    names = tuple(read_labels(labels)) if labels is not None else None
    reference = build(len(names) if names else 1000)
    state = strip_prefixes(state, reference.state_dict().keys())
    _check_keys(reference, state, path, arch)
    classifier = classifier_layers(reference)
    num_classes = infer_num_classes(state, classifier, path)
    if names is not None and len(names) != num_classes:
        raise InvalidWeightsError(
            f"{path} has {num_classes} classes (its classifier {classifier[0]!r} has {num_classes} outputs) "
            f"but {len(names)} labels were given; give exactly one label per class."
        )
    module = reference if _outputs(reference, classifier) == num_classes else build(num_classes)
    _check_shapes(module, state, path, arch)
    module.load_state_dict(state, strict=False)  # keys and shapes checked above
    categories = names or tuple(f"class {i}" for i in range(num_classes))
    return Checkpoint(module.eval(), categories, num_classes, classifier, f"file {path}")


def read_state_dict(path: Union[str, os.PathLike], what: Optional[str] = None) -> dict:
    """The state dict in the file at `path` (unnested from `state_dict`/`model`/`model_state_dict`),
    read with `torch.load(weights_only=True)` only. Raises `WeightsUnavailableError` when there is no
    such file and `InvalidWeightsError` for a pickled model, another pickle, a non-torch file or a
    non-state-dict. `what` names the file in those messages (default: the path as given); files the
    server chose are named without their path, since a dashboard shows these messages to its visitors."""
    path = os.fspath(path)
    what = what or repr(path)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"No weights file: {what} does not exist; check the path.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure of the safe loader is the file's fault
        raise _load_error(path, what, err) from None
    for _ in range(len(NESTING_KEYS) + 1):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        nested = next((obj[k] for k in NESTING_KEYS if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
        if nested is None:
            break
        obj = nested
    found = f"a dict with keys {_examples(obj)}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    raise InvalidWeightsError(
        f"{what} holds {found}, not a state dict (parameter names mapped to tensors); "
        "save one with torch.save(model.state_dict(), path)."
    )


def _load_error(path: str, what: str, err: Exception) -> InvalidWeightsError:
    message = str(err)
    if "Unsupported global" in message:  # a pickle the safe loader refuses, not a corrupt file
        if b"torch.nn.modules" in _pickle_bytes(path):
            return InvalidWeightsError(
                f"{what} holds a pickled model, not a state dict; save model.state_dict() "
                "with torch.save(model.state_dict(), path)."
            )
        return InvalidWeightsError(
            f"{what} holds Python objects that a safe load refuses, not only tensors; "
            "save the model's state_dict() alone with torch.save(model.state_dict(), path)."
        )
    return InvalidWeightsError(f"{what} {_fault(path)}; save one with torch.save(model.state_dict(), path).")


def _fault(path: str) -> str:
    """What is wrong with a file that torch.load could not read, said from its bytes (never unpickled)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "is empty"
    if zipfile.is_zipfile(path) or head.startswith(b"PK"):
        return "is a damaged or incomplete torch.save archive (a copy or download cut short?)"
    if head[:1] == b"\x80":  # a pickle's protocol opcode: the legacy torch.save format
        return "is a damaged or incomplete torch.save file in the legacy format"
    return "is not a PyTorch weights file (torch.save writes a zip archive; this file is neither that nor a pickle)"


def _pickle_bytes(path: str) -> bytes:
    """The pickle stream of a torch file (data.pkl of the zip format, else the file's start),
    read as bytes and never unpickled."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            return archive.read(pickles[0]) if pickles else b""
    with open(path, "rb") as f:
        return f.read(_SCAN_BYTES)


def strip_prefixes(state: dict, expected: Optional[Sequence[str]] = None) -> dict:
    """`state` without the `module.` / `model.` prefixes that every key carries (repeatedly, e.g.
    `model.module.`), unless the expected keys themselves all start with that prefix."""
    expected = list(expected or [])
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            own = bool(expected) and all(k.startswith(prefix) for k in expected)
            if all(k.startswith(prefix) for k in state) and not own:
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def classifier_layers(module: nn.Module) -> tuple[str, ...]:
    """Module paths of the final classifier(s): walking the modules backwards, the Linear or 1x1
    convolution layers with the last one's output size, up to the first other module with
    parameters (DeiT's `head` and `head_dist` are both found). Raises ValueError when there is none."""
    found: list[str] = []
    outputs = None
    for path, sub in reversed(list(module.named_modules())):
        if not any(True for _ in sub.parameters(recurse=False)):
            continue
        size = _classifier_outputs(sub)
        if size is None or (outputs is not None and size != outputs):
            break
        outputs = size
        found.append(path)
    if not found:
        raise ValueError(f"{type(module).__name__} ends in no Linear or 1x1 convolution classifier.")
    return tuple(reversed(found))


def _classifier_outputs(module: nn.Module) -> Optional[int]:
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1):
        return module.out_channels
    return None


def _outputs(module: nn.Module, classifier: Sequence[str]) -> int:
    return int(module.get_submodule(classifier[0]).weight.shape[0])


def infer_num_classes(state: dict, classifier: Sequence[str], path: str = "the checkpoint") -> int:
    """The number of classes: the first dimension of each classifier's weight in `state` (they must
    agree). Raises `InvalidWeightsError` when a classifier weight is missing or they disagree."""
    counts = {}
    for layer in classifier:
        weight = state.get(f"{layer}.weight")
        if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
            raise InvalidWeightsError(
                f"{path} has no classifier weight {layer + '.weight'!r}; give a state dict of this architecture."
            )
        counts[layer] = int(weight.shape[0])
    if len(set(counts.values())) > 1:
        raise InvalidWeightsError(
            f"{path}'s classifiers disagree on the number of classes ({counts}); give a consistent checkpoint."
        )
    return next(iter(counts.values()))


def _check_keys(module: nn.Module, state: dict, path: str, arch: str) -> None:
    expected = set(module.state_dict())
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - expected)
    if not missing and not unexpected:
        return
    parts = []
    if unexpected:
        parts.append(f"{len(unexpected)} of its keys are unexpected (e.g. {_examples(unexpected)})")
    if missing:
        parts.append(f"{len(missing)} expected keys are missing (e.g. {_examples(missing)})")
    raise InvalidWeightsError(
        f"{path} does not hold {arch} weights: {' and '.join(parts)}; give a state dict saved from {arch}."
    )


def _check_shapes(module: nn.Module, state: dict, path: str, arch: str) -> None:
    own = module.state_dict()
    wrong = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if wrong:
        k = wrong[0]
        raise InvalidWeightsError(
            f"{path} does not hold {arch} weights: {len(wrong)} tensors have another shape "
            f"(e.g. {k!r} is {tuple(state[k].shape)} where {arch} has {tuple(own[k].shape)}); "
            f"give a state dict saved from {arch}."
        )


def _examples(keys: object, n: int = 3) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (", ..." if len(keys) > n else "")


def read_labels(labels: Labels) -> tuple[str, ...]:
    """Class labels from a Python list, a JSON file holding a list of strings, or a text file
    with one label a line (blank lines ignored). Raises `InvalidOptionError` for a missing or
    malformed file, an empty list, or a label given twice."""
    if isinstance(labels, (str, os.PathLike)):
        names = _labels_file(os.fspath(labels))
        where = os.fspath(labels)
    else:
        names, where = list(labels), "the labels"
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise InvalidOptionError(f"{where} must list at least one label, each a non-empty string.")
    names = [n.strip() for n in names]
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise InvalidOptionError(f"{where} lists the label {name!r} twice; labels must be distinct.")
        seen[name.lower()] = name
    return tuple(names)


def _labels_file(path: str) -> list:
    if not os.path.isfile(path):
        raise InvalidOptionError(f"No labels file at {path!r}; check the path.")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidOptionError(
            f"{path} cannot be read as UTF-8 text ({type(err).__name__}); give a text or JSON file."
        ) from None
    if path.lower().endswith(".json") or text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError:
            raise InvalidOptionError(f"{path} is not valid JSON; give a JSON list of label strings.") from None
        if not isinstance(names, list):
            raise InvalidOptionError(f"{path} holds a JSON {type(names).__name__}, not a list of label strings.")
        return names
    return [line for line in text.splitlines() if line.strip()]
