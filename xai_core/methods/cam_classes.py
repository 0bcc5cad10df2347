"""Subclasses of pytorch-grad-cam classes that change how, never what, they compute.

Each exists because the library's version is too slow for interactive use or mutates the shared
model; tests assert that every map still equals the library's. The one stated difference: EigenCAM
and EigenGrad-CAM project with `first_component_projection`, whose sign follows
`device_cams.SIGN_RULE` where the library's follows LAPACK (tests compare up to that rule)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from pytorch_grad_cam import AblationCAM, EigenCAM, EigenGradCAM, ScoreCAM, ShapleyCAM
from pytorch_grad_cam.ablation_layer import AblationLayer, AblationLayerVit
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

from .device_cams import projection
from ..models import Head
from ..errors import Cancelled


#: progress(done, total) -> False to cancel; called after every batch of a perturbation method.
Progress = Optional[Callable[[int, int], Optional[bool]]]


def first_component_projection(activation_batch: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's `get_2d_projection` of a [B, C, *spatial] numpy batch with the sign
    fixed by `device_cams.SIGN_RULE`: `device_cams.projection` itself, so the library-pipeline
    classes below and the device path give the same maps. Returns float32 [B, *spatial]."""
    return projection(torch.from_numpy(np.asarray(activation_batch))).numpy()


class FastEigenCAM(EigenCAM):
    """EigenCAM with `first_component_projection`: batched, and signed by `device_cams.SIGN_RULE`."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return first_component_projection(activations)


class FastEigenGradCAM(EigenGradCAM):
    """EigenGrad-CAM with `first_component_projection`: batched, and signed by `device_cams.SIGN_RULE`."""

    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return first_component_projection(grads * activations)


class ReshapingShapleyCAM(ShapleyCAM):
    """ShapleyCAM whose map also works on a reshaped (vision-transformer) layer. The library's
    weights reshape the raw gradients and Hessian-vector product themselves, but its
    `get_cam_image` then weighs the raw [B, N, C] activations and raises; here the activations are
    reshaped first, as every other method's are. Without a reshape this is the library's code path."""

    def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth=False):
        reshape = self.activations_and_grads.reshape_transform
        if reshape is None:
            return super().get_cam_image(input_tensor, target_layer, targets, activations, grads, eigen_smooth)
        weights = self.get_cam_weights(input_tensor, target_layer, targets, activations, grads)
        maps = reshape(activations).cpu().detach().numpy()
        weighted = weights[:, :, None, None] * maps
        return get_2d_projection(weighted) if eigen_smooth else weighted.sum(axis=1)


def _report(progress: Progress, done: int, total: int) -> None:
    if progress is not None and progress(done, total) is False:
        raise Cancelled("The computation was cancelled.")


class HeadAblationCAM(AblationCAM):
    """AblationCAM that re-runs only the model head (target-layer activations -> logits) on the
    ablated activations, instead of the whole network with the layer swapped out (the library's
    way re-runs ResNet-50 2048 times and mutates the model while it runs).

    The ablation is pytorch-grad-cam's `AblationLayer` (`AblationLayerVit` on the raw tokens of a
    reshaped layer, as the library's ViT tutorial), the weights AblationCAM's formula. A replay head
    (`Head.exact` False) is bound to each sample's input first. Where the head starts with global
    average pooling, activations are pooled first: the pooled value of a channel set to a constant
    is that constant, and the constants are the library's (0 when the sample's minimum is 0, else
    the running minimum lowered by 1e7 row by row: m - 1e7, m - 2e7, ... in each batch)."""

    heads: dict  # id(target layer) -> Head, or a module mapping its activations to logits
    gap_heads: set  # ids of target layers whose head starts with global average pooling
    guard: Callable
    progress: Progress = None
    #: id(target layer) -> its raw output (before the reshape_transform), for reshaped layers.
    raw: Optional[dict] = None
    #: The model, to bind replay heads to each sample's input.
    module: Optional[torch.nn.Module] = None
    #: Sentences for the result's notes (e.g. an undefined map), or None.
    notes: Optional[list] = None

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads) -> np.ndarray:
        acts = torch.as_tensor(activations, device=self.device)
        raw = (self.raw or {}).get(id(target_layer))
        gap = id(target_layer) in self.gap_heads and raw is None
        rows = []
        for b, target in enumerate(targets):
            head = self._sample_head(self.heads[id(target_layer)], input_tensor, b)
            if raw is not None:
                sample, layer = raw.detach().to(self.device)[b:b + 1], AblationLayerVit()
            else:
                sample, layer = acts[b:b + 1], AblationLayer()
            layer.activations_to_be_ablated(acts[b], 1.0)  # all channels, in order
            with torch.inference_mode():
                if gap:
                    pooled = head[0](sample)
                    rows.append(self._scores(head[1:], pooled, layer, target, b, len(targets), acts[b].min()))
                else:
                    rows.append(self._scores(head, sample, layer, target, b, len(targets), None))
        original_scores = np.float32([r[0] for r in rows])[:, None]
        ablated = np.float32([r[1] for r in rows])
        # Written here (the library divides by a zero score too and returns a NaN map): where the
        # target's score is exactly 0 (e.g. a zero-initialised head) the weights are undefined, so the
        # map is left blank and a note says why.
        undefined = original_scores[:, 0] == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = (original_scores - ablated) / original_scores
        if undefined.any():
            weights[undefined] = 0.0
            if self.notes is not None and ABLATION_UNDEFINED not in self.notes:
                self.notes.append(ABLATION_UNDEFINED)
        return weights

    def _sample_head(self, head, input_tensor: torch.Tensor, b: int):
        if not isinstance(head, Head):
            return head
        if head.exact:
            return head.module
        with self.guard():
            return head.bind(self.module, input_tensor[b:b + 1])

    def _scores(self, head, sample: torch.Tensor, layer, target, b: int, samples: int,
                minimum: Optional[torch.Tensor]) -> tuple[float, list[float]]:
        """(target score of the sample, target score with each channel ablated)."""
        channels = len(layer.indices)
        with self.guard():
            original = float(target(head(sample)[0]))
        new: list[float] = []
        for start in range(0, channels, self.batch_size):
            count = min(self.batch_size, channels - start)
            layer.set_next_batch(input_batch_index=0, activations=sample, num_channels_to_ablate=count)
            if minimum is None:
                batch = layer(None)
            else:
                batch = layer.activations
                index = torch.as_tensor(layer.indices[:count], dtype=torch.long)
                batch[torch.arange(count), index] = library_ablation_values(minimum, count).to(batch.dtype)[:, None, None]
            with self.guard():
                new.extend(float(target(o)) for o in head(batch))
            layer.indices = layer.indices[count:]
            _report(self.progress, start + count + b * channels, channels * samples)
        return original, new


def library_ablation_values(minimum: torch.Tensor, count: int) -> torch.Tensor:
    """The constants `AblationLayer` writes into rows 0..count-1 of one batch: 0 when the sample's
    minimum is 0, else min(batch) - 1e7 taken anew after each row (m - 1e7, then that - 1e7, ...),
    computed in the activations' dtype exactly as the library does."""
    minimum = minimum.detach().reshape(())
    if float(minimum) == 0:
        return torch.zeros(count, dtype=minimum.dtype, device=minimum.device)
    values, current = [], minimum
    for _ in range(count):
        current = current - ABLATION_VALUE
        values.append(current)
    return torch.stack(values)


ABLATION_UNDEFINED = ("Ablation-CAM's map is blank: the target class's score is exactly 0, so its weights "
                      "(score - ablated score) / score are undefined (a zero-initialised or untrained head).")

#: The library's `AblationLayer.__call__` constant.
ABLATION_VALUE = 1e7


class BatchedScoreCAM(ScoreCAM):
    """ScoreCAM's weights (softmax of the target score of the input masked by each normalised,
    upsampled channel) computed batch by batch under `torch.inference_mode`: only one batch of masks
    is upsampled at a time (the library builds all of them at once: 2048 x 3 x 224 x 224 floats),
    channels whose mask is all zero (constant activation maps) share one forward pass, and progress
    is reported so the caller can show it and cancel.

    With `top_k` set this is Faster-Score-CAM (arXiv 2010.00672): only the `top_k` channels with
    the highest activation variance are scored, the others get weight 0."""

    model: Callable
    batch_size: int = 32
    progress: Progress = None

    def __init__(self, model, target_layers, reshape_transform=None, top_k: Optional[int] = None) -> None:
        super().__init__(model, target_layers, reshape_transform)
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, not {top_k}")
        self.top_k = top_k

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads) -> np.ndarray:
        acts = torch.from_numpy(np.asarray(activations)).to(self.device)
        upsample = torch.nn.UpsamplingBilinear2d(size=input_tensor.shape[-2:])
        weights = []
        for b, target in enumerate(targets):
            channels = self._channels(acts[b])
            scores = torch.full((acts.shape[1],), float("-inf"))
            zero = set(torch.nonzero(acts[b].flatten(1).abs().amax(1) == 0).flatten().tolist())
            todo = [c for c in channels if c not in zero]
            flat = [c for c in channels if c in zero]
            if flat:  # an all-zero channel's mask is 0 everywhere: one pass on the zero image serves them all
                with torch.inference_mode():
                    scores[flat] = float(target(self.model(input_tensor[b:b + 1] * 0)[0]))
            for start in range(0, len(todo), self.batch_size):
                idx = todo[start:start + self.batch_size]
                with torch.inference_mode():
                    up = upsample(acts[b:b + 1, idx])[0]
                    lo = up.flatten(1).min(-1)[0][:, None, None]
                    hi = up.flatten(1).max(-1)[0][:, None, None]
                    masks = (up - lo) / (hi - lo + 1e-8)
                    # channels-last input: oneDNN's faster CPU convolutions (about 1.5x on ResNet-50)
                    batch = (input_tensor[b][None] * masks[:, None]).contiguous(memory_format=torch.channels_last)
                    out = self.model(batch)
                    scores[idx] = torch.tensor([float(target(o)) for o in out])
                _report(self.progress, start + len(idx), len(todo))
            weights.append(torch.softmax(scores, dim=-1).numpy())
        return np.float32(weights)

    def _channels(self, acts: torch.Tensor) -> list[int]:
        if self.top_k is None or self.top_k >= acts.shape[0]:
            return list(range(acts.shape[0]))
        variance = acts.flatten(1).var(dim=1)
        return sorted(int(c) for c in torch.topk(variance, self.top_k).indices)
