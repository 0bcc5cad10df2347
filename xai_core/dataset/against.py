"""Dataset mode against a second model (`run`'s `against=`, the CLI's `batch --against`): each batch
goes through `compare.compare_models_batch`, which explains model A once (its row and pictures come
from the comparison's `explanation_a`, as without model B) and model B once; a row gets model B's
columns (`settings.columns`) and model B's pictures are written beside model A's (KEY_b.jpg and
KEY_b_METHOD.jpg, at the same `pictures` level: `writer.B_SUFFIX`)."""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional, Sequence

from ..compare import Comparison, compare_models_batch, resolve
from ..errors import InvalidOptionError, UnknownNameError
from ..explain import Explanation, explain_batch
from ..models import ModelHandle
from ..predict import is_correct, label_key, predict
from .settings import Settings
from .writer import B_SUFFIX


def check_against(handle: ModelHandle, against: ModelHandle, target: Optional[int]) -> None:
    """Refuse, before any work, a model B that shares no label with model A (`InvalidOptionError`)
    or that does not know the fixed `target` (model A's class index: `UnknownNameError`), each in
    one sentence (`compare.resolve`'s)."""
    if not isinstance(against, ModelHandle):
        raise InvalidOptionError("against= takes a model loaded with xai_core.load_model, not "
                                 f"{type(against).__name__}.")
    resolve(handle, against, target)


def explain_against(handle: ModelHandle, against: ModelHandle, pictures: Sequence, settings: Settings,
                    targets: list, batch_size: int, progress: Optional[Callable] = None) -> list[tuple]:
    """Each picture as (model A's `Explanation`, its `Comparison` with model B or None, why there is
    none or None): one `compare_models_batch` for the batch. When model B does not know the class
    model A explains for some picture (`UnknownNameError`, which refuses the whole batch), the batch
    is split in halves down to that picture, which gets model A's explanation alone and the reason
    (so only such pictures cost model A a second explanation). Raises what `compare_models_batch`
    raises otherwise."""
    try:
        compared = compare_models_batch(handle, against, list(pictures), settings.methods, targets,
                                        batch_size=batch_size, progress=progress, layer_a=list(settings.layers))
        return [(c.explanation_a, c, None) for c in compared]
    except UnknownNameError as err:
        if len(pictures) == 1:
            alone = explain_batch(handle, list(pictures), settings.methods, targets=targets,
                                  layer=list(settings.layers), batch_size=1)
            return [(alone[0], None, str(err))]
    half = len(pictures) // 2
    return (explain_against(handle, against, pictures[:half], settings, targets[:half], batch_size)
            + explain_against(handle, against, pictures[half:], settings, targets[half:], batch_size))


def against_values(handle: ModelHandle, against: ModelHandle, true_label: Optional[str], explanation: Explanation,
                   comparison: Optional[Comparison], note: Optional[str], picture=None) -> dict:
    """A row's model B columns (see `settings.columns`): `correct` and `b_correct` where the true
    label is one of that model's classes, model B's top-1 (from `picture` when there is no
    comparison), the class it explains and the agreement of each method's maps (None where
    undefined: a constant map, a method that does not apply to model B)."""
    values: dict = {"correct": _correct(handle, explanation.top[0].label, true_label), "b_note": note}
    if comparison is None:
        top = predict(against, picture, top_k=1)[0] if picture is not None else None
    else:
        top = comparison.top_b[0]
        values.update(b_target_label=comparison.target_label_b,
                      b_target_probability=float(comparison.probability_b))
        for method, compared in comparison.methods.items():
            values[f"{method}_spearman"] = _number(compared.spearman)
            values[f"{method}_top_iou"] = _number(compared.top_iou)
            if compared.note and values["b_note"] is None:
                values["b_note"] = compared.note
    if top is not None:
        values.update(b_label=top[1], b_probability=float(top[2]), b_correct=_correct(against, top[1], true_label))
    return values


def b_pictures(key: str, comparison: Optional[Comparison]) -> list[tuple]:
    """Model B's entry for `writer.save_pictures` ((KEY_b, its picture, its maps)), [] without a
    comparison; its maps are on its own picture, as model A's are on A's."""
    if comparison is None:
        return []
    return [(key + B_SUFFIX, comparison.explanation_b.image, comparison.explanation_b.maps)]


def _correct(handle: ModelHandle, label: Optional[str], true_label: Optional[str]) -> Optional[bool]:
    """Whether `label` names `true_label`, None where the true label is not one of the model's classes."""
    if not true_label or label_key(true_label) not in _class_keys(handle):
        return None
    return is_correct(label, true_label)


def _class_keys(handle: ModelHandle) -> frozenset:
    return _keys(tuple(handle.categories))


@functools.lru_cache(maxsize=8)
def _keys(categories: tuple) -> frozenset:
    """The label keys of a model's classes (cached by the labels, never by the model)."""
    return frozenset(label_key(c) for c in categories)


def _number(value: Optional[float]) -> Optional[float]:
    return None if value is None or not math.isfinite(value) else float(value)


__all__ = ["against_values", "b_pictures", "check_against", "explain_against"]
