"""The activations of a class's images at one layer, batch by batch, and their factorisation into
concepts: scikit-learn's NMF on every location at once (exactly pytorch-grad-cam's `dff` on one
image: same matrix, offset, init, solver and seed), or `MiniBatchNMF` streamed batch by batch when
the locations would not fit in memory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from sklearn.decomposition import NMF, MiniBatchNMF

from ..errors import Cancelled
from ..explain import decoded
from ..images import ImageSource
from ..methods.shared_pass import recording
from ..models import ModelHandle, Prepared, guard

#: Above this many locations (rows), or this many bytes of activations, the factorisation streams
#: (MiniBatchNMF) instead of holding every location in memory.
STREAM_ROWS, STREAM_BYTES = 200_000, 256 * 2**20


@dataclass(frozen=True)
class Batch:
    """One batch: images `first`..`first + len(x)`, the model input, the layer's raw output,
    its [B, C, h, w] grid, and the logits."""

    first: int
    prepared: Prepared
    raw: torch.Tensor
    grid: torch.Tensor
    logits: torch.Tensor


@dataclass(frozen=True)
class Fit:
    """A factorisation: `directions` float32 [k, C], `offset` float32 [C], the coefficients of the
    fitted locations (float32 [N, k, h, w]; None when streamed), and the solver's name."""

    directions: np.ndarray
    offset: np.ndarray
    coefficients: Optional[np.ndarray]
    solver: str
    clipped: bool
    transform: Optional[Callable[[np.ndarray], np.ndarray]] = None
    #: Seconds spent in the factorisation so far (streamed: `partial_fit` and `transform` calls).
    seconds: Optional[Callable[[], float]] = None


def grid_activations(handle: ModelHandle, layer: str, x: torch.Tensor) -> tuple:
    """(raw output of `layer`, its [B, C, h, w] grid, logits) for the model input `x`, one
    guarded forward with a scoped hook."""
    with guard(handle), recording([handle.layers[layer]], start_graph=False) as acts, torch.no_grad():
        logits = handle.module(x)
    raw, reshape = acts[0], handle.reshape(layer)
    return raw, (raw if reshape is None else reshape(raw)), logits


def batches(handle: ModelHandle, layer: str, images: Sequence[ImageSource], size: int,
            progress: Optional[Callable], stage: str) -> Iterator[Batch]:
    """Every image through the model `size` at a time (the lock held one batch at a time);
    `progress(stage, done, total)` after each batch, False cancels (raises `Cancelled`)."""
    for first in range(0, len(images), size):
        end = min(first + size, len(images))
        prepared = handle.prepare(decoded(images, first, end))
        raw, grid, logits = grid_activations(handle, layer, prepared.x)
        yield Batch(first, prepared, raw, grid.float(), logits.float())
        if progress is not None and progress(stage, end, len(images)) is False:
            raise Cancelled("The computation was cancelled.")


def streams(locations: int, channels: int) -> bool:
    """Whether `locations` rows of `channels` values are factorised by streaming (MiniBatchNMF)."""
    return locations > STREAM_ROWS or locations * channels * 4 > STREAM_BYTES


def fit_in_memory(matrix: np.ndarray, k: int, seed: int, shape: tuple) -> Fit:
    """NMF of `matrix` [C, N*h*w] (channels x locations, image-major) exactly as pytorch-grad-cam's
    `dff`: NaN -> 0, each channel shifted by its minimum, `NMF(init='random', random_state=seed)`;
    `shape` = (N, h, w). Overwrites `matrix`."""
    matrix[np.isnan(matrix)] = 0
    offset = matrix.min(axis=-1)
    matrix -= offset[:, None]
    model = NMF(n_components=k, init="random", random_state=seed)
    w = model.fit_transform(matrix)  # [C, k]
    h = model.components_  # [k, N*h*w]
    n, height, width = shape
    coefficients = np.float32(h.reshape(k, n, height, width).transpose(1, 0, 2, 3))
    return Fit(np.float32(w.T), np.float32(offset), coefficients, "nmf", False)


class Streamed:
    """MiniBatchNMF over locations (rows) x channels, fed batch by batch: rows gather into chunks of
    at most `CHUNK_BYTES`, and each chunk is passed `CHUNK_EPOCHS` times (or more: at least `MIN_STEPS`
    minibatches), shuffled, in minibatches of `MINIBATCH` rows (`partial_fit`), so memory stays bounded at any number of images. The offset is
    each channel's minimum in the first batch (later values below it are clipped)."""

    CHUNK_BYTES, CHUNK_EPOCHS, MINIBATCH, MIN_STEPS = 64 * 2**20, 5, 1024, 50

    def __init__(self, k: int, seed: int) -> None:
        self.model = MiniBatchNMF(n_components=k, init="random", random_state=seed, batch_size=self.MINIBATCH)
        self.rng = np.random.default_rng(seed)
        self.offset: Optional[np.ndarray] = None
        self.clipped = False
        self.buffer: list = []
        self.seconds = 0.0

    def rows(self, grid: np.ndarray) -> np.ndarray:
        """[B, C, h, w] -> the shifted rows [B*h*w, C] (float32)."""
        rows = np.ascontiguousarray(grid.transpose(0, 2, 3, 1).reshape(-1, grid.shape[1]), dtype=np.float32)
        rows[np.isnan(rows)] = 0
        if self.offset is None:
            self.offset = rows.min(axis=0)
        rows -= self.offset[None, :]
        if rows.min() < 0:
            self.clipped = True
            np.clip(rows, 0, None, out=rows)
        return rows

    def add(self, grid: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.buffer.append(self.rows(grid))
        if sum(r.nbytes for r in self.buffer) >= self.CHUNK_BYTES:
            self._flush()
        self.seconds += time.perf_counter() - t0

    def _flush(self) -> None:
        if not self.buffer:
            return
        chunk = np.concatenate(self.buffer)
        self.buffer = []
        per_epoch = -(-len(chunk) // self.MINIBATCH)
        for _ in range(max(self.CHUNK_EPOCHS, -(-self.MIN_STEPS // per_epoch))):
            order = self.rng.permutation(len(chunk))
            for start in range(0, len(chunk), self.MINIBATCH):
                self.model.partial_fit(chunk[order[start:start + self.MINIBATCH]])

    def fit(self) -> Fit:
        t0 = time.perf_counter()
        self._flush()
        self.seconds += time.perf_counter() - t0
        return Fit(np.float32(self.model.components_), np.float32(self.offset), None, "minibatch", self.clipped,
                   self.coefficients, lambda: self.seconds)

    def coefficients(self, grid: np.ndarray) -> np.ndarray:
        """The coefficient maps [B, k, h, w] of a batch's grid [B, C, h, w] (MiniBatchNMF.transform)."""
        t0 = time.perf_counter()
        b, _, height, width = grid.shape
        h = self.model.transform(self.rows(grid))  # [B*h*w, k]
        self.seconds += time.perf_counter() - t0
        return np.float32(h.reshape(b, height, width, -1).transpose(0, 3, 1, 2))


def to_raw(raw: torch.Tensor, grid: torch.Tensor, reshape: Optional[Callable]) -> torch.Tensor:
    """`grid` [B, C, h, w] written back into the layout of the layer's raw output `raw` (the
    inverse of its reshape transform: a token grid keeps its class/register tokens). Raises
    ValueError for a reshape it does not know."""
    if reshape is None:
        return grid.to(raw.dtype)
    name = type(reshape).__name__
    if name == "ChannelsLast":
        return grid.permute(0, 2, 3, 1).to(raw.dtype)
    if name == "TokenGrid":
        out = raw.clone()
        out[:, reshape.prefix:, :] = grid.flatten(2).transpose(1, 2).to(raw.dtype)
        return out
    raise ValueError(f"cannot invert the layer's reshape {name}")
