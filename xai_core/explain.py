"""`explain`: CAM maps for several methods, gradient methods sharing one forward/backward pass."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import torch
from pytorch_grad_cam import FullGrad
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ._common import GuardedModule, LayerArg, MethodsArg, as_pil, guard, layer_names, method_specs
from ._timing import elapsed, synchronize, timer
from .cam_classes import HeadAblationCAM
from .cost import observe
from .engine import default_tta, deaugment_mean, library_cam, run_shared_pass
from .errors import Cancelled
from .images import ImageSource
from .methods import GRADIENT as GRADIENT_KIND
from .methods import OWN_PASS, MethodSpec, get_method, resolve_options
from .models import ModelHandle

#: Maps that are equal by construction when the target layer's head is global-average-pool + linear:
#: the gradient is then the same at every location, so HiResCAM's element-wise product equals
#: Grad-CAM's channel weighting, and XGrad-CAM's normalised weights reduce to the same gradient.
GAP_IDENTICAL = ("gradcam", "hirescam", "xgradcam")


@dataclass(frozen=True)
class Explanation:
    """Result of `explain`. `maps[method]` is float32 [H, W] in [0, 1], aligned with `image`."""

    maps: dict[str, np.ndarray]
    target: int
    target_label: str
    target_probability: float
    layers: tuple[str, ...]
    model: str
    #: The preprocessed picture the maps belong to (resized and cropped), uint8 RGB [H, W, 3].
    image: np.ndarray
    #: Seconds per stage: "forward", "backward", one entry per method, "total".
    timings: dict[str, float]
    #: User-facing sentences (methods named by their titles).
    notes: tuple[str, ...]
    #: What made the maps: {"aug_smooth": bool, "eigen_smooth": bool, "methods": {method id:
    #: {option: value}}}, the last with every option (defaults filled in) of each method here that
    #: declares options; `explain(..., options=result.options["methods"])` gives the same maps.
    options: dict


def explain(
    handle: ModelHandle,
    image: ImageSource,
    methods: MethodsArg = ("gradcam",),
    target: Union[int, str, None] = None,
    layer: LayerArg = None,
    *,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    batch_size: int = 32,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    options: Optional[dict] = None,
) -> Explanation:
    """Compute the maps of `methods` (ids from `list_methods()`) for class `target` (index or label;
    default top-1) at `layer` (a name, a comma list or a sequence: several layers are fused as
    pytorch-grad-cam does). Every method except FullGrad shares one forward pass, and every gradient
    method one backward pass to the target layer. `progress(method, done, total)` is called by the
    perturbation methods after each batch; returning False cancels (raises `Cancelled`).
    `options` sets the options each method declares (`MethodSpec.options`), e.g.
    {"fastscorecam": {"top_k": 32}}; `result.options` records them all.
    Raises `InvalidImageError`, `UnknownNameError`, `InvalidOptionError`, `Cancelled`."""
    synchronize(handle.device)
    started = time.perf_counter()
    specs = method_specs(methods)
    resolved = resolve_options([s.id for s in specs], options)
    names = layer_names(handle, layer)
    pil = as_pil(image)
    x = handle.preprocess(pil)
    target_index = None if target is None else handle.class_index(target)
    if target_index is None and aug_smooth:
        target_index = _top1(handle, x)  # the un-augmented image's top-1, for every augmentation
    transforms = default_tta() if aug_smooth else None
    batch = torch.cat([t.augment_image(x) for t in transforms]) if transforms else x

    maps: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    layers = [handle.layers[n] for n in names]
    shared_specs = [s for s in specs if s.shares_pass]
    if shared_specs:
        shared = run_shared_pass(
            handle.module, layers, batch, target_index, {s.grads for s in shared_specs if s.grads}, lambda: guard(handle)
        )
        target_index = shared.target
        timings.update(shared.timings)
        internal = {
            "model": GuardedModule(handle, handle.module),
            "batch_size": batch_size,
            "guard": lambda: guard(handle),
        }
        method_notes: list[str] = []
        if any(issubclass(s.cam_class, HeadAblationCAM) for s in shared_specs):
            internal.update(_ablation_internals(handle, names, layers, shared.activations), notes=method_notes)
        reshapes = [handle.reshape(n) for n in names]
        for spec in shared_specs:
            with timer(handle.device, timings, spec.id):
                cams = library_cam(spec, shared, handle.module, layers, target_index, eigen_smooth,
                                   resolved.get(spec.id), {**internal, "progress": _bind(progress, spec.id)},
                                   reshapes)
                maps[spec.id] = _finish(cams, transforms)
            observe(handle, spec.id, names, aug_smooth, resolved.get(spec.id), timings[spec.id])
    if target_index is None:
        target_index = _top1(handle, x)
    for spec in specs:
        if spec.kind == OWN_PASS:
            report = _bind(progress, spec.id) or (lambda done, total: None)
            if report(0, 1) is False:
                raise Cancelled("The computation was cancelled.")
            with timer(handle.device, timings, spec.id):
                maps[spec.id] = _fullgrad(handle, x, target_index, aug_smooth, eigen_smooth)
            report(1, 1)
            observe(handle, spec.id, names, aug_smooth, resolved.get(spec.id), timings[spec.id])
    if shared_specs and transforms is None:
        probability = float(shared.logits.detach()[0].softmax(-1)[target_index])
    else:
        probability = _probability(handle, x, target_index)
    timings["total"] = elapsed(handle.device, started)
    return Explanation(
        maps={s.id: maps[s.id] for s in specs},
        target=target_index,
        target_label=handle.categories[target_index],
        target_probability=probability,
        layers=tuple(names),
        model=handle.name,
        image=handle.display_image(pil),
        timings=timings,
        notes=tuple(_notes(handle, specs, names) + (method_notes if shared_specs else [])),
        options={"aug_smooth": aug_smooth, "eigen_smooth": eigen_smooth, "methods": resolved},
    )


def _ablation_internals(handle: ModelHandle, names: list[str], layers: list, activations: list) -> dict:
    """What `HeadAblationCAM` needs: each layer's head, which heads pool first, the raw output of
    each reshaped (token / channels-last) layer, and the model (to bind replay heads)."""
    return {
        "heads": {id(handle.layers[n]): handle.head(n) for n in names},
        "gap_heads": {id(handle.layers[n]) for n in names if handle.is_gap_linear(n)},
        "raw": {id(m): a for n, m, a in zip(names, layers, activations) if handle.reshape(n) is not None},
        "module": handle.module,
    }


def _bind(progress, method_id: str):
    return None if progress is None else (lambda done, total: progress(method_id, done, total))


def _finish(cams: np.ndarray, transforms) -> np.ndarray:
    cam = deaugment_mean(cams, transforms) if transforms is not None else cams
    return np.clip(np.float32(cam[0]), 0.0, 1.0)


def _fullgrad(handle: ModelHandle, x: torch.Tensor, target: int, aug_smooth: bool, eigen_smooth: bool) -> np.ndarray:
    """FullGrad runs its own pass (input and every bias gradient) under the model's lock. Its hooks
    are removed, and the parameter gradients its full backward leaves on the shared model are
    dropped, in `finally` (the library's `__exit__` would swallow IndexErrors, so it is not used)."""
    with guard(handle):
        cam = FullGrad(handle.module, [])
        try:
            result = cam(x, [ClassifierOutputTarget(target)], aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
        finally:
            cam.activations_and_grads.release()
            handle.module.zero_grad(set_to_none=True)
    return np.clip(np.float32(result[0]), 0.0, 1.0)


def _top1(handle: ModelHandle, x: torch.Tensor) -> int:
    with guard(handle), torch.inference_mode():
        return int(handle.module(x)[0].argmax())


def _probability(handle: ModelHandle, x: torch.Tensor, target: int) -> float:
    with guard(handle), torch.inference_mode():
        return float(handle.module(x).softmax(-1)[0, target])


def _notes(handle: ModelHandle, specs: list[MethodSpec], names: list[str]) -> list[str]:
    """User-facing sentences about the maps, naming methods by their titles."""
    notes: list[str] = []
    ids = [s.id for s in specs]
    same = [_title(m) for m in GAP_IDENTICAL if m in ids]
    if len(same) > 1 and all(handle.is_gap_linear(n) for n in names):
        notes.append(
            f"{' = '.join(same)} are identical by construction at {names[0]}: its head is global average "
            "pooling + a linear layer, so the gradient is the same at every location."
        )
    gradient = [s.title for s in specs if s.kind == GRADIENT_KIND]
    if handle.transformer and gradient:
        free = " and ".join(_title(m) for m in ("ablationcam", "scorecam"))
        notes.append(f"{', '.join(gradient)} {'is' if len(gradient) == 1 else 'are'} less reliable on vision "
                     f"transformers (gradients through attention are noisy); {free}, which need no gradients, are "
                     "what the methods' authors suggest for them.")
    if "fullgrad" in ids:
        notes.append(f"{_title('fullgrad')} ignores the target layer: it sums the input gradient and every bias "
                     "gradient.")
    if "shapleycam" in ids:
        notes.append(f"{_title('shapleycam')} uses the ReST target (logit minus cross-entropy), as its paper "
                     "proposes.")
    agnostic = [_title(m) for m in ("eigencam", "kpcacam") if m in ids]
    if agnostic:
        verb = "ignores" if len(agnostic) == 1 else "ignore"
        notes.append(f"{' and '.join(agnostic)} {verb} the target class (class-agnostic: the main component of "
                     "the activations).")
    return notes


def _title(method_id: str) -> str:
    return get_method(method_id).title
