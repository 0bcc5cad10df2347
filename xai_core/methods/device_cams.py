"""pytorch-grad-cam's per-layer pipeline as torch operations on the model's device, for a batch.

Written here because the library computes it in numpy on the CPU, image by image (and resizes with
cv2 one map at a time): each formula below is the library class's own, named beside it, and
`tests/methods/test_device_cams.py` checks every one against the class within 1e-5. The maps of a batch
stay on the device until one transfer at the end (`finish`).

EigenCAM, EigenGrad-CAM and eigen_smooth project onto the first principal component
(`projection`, the library's `get_2d_projection`), here for the whole batch at once on the device:
the top eigenvector of the smaller Gram matrix of the centred activations ((hw) x (hw) or C x C,
in float64 where the device has it), not the library's SVD of each image's (hw) x C matrix. Only
that small eigenproblem leaves a device other than CUDA (`_top_eigenpair`); on the CPU the same
steps run in numpy (`_host_components`), which the tests check against the torch steps.

A principal component has no sign of its own: SVD / eigen solvers return either, LAPACK's choice
(numpy's and torch's differ), and after the ReLU the negated projection is a different map. So the
sign is fixed by a stated rule, `SIGN_RULE`: the projection must correlate positively with the
mean over channels of the very input projected (the activations for EigenCAM, gradients x
activations for EigenGrad-CAM, the method's weighted activations for eigen_smooth). That mean is
the map the method would draw without the projection (the channel sum, up to 1/C: the method's own
map without eigen_smooth, HiResCAM's for EigenGrad-CAM, the total activation for EigenCAM), so the
principal component is read in the direction in which it agrees with the method's evidence, and
the projection stays a smoothing of that map instead of its inversion. For the exact component
the correlation is sigma_1^2 * sum(v_1) / C: the rule says "the loadings sum to a positive number".
Where the correlation is (numerically) zero, |cos| <= `ZERO_CORRELATION`, the largest-magnitude
value is made positive (the first one in row-major order: pytorch-grad-cam's own Seg-Eigen-CAM
correction); an all-zero projection stays zero. The result never depends on the solver's sign, and
the tests' oracle is the library's `get_2d_projection` with this rule applied.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import ThreadpoolController
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


#: The rule that picks the sign of the first principal component (see the module's docstring).
SIGN_RULE = "positive correlation with the channel mean of the projected input"
#: |cosine| between the projection and the centred channel mean at or below which the correlation
#: counts as zero and the fallback (largest-magnitude value positive) decides the sign.
ZERO_CORRELATION = 1e-4


def projection(batch: Tensor) -> Tensor:
    """pytorch-grad-cam's `get_2d_projection` of a [B, C, *spatial] batch, on the batch's device,
    with the sign fixed by `SIGN_RULE`: float32 [B, *spatial]. NaNs count as 0 and each channel is
    centred over the locations, as the library does; all images are solved at once."""
    batch = batch.detach()
    if _on_host(batch.device):
        proj, mean = _host_components(batch.float().numpy())
    else:
        proj, mean = _device_components(batch)
    proj = proj * _signs(proj, mean)[:, None]
    return proj.reshape(batch.shape[:1] + batch.shape[2:]).float()


def _on_host(device: torch.device) -> bool:
    """Whether `projection` runs in numpy: on the CPU, where each of torch's element-wise kernels on a
    busy machine waits for its whole thread pool, while numpy's run on the calling thread."""
    return device.type == "cpu"


def _device_components(batch: Tensor) -> tuple[Tensor, Tensor]:
    """(first-component projection, centred channel mean), each [B, n], either sign, in torch on the
    batch's device: the top eigenvector of the smaller Gram matrix of the centred activations."""
    dtype = _accumulation(batch.device) or torch.float64
    acts = batch.to(dtype).flatten(2)
    acts = torch.where(torch.isnan(acts), torch.zeros((), dtype=dtype, device=acts.device), acts)
    acts = acts - acts.mean(dim=2, keepdim=True)  # [B, C, n]: each channel centred over the n locations
    channels, locations = acts.shape[1:]
    if locations <= channels:  # the (hw) x (hw) Gram: the projection is sqrt(lambda_1) u_1
        value, vector = _top_eigenpair(acts.transpose(1, 2) @ acts)
        proj = vector * value[:, None].clamp(min=0).sqrt()
    else:  # the C x C Gram: v_1, the library's first right singular vector; projection = A v_1
        _, vector = _top_eigenpair(acts @ acts.transpose(1, 2))
        proj = (vector[:, None, :] @ acts)[:, 0]
    return proj, acts.mean(dim=1)


def _host_components(batch: np.ndarray) -> tuple[Tensor, Tensor]:
    """`_device_components` in numpy, float64, on one BLAS thread, for a CPU batch."""
    acts = batch.reshape(*batch.shape[:2], -1).astype(np.float64)
    acts[np.isnan(acts)] = 0
    acts -= acts.mean(axis=2, keepdims=True)
    channels, locations = acts.shape[1:]
    with _BLAS.limit(limits=1, user_api="blas"):
        if locations <= channels:
            values, vectors = np.linalg.eigh(acts.transpose(0, 2, 1) @ acts)
            proj = vectors[..., -1] * np.sqrt(np.clip(values[:, -1:], 0, None))
        else:
            _, vectors = np.linalg.eigh(acts @ acts.transpose(0, 2, 1))
            proj = (vectors[:, None, :, -1] @ acts)[:, 0]
    return torch.from_numpy(proj), torch.from_numpy(acts.mean(axis=1))


def _top_eigenpair(gram: Tensor) -> tuple[Tensor, Tensor]:
    """The largest eigenvalue [B] and its unit eigenvector [B, n] of each symmetric [B, n, n] matrix,
    on `gram`'s device and in its dtype, either sign: torch's solver on CUDA; elsewhere (MPS has no
    solver of its own) the small matrices go to the host for numpy's, in float64."""
    if gram.device.type == "cuda":
        values, vectors = torch.linalg.eigh(gram)
        return values[:, -1], vectors[..., -1]
    with _BLAS.limit(limits=1, user_api="blas"):
        values, vectors = np.linalg.eigh(gram.cpu().numpy().astype(np.float64))
    dtype = np.float64 if gram.dtype == torch.float64 else np.float32
    value, vector = torch.from_numpy(values[:, -1].astype(dtype)), torch.from_numpy(vectors[..., -1].astype(dtype))
    return value.to(gram.device), vector.to(gram.device)


_BLAS = ThreadpoolController()


def _signs(proj: Tensor, mean: Tensor) -> Tensor:
    """+1 / -1 per row of `proj` [B, n] by `SIGN_RULE`, given `mean` [B, n], the centred channel mean
    (the fallback, for a correlation within `ZERO_CORRELATION` of zero: the largest |value| positive)."""
    dot = (proj * mean).sum(dim=1)
    zero = dot.abs() <= ZERO_CORRELATION * proj.norm(dim=1) * mean.norm(dim=1)
    peak = proj.gather(1, proj.abs().argmax(dim=1, keepdim=True))[:, 0]
    decider = torch.where(zero, peak, dot)
    return torch.where(decider < 0, -1.0, 1.0).to(proj.dtype)


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


__all__ = ["FORMULAS", "SIGN_RULE", "ZERO_CORRELATION", "cams", "has_formula", "projection", "scale"]
