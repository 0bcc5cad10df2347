"""`predict`: the model's top-k classes for an image."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from .errors import InvalidOptionError
from .images import ImageSource, load_image
from .models import ModelHandle, guard


#: A top-1 probability below this counts as low confidence (the dataset report's and page's filter).
LOW_CONFIDENCE = 0.5


class Prediction(NamedTuple):
    index: int
    label: str
    probability: float


def predict(handle: ModelHandle, image: ImageSource, top_k: int = 5) -> list[Prediction]:
    """The `top_k` most probable classes as `(index, label, probability)` tuples, best first.
    Raises `InvalidImageError` for an unreadable image."""
    if not 1 <= int(top_k) <= len(handle.categories):
        raise InvalidOptionError(f"top_k must be between 1 and {len(handle.categories)}.")
    x = handle.preprocess(load_image(image))
    with guard(handle), torch.inference_mode():
        probs = handle.module(x).softmax(-1)[0].float().cpu()
    values, indices = probs.topk(int(top_k))
    return [Prediction(int(i), handle.categories[int(i)], float(v)) for v, i in zip(values, indices)]


def is_correct(label: Optional[str], true_label: Optional[str]) -> bool:
    """Whether a predicted `label` names `true_label` (e.g. an ImageFolder's folder name; `_` and
    case ignored); False without a true label."""
    return bool(true_label) and label_key(label) == label_key(true_label)


def label_key(label: Optional[str]) -> str:
    """A label as labels are compared (`_` as a space, case and outer spaces ignored)."""
    return str(label or "").replace("_", " ").strip().lower()
