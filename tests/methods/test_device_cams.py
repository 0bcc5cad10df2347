"""xai_core.methods.device_cams: pytorch-grad-cam's per-layer pipeline as torch ops equals the library's
own classes (numpy, cv2) within 1e-5, for every covered class, one or two layers, with and without
eigen_smooth, on activations and gradients of a batch. Where a map projects onto the first principal
component (EigenCAM, EigenGrad-CAM, eigen_smooth) the library's projection gets the sign of our
convention first (`_eigen_sign`); the convention itself is tested at the end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from _eigen_sign import library_with_convention
from xai_core.methods import device_cams
from xai_core.methods.shared_pass import _Captured


def _library(cam_class, acts, grads, size, eigen_smooth):
    cam = cam_class(nn.Linear(1, 1), [])  # a model with a parameter: BaseCAM reads its device
    cam.activations_and_grads.release()
    cam.activations_and_grads = _Captured(acts, grads, [None] * len(acts), True)
    cam.target_layers = [nn.Identity() for _ in acts]
    x = torch.zeros(acts[0].shape[0], 3, *size)
    with library_with_convention():
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


def float32_sum_bound(shapes) -> float:
    """The error allowed where the sums accumulate in float32 (the MPS-like branch), derived from the
    sums' error bound rather than from what one machine gave: a sum of n terms accumulated in float32
    is off by at most about n * eps (float32's machine epsilon, 2 units of roundoff) times the sum of
    the terms' magnitudes (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 4); the
    longest sum here is over a layer's H * W pixels or its C channels, and the maps are min-max scaled,
    so their magnitude is about 1. The order of the float32 additions differs with the CPU's vector
    width and thread count, so the error does too (1.4e-5 was seen on one machine, 4.9e-6 on another);
    the bound holds for any order."""
    longest = max(max(c, h * w) for c, h, w in shapes)
    return longest * float(torch.finfo(torch.float32).eps)


@pytest.mark.parametrize("accumulation", [torch.float64, torch.float32], ids=["cuda-like", "mps-like"])
@pytest.mark.parametrize("cam_class", list(device_cams.FORMULAS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("eigen_smooth", [False, True])
def test_accelerator_branch_equals_the_library(monkeypatch, accumulation, cam_class, eigen_smooth):
    """The accelerator branch of `_sum` / `_mean` and of `projection` (forced on CPU tensors), accumulating in float64
    (CUDA) or in float32 (MPS, which has no float64), still gives the library's maps; and the
    MPS-like branch creates no float64 tensor anywhere in the pipeline."""
    chosen = []
    monkeypatch.setattr(device_cams, "_accumulation", lambda device: chosen.append(device.type) or accumulation)
    monkeypatch.setattr(device_cams, "_on_host", lambda device: False)  # the projection's torch steps too
    shapes = [(32, 14, 14), (64, 7, 7)]
    acts, grads = _batch(1, shapes)
    size = (112, 96)
    with _Dtypes() as mode:
        ours = device_cams.cams(cam_class, acts, grads, size, eigen_smooth).numpy()
    assert chosen, "the forced branch must be the one taken"  # (every pipeline ends with `_mean`)
    ref = _library(cam_class, acts, grads, size, eigen_smooth)
    assert ours.shape == ref.shape == (3, *size)
    assert np.abs(ours - ref).max() < (1e-5 if accumulation == torch.float64 else float32_sum_bound(shapes))
    assert ref.max() > 0.5
    # the recorder sees float64 where the branch sums in it, so its silence in the MPS case means something
    assert (torch.float64 in mode.seen) == (accumulation == torch.float64)


def test_accumulation_dtype_follows_the_device():
    assert device_cams._accumulation(torch.device("cpu")) is None  # numpy's sums, bit-equal to the library
    assert device_cams._accumulation(torch.device("cuda")) == torch.float64
    assert device_cams._accumulation(torch.device("mps")) == torch.float32  # MPS has no float64


# The sign convention of the first principal component (`device_cams.SIGN_RULE`).

def _inputs(seed: int) -> list[torch.Tensor]:
    """Projected inputs of both Gram sides: activations, gradients x activations (C < hw and C > hw)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for c, h in ((32, 14), (64, 7), (512, 7), (256, 14)):
        acts = torch.relu(torch.randn(4, c, h, h, generator=g)) * 2
        out += [acts, acts * torch.randn(4, c, h, h, generator=g) * 1e-3]
    return out


def _cosines(batch: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
    mean = batch.double().flatten(2).mean(dim=1)
    mean = mean - mean.mean(dim=1, keepdim=True)
    p = proj.double().flatten(1)
    return (p * mean).sum(1) / (p.norm(dim=1) * mean.norm(dim=1))


def test_the_projection_correlates_positively_with_the_channel_mean():
    for batch in _inputs(0):
        cos = _cosines(batch, device_cams.projection(batch))
        assert (cos > device_cams.ZERO_CORRELATION).all(), cos


def test_the_map_does_not_depend_on_the_solver_sign(monkeypatch):
    """LAPACK's sign is arbitrary: with every eigenvector negated the projection is bit-identical."""
    batches = _inputs(1)
    ours = [device_cams.projection(b) for b in batches]
    solve = device_cams._top_eigenpair
    monkeypatch.setattr(device_cams, "_top_eigenpair", lambda gram: (lambda w, v: (w, -v))(*solve(gram)))
    for batch, expected in zip(batches, ours):
        assert torch.equal(device_cams.projection(batch), expected)


def test_cpu_float_noise_does_not_flip_the_sign():
    """Relative noise of 1e-6 on the input, a float64 input, the images one at a time and the
    library's own float32 SVD (numpy's LAPACK, its sign corrected) give the same projection within
    1e-4 of its peak (a flipped sign would be off by up to 2; the noise moves the component itself
    by about 1e-5 where the eigengap is small, as these random activations' is)."""
    from _eigen_sign import signed_library_projection

    g = torch.Generator().manual_seed(2)
    for batch in _inputs(2):
        ours = device_cams.projection(batch)
        noisy = batch * (1 + 1e-6 * torch.randn(batch.shape, generator=g))
        variants = [device_cams.projection(noisy), device_cams.projection(batch.double()),
                    torch.cat([device_cams.projection(b[None]) for b in batch]),
                    torch.from_numpy(signed_library_projection(batch.numpy()))]
        scale = ours.abs().amax(dim=(1, 2), keepdim=True)
        for other in variants:
            assert ((other - ours).abs() / scale).max() < 1e-4


def test_degenerate_inputs_are_deterministic(monkeypatch):
    """All-zero and constant activations give a zero projection; a projection orthogonal to the
    channel mean (here the mean is constant) takes the sign that makes its largest value positive,
    whatever the solver's sign."""
    assert torch.equal(device_cams.projection(torch.zeros(2, 8, 5, 5)), torch.zeros(2, 5, 5))
    assert torch.equal(device_cams.projection(torch.full((2, 8, 5, 5), 3.0)), torch.zeros(2, 5, 5))
    pattern = torch.zeros(5, 5)
    pattern[1, 2], pattern[3, 3], pattern[0, 4] = 4.0, -1.0, -1.0
    balanced = torch.stack([pattern, -pattern, 0.1 * pattern.T, -0.1 * pattern.T])[None]  # channel mean 0
    first = device_cams.projection(balanced)
    solve = device_cams._top_eigenpair
    monkeypatch.setattr(device_cams, "_top_eigenpair", lambda gram: (lambda w, v: (w, -v))(*solve(gram)))
    assert torch.equal(device_cams.projection(balanced), first)
    assert first.max() == first.abs().max() > 0
    assert first[0, 1, 2] == first.max()


def test_library_pipeline_classes_project_as_the_device_path():
    """FastEigenCAM / FastEigenGradCAM (the library pipeline) use the very same projection."""
    from xai_core.methods.cam_classes import first_component_projection

    for batch in _inputs(3):
        assert np.array_equal(first_component_projection(batch.numpy()), device_cams.projection(batch).numpy())


def test_the_host_projection_equals_the_torch_steps(monkeypatch):
    """On the CPU `projection` runs in numpy; the torch steps (every other device) give the same."""
    host = [device_cams.projection(b) for b in _inputs(4)]
    monkeypatch.setattr(device_cams, "_on_host", lambda device: False)
    for batch, expected in zip(_inputs(4), host):
        ours = device_cams.projection(batch)
        assert ((ours - expected).abs() / expected.abs().amax()).max() < 1e-6
