"""xai_core.methods.device_cams: pytorch-grad-cam's per-layer pipeline as torch ops equals the library's
own classes (numpy, cv2) within 1e-5, for every covered class, one or two layers, with and without
eigen_smooth, on activations and gradients of a batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xai_core.methods import device_cams
from xai_core.methods.shared_pass import _Captured


def _library(cam_class, acts, grads, size, eigen_smooth):
    cam = cam_class(nn.Linear(1, 1), [])  # a model with a parameter: BaseCAM reads its device
    cam.activations_and_grads.release()
    cam.activations_and_grads = _Captured(acts, grads, [None] * len(acts), True)
    cam.target_layers = [nn.Identity() for _ in acts]
    x = torch.zeros(acts[0].shape[0], 3, *size)
    return cam.aggregate_multi_layers(cam.compute_cam_per_layer(x, None, eigen_smooth))


def _batch(seed, shapes):
    g = torch.Generator().manual_seed(seed)
    acts = [torch.relu(torch.randn(3, c, h, w, generator=g)) * 2 for c, h, w in shapes]
    grads = [torch.randn(3, c, h, w, generator=g) * 1e-3 for c, h, w in shapes]
    return acts, grads


@pytest.mark.parametrize("cam_class", list(device_cams.FORMULAS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("eigen_smooth", [False, True])
@pytest.mark.parametrize("shapes", [[(64, 7, 7)], [(32, 14, 14), (64, 7, 7)]], ids=["one-layer", "two-layers"])
def test_device_pipeline_equals_the_library(cam_class, eigen_smooth, shapes):
    acts, grads = _batch(0, shapes)
    size = (112, 96)  # H, W: not square, so a swapped size would show
    ours = device_cams.cams(cam_class, acts, grads, size, eigen_smooth).numpy()
    ref = _library(cam_class, acts, grads, size, eigen_smooth)
    assert ours.shape == ref.shape == (3, *size)
    assert np.abs(ours - ref).max() < 1e-5
    assert ref.max() > 0.5  # a real map, not an all-zero one that matches anything


def test_only_the_exact_library_classes_are_covered():
    from xai_core.methods.cam_classes import HeadAblationCAM

    assert device_cams.has_formula(device_cams.GradCAM) and not device_cams.has_formula(HeadAblationCAM)
    assert not device_cams.has_formula(type("MyGradCAM", (device_cams.GradCAM,), {}))


class _Dtypes(torch.overrides.TorchFunctionMode):
    """Records the dtype of every tensor that a torch function or tensor method returns."""

    def __init__(self):
        super().__init__()
        self.seen: set = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.seen.add(t.dtype)
        return out


@pytest.mark.parametrize("accumulation", [torch.float64, torch.float32], ids=["cuda-like", "mps-like"])
@pytest.mark.parametrize("cam_class", list(device_cams.FORMULAS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("eigen_smooth", [False, True])
def test_accelerator_branch_equals_the_library(monkeypatch, accumulation, cam_class, eigen_smooth):
    """The accelerator branch of `_sum` / `_mean` (forced on CPU tensors), accumulating in float64
    (CUDA) or in float32 (MPS, which has no float64), still gives the library's maps; and the
    MPS-like branch creates no float64 tensor anywhere in the pipeline."""
    chosen = []
    monkeypatch.setattr(device_cams, "_accumulation", lambda device: chosen.append(device.type) or accumulation)
    acts, grads = _batch(1, [(32, 14, 14), (64, 7, 7)])
    size = (112, 96)
    with _Dtypes() as mode:
        ours = device_cams.cams(cam_class, acts, grads, size, eigen_smooth).numpy()
    assert chosen, "the forced branch must be the one taken"  # (every pipeline ends with `_mean`)
    ref = _library(cam_class, acts, grads, size, eigen_smooth)
    assert ours.shape == ref.shape == (3, *size)
    assert np.abs(ours - ref).max() < 1e-5
    assert ref.max() > 0.5
    # the recorder sees float64 where the branch sums in it, so its silence in the MPS case means something
    assert (torch.float64 in mode.seen) == (accumulation == torch.float64)


def test_accumulation_dtype_follows_the_device():
    assert device_cams._accumulation(torch.device("cpu")) is None  # numpy's sums, bit-equal to the library
    assert device_cams._accumulation(torch.device("cuda")) == torch.float64
    assert device_cams._accumulation(torch.device("mps")) == torch.float32  # MPS has no float64
