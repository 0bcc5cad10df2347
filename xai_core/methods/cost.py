"""Cost model: what each method costs, in passes and estimated seconds, before it runs."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from pytorch_grad_cam.utils.image import scale_accross_batch_and_channels

from .._timing import median_time
from .shared_pass import default_tta, recording
from .attention import check_applies
from .registry import ATTENTION, MethodsArg, method_specs, resolve_options
from ..models import LayerArg, ModelHandle, guard, layer_names

#: A method costing more than this many times a Grad-CAM is "slow": the UI warns and shows progress.
SLOW_FACTOR = 3.0
#: The shared pass (forward + backward to the target layer) in forward-pass equivalents.
SHARED_PASS = 1.2
#: Batch size of the calibration pass that times batched (per-channel) forwards.
_CAL_BATCH = 8


@dataclass(frozen=True)
class Cost:
    """Estimated cost of one method beyond the shared pass: `passes` in forward-pass equivalents of
    the full network, `seconds` on this machine, `slow` when above SLOW_FACTOR x a Grad-CAM."""

    method: str
    passes: float
    seconds: float
    slow: bool
    detail: str


@dataclass
class _Calibration:
    forward_s: float  # one single-image forward
    batched_s: float  # one image of a batched forward
    channels: dict  # layer -> channels
    activations: dict  # layer -> activations of a zero image (to time heads)
    bias_channels: int  # channels of every Conv2d/BatchNorm2d with a bias (FullGrad's layers)
    rescale_s: float  # seconds to rescale one channel map to the input size (FullGrad's main cost)
    head_s: dict = field(default_factory=dict)  # layer -> per-sample seconds of its head, batched


_CALIBRATIONS: "weakref.WeakKeyDictionary[torch.nn.Module, _Calibration]" = weakref.WeakKeyDictionary()
#: Seconds a method really took on a model, per (method, layers, aug_smooth, options): later estimates
#: use it.
_OBSERVED: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def observe(handle: ModelHandle, method: str, layers: Sequence[str], aug_smooth: bool, options: Optional[dict],
            seconds: float) -> None:
    """Remember how long `method` took with its resolved `options` (called by `explain`), so the
    next estimate for the same call is measured."""
    _OBSERVED.setdefault(handle.module, {})[_observed_key(method, layers, aug_smooth, options)] = seconds


def _observed_key(method: str, layers: Sequence[str], aug_smooth: bool, options: Optional[dict]) -> tuple:
    return method, tuple(layers), aug_smooth, tuple(sorted((options or {}).items()))


def estimate_cost(
    handle: ModelHandle,
    methods: MethodsArg,
    layer: LayerArg = None,
    *,
    aug_smooth: bool = False,
    options: Optional[dict] = None,
) -> dict[str, Cost]:
    """Cost of each method for `handle` at `layer` with `options` (as `explain` takes them), and of
    "shared pass" (the one forward/backward all shared methods use), from one timed calibration per
    model, cached. Raises `UnknownNameError`, `InvalidOptionError` (also for an attention method
    on a model it does not apply to)."""
    specs = method_specs(methods)
    check_applies(handle, [s.title for s in specs if s.kind == ATTENTION])
    resolved = resolve_options([s.id for s in specs], options)
    names = layer_names(handle, layer)
    cal = _calibration(handle, names)
    copies = len(default_tta()) if aug_smooth else 1
    gradcam_s = SHARED_PASS * cal.forward_s
    channels = sum(cal.channels[n] for n in names)
    costs = {"shared pass": Cost("shared pass", SHARED_PASS * copies, gradcam_s * copies, False,
                                 "one forward, and one backward to the target layer, shared by the methods")}
    for spec in specs:
        passes, seconds = spec.extra_passes, spec.extra_passes * cal.forward_s
        detail = "computed from the shared pass" if not passes else f"about {passes:g} extra passes"
        if spec.per_channel == "network":
            n = min(resolved.get(spec.id, {}).get("top_k") or channels, channels)
            passes, seconds = passes + n, seconds + n * cal.batched_s
            detail = f"{n} forward passes of the full network, one per channel"
        elif spec.per_channel == "bias":
            seconds += cal.bias_channels * cal.rescale_s
            passes = seconds / cal.forward_s
            detail = f"its own full backward pass, then {cal.bias_channels} bias-gradient maps rescaled"
        elif spec.per_channel == "head":
            head_s = sum(cal.head_s[n] for n in names)
            passes, seconds = passes + channels * head_s / cal.batched_s, seconds + channels * head_s
            gap = all(handle.is_gap_linear(n) for n in names)
            detail = (f"{channels} evaluations of the linear head, one per channel" if gap
                      else f"{channels} passes through the layers after {'+'.join(names)}, one per channel")
        passes, seconds = passes * copies, seconds * copies
        key = _observed_key(spec.id, names, aug_smooth, resolved.get(spec.id))
        seen = _OBSERVED.get(handle.module, {}).get(key)
        if seen is not None:
            seconds, detail = seen, detail + " (time measured on the last run)"
        costs[spec.id] = Cost(spec.id, passes, seconds, seconds > SLOW_FACTOR * gradcam_s, detail)
    return costs


def _calibration(handle: ModelHandle, names: list[str]) -> _Calibration:
    cal = _CALIBRATIONS.get(handle.module)
    if cal is None:
        size = handle.transforms.crop_size[0]
        x = torch.zeros(_CAL_BATCH, 3, size, size, device=handle.device)
        with guard(handle), recording(list(handle.layers.values()), start_graph=False) as acts, torch.inference_mode():
            handle.module(x[:1])  # warm-up
            forward_s = median_time(lambda: handle.module(x[:1]), handle.device)
            batched_s = median_time(lambda: handle.module(x), handle.device, repeats=1) / _CAL_BATCH
        maps = np.random.default_rng(0).random((1, 32, size // 4, size // 4), dtype=np.float32)
        rescale_s = median_time(lambda: scale_accross_batch_and_channels(maps, (size, size))) / 32  # numpy: CPU
        bias = sum(m.weight.shape[0] for m in handle.module.modules()
                   if type(m) in (torch.nn.Conv2d, torch.nn.BatchNorm2d) and m.bias is not None)
        channels = {n: int(a.shape[1] if handle.reshape(n) is None else a.shape[-1]) for n, a in zip(handle.layers, acts)}
        cal = _Calibration(forward_s, batched_s, channels,
                           {n: a.detach() for n, a in zip(handle.layers, acts)}, bias, rescale_s)
        _CALIBRATIONS[handle.module] = cal
    for name in names:
        if name not in cal.head_s:
            found, acts = handle.head(name), cal.activations[name]
            acts = acts.repeat(4, *[1] * (acts.dim() - 1))  # a batch of 32
            with guard(handle), torch.inference_mode():
                size = handle.transforms.crop_size[0]
                head = found.module if found.exact else found.bind(handle.module, torch.zeros(1, 3, size, size,
                                                                                              device=handle.device))
                if handle.is_gap_linear(name):  # HeadAblationCAM pools first
                    head, acts = head[1:], head[0](acts)
                cal.head_s[name] = median_time(lambda: head(acts), handle.device, repeats=1) / (4 * _CAL_BATCH)
    return cal
