"""`Concept` and `ClassConcepts`: what `class_concepts` returns (frozen, numpy only, picklable), and
`ClassConcepts.maps`, a concept map per image aligned with that image's picture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
from pytorch_grad_cam.utils.image import scale_cam_image
from scipy.optimize import nnls

from ..errors import InvalidOptionError
from ..images import ImageSource, load_image
from ..models import ModelHandle
from .extract import grid_activations

#: A crop of a concept's evidence: (image index, x, y, uint8 RGB [s, s, 3]), (x, y) its centre in
#: the image's picture (the preprocessed, cropped image the model saw).
Crop = tuple


@dataclass(frozen=True)
class Concept:
    """One concept of a class. `direction` (C,) is its direction in the layer's channel space (the
    NMF component; DFF's concept is `direction + ClassConcepts.offset`); `labels` the classes that
    direction votes for through the model's head, (label, probability); `importance` its mean
    share of the class logit over the images with a 95% bootstrap interval (`importance_by_class`:
    label -> (mean, low, high) over that class's images); `crops`: where it is strongest."""

    index: int
    direction: np.ndarray
    labels: list
    importance: float
    importance_low: float
    importance_high: float
    importance_by_class: dict
    crops: list
    #: The concept's mean coefficient over the locations of all images.
    mean_coefficient: float = 0.0


@dataclass(frozen=True)
class ClassConcepts:
    """Result of `class_concepts`: the concepts (by index), the classes (`targets`), the layer and
    model, the mean `residual` (class logit - bias - the concepts' contributions), the importance
    `method` ("exact (linear head)" or "first-order estimate (gradient x coefficient)"), `fidelity`
    (probability curves as concepts are removed, with their areas), `notes`, the number of images."""

    concepts: tuple
    targets: tuple
    layer: str
    model: str
    residual: float
    method: str
    fidelity: dict
    notes: tuple
    images: int
    #: Per channel shift applied before NMF (NMF needs values >= 0; DFF shifts each channel by its
    #: minimum): activations ~ sum_i coefficient_i * direction_i + offset.
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    #: float32 [N, k, h, w]: each image's coefficient maps on the layer's grid.
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0), np.float32), repr=False)
    #: Per image, the index into `targets` of its class (two classes: the one with the higher logit).
    image_targets: tuple = ()
    #: Per image (N, k): each concept's contribution to the image's class logit.
    contributions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)
    #: Per image (N,): its class logit, and the residual (logit - bias - the contributions; a
    #: first-order estimate has no bias: logit - the contributions).
    logits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    #: (height, width) of the pictures the maps align with.
    picture_size: tuple = (0, 0)
    #: "nmf" (scikit-learn NMF on all locations, as DFF) or "minibatch" (MiniBatchNMF, streamed).
    solver: str = "nmf"
    seed: int = 0
    #: Seconds: "fit" (first pass: forwards and NMF), "nmf" (the factorisation; streamed, its transforms
    #: too), "scores" (importance, with a second pass when needed), "fidelity", "total".
    timings: dict = field(default_factory=dict)

    @property
    def directions(self) -> np.ndarray:
        """float32 [k, C]: the concepts' directions, one per row."""
        return np.stack([c.direction for c in self.concepts]) if self.concepts else np.zeros((0, 0), np.float32)

    def maps(self, image: Union[int, ImageSource], handle: Optional[ModelHandle] = None) -> np.ndarray:
        """float32 [k, H, W] in [0, 1] aligned with the image's picture (each concept's map scaled
        as `Factorization.heatmaps`). `image`: an index among the analysed images (their fitted
        coefficients), or a new image with the `handle` of the same model, whose activations are
        projected on the fixed directions (non-negative least squares per location). Raises
        `InvalidOptionError`, `InvalidImageError`."""
        if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
            if not 0 <= int(image) < len(self.coefficients):
                raise InvalidOptionError(f"Image index {image} is out of range; use 0 to {len(self.coefficients) - 1}.")
            return _scaled(self.coefficients[int(image)], self.picture_size)
        if handle is None:
            raise InvalidOptionError("Give the model's handle to map a new image: maps(image, handle).")
        if handle.name != self.model:
            raise InvalidOptionError(f"These concepts belong to {self.model}, not {handle.name}.")
        prepared = handle.prepare([load_image(image)])
        grid = grid_activations(handle, self.layer, prepared.x)[1][0].float().cpu().numpy()  # [C, h, w]
        return _scaled(project(grid, self.directions, self.offset), tuple(prepared.x.shape[-2:]))


def project(grid: np.ndarray, directions: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Coefficient maps [k, h, w] of activations `grid` [C, h, w] on fixed `directions` [k, C]:
    per location, scipy's non-negative least squares on (activation - offset, clipped at 0)."""
    channels, height, width = grid.shape
    rows = np.clip(grid.reshape(channels, -1).T - offset[None, :], 0, None).astype(np.float64)
    basis = directions.T.astype(np.float64)
    coefficients = np.stack([nnls(basis, row)[0] for row in rows])  # [h*w, k]
    return np.float32(coefficients.T.reshape(-1, height, width))


def _scaled(coefficients: np.ndarray, size: tuple) -> np.ndarray:
    height, width = size
    return np.clip(np.float32(scale_cam_image(np.float32(coefficients), (width, height))), 0.0, 1.0)
