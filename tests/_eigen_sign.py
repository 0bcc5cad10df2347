"""The oracle for maps that project onto the first principal component (EigenCAM, EigenGrad-CAM,
eigen_smooth): pytorch-grad-cam's own `get_2d_projection`, negated where our sign convention
(`device_cams.SIGN_RULE`) picks the other sign, inside the library's own pipeline (ReLU, scaling,
resizing, fusing layers). Written here in numpy, apart from `device_cams`, from the rule's words."""

from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
from pytorch_grad_cam import base_cam, eigen_cam, eigen_grad_cam, grad_cam_elementwise, hirescam, layer_cam
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from xai_core.methods.device_cams import ZERO_CORRELATION

#: The library modules whose `get_cam_image` projects (each imported `get_2d_projection` by name).
#: FullGrad's is left alone: `explain` runs the library's own FullGrad.
PROJECTING = (base_cam, eigen_cam, eigen_grad_cam, grad_cam_elementwise, hirescam, layer_cam)


def convention_signs(activation_batch: np.ndarray, projections: np.ndarray) -> np.ndarray:
    """+1 / -1 per image: the sign that makes the projection correlate positively with the mean
    over channels of the projected input; for a |cosine| <= ZERO_CORRELATION, the sign that makes
    the first largest-magnitude value positive."""
    x = np.nan_to_num(activation_batch.reshape(*activation_batch.shape[:2], -1).astype(np.float64), nan=0.0)
    mean = x.mean(axis=1)
    mean = mean - mean.mean(axis=1, keepdims=True)
    p = projections.reshape(len(projections), -1).astype(np.float64)
    dot = (p * mean).sum(axis=1)
    zero = np.abs(dot) <= ZERO_CORRELATION * np.linalg.norm(p, axis=1) * np.linalg.norm(mean, axis=1)
    peak = p[np.arange(len(p)), np.abs(p).argmax(axis=1)]
    return np.where(np.where(zero, peak, dot) < 0, -1.0, 1.0)


def signed_library_projection(activation_batch: np.ndarray) -> np.ndarray:
    """The library's `get_2d_projection` with each image's sign set by the convention."""
    projections = get_2d_projection(activation_batch)
    signs = convention_signs(activation_batch, projections)
    return np.float32(projections * signs.reshape(-1, *[1] * (projections.ndim - 1)))


@contextlib.contextmanager
def library_with_convention():
    """Inside: every pytorch-grad-cam class projects with `signed_library_projection`."""
    with contextlib.ExitStack() as stack:
        for module in PROJECTING:
            stack.enter_context(mock.patch.object(module, "get_2d_projection", signed_library_projection))
        yield


def library_sign_is_inverted(activation_batch: np.ndarray) -> np.ndarray:
    """Per image, whether the library's own map (numpy's LAPACK sign) is the negation of ours."""
    return convention_signs(activation_batch, get_2d_projection(activation_batch)) < 0
