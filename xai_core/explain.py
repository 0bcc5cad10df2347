"""`explain`: CAM maps for several methods, gradient methods sharing one forward/backward pass."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from pytorch_grad_cam import FullGrad
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ._timing import elapsed, synchronize, timer
from .errors import Cancelled, InvalidImageError, InvalidOptionError
from .images import ImageSource, load_image
from .methods import GAP_IDENTICAL, OWN_PASS, MethodSpec, MethodsArg, get_method, method_specs, resolve_options
from .methods import GRADIENT as GRADIENT_KIND
from .methods import ATTENTION, attention_layout, check_applies, device_cams
from .methods.attention import grid_maps
from .methods.attention_capture import capturing
from .methods.cam_classes import HeadAblationCAM
from .methods.cost import observe
from .methods.shared_pass import (apply_reshape, caller_grads_kept, default_tta, deaugment_mean, library_cam,
                                  release_capture, run_shared_pass)
from .models import Geometry, GuardedModule, LayerArg, ModelHandle, Prepared, from_tensor, guard, layer_names
from .predict import Prediction


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
    #: The model's 5 most probable classes for the image, best first, as `predict` gives them:
    #: (index, label, probability) tuples.
    top: tuple = ()
    #: How the original image became `image` (its size, the aspect crop, the resize and the centre
    #: crop): `geometry.box_to_picture(...)` and `geometry.mask_to_picture(...)` align ground truth
    #: given in the original's pixels with the maps. None where unknown (then `image` is the original).
    geometry: Optional[Geometry] = None


def explain(
    handle: ModelHandle,
    image: ImageSource,
    methods: MethodsArg = ("gradcam",),
    target: Union[int, str, None] = None,
    layer: LayerArg = None,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    batch_size: int = 32,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    options: Optional[dict] = None,
    precision: Optional[str] = None,
) -> Explanation:
    """Compute the maps of `methods` (ids from `list_methods()`) for class `target` (index or label;
    default top-1) at `layer` (a name, a comma list or a sequence: several layers are fused as
    pytorch-grad-cam does). Every method except FullGrad shares one forward pass, and every gradient
    method one backward pass to the target layer; the classic CAM formulas then run on the model's
    device (`device_cams`). `progress(method, done, total)` is called by the perturbation methods
    after each batch of `batch_size` masked inputs; returning False cancels (raises `Cancelled`).
    `options` sets the options each method declares (`MethodSpec.options`), e.g.
    {"fastscorecam": {"top_k": 32}}; `result.options` records them all. `precision="bf16"` runs
    the shared forward under bfloat16 autocast (CUDA; the maps then differ slightly from fp32's).
    Raises `InvalidImageError`, `UnknownNameError`, `InvalidOptionError`, `Cancelled`."""
    synchronize(handle.device)
    started = time.perf_counter()
    plan = _plan(handle, methods, layer, options, precision)
    prepared = handle.prepare([load_image(image)])
    target_index = None if target is None else handle.class_index(target)
    (result,) = _explain_images(handle, plan, prepared, [target_index], aug_smooth, eigen_smooth, batch_size,
                                progress)
    result.timings["total"] = elapsed(handle.device, started)
    return result


def explain_batch(
    handle: ModelHandle,
    images: Union[Sequence[ImageSource], torch.Tensor],
    methods: MethodsArg = ("gradcam",),
    targets: Union[int, str, Sequence[Union[int, str, None]], None] = None,
    layer: LayerArg = None,
    *,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[str, int, int], Optional[bool]]] = None,
    options: Optional[dict] = None,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    precision: Optional[str] = None,
) -> list[Explanation]:
    """`explain` for many images: one `Explanation` per image, in order, each map equal to what
    `explain` gives that image (within float noise). `images` may also be a ready model input:
    a float tensor [N, 3, H, W] normalised as the model's preprocessing does (a DataLoader's batch
    with `handle.transforms`), which goes to the model as it is. `targets`: None (each image's own top-1), one
    index or label for every image, or a sequence with one per image (None: that image's top-1).
    Images go through the model `batch_size` at a time (default 64 on a GPU, 16 on a CPU): one
    shared forward and backward per batch, the CAM arithmetic on the device, the perturbation
    methods over the batch, and the model's lock held one batch at a time, so other users' requests
    run between batches. `progress("images", done, total)` is called after each batch; returning
    False cancels (raises `Cancelled`). Raises `InvalidImageError` (naming the image),
    `UnknownNameError`, `InvalidOptionError`, `Cancelled`."""
    plan = _plan(handle, methods, layer, options, precision)
    ready = from_tensor(handle.transforms, images, handle.device) if isinstance(images, torch.Tensor) else None
    images = ready if ready is not None else list(images)
    chosen = _per_image_targets(handle, targets, len(images))
    size = images_per_batch(handle, batch_size)
    results: list[Explanation] = []
    for first in range(0, len(images), size):
        synchronize(handle.device)
        started = time.perf_counter()
        end = min(first + size, len(images))
        prepared = ready[first:end] if ready is not None else handle.prepare(decoded(images, first, end))
        chunk = _explain_images(handle, plan, prepared, chosen[first:end], aug_smooth, eigen_smooth, 32, None)
        share = elapsed(handle.device, started) / len(chunk)
        for result in chunk:
            result.timings["total"] = share
        results.extend(chunk)
        if progress is not None and progress("images", len(results), len(images)) is False:
            raise Cancelled("The computation was cancelled.")
    return results


def decoded(images: Sequence[ImageSource], first: int, end: int) -> list:
    """`images[first:end]` decoded (`load_image`); a refused one raises `InvalidImageError` naming it."""
    pils = []
    for i in range(first, end):
        try:
            pils.append(load_image(images[i]))
        except InvalidImageError as err:
            raise InvalidImageError(f"Image {i + 1} of {len(images)}: {err}") from None
    return pils


@dataclass(frozen=True)
class _Plan:
    specs: list
    resolved: dict
    names: list
    precision: Optional[str]


def _plan(handle: ModelHandle, methods: MethodsArg, layer: LayerArg, options: Optional[dict],
          precision: Optional[str]) -> _Plan:
    specs = method_specs(methods)
    if precision not in PRECISIONS:
        raise InvalidOptionError(f"Unknown precision {precision!r}; use {' or '.join(map(repr, PRECISIONS))}.")
    if precision == "bf16" and handle.device.type != "cuda":
        raise InvalidOptionError(f"precision='bf16' runs on a CUDA device; this model is on {handle.device.type}.")
    check_applies(handle, [s.title for s in specs if s.kind == ATTENTION])
    return _Plan(specs, resolve_options([s.id for s in specs], options), layer_names(handle, layer),
                 None if precision == "fp32" else precision)


#: How many of the most probable classes an `Explanation` lists (`top`).
TOP_K = 5
#: The precisions of the shared forward: None / "fp32" (float32), "bf16" (bfloat16 autocast, CUDA).
PRECISIONS = (None, "fp32", "bf16")


def _per_image_targets(handle: ModelHandle, targets, count: int) -> list[Optional[int]]:
    if targets is None or isinstance(targets, (int, np.integer, str)):
        index = None if targets is None else handle.class_index(targets)
        return [index] * count
    targets = list(targets)
    if len(targets) != count:
        raise InvalidOptionError(f"Give one target per image ({count}), not {len(targets)}; or one target for all.")
    return [None if t is None else handle.class_index(t) for t in targets]


def images_per_batch(handle: ModelHandle, batch_size: Optional[int] = None) -> int:
    """`batch_size` checked (raises `InvalidOptionError`), or the default: 64 on a GPU, 16 on a CPU."""
    if batch_size is None:
        return 64 if handle.device.type == "cuda" else 16
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidOptionError(f"batch_size must be a whole number of images, 1 or more, not {batch_size!r}.")
    return int(batch_size)


def _explain_images(handle: ModelHandle, plan: _Plan, prepared: Prepared, targets: list, aug_smooth: bool,
                    eigen_smooth: bool, cam_batch_size: int, progress) -> list[Explanation]:
    """The explanations of the `prepared` images (one batch: one shared pass). `targets`: an index or
    None per image. Everything stays a batch tensor on the device until one transfer at the end."""
    specs, resolved, names = plan.specs, plan.resolved, plan.names
    count = len(prepared)
    x = prepared.x
    targets = list(targets)
    if aug_smooth and any(t is None for t in targets):
        top1 = _top1(handle, x)  # each un-augmented image's top-1, for every augmentation of it
        targets = [top1[i] if t is None else t for i, t in enumerate(targets)]
    transforms = default_tta() if aug_smooth else None
    batch = torch.cat([t.augment_image(x) for t in transforms]) if transforms else x
    copies = len(transforms) if transforms else 1

    maps: dict[str, torch.Tensor] = {}
    timings: dict[str, float] = {}
    method_notes: list[str] = []
    layers = [handle.layers[n] for n in names]
    shared_specs = [s for s in specs if s.shares_pass]
    size = tuple(batch.shape[-2:])
    attention = [s for s in shared_specs if s.kind == ATTENTION]
    layout = attention_layout(handle) if attention else None
    if shared_specs:
        shared = run_shared_pass(handle.module, layers, batch, targets * copies,
                                 {s.grads for s in shared_specs if s.grads}, lambda: guard(handle), plan.precision,
                                 capture=(lambda: capturing(handle.module, layout.sites)) if attention else None,
                                 full_graph=any(s.cam_class.needs_grad for s in attention))
        targets = shared.target_indices[:count]
        timings.update({k: v / count for k, v in shared.timings.items()})
        internal = {
            "model": GuardedModule(handle, handle.module),
            "batch_size": cam_batch_size,
            "guard": lambda: guard(handle),
        }
        if any(issubclass(s.cam_class, HeadAblationCAM) for s in shared_specs):
            internal.update(_ablation_internals(handle, names, layers, shared.activations), notes=method_notes)
        reshapes = [handle.reshape(n) for n in names]
        # The attention methods first: they differentiate the shared forward's graph, which
        # ShapleyCAM's own second backward (pytorch-grad-cam's) frees.
        for spec in sorted(shared_specs, key=lambda s: s.kind != ATTENTION):
            with timer(handle.device, timings, spec.id):
                if spec.kind == ATTENTION:
                    cams = device_cams.scale(grid_maps(spec.cam_class, shared.captured, layout, shared.logits,
                                                       shared.target_indices, resolved.get(spec.id)), size)
                elif device_cams.has_formula(spec.cam_class) and not resolved.get(spec.id):
                    cams = device_cams.cams(spec.cam_class, [apply_reshape(r, a) for r, a in zip(reshapes, shared.activations)],
                                            [apply_reshape(r, g) for r, g in zip(reshapes, shared.grads.get(spec.grads, []))],
                                            size, eigen_smooth)
                else:
                    cams = torch.from_numpy(library_cam(
                        spec, shared, handle.module, layers, eigen_smooth, resolved.get(spec.id),
                        {**internal, "progress": _bind(progress, spec.id)}, reshapes)).to(handle.device)
                maps[spec.id] = _finish(cams, transforms)
            timings[spec.id] /= count
            observe(handle, spec.id, names, aug_smooth, resolved.get(spec.id), timings[spec.id])
    if any(t is None for t in targets):
        top1 = _top1(handle, x)
        targets = [top1[i] if t is None else t for i, t in enumerate(targets)]
    for spec in specs:
        if spec.kind == OWN_PASS:
            report = _bind(progress, spec.id) or (lambda done, total: None)
            if report(0, 1) is False:
                raise Cancelled("The computation was cancelled.")
            with timer(handle.device, timings, spec.id):
                maps[spec.id] = torch.stack([
                    _fullgrad(handle, x[i:i + 1], targets[i], aug_smooth, eigen_smooth) for i in range(count)])
            timings[spec.id] /= count
            report(1, 1)
            observe(handle, spec.id, names, aug_smooth, resolved.get(spec.id), timings[spec.id])
    if shared_specs and transforms is None:
        probabilities = shared.logits.detach()[:count].softmax(-1)
    else:
        probabilities = _probabilities(handle, x)
    chosen = probabilities[torch.arange(count), torch.tensor(targets, device=probabilities.device)].tolist()
    best = probabilities.topk(min(TOP_K, probabilities.shape[-1]), dim=-1)
    best_p, best_i = best.values.tolist(), best.indices.tolist()
    stacked = torch.stack([maps[s.id] for s in specs], dim=1).cpu().numpy()  # the one transfer: [N, M, H, W]
    pictures = prepared.pixels.cpu().numpy()
    notes = tuple(_notes(handle, specs, names) + method_notes)
    return [
        Explanation(
            maps={s.id: stacked[i, j] for j, s in enumerate(specs)},
            target=targets[i],
            target_label=handle.categories[targets[i]],
            target_probability=float(chosen[i]),
            layers=tuple(names),
            model=handle.name,
            image=pictures[i],
            timings=dict(timings),
            notes=notes,
            options={"aug_smooth": aug_smooth, "eigen_smooth": eigen_smooth, "methods": resolved},
            top=tuple(Prediction(k, handle.categories[k], float(p)) for k, p in zip(best_i[i], best_p[i])),
            geometry=prepared.geometries[i] if prepared.geometries else None,
        )
        for i in range(count)
    ]


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


def _finish(cams: torch.Tensor, transforms) -> torch.Tensor:
    """[A * N, H, W] maps -> [N, H, W] float32 in [0, 1] (augmentations undone and averaged)."""
    cam = deaugment_mean(cams, transforms) if transforms is not None else cams
    return torch.clamp(cam.float(), 0.0, 1.0)


def _fullgrad(handle: ModelHandle, x: torch.Tensor, target: int, aug_smooth: bool, eigen_smooth: bool) -> torch.Tensor:
    """FullGrad runs its own pass (input and every bias gradient) under the model's lock. Its hooks
    are removed in `finally` (the library's `__exit__` would swallow IndexErrors, so it is not used).
    Its full backward fills (and the library zeroes) every parameter's `.grad`: the caller's `.grad`
    tensors are set aside for the pass and put back in `finally`, the pass's own are dropped."""
    with guard(handle), caller_grads_kept(handle.module):
        cam = FullGrad(handle.module, [])
        try:
            result = cam(x, [ClassifierOutputTarget(target)], aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
        finally:
            release_capture(cam.activations_and_grads)
    return torch.clamp(torch.from_numpy(np.float32(result[0])), 0.0, 1.0).to(handle.device)


def _top1(handle: ModelHandle, x: torch.Tensor) -> list[int]:
    with guard(handle), torch.inference_mode():
        return handle.module(x).argmax(dim=-1).tolist()


def _probabilities(handle: ModelHandle, x: torch.Tensor) -> torch.Tensor:
    with guard(handle), torch.inference_mode():
        return handle.module(x).float().softmax(-1)


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
        made = ("; LeGrad, attention rollout and gradient-weighted relevance are made for attention"
                if attention_layout(handle).reason is None else "")
        notes.append(f"{', '.join(gradient)} {'is' if len(gradient) == 1 else 'are'} less reliable on vision "
                     f"transformers (gradients through attention are noisy); {free}, which need no gradients, are "
                     f"what the methods' authors suggest for them{made}.")
    attention = [s.title for s in specs if s.kind == ATTENTION]
    if attention:
        notes.append(f"{_join(attention)} {'reads' if len(attention) == 1 else 'read'} the attention of the "
                     "transformer's blocks, not the target layer: "
                     + "; ".join(_ATTENTION_NOTES[s.id] for s in specs if s.kind == ATTENTION) + ".")
    if "fullgrad" in ids:
        notes.append(f"{_title('fullgrad')} ignores the target layer: it sums the input gradient and every bias "
                     "gradient.")
    if "shapleycam" in ids:
        notes.append(f"{_title('shapleycam')} uses the ReST target (logit minus cross-entropy), as its paper "
                     "proposes.")
    # the class-agnostic CAMs, as the registry declares them (rollout's own note says so above)
    agnostic = [s.title for s in specs if s.kind != ATTENTION and not s.uses_target]
    if agnostic:
        verb = "ignores" if len(agnostic) == 1 else "ignore"
        notes.append(f"{' and '.join(agnostic)} {verb} the target class (class-agnostic: the main component of "
                     "the activations).")
    return notes


#: What each attention method's map shows, for the notes under the maps.
_ATTENTION_NOTES = {
    "legrad": "LeGrad shows the patches whose attention raises the class score in the last blocks",
    "rollout": "attention rollout shows where the class token gathers information from, whatever the class",
    "relevance": "gradient-weighted relevance shows the attention paths that raise the target class's score",
}


def _join(titles: list[str]) -> str:
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + f" and {titles[-1]}"


def _title(method_id: str) -> str:
    return get_method(method_id).title
