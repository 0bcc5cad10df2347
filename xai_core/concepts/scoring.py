"""How much each concept gives a class, and what removing concepts does to it.

On a head that is global average pooling then a linear layer the class logit splits exactly:
logit = bias + sum_i mean(coefficient_i) * (direction_i . weights) + residual (the offset and the
reconstruction error); removing a concept (subtracting coefficient x direction from the activations)
then lowers every logit by exactly its share, so the tail is re-run in closed form. Any other head
gets the first-order estimate sum over locations of coefficient_i * (direction_i . gradient), and
its tail is re-run (`Head`) on the modified activations, batch by batch."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..dataset import bootstrap_ci
from ..models import ModelHandle, guard
from .extract import Batch, to_raw


def linear_layer(handle: ModelHandle, layer: str) -> Optional[nn.Linear]:
    """The linear layer of `layer`'s head when that head is global average pooling + linear
    (`ModelHandle.is_gap_linear`, checked against the model's logits), else None."""
    if handle.reshape(layer) is not None or not handle.is_gap_linear(layer):
        return None
    found = [m for m in handle.head(layer).module.modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def linear_votes(linear: nn.Linear, directions: np.ndarray) -> tuple:
    """(directions @ weights.T [k, classes], bias [classes]) as float64."""
    weight = linear.weight.detach().double().cpu().numpy()
    bias = np.zeros(weight.shape[0]) if linear.bias is None else linear.bias.detach().double().cpu().numpy()
    return directions.astype(np.float64) @ weight.T, bias


def exact_contributions(coefficients: np.ndarray, votes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """[N, k]: mean coefficient of each concept over each image's locations times (direction . the
    weights of that image's class)."""
    means = coefficients.mean(axis=(2, 3), dtype=np.float64)  # [N, k]
    return means * votes[:, classes].T


def removal_logits(logits: np.ndarray, coefficients: np.ndarray, votes: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Linear head: the logits [N, k + 1, classes] after removing 0..k concepts, image n removing
    them in the order `orders[n]` (exact: the head is linear in the pooled activations)."""
    means = coefficients.mean(axis=(2, 3), dtype=np.float64)  # [N, k]
    n, k = means.shape
    out = np.empty((n, k + 1, logits.shape[1]))
    out[:, 0] = logits
    for step in range(k):
        concept = orders[:, step]
        out[:, step + 1] = out[:, step] - means[np.arange(n), concept][:, None] * votes[concept]
    return out


def softmax_at(logits: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of `logits` [N, ..., classes], taken at each image's class."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    return np.take_along_axis(probs, classes.reshape(-1, *[1] * (logits.ndim - 1)), axis=-1)[..., 0]


def bound_head(handle: ModelHandle, layer: str, x: torch.Tensor) -> Callable:
    """`layer`'s head for the activations of input `x` (a replay head is bound to `x`)."""
    head = handle.head(layer)
    return head if head.exact else head.bind(handle.module, x)


def gradient_contributions(handle: ModelHandle, layer: str, batch: Batch, coefficients: np.ndarray,
                           directions: np.ndarray, classes: np.ndarray) -> tuple:
    """First-order estimate for one batch: (contributions [B, k], class logits [B]) with
    contribution_i = sum over locations of coefficient_i * (direction_i . d logit / d activation)."""
    raw = batch.raw.detach().clone().requires_grad_(True)
    reshape = handle.reshape(layer)
    with guard(handle), torch.enable_grad():
        logits = bound_head(handle, layer, batch.prepared.x)(raw)
        chosen = logits[torch.arange(len(classes)), torch.as_tensor(classes, device=logits.device)]
        (gradient,) = torch.autograd.grad(chosen.sum(), raw)
    grid = (gradient if reshape is None else reshape(gradient)).double().cpu().numpy()  # [B, C, h, w]
    along = np.einsum("kc,bchw->bkhw", directions.astype(np.float64), grid)
    return (coefficients * along).sum(axis=(2, 3)), chosen.detach().double().cpu().numpy()


def removal_probabilities(handle: ModelHandle, layer: str, batch: Batch, coefficients: np.ndarray,
                          directions: np.ndarray, orders: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Any head: the class probability [B, k + 1] after removing 0..k concepts (image n in the order
    `orders[n]`), each concept's coefficient x direction subtracted from the activations and the
    layer's tail re-run."""
    device = batch.grid.device
    h = torch.as_tensor(coefficients, device=device, dtype=torch.float32)  # [B, k, h, w]
    w = torch.as_tensor(directions, device=device, dtype=torch.float32)  # [k, C]
    ranks = torch.as_tensor(np.argsort(orders, axis=1), device=device)  # rank of each concept per image
    cls = torch.as_tensor(classes, device=device)
    rows = torch.arange(len(classes), device=device)
    reshape = handle.reshape(layer)
    out = np.empty((len(classes), w.shape[0] + 1))
    with guard(handle), torch.no_grad():
        head = bound_head(handle, layer, batch.prepared.x)
        for step in range(w.shape[0] + 1):
            mask = (ranks < step).to(torch.float32)  # [B, k]
            removed = torch.einsum("bk,bkhw,kc->bchw", mask, h, w)
            logits = head(to_raw(batch.raw, batch.grid - removed, reshape)).float()
            out[:, step] = logits.softmax(-1)[rows, cls].double().cpu().numpy()
    return out


def auc(curves: np.ndarray) -> np.ndarray:
    """Area under each curve [N, k + 1] with the x axis (concepts removed) scaled to [0, 1]."""
    steps = curves.shape[1] - 1
    return (curves[:, 1:] + curves[:, :-1]).sum(axis=1) / (2 * max(steps, 1))

def removal_orders(order: np.ndarray, n: int, seed: int) -> dict:
    """The fidelity curves' two removal orders for `n` images: {"removed": by importance (`order`,
    the same for every image), "random": one seeded permutation per image}."""
    rng = np.random.default_rng(seed)
    return {"removed": np.tile(order, (n, 1)), "random": np.stack([rng.permutation(len(order)) for _ in range(n)])}


def fidelity_summary(order: np.ndarray, curves: dict, logit_curve: Optional[np.ndarray] = None) -> dict:
    """The fidelity block (`ClassConcepts.fidelity`, summary.json's) from the [n, k + 1] class
    probability `curves` of both orders: the mean curves and their areas with 95% bootstrap
    intervals, and the mean class logit as concepts are removed when it is known."""
    areas = {key: bootstrap_ci(auc(c)) for key, c in curves.items()}
    result = {
        "order": [int(i) for i in order],
        "removed": [float(v) for v in curves["removed"].mean(axis=0)],
        "random": [float(v) for v in curves["random"].mean(axis=0)],
        "auc": areas["removed"]["mean"], "auc_low": areas["removed"]["low"], "auc_high": areas["removed"]["high"],
        "random_auc": areas["random"]["mean"], "random_auc_low": areas["random"]["low"],
        "random_auc_high": areas["random"]["high"], "images": len(curves["removed"]),
    }
    if logit_curve is not None:
        result["logit_removed"] = [float(v) for v in logit_curve]
    return result

