"""pytorch-grad-cam's own map for a registered method: the reference (oracle) that the parity tests
and the benchmarks compare `explain` with. Uses `MethodSpec.library_class`, the library's class."""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from pytorch_grad_cam.ablation_layer import AblationLayerVit
from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST, ClassifierOutputTarget

from .._names import split_names
from .shared_pass import caller_grads_kept, release_capture, second_order_attention
from .registry import PERTURBATION, get_method
from ..models import ModelHandle


def library_map(
    handle: ModelHandle,
    method: str,
    layers: Union[str, Sequence[str]],
    x: torch.Tensor,
    target: int,
    *,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    batch_size: int = 64,
    options: Optional[dict] = None,
    reshape_transform: Union[Callable, None, str] = "model",
) -> np.ndarray:
    """The library's map (float32 [H, W]) of `method` for input `x` ([1, 3, H, W]) and class
    `target` at `layers` (a name, a comma list or a sequence), built and called as its README does,
    with its hooks released afterwards and the model's parameter gradients as they were before (the
    caller's `.grad` tensors are set aside for the run and put back; the run's own are dropped).
    `options` are the method's declared options (constructor keywords). `reshape_transform`: the
    library's argument ("model": the handle's own for the first layer); with one, AblationCAM
    ablates with `AblationLayerVit`, as the library's vision-transformer tutorial does. Raises
    ValueError for a method that has no library class."""
    spec = get_method(method)
    if spec.library_class is None:
        raise ValueError(f"{method} is not in pytorch-grad-cam")
    modules = [] if method == "fullgrad" else [handle.layers[n] for n in split_names(layers)]
    if reshape_transform == "model":
        reshape_transform = handle.reshape(split_names(layers)[0]) if method != "fullgrad" else None
    extra = {"ablation_layer": AblationLayerVit()} if method == "ablationcam" and reshape_transform else {}
    cam = spec.library_class(handle.module, modules, reshape_transform=reshape_transform, **extra, **(options or {}))
    base = cam.base_cam if method == "finercam" else cam
    try:
        if spec.kind == PERTURBATION:  # ScoreCAM, AblationCAM: channels per forward
            base.batch_size = batch_size
        with caller_grads_kept(handle.module), open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet), \
                second_order_attention(method == "shapleycam"):  # tqdm bars; ShapleyCAM's 2nd derivative
            if method == "finercam":
                return cam(x, targets=None, eigen_smooth=eigen_smooth, target_idx=target)[0]
            target_fn = ClassifierOutputReST(target) if method == "shapleycam" else ClassifierOutputTarget(target)
            return cam(x, [target_fn], aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)[0]
    finally:
        release_capture(base.activations_and_grads)

