"""Which class each model explains. Labels are matched by `predict.label_key`, so a fine-tuned head
whose rows come in another order still answers the same question; an int target is model A's
index, a str a label both models know, None model A's top-1, "own" each model's own top-1."""

from __future__ import annotations

import functools
from typing import Optional, Union

import numpy as np

from ..errors import InvalidOptionError, UnknownNameError
from ..models import ModelHandle
from ..predict import label_key

#: The target that lets each model explain its own top-1 class.
OWN = "own"

TargetArg = Union[int, str, None]


def is_own(target: TargetArg) -> bool:
    """Whether `target` asks each model for its own top-1 ("own", case and spaces ignored)."""
    return isinstance(target, str) and target.strip().lower() == OWN


def label_indices(handle: ModelHandle) -> dict[str, int]:
    """label_key(label) -> the first class index with that label."""
    return {key: indices[0] for key, indices in _positions(handle).items()}


def shared_labels(handle_a: ModelHandle, handle_b: ModelHandle) -> list[str]:
    """Model A's labels (in A's order) that model B knows too."""
    known, own = label_indices(handle_b), label_indices(handle_a)
    return [label for i, label in enumerate(handle_a.categories) if own[label_key(label)] == i and label_key(label) in known]


def resolve(handle_a: ModelHandle, handle_b: ModelHandle, target: TargetArg) -> tuple[Optional[int], Optional[int]]:
    """(index in A, index in B) for `target`; None where it is each model's top-1 ("own"), or model A's
    top-1 still to be found (None: then `in_b` maps it once A has run). Raises `UnknownNameError`
    for a label only one model (or neither) knows, `InvalidOptionError` for an index out of range or
    two models without a label in common. The default (model A's top-1) is refused by `in_b` once
    known, when model B does not know it."""
    if is_own(target):
        return None, None
    keys_a, keys_b = label_indices(handle_a), label_indices(handle_b)
    if keys_a.keys().isdisjoint(keys_b):
        raise InvalidOptionError(f"Model A ({handle_a.name}) and model B ({handle_b.name}) have no class label in "
                                 "common, so no one class can be explained by both; use target='own' to explain "
                                 "each model's top class.")
    if target is None:
        return None, None
    if isinstance(target, str) and label_key(target) in keys_a.keys() | keys_b.keys():
        key = label_key(target)
        if key not in keys_a or key not in keys_b:
            knows, other = ("A", "B") if key in keys_a else ("B", "A")
            raise UnknownNameError(f"Only model {knows} knows the class {target!r} (model {other} does not); give a "
                                   f"class both models know: {_examples(handle_a, handle_b)}.")
        return keys_a[key], keys_b[key]
    if isinstance(target, (int, np.integer)) or (isinstance(target, str) and target.strip().isdigit()):
        index = handle_a.class_index(int(target))  # model A's index; raises for one out of range
        return index, in_b(handle_a, handle_b, index)
    raise UnknownNameError(f"Neither model A ({handle_a.name}) nor model B ({handle_b.name}) knows the class "
                           f"{target!r}; give a class both models know: {_examples(handle_a, handle_b)}.")


def in_b(handle_a: ModelHandle, handle_b: ModelHandle, index_a: int) -> int:
    """Model B's index of model A's class `index_a` (by label; a label a model lists twice, as
    ImageNet's "crane" and "cardigan", is matched occurrence by occurrence, the n-th to the n-th).
    Raises `UnknownNameError` when B does not know it."""
    label = handle_a.categories[index_a]
    key = label_key(label)
    found = _positions(handle_b).get(key)
    if found is None:
        raise UnknownNameError(f"Only model A knows the class {label!r} (its class {index_a}; model B, "
                               f"{handle_b.name}, does not); give a class both models know: "
                               f"{_examples(handle_a, handle_b)}, or target='own'.")
    occurrence = _positions(handle_a)[key].index(index_a)
    return found[min(occurrence, len(found) - 1)]


def _positions(handle: ModelHandle) -> dict[str, tuple[int, ...]]:
    """label_key(label) -> every class index with that label (read only: shared through the cache)."""
    return _positions_of(tuple(handle.categories))


@functools.lru_cache(maxsize=32)
def _positions_of(categories: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    found: dict[str, list[int]] = {}
    for i, label in enumerate(categories):
        found.setdefault(label_key(label), []).append(i)
    return {key: tuple(indices) for key, indices in found.items()}


def _examples(handle_a: ModelHandle, handle_b: ModelHandle, count: int = 5) -> str:
    shared = shared_labels(handle_a, handle_b)
    named = ", ".join(repr(label) for label in shared[:count])
    return named + (f" and {len(shared) - count} more" if len(shared) > count else "")


__all__ = ["OWN", "TargetArg", "in_b", "is_own", "label_indices", "resolve", "shared_labels"]
