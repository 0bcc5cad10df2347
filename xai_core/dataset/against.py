"""Dataset mode against a second model (`run`'s `against=`, the CLI's `batch --against`): each batch
goes through `compare.compare_models_batch`, which explains model A once (its row and pictures come
from the comparison's `explanation_a`, as without model B) and model B once; a row gets model B's
columns (`settings.columns`) and model B's pictures are written beside model A's (KEY_b.jpg and
KEY_b_METHOD.jpg, at the same `pictures` level: `writer.B_SUFFIX`). Model B's target layers are the
settings' (`against_layers`: --against-layer, else its default); with evaluation model B's maps are
scored with model B too (`against_scores`: the rows' b_{method}_{score} columns)."""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional, Sequence

from ..compare import Comparison, compare_models_batch, resolve
from ..errors import InvalidOptionError, UnknownNameError
from ..evaluate import evaluate_batch
from ..explain import Explanation, explain_batch
from ..faithfulness import Evaluation
from ..models import ModelHandle, layer_names
from ..predict import is_correct, label_key, predict
from .settings import EVAL_SCORES, Settings
from .writer import B_SUFFIX


def check_against(handle: ModelHandle, against: ModelHandle, target: Optional[int]) -> None:
    """Refuse, before any work, a model B that shares no label with model A (`InvalidOptionError`)
    or that does not know the fixed `target` (model A's class index: `UnknownNameError`), each in
    one sentence (`compare.resolve`'s)."""
    if not isinstance(against, ModelHandle):
        raise InvalidOptionError("against= takes a model loaded with xai_core.load_model, not "
                                 f"{type(against).__name__}.")
    resolve(handle, against, target)


def against_layers(against: Optional[ModelHandle], layer) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(model B's target layers for `layer` (`run`'s `against_layer=`: a name, a comma list or a
    sequence; None: its default), its default layers); ((), ()) without a model B. Raises, before
    any work, `UnknownNameError` for a layer model B does not have (the sentence `layer=` gets for
    model A, naming model B) and `InvalidOptionError` for a layer without a model B."""
    if against is None:
        if layer:
            raise InvalidOptionError("A layer for model B (--against-layer) needs a model B (--against).")
        return (), ()
    return tuple(layer_names(against, layer)), (against.default_layer,)


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
                                        batch_size=batch_size, progress=progress, layer_a=list(settings.layers),
                                        layer_b=list(settings.against_layers) or None)
        return [(c.explanation_a, c, None) for c in compared]
    except UnknownNameError as err:
        if len(pictures) == 1:
            alone = explain_batch(handle, list(pictures), settings.methods, targets=targets,
                                  layer=list(settings.layers), batch_size=1)
            return [(alone[0], None, str(err))]
    half = len(pictures) // 2
    return (explain_against(handle, against, pictures[:half], settings, targets[:half], batch_size)
            + explain_against(handle, against, pictures[half:], settings, targets[half:], batch_size))


def against_scores(against: ModelHandle, pictures: Sequence, compared: Sequence[tuple], settings: Settings,
                   progress: Optional[Callable] = None) -> list[Optional[Evaluation]]:
    """Model B's faithfulness scores of its own maps, one per picture (`explain_against`'s entries):
    `evaluate_batch` with model B on the pictures whose comparison has model B's maps (None for the
    others: no comparison, or no method applies to model B), as model A's are scored."""
    which = [n for n, (_, comparison, _) in enumerate(compared)
             if comparison is not None and comparison.explanation_b.maps]
    scored = (evaluate_batch(against, [pictures[n] for n in which], [compared[n][1].explanation_b for n in which],
                             steps=settings.steps, road_percentiles=settings.road_percentiles, progress=progress)
              if which else [])
    out: list[Optional[Evaluation]] = [None] * len(compared)
    for n, evaluation in zip(which, scored):
        out[n] = evaluation
    return out


def b_score_values(methods: Sequence[str], evaluation: Optional[Evaluation]) -> dict:
    """A row's `b_{method}_{score}` columns from model B's `Evaluation` (None where it has no map)."""
    scores = {} if evaluation is None else evaluation.scores
    return {f"b_{m}_{score}": float(scores[m][score]) if m in scores else None
            for m in methods for score in EVAL_SCORES}


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


__all__ = ["against_layers", "against_scores", "against_values", "b_pictures", "b_score_values", "check_against",
           "explain_against"]
