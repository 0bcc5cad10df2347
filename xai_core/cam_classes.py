"""Subclasses of pytorch-grad-cam classes that change how, never what, they compute.

Each exists because the library's version is too slow for interactive use or mutates the shared
model; tests assert that every map still equals the library's."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from pytorch_grad_cam import AblationCAM, EigenCAM, EigenGradCAM, ScoreCAM
from pytorch_grad_cam.ablation_layer import AblationLayer

from .errors import Cancelled

#: progress(done, total) -> False to cancel; called after every batch of a perturbation method.
Progress = Optional[Callable[[int, int], Optional[bool]]]


def first_component_projection(activation_batch: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's `get_2d_projection` with an economy SVD (`full_matrices=False`).

    The library asks for the full V (C x C: 2048 x 2048 at ResNet-50's layer4, about 1 s) and uses
    only its first row, which the economy SVD returns identically (checked in tests)."""
    activation_batch = activation_batch.copy()
    activation_batch[np.isnan(activation_batch)] = 0
    projections = []
    for activations in activation_batch:
        reshaped = activations.reshape(activations.shape[0], -1).transpose()
        reshaped = reshaped - reshaped.mean(axis=0)
        _, _, vt = np.linalg.svd(reshaped, full_matrices=False)
        projections.append((reshaped @ vt[0, :]).reshape(activations.shape[1:]))
    return np.float32(projections)


class FastEigenCAM(EigenCAM):
    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return first_component_projection(activations)


class FastEigenGradCAM(EigenGradCAM):
    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return first_component_projection(grads * activations)


def _report(progress: Progress, done: int, total: int) -> None:
    if progress is not None and progress(done, total) is False:
        raise Cancelled("The computation was cancelled.")


class HeadAblationCAM(AblationCAM):
    """AblationCAM that re-runs only the model head (target-layer activations -> logits) on the
    ablated activations, instead of the whole network with the layer swapped out (the library's
    way re-runs ResNet-50 2048 times and mutates the model while it runs).

    The ablation is pytorch-grad-cam's `AblationLayer`, the weights AblationCAM's formula. Where the
    head starts with global average pooling, activations are pooled first: the pooled value of a
    channel set to the ablation constant v is v, so ablating channel k of the pooled vector is the
    same computation on a 1x1 map."""

    heads: dict  # id(target layer) -> head module
    gap_heads: set  # ids of target layers whose head starts with global average pooling
    guard: Callable
    progress: Progress = None

    def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads) -> np.ndarray:
        head = self.heads[id(target_layer)]
        acts = torch.as_tensor(activations, device=self.device)
        if id(target_layer) in self.gap_heads:
            # AblationLayer picks its constant from the minimum of the sample's unpooled activations.
            values = [0.0 if float(a.min()) == 0 else float(a.min()) - 1e7 for a in acts]
            with torch.inference_mode():
                pooled = head[0](acts)
            return self._weights(head[1:], pooled, targets, values)
        return self._weights(head, acts, targets, None)

    def _weights(self, head, acts: torch.Tensor, targets, pooled_values: Optional[list]) -> np.ndarray:
        channels = acts.shape[1]
        rows = []
        with torch.inference_mode():
            with self.guard():
                original = head(acts)
            for b, target in enumerate(targets):
                layer = AblationLayer()
                layer.activations_to_be_ablated(acts[b], 1.0)  # all channels, in order
                new: list[float] = []
                for start in range(0, channels, self.batch_size):
                    count = min(self.batch_size, channels - start)
                    layer.set_next_batch(input_batch_index=b, activations=acts, num_channels_to_ablate=count)
                    if pooled_values is None:
                        batch = layer(None)
                    else:
                        batch = layer.activations
                        rows_ = torch.arange(count)
                        batch[rows_, torch.as_tensor(layer.indices[:count], dtype=torch.long)] = pooled_values[b]
                    with self.guard():
                        new.extend(float(target(o)) for o in head(batch))
                    layer.indices = layer.indices[count:]
                    _report(self.progress, start + count + b * channels, channels * len(targets))
                rows.append((float(target(original[b])), new))
        original_scores = np.float32([r[0] for r in rows])[:, None]
        ablated = np.float32([r[1] for r in rows])
        return (original_scores - ablated) / original_scores


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
