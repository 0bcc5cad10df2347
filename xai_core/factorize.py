"""`factorize`: Deep Feature Factorization (pytorch-grad-cam's `dff`, scikit-learn NMF) with each
concept labelled by the classes the model head gives it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_grad_cam.feature_factorization.deep_feature_factorization import dff
from pytorch_grad_cam.utils.image import scale_cam_image

from ._timing import elapsed, synchronize
from .methods.shared_pass import recording
from .errors import InvalidOptionError
from .images import ImageSource, load_image
from .models import ModelHandle, guard

MAX_COMPONENTS = 16


@dataclass(frozen=True)
class Factorization:
    """Result of `factorize`. `heatmaps` is float32 [k, H, W] in [0, 1] aligned with `image`;
    `labels[i]` lists component i's top classes as (label, probability)."""

    heatmaps: np.ndarray
    labels: list[list[tuple[str, float]]]
    #: Per pixel, the index of the component with the highest heatmap value (int [H, W]).
    dominant: np.ndarray
    #: Per component, the top class indices (int [k, top_k]).
    label_indices: np.ndarray
    layer: str
    model: str
    image: np.ndarray
    timings: dict[str, float]


def factorize(
    handle: ModelHandle,
    image: ImageSource,
    n_components: int = 4,
    layer: str | None = None,
    top_k: int = 2,
) -> Factorization:
    """Split the activations of `layer` into `n_components` (1..16) concepts with NMF (fixed seed,
    deterministic) and label each concept with its `top_k` classes through the model head.
    Raises `InvalidImageError`, `InvalidOptionError`, `UnknownNameError`."""
    if not 1 <= int(n_components) <= MAX_COMPONENTS:
        raise InvalidOptionError(f"n_components must be between 1 and {MAX_COMPONENTS}.")
    if not 1 <= int(top_k) <= 10:
        raise InvalidOptionError("top_k must be between 1 and 10.")
    synchronize(handle.device)
    started = time.perf_counter()
    name = handle.layer_name(layer)
    pil = load_image(image)
    x = handle.preprocess(pil)
    with guard(handle), recording([handle.layers[name]], start_graph=False) as acts, torch.inference_mode():
        handle.module(x)
    raw, reshape = acts[0], handle.reshape(name)
    activations = (raw if reshape is None else reshape(raw)).float().cpu().numpy()
    t_forward = elapsed(handle.device, started)

    t0 = time.perf_counter()
    concepts, explanations = dff(activations, n_components=int(n_components))  # concepts: [C, k]
    height, width = x.shape[-2:]
    heatmaps = scale_cam_image(explanations[0], (width, height))
    t_nmf = time.perf_counter() - t0

    t0 = time.perf_counter()  # NMF ran on the CPU: nothing queued on the device
    probs = concept_probabilities(handle, name, concepts, raw, x)
    order = np.argsort(-probs, axis=1)[:, : int(top_k)]
    labels = [[(handle.categories[j], float(probs[i, j])) for j in row] for i, row in enumerate(order)]
    t_labels = elapsed(handle.device, t0)
    return Factorization(
        heatmaps=np.clip(np.float32(heatmaps), 0.0, 1.0),
        labels=labels,
        dominant=heatmaps.argmax(axis=0),
        label_indices=order,
        layer=name,
        model=handle.name,
        image=handle.display_image(pil),
        timings={"forward": t_forward, "nmf": t_nmf, "labels": t_labels, "total": elapsed(handle.device, started)},
    )


def concept_probabilities(handle: ModelHandle, layer: str, concepts: np.ndarray, raw: torch.Tensor,
                           x: torch.Tensor) -> np.ndarray:
    """Softmax of the head's logits for each concept embedding tiled over the layer's grid (for a
    global-average-pool head this is exactly the DFF tutorial's classifier(concept)). A token or
    channels-last layer gets the embedding at every token, in its own layout; a replay head is
    bound to the image `x` (the rest of the network sees the image, the layer the concept)."""
    embeddings = torch.from_numpy(np.float32(concepts.T)).to(handle.device, raw.dtype)  # [k, C]
    k = embeddings.shape[0]
    if handle.reshape(layer) is None:
        tiled = embeddings[:, :, None, None].expand(k, -1, *raw.shape[2:]).contiguous()
    else:
        tiled = embeddings.reshape(k, *[1] * (raw.dim() - 2), -1).expand(k, *raw.shape[1:]).contiguous()
    with guard(handle), torch.inference_mode():
        head = handle.head(layer)
        head = head if head.exact else head.bind(handle.module, x)
        logits = head(tiled)
    return logits.softmax(-1).float().cpu().numpy()
