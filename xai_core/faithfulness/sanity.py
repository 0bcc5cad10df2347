"""The model-parameter randomization check (Adebayo et al. 2018, arXiv 1810.03292) and the agreement
between maps. The randomized model is a deep copy: the shared module is never touched."""

from __future__ import annotations

import copy
import dataclasses
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from ..explain import Explanation, explain
from ..images import ImageSource
from ..models import ModelHandle, guard

#: A map fails the check when its Spearman rank correlation with the map of the randomized model
#: is above this: the map then barely depends on the parameters that decide the class.
SANITY_THRESHOLD = 0.5
#: Seed of the re-initialisation, so the randomized model (and the check) is reproducible.
SANITY_SEED = 0
#: Agreement IoU compares the 20% most important pixels of two maps.
TOP_FRACTION = 0.2

# module -> {first target layer: (randomized copy, its own lock)}; weak, so a dropped model frees it.
_COPIES: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_COPIES_LOCK = threading.Lock()


def sanity_scores(handle: ModelHandle, image: ImageSource, explanation: Explanation, methods: Sequence[str],
                  progress: Optional[Callable[[str, int, int], Optional[bool]]] = None) -> dict[str, float]:
    """Spearman correlation of each of `methods`' map in `explanation` with the map recomputed on
    `randomized_handle` with the explanation's options (smoothing and each method's). `progress`
    is `explain`'s (a slow perturbation method reports to it, so the user can still cancel)."""
    options = explanation.options or {}
    randomized = randomized_handle(handle, explanation.layers)
    again = explain(randomized, image, list(methods), target=explanation.target, layer=list(explanation.layers),
                    aug_smooth=bool(options.get("aug_smooth")), eigen_smooth=bool(options.get("eigen_smooth")),
                    options=options.get("methods"), progress=progress)
    return {m: spearman(np.float32(explanation.maps[m]), again.maps[m]) for m in methods}


def randomized_handle(handle: ModelHandle, layers: Sequence[str]) -> ModelHandle:
    """`handle` on a deep copy of its module whose first target layer of `layers` and everything
    after it (`handle.head(layer).after`: every parameterised module that runs after the layer) are
    re-initialised with seed `SANITY_SEED` (cascading randomization down to the target layer). The copy is cached per
    module and layer, and has its own lock."""
    first = min(layers, key=list(handle.layers).index)
    with _COPIES_LOCK:
        per_module = _COPIES.setdefault(handle.module, {})
        if first not in per_module:
            with guard(handle):  # no explain's hooks may be on the module while it is copied
                module = copy.deepcopy(handle.module)
            _reinitialise([module.get_submodule(first)] + _same_modules(handle, module, handle.head(first).after))
            per_module[first] = (module, threading.RLock())
        module, lock = per_module[first]
    layer_map = OrderedDict((name, module.get_submodule(name)) for name in handle.layers)
    return dataclasses.replace(handle, module=module, layers=layer_map, lock=lock)


def _same_modules(handle: ModelHandle, copy_: nn.Module, modules: Sequence[nn.Module]) -> list[nn.Module]:
    """The modules of the deep copy `copy_` at the paths `modules` have in the handle's module."""
    paths = {id(m): path for path, m in handle.module.named_modules()}
    return [copy_.get_submodule(paths[id(m)]) for m in modules if id(m) in paths]


def _reinitialise(parts: Sequence[nn.Module]) -> None:
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(SANITY_SEED)
        for part in parts:
            for sub in part.modules():
                reset = getattr(sub, "reset_parameters", None)
                if callable(reset):
                    reset()  # BatchNorm: also its running statistics


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps; 0.0 when one is constant (no rank order to share)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a.ravel(), b.ravel()).statistic)


def agreement_matrices(maps: Sequence[np.ndarray], rank_list: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise Spearman correlation and top-`TOP_FRACTION` IoU of `maps`, float64 [k, k] each."""
    k = len(maps)
    rho, iou = np.eye(k), np.eye(k)
    top = [r < round(TOP_FRACTION * r.size) for r in rank_list]
    for i in range(k):
        for j in range(i + 1, k):
            rho[i, j] = rho[j, i] = 1.0 if np.array_equal(maps[i], maps[j]) else spearman(maps[i], maps[j])
            union = np.count_nonzero(top[i] | top[j])
            iou[i, j] = iou[j, i] = np.count_nonzero(top[i] & top[j]) / union if union else 1.0
    return rho, iou
