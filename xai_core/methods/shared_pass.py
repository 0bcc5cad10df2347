"""The shared pass: one forward and (at most) one backward per gradient target, from which every
requested CAM is computed with pytorch-grad-cam's own `compute_cam_per_layer` / `get_cam_image` /
`get_cam_weights` / `aggregate_multi_layers`. Hooks live only inside `recording(...)`."""

from __future__ import annotations

import contextlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
import ttach as tta
from pytorch_grad_cam.utils.model_targets import (
    ClassifierOutputReST,
    ClassifierOutputTarget,
    FinerWeightedTarget,
)
from torch import nn

from .._timing import timer
from .registry import MethodSpec

#: Finer-CAM's defaults in pytorch-grad-cam: compare with the classes ranked 1-3 by logit distance.
FINER_COMPARISON_RANKS = (1, 2, 3)
FINER_ALPHA = 1.0


@contextmanager
def recording(layers: Sequence[nn.Module], start_graph: bool, keep_graph: bool = False) -> Iterator[list]:
    """Forward hooks that record the outputs of `layers` (for the calling thread only) and are
    removed on exit, also on error. With `start_graph`, the first of `layers` that runs switches
    autograd on and hands on its output as a fresh leaf: run the forward under `torch.no_grad()` and
    nothing before the target layer is recorded, so every backward stops at the target layer. The
    model goes on with a copy of each recorded output, so in-place ops after a layer change nothing
    recorded (without `start_graph`, detached copies are recorded). With `keep_graph` (a forward
    run with autograd on throughout, for the attention methods), the outputs are recorded as the
    graph's own tensors, so gradients can also flow through the layer to earlier blocks."""
    owner = threading.get_ident()
    outputs: list = [None] * len(layers)
    started = [False]

    def make_hook(i: int) -> Callable:
        def hook(module, inputs, output):
            if threading.get_ident() != owner:
                return None
            if keep_graph:
                outputs[i] = output
                return output.clone()
            if not start_graph:
                outputs[i] = output.detach().clone()  # a later in-place op must not change it
                return None
            if not started[0]:
                started[0] = True
                torch.set_grad_enabled(True)  # restored by the caller's `no_grad` on exit
                output = output.detach().requires_grad_(True)
            outputs[i] = output
            # The model gets a copy: an in-place op after the layer (DenseNet's ReLU after
            # `features.norm5`) would fail on the leaf, or change what was recorded.
            return output.clone()

        return hook

    handles = [layer.register_forward_hook(make_hook(i)) for i, layer in enumerate(layers)]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def caller_grads_kept(module: nn.Module) -> Iterator[None]:
    """A pass that fills (or zeroes) every parameter's `.grad` (FullGrad's full backward) runs on
    `module` inside this: the caller's `.grad` tensors are set aside and put back on exit, also on
    error; the pass's own are dropped."""
    saved = [(p, p.grad) for p in module.parameters()]
    try:
        for p, _ in saved:
            p.grad = None
        yield
    finally:
        for p, grad in saved:
            p.grad = grad


def release_capture(captured) -> None:
    """pytorch-grad-cam's own `ActivationsAndGradients.release` (its hooks removed, its tensors
    detached and dropped), on copies of what it recorded: its in-place `detach_` refuses views (a
    reshaped transformer layer's gradients), and would raise here and again from `BaseCAM.__del__`."""
    for name in ("activations", "gradients"):
        setattr(captured, name, [t.detach().clone() if isinstance(t, torch.Tensor) else t
                                 for t in getattr(captured, name)])
    captured.release()


class _Captured:
    """Stands in for pytorch-grad-cam's `ActivationsAndGradients` (which would register its own
    hooks): it only hands over what the shared pass captured. As the library's does, it applies
    each layer's `reshape_transform` to the activations and the gradients when the CAM class
    detaches them (`detach=True`), and otherwise hands them over raw with `reshape_transform` set
    for the class to apply itself (ShapleyCAM)."""

    def __init__(self, activations: list, gradients: list, reshapes: Sequence[Optional[Callable]], detach: bool) -> None:
        reshapes = list(reshapes) or [None] * len(activations)
        if detach:
            activations = [apply_reshape(r, a).detach() for r, a in zip(reshapes, activations)]
            gradients = [apply_reshape(r, g).detach() for r, g in zip(reshapes, gradients)]
            self.reshape_transform = None
        else:
            self.reshape_transform = _ByShape(activations, reshapes)
        self.activations, self.gradients = activations, gradients

    def release(self) -> None:  # BaseCAM.__del__ calls this
        pass


def apply_reshape(reshape: Optional[Callable], tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` through a layer's `reshape_transform` (None: unchanged)."""
    return tensor if reshape is None else reshape(tensor)


class _ByShape:
    """One `reshape_transform` for several layers (the library's classes call it without saying
    which layer): the layer's own, chosen by the raw tensor's shape; None if no layer needs one."""

    def __new__(cls, activations: list, reshapes: Sequence[Optional[Callable]]):
        if not any(r is not None for r in reshapes):
            return None
        return super().__new__(cls)

    def __init__(self, activations: list, reshapes: Sequence[Optional[Callable]]) -> None:
        self._by_shape = {tuple(a.shape[1:]): r for a, r in zip(activations, reshapes)}

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return apply_reshape(self._by_shape.get(tuple(tensor.shape[1:])), tensor)


@dataclass
class SharedPass:
    """What one forward (+ backward per gradient target) produced."""

    input_tensor: torch.Tensor
    logits: torch.Tensor
    activations: list
    #: The target class of each sample.
    target_indices: list = field(default_factory=list)
    grads: dict = field(default_factory=dict)  # target kind -> list of tensors per layer
    targets: dict = field(default_factory=dict)  # target kind -> list of callables per sample
    timings: dict = field(default_factory=dict)
    #: What `capture` recorded (attention and block tokens), or None.
    captured: Optional[object] = None


def default_tta() -> tta.Compose:
    """The augmentations of pytorch-grad-cam's `aug_smooth` (BaseCAM's default `tta_transforms`)."""
    return tta.Compose([tta.HorizontalFlip(), tta.Multiply(factors=[0.9, 1, 1.1])])


def run_shared_pass(
    module: nn.Module,
    layers: Sequence[nn.Module],
    x: torch.Tensor,
    targets: Sequence[Optional[int]],
    grad_kinds: set[str],
    guard: Callable,
    precision: Optional[str] = None,
    capture: Optional[Callable] = None,
    full_graph: bool = False,
) -> SharedPass:
    """One forward through `module` recording `layers`, then one backward (to the target layer
    only) for each target kind in `grad_kinds` ("logit", "finer", "rest"). `targets` holds one
    class index per sample of `x`, None for the sample's own top-1. The lock (`guard`) is held for
    the forward only. `precision="bf16"`: the forward runs under bfloat16 autocast, and what it
    recorded is handed on as float32. `capture()`: a context manager recording more during the
    forward (the attention methods'; its result is `SharedPass.captured`); `full_graph`: the whole
    forward runs with autograd on and its graph is kept after the backward passes (for gradients
    with respect to attention)."""
    timings: dict = {}
    autocast = (torch.autocast(x.device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    if full_graph:
        x = x.detach().requires_grad_(True)  # a graph even where the model's parameters are frozen
    with timer(x.device, timings, "forward"), guard(), \
            recording(layers, start_graph=bool(grad_kinds), keep_graph=full_graph) as acts, \
            (capture() if capture is not None else contextlib.nullcontext()) as captured:
        with torch.set_grad_enabled(full_graph or _needs_grad_forward(module)), \
                second_order_attention("rest" in grad_kinds), autocast:
            logits = module(x)
    logits = logits.float()
    result = SharedPass(x, logits, list(acts), timings=timings, captured=captured)
    top1 = logits.detach().argmax(dim=-1).tolist()
    result.target_indices = [top1[i] if t is None else int(t) for i, t in enumerate(targets)]
    if not grad_kinds:
        result.activations = [a.detach().float() for a in acts]
        return result
    order = [k for k in ("logit", "finer", "rest") if k in grad_kinds]
    with timer(x.device, timings, "backward"):
        for n, kind in enumerate(order):
            targets = _targets(kind, logits, result.target_indices)
            score = sum(t(o) for t, o in zip(targets, logits))
            last = n == len(order) - 1 and not full_graph
            result.grads[kind] = [g.float() for g in torch.autograd.grad(
                score, result.activations, retain_graph=not last or kind == "rest", create_graph=kind == "rest"
            )]
            result.targets[kind] = targets
    if precision == "bf16":
        result.activations = [a.detach().float() for a in result.activations]
    return result


def _needs_grad_forward(module: nn.Module) -> bool:
    """`nn.MultiheadAttention` takes a different kernel (its inference fast path) when autograd is
    off, so its activations would differ from the library's (which runs with autograd on) by float
    noise that XGrad-CAM's normalisation amplifies; such models run the whole forward with autograd on."""
    return any(isinstance(m, nn.MultiheadAttention) for m in module.modules())


def second_order_attention(needed: bool = True):
    """Context in which attention can be differentiated twice (ShapleyCAM's Hessian-vector
    product): PyTorch's fused scaled-dot-product kernels have no double backward, its math kernel
    has. A no-op when not `needed`."""
    if not needed:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def _targets(kind: str, logits: torch.Tensor, targets: Sequence[int]) -> list:
    if kind == "logit":
        return [ClassifierOutputTarget(t) for t in targets]
    if kind == "rest":
        return [ClassifierOutputReST(t) for t in targets]
    # Finer-CAM: pytorch-grad-cam's FinerCAM.forward ranks classes by |logit - target logit| and
    # compares with ranks 1-3; the same choice, made on our logits, for each sample's target. A model
    # with fewer than 4 classes compares with all the others (the library would index past its classes).
    data = logits.detach().float().cpu().numpy()
    chosen = np.asarray(targets)
    order = np.argsort(np.abs(data - data[np.arange(len(data)), chosen][:, None]), axis=-1)
    ranks = [r for r in FINER_COMPARISON_RANKS if r < data.shape[1]]
    return [
        FinerWeightedTarget(int(order[i, 0]), [int(order[i, r]) for r in ranks], FINER_ALPHA)
        for i in range(len(data))
    ]


def library_cam(
    method: MethodSpec,
    shared: SharedPass,
    module: nn.Module,
    layers: Sequence[nn.Module],
    eigen_smooth: bool,
    options: Optional[dict] = None,
    internal: Optional[dict] = None,
    reshapes: Sequence[Optional[Callable]] = (),
) -> np.ndarray:
    """The map of `method` for every sample of the shared pass, from an instance of its CAM class
    built by its constructor with no target layers (so it registers no hooks) and the user's
    `options` (checked by `methods.resolve_options`) as keywords. It then runs its own per-layer
    pipeline on what the shared pass captured; the `internal` attributes (model, guard, heads,
    progress...) are set last, so no option can replace them. `reshapes` holds each layer's
    `reshape_transform` (or None), applied as the library's `ActivationsAndGradients` does.
    Returns float32 [B, H, W] in [0, 1]."""
    cam = method.cam_class(module, [], **(options or {}))
    cam.activations_and_grads.release()  # it holds no hooks; it is replaced by the shared capture
    grads = shared.grads.get(method.grads, []) if method.grads else []
    cam.activations_and_grads = _Captured(shared.activations, grads, reshapes, cam.detach)
    cam.target_layers = list(layers)
    cam.device = shared.input_tensor.device
    for name, value in (internal or {}).items():
        setattr(cam, name, value)
    targets = shared.targets.get(method.grads) or [ClassifierOutputTarget(t) for t in shared.target_indices]
    per_layer = cam.compute_cam_per_layer(shared.input_tensor, targets, eigen_smooth)
    return cam.aggregate_multi_layers(per_layer)


def deaugment_mean(cams: torch.Tensor, transforms: tta.Compose) -> torch.Tensor:
    """Undo each augmentation on its maps and average, as BaseCAM.forward_augmentation_smoothing.
    `cams` [A * N, H, W] holds augmentation a of image i at row a * N + i; returns [N, H, W]."""
    per = cams.shape[0] // len(transforms)
    out = [transform.deaugment_mask(cams[i * per:(i + 1) * per, None])[:, 0] for i, transform in enumerate(transforms)]
    return torch.stack(out).mean(dim=0)
