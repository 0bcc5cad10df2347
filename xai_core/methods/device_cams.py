"""pytorch-grad-cam's per-layer pipeline as torch operations on the model's device, for a batch.

Written here because the library computes it in numpy on the CPU, image by image (and resizes with
cv2 one map at a time): each formula below is the library class's own, named beside it, and
`tests/methods/test_device_cams.py` checks every one against the class within 1e-5. The maps of a batch
stay on the device until one transfer at the end (`finish`).

The one step kept on the CPU is the SVD of EigenCAM / EigenGrad-CAM / eigen_smooth: the sign of a
singular vector is LAPACK's choice, torch's LAPACK chooses differently from numpy's (in about a
third of the cases we tried), and a flipped sign flips the map, so the library's numpy SVD is the
reference. It is computed reduced (`cam_classes.first_component_projection`): the same first
singular vector without the library's C x C matrix (at ResNet-50's layer4: 6 ms instead of 160 ms).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from .cam_classes import first_component_projection
from pytorch_grad_cam import (
    EigenCAM,
    EigenGradCAM,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    XGradCAM,
)

Tensor = torch.Tensor


def projection(batch: Tensor) -> Tensor:
    """`pytorch_grad_cam.utils.svd_on_activations.get_2d_projection` of a [B, C, h, w] batch (with
    the reduced SVD of `cam_classes.first_component_projection`), back on the batch's device as [B, h, w]."""
    return torch.from_numpy(first_component_projection(batch.detach().float().cpu().numpy())).to(batch.device)


#: Device types without float64 arithmetic: Apple's MPS has none (a float64 tensor cannot even be
#: created there), so their sums accumulate in float32.
_NO_FLOAT64 = frozenset({"mps"})


def _accumulation(device: torch.device) -> Optional[torch.dtype]:
    """How `_sum` / `_mean` sum on `device`: None for the CPU (numpy's own sums, as the library), else
    the torch dtype to accumulate in: float64 where the device has it (CUDA), float32 where it does
    not (MPS: an accumulation in float64 would fail there, and with it every Grad-CAM-family map)."""
    if device.type == "cpu":
        return None
    return torch.float32 if device.type in _NO_FLOAT64 else torch.float64


def _sum(t: Tensor, dim) -> Tensor:
    """`t` summed over `dim` as the library sums it. On the CPU that is numpy's own sum (the same
    order of float32 additions: bit-equal sums, which matters where a normalised map has a small
    range, e.g. a 2 x 2 grid); on an accelerator the sum is accumulated in `_accumulation`'s dtype
    and rounded back: float64 is within a few ulps of the exact sum, which numpy's float32 sum also
    is; float32 (MPS) is torch's tree reduction, within the tests' 1e-5 of the library."""
    dtype = _accumulation(t.device)
    if dtype is None:
        return torch.from_numpy(np.asarray(t.numpy().sum(axis=dim)))
    return t.sum(dim=dim, dtype=dtype).to(t.dtype)


def _mean(t: Tensor, dim: tuple) -> Tensor:
    """`t` averaged over `dim` as the library averages it (numpy's mean on the CPU; on an accelerator
    the sum in `_accumulation`'s dtype, divided by the count and rounded back)."""
    dtype = _accumulation(t.device)
    if dtype is None:
        return torch.from_numpy(np.asarray(t.numpy().mean(axis=dim)))
    count = 1
    for d in dim:
        count *= t.shape[d]
    return (t.sum(dim=dim, dtype=dtype) / count).to(t.dtype)


def _weighted(weights: Tensor, acts: Tensor, eigen_smooth: bool) -> Tensor:
    """BaseCAM.get_cam_image: the activations weighted per channel, summed (or projected)."""
    weighted = weights[:, :, None, None] * acts
    return projection(weighted) if eigen_smooth else _sum(weighted, 1)


def _summed(elementwise: Tensor, eigen_smooth: bool) -> Tensor:
    return projection(elementwise) if eigen_smooth else _sum(elementwise, 1)


def _gradcam(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # GradCAM.get_cam_weights
    return _weighted(_mean(grads, (2, 3)), acts, eigen_smooth)


def _gradcam_plusplus(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # GradCAMPlusPlus
    grads_power_2 = grads ** 2
    grads_power_3 = grads_power_2 * grads
    sum_activations = _sum(acts, (2, 3))[:, :, None, None]
    aij = grads_power_2 / (2 * grads_power_2 + sum_activations * grads_power_3 + 0.000001)
    aij = torch.where(grads != 0, aij, torch.zeros((), dtype=aij.dtype, device=aij.device))
    weights = _sum(torch.clamp(grads, min=0) * aij, (2, 3))
    return _weighted(weights, acts, eigen_smooth)


def _xgradcam(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # XGradCAM.get_cam_weights
    sum_activations = _sum(acts, (2, 3))[:, :, None, None]
    weights = _sum(grads * acts / (sum_activations + 1e-7), (2, 3))
    return _weighted(weights, acts, eigen_smooth)


def _hirescam(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # HiResCAM.get_cam_image
    return _summed(grads * acts, eigen_smooth)


def _layercam(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # LayerCAM.get_cam_image
    return _summed(torch.clamp(grads, min=0) * acts, eigen_smooth)


def _elementwise(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # GradCAMElementWise
    return _summed(torch.clamp(grads * acts, min=0), eigen_smooth)


def _eigencam(acts: Tensor, grads: Optional[Tensor], eigen_smooth: bool) -> Tensor:  # EigenCAM
    return projection(acts)


def _eigengradcam(acts: Tensor, grads: Tensor, eigen_smooth: bool) -> Tensor:  # EigenGradCAM
    return projection(grads * acts)


#: pytorch-grad-cam class -> its `get_cam_image` as torch ops: (activations, gradients, eigen_smooth)
#: -> [B, h, w] before the ReLU. Keyed by the exact class: a subclass that changes the formulas
#: (ours or the library's) is not covered and goes through the library's own pipeline.
FORMULAS: dict[type, Callable[[Tensor, Optional[Tensor], bool], Tensor]] = {
    GradCAM: _gradcam,
    HiResCAM: _hirescam,
    GradCAMPlusPlus: _gradcam_plusplus,
    XGradCAM: _xgradcam,
    LayerCAM: _layercam,
    EigenCAM: _eigencam,
    EigenGradCAM: _eigengradcam,
    GradCAMElementWise: _elementwise,
}


def has_formula(cam_class: type) -> bool:
    """Whether maps of `cam_class` can be computed on the device by `cams`."""
    return cam_class in FORMULAS


def scale(cams: Tensor, size: Optional[tuple[int, int]] = None) -> Tensor:
    """`pytorch_grad_cam.utils.image.scale_cam_image` of a [B, h, w] batch: each map minus its
    minimum, divided by 1e-7 + its maximum, then resized to `size` = (H, W) bilinearly (cv2.resize's
    INTER_LINEAR: half-pixel centres, no antialiasing)."""
    cams = cams - cams.amin(dim=(1, 2), keepdim=True)
    cams = cams / (1e-7 + cams.amax(dim=(1, 2), keepdim=True))
    if size is not None and tuple(cams.shape[1:]) != tuple(size):
        cams = F.interpolate(cams[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return cams


def cams(cam_class: type, activations: Sequence[Tensor], gradients: Sequence[Optional[Tensor]],
         size: tuple[int, int], eigen_smooth: bool) -> Tensor:
    """BaseCAM.compute_cam_per_layer + aggregate_multi_layers for `cam_class`, on the device:
    per layer the formula, ReLU, `scale` to `size` (H, W); then ReLU, the mean over layers and
    `scale`. `activations` / `gradients` hold one [B, C, h, w] tensor per layer (already reshaped
    for a transformer layer). Returns float32 [B, H, W]."""
    formula = FORMULAS[cam_class]
    per_layer = []
    for i, acts in enumerate(activations):
        grads = gradients[i].float() if i < len(gradients) and gradients[i] is not None else None
        cam = torch.clamp(formula(acts.detach().float(), grads, eigen_smooth), min=0)
        per_layer.append(scale(cam, size))
    stacked = torch.clamp(torch.stack(per_layer, dim=1), min=0)
    return scale(_mean(stacked, (1,)))


__all__ = ["FORMULAS", "cams", "has_formula", "projection", "scale"]
