"""How long `evaluate` will take, before it runs: its images at the seconds per image measured on the
last evaluation with the model (or the scoring forward's timed speed), plus the sanity check's cost."""

from __future__ import annotations

import weakref

import numpy as np
import torch

from ..explain import Explanation
from ..methods import estimate_cost, list_methods
from ..models import ModelHandle
from .baseline import RANDOM, random_map, same_map_groups
from .curves import forward_seconds
from .road import ROAD_PERCENTILES

#: `evaluate`'s wall time over that of its forwards alone on 2 cores, ROAD's imputation sharing the CPU
#: (EfficientNet-Lite0 at 224 px, 4 and 6 distinct maps; benchmarks/bench_evaluate.py prints both).
ROAD_SHARE = 2.0
# module -> seconds per scored image (deletion/insertion and ROAD) of its last evaluation here
_OBSERVED_S: "weakref.WeakKeyDictionary[torch.nn.Module, float]" = weakref.WeakKeyDictionary()


def observe_evaluation(handle: ModelHandle, distinct_maps: int, steps: int, road_percentiles, seconds: float) -> None:
    """Remember the seconds per scored image of an evaluation that scored `distinct_maps` maps (the
    random one included) in `seconds`: later estimates for this model use it."""
    _OBSERVED_S[handle.module] = seconds / image_count(distinct_maps, steps, road_percentiles)


def estimate_evaluation_seconds(handle: ModelHandle, explanation: Explanation, *, steps: int = 20,
                                road_percentiles: tuple[int, ...] = ROAD_PERCENTILES,
                                sanity: bool = True) -> float:
    """About how many seconds `evaluate(handle, image, explanation, steps=steps, sanity=sanity)`
    takes here: one forward per image (the deletion/insertion steps, the confidence change and
    ROAD's images, for each distinct map and the random one) at the seconds per image of the last
    evaluation with this model, or before any, at the scoring forward's timed speed times
    `ROAD_SHARE` (ROAD's imputation shares the CPU); with `sanity`, plus the cost model's
    estimate of recomputing the registered methods' maps."""
    shape = tuple(np.shape(next(iter(explanation.maps.values()))))
    maps = {m: np.float32(cam) for m, cam in explanation.maps.items()}
    maps[RANDOM] = random_map(shape)
    per_image = _OBSERVED_S.get(handle.module) or forward_seconds(handle) * ROAD_SHARE
    seconds = image_count(len(same_map_groups(maps)), steps, road_percentiles) * per_image
    checked = [m for m in explanation.maps if m in list_methods()] if sanity else []
    if checked:
        seconds += sum(c.seconds for c in estimate_cost(handle, checked, list(explanation.layers)).values())
    return seconds


def image_count(distinct_maps: int, steps: int, road_percentiles) -> int:
    """Images `evaluate` scores: the 2 shared end images, then per distinct map (the random one
    included) its deletion and insertion steps, its confidence change image and ROAD's images."""
    return 2 + distinct_maps * (2 * (steps - 1) + 1 + 2 * len(road_percentiles))


__all__ = ["ROAD_SHARE", "estimate_evaluation_seconds", "image_count", "observe_evaluation"]
