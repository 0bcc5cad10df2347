"""How long `evaluate` will take, before it runs (cheap: the page shows it before the user confirms).

The estimate counts the work `evaluate` does, the way it does it (`forward_batches` follows its
batching: the scorer's own image, each chunk of maps' deletion/insertion and confidence images, ROAD's
imputed images job by job), and prices it with this server's measured times:
  - each image forward at `curves.forward_seconds` (a warm forward at evaluate's batch size, timed once
    per model and device);
  - ROAD's imputation at `imputation_seconds` per mask (one solve of 2 masks, timed once per
    image size and device);
  - with the sanity check, the explanation passes it recomputes (the cost model's shared pass and
    methods, `estimate_cost`).
After an evaluation, `observe_evaluation` replaces each of these per-unit times with the one measured
on it (later runs are averaged in), so the next estimate for this model follows the machine's real
speed and its load."""

from __future__ import annotations

import weakref

import numpy as np
import torch

from .. import _timing
from ..explain import Explanation
from ..methods import estimate_cost, list_methods
from ..models import ModelHandle
from .baseline import RANDOM, random_map, same_map_groups
from .curves import default_batch_size, forward_seconds
from .imputation import harmonic_fill
from .road import ROAD_PERCENTILES

# module -> {"image_s": seconds per scored image, "road_image_s": the same in ROAD's stage,
#            "mask_s": ROAD imputation seconds per mask,
#            ("sanity", key): seconds of that sanity check}, measured on the evaluations here (`_remember`)
_OBSERVED: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
# (image side, device) -> seconds of ROAD's imputation per mask
_IMPUTATION_S: dict = {}


def forward_batches(distinct_maps: int, steps: int, road_percentiles, batch_size: int) -> dict[str, list[int]]:
    """The size of every forward `evaluate` runs for `distinct_maps` distinct maps (the random one
    included), by stage: "curves" (the scorer's own image, then chunk by chunk: the random and the
    first map together, each other map alone; each chunk's deletion and insertion steps and
    confidence images, the 2 shared end images with the first) and "road" (each job's imputed images,
    gathered until a batch is full)."""
    first = min(2, distinct_maps)
    chunks = [first] + [1] * (distinct_maps - first)
    curves = [1]
    for i, n in enumerate(chunks):
        curves += _split(2 * (i == 0) + n * 2 * (steps - 1) + n, batch_size)
    road, pending = [], 0
    for _ in range(2 * len(road_percentiles)):
        pending += distinct_maps
        if pending >= batch_size:
            road, pending = road + _split(pending, batch_size), 0
    road += _split(pending, batch_size)
    return {"curves": curves, "road": road}


def _split(images: int, batch_size: int) -> list[int]:
    return [min(batch_size, images - start) for start in range(0, images, batch_size)]


def imputation_seconds(handle: ModelHandle) -> float:
    """Seconds of ROAD's imputation per mask at the handle's input size on its device, timed once
    per size and device: one `harmonic_fill` of 2 masks shaped like a CAM's (a central disc of 40%
    of the pixels and the ring around it, ROAD's masks being 20-80% of the pixels, half from each
    end of the ranking), after an untimed warm-up."""
    size = handle.transforms.crop_size[0]
    key = (size, str(handle.device))
    if key not in _IMPUTATION_S:
        axis = torch.linspace(-1.0, 1.0, size)
        radius = axis[:, None] ** 2 + axis[None, :] ** 2
        disc = radius <= radius.flatten().quantile(0.4)
        unknown = torch.stack([disc, ~disc]).to(handle.device)
        images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)).to(handle.device)
        harmonic_fill(images[:1], unknown[:1])  # warm-up
        _IMPUTATION_S[key] = _timing.median_time(lambda: harmonic_fill(images, unknown), handle.device, repeats=1) / 2
    return _IMPUTATION_S[key]


def evaluation_parts(handle: ModelHandle, explanation: Explanation, *, steps: int = 20,
                     road_percentiles: tuple[int, ...] = ROAD_PERCENTILES, sanity: bool = True,
                     batch_size: int = 0) -> dict[str, float]:
    """`estimate_evaluation_seconds`'s parts: {"curves", "road", "sanity"} -> seconds."""
    batch_size = batch_size or default_batch_size(handle)
    distinct = _distinct_maps(explanation)
    batches = forward_batches(distinct, steps, road_percentiles, batch_size)
    masks = 2 * len(road_percentiles) * distinct
    seen = _OBSERVED.get(handle.module, {})
    image_s = seen.get("image_s") or forward_seconds(handle)
    road_image_s = seen.get("road_image_s", image_s)
    mask_s = seen["mask_s"] if "mask_s" in seen else imputation_seconds(handle)
    parts = {"curves": sum(batches["curves"]) * image_s,
             "road": sum(batches["road"]) * road_image_s + masks * mask_s, "sanity": 0.0}
    checked = _checked(explanation, sanity)
    if checked:
        parts["sanity"] = seen.get(_sanity_key(explanation, checked)) or _sanity_prior(handle, explanation, checked)
    return parts


def estimate_evaluation_seconds(handle: ModelHandle, explanation: Explanation, *, steps: int = 20,
                                road_percentiles: tuple[int, ...] = ROAD_PERCENTILES,
                                sanity: bool = True) -> float:
    """About how many seconds `evaluate(handle, image, explanation, steps=steps, sanity=sanity)`
    takes here: the images it scores (`forward_batches`) times the seconds per image of a warm
    forward at its batch size, ROAD's imputation per mask, and with `sanity` the cost model's
    estimate of recomputing the registered methods' maps (shared pass included); each per-unit time
    is the one measured on the evaluations with this model, where there were any."""
    return sum(evaluation_parts(handle, explanation, steps=steps, road_percentiles=road_percentiles,
                                sanity=sanity).values())


def observe_evaluation(handle: ModelHandle, explanation: Explanation, steps: int, road_percentiles,
                       batch_size: int, timings: dict, sanity: bool) -> None:
    """Remember what the evaluation of `explanation` just measured (`timings`: seconds of its
    "deletion_insertion", "road" and "sanity" stages): the seconds per scored image (the curves'
    and ROAD's), ROAD's imputation seconds per mask and the sanity check's seconds (averaged with the earlier runs'); later
    estimates for this model use them."""
    distinct = _distinct_maps(explanation)
    batches = forward_batches(distinct, steps, road_percentiles, batch_size)
    seen = _OBSERVED.setdefault(handle.module, {})
    if "deletion_insertion" in timings and "road" in timings:
        image_s = timings["deletion_insertion"] / max(sum(batches["curves"]) - 1, 1)  # the scorer's image is untimed
        _remember(seen, "image_s", image_s)
        # ROAD's forwards at the curves' price, the rest its imputation; where ROAD ran faster than
        # that price allows (the machine's load changed between the stages), its forwards take all
        # of its time, so the same evaluation is estimated at what it measured, never more
        road_images = sum(batches["road"])
        road_image_s = min(image_s, timings["road"] / max(road_images, 1))
        _remember(seen, "road_image_s", road_image_s)
        masks = 2 * len(road_percentiles) * distinct
        _remember(seen, "mask_s", (timings["road"] - road_images * road_image_s) / max(masks, 1))
    checked = _checked(explanation, sanity)
    if checked and "sanity" in timings:
        _remember(seen, _sanity_key(explanation, checked), timings["sanity"])


def _remember(seen: dict, key, value: float) -> None:
    """The first measurement replaces the timed prior; later ones are averaged with the earlier ones
    (half weight each), so one run slowed or sped up by the machine's other work moves the estimate half way."""
    seen[key] = value if key not in seen else (seen[key] + value) / 2


def _distinct_maps(explanation: Explanation) -> int:
    """Distinct maps `evaluate` scores: the explanation's (equal ones once) and the random one."""
    shape = tuple(np.shape(next(iter(explanation.maps.values()))))
    maps = {m: np.float32(cam) for m, cam in explanation.maps.items()}
    maps[RANDOM] = random_map(shape)
    return len(same_map_groups(maps))


def _checked(explanation: Explanation, sanity: bool) -> list[str]:
    return [m for m in explanation.maps if m in list_methods()] if sanity else []


def _sanity_key(explanation: Explanation, checked: list[str]) -> tuple:
    return "sanity", tuple(checked), tuple(explanation.layers), repr(sorted((explanation.options or {}).items()))


def _sanity_prior(handle: ModelHandle, explanation: Explanation, checked: list[str]) -> float:
    """The cost model's seconds for `explain` of `checked` (shared pass included) with the explanation's options."""
    options = explanation.options or {}
    costs = estimate_cost(handle, checked, list(explanation.layers), aug_smooth=bool(options.get("aug_smooth")),
                          options=options.get("methods"))
    return sum(c.seconds for c in costs.values())


__all__ = ["estimate_evaluation_seconds", "evaluation_parts", "forward_batches", "imputation_seconds",
           "observe_evaluation"]
