"""Deletion / insertion curves of importance maps (written here: pytorch-grad-cam has no such
metric) and the confidence change (pytorch-grad-cam's perturbation and formula; a test checks the
score equals its metric class's). ROAD is in `road.py`.

Every forward goes through `Scorer`, in the calling thread, batch by batch under the handle's guard,
in `torch.inference_mode()`, with channels-last inputs (about 2x faster on CPU, same logits to 1e-5;
the module itself is never touched)."""

from __future__ import annotations

import math
import weakref
from functools import partial
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange

from .. import _timing
from ..models import ModelHandle, guard

#: The insertion metric starts from the image blurred with a Gaussian of this sigma (a fraction of
#: the image side: 11 px at 224 px), strong enough that the model no longer sees the class.
BLUR_SIGMA = 0.05
#: Pixels with equal importance (e.g. the zero region after a CAM's ReLU) are ranked in this fixed
#: random order, so a flat region is removed uniformly instead of top-left first.
TIE_SEED = 0
#: Images per forward. On CPU small batches are faster per image (their activations stay in cache):
#: 2 cores, 224 px, channels-last: EfficientNet-Lite0 21-23 ms per image in batches of 2-4 against
#: 42 ms in batches of 32, ResNet-50 86-94 ms against 111 ms. A GPU wants large batches.
CPU_BATCH, GPU_BATCH = 4, 32

_FORWARD_S: "weakref.WeakKeyDictionary[torch.nn.Module, float]" = weakref.WeakKeyDictionary()


def default_batch_size(handle: ModelHandle) -> int:
    """`CPU_BATCH` or `GPU_BATCH`, by the handle's device."""
    return CPU_BATCH if torch.device(handle.device).type == "cpu" else GPU_BATCH


def forward_seconds(handle: ModelHandle) -> float:
    """Seconds per image of the scoring forwards (a batch of `default_batch_size`, evaluate's,
    channels-last, inference mode), timed warm (after two untimed forwards) once per model on a zero batch."""
    if handle.module not in _FORWARD_S:
        size = handle.transforms.crop_size[0]
        x = torch.zeros(default_batch_size(handle), 3, size, size, device=handle.device)
        x = x.contiguous(memory_format=torch.channels_last)
        with guard(handle), torch.inference_mode():
            for _ in range(2):  # warm-up: the first calls at a new shape pay for kernel selection
                handle.module(x)
            _FORWARD_S[handle.module] = _timing.median_time(lambda: handle.module(x), handle.device) / x.shape[0]
    return _FORWARD_S[handle.module]


class Scorer:
    """Softmax probability of the target class through the shared module, batch by batch under the
    handle's guard. `base` is the probability on the image `x` itself."""

    def __init__(self, handle: ModelHandle, x: torch.Tensor, target: int, batch_size: int) -> None:
        self.handle, self.x, self.target, self.batch_size = handle, x, target, batch_size
        self.base = float(self.probability(x)[0])

    def probability(self, batch: torch.Tensor) -> np.ndarray:
        """The target's probability for every image of `batch`, float64 [B]."""
        out = []
        for start in range(0, batch.shape[0], self.batch_size):
            out.append(probabilities(self.handle, batch[start:start + self.batch_size], self.target))
        return np.concatenate(out)


def probabilities(handle: ModelHandle, batch: torch.Tensor, targets) -> np.ndarray:
    """Softmax probability of `targets` (one class for all, or one per image) for the images of
    `batch` in one forward (channels-last, inference mode, under the handle's guard), float64 [B]."""
    chunk = batch.contiguous(memory_format=torch.channels_last)
    with guard(handle), torch.inference_mode():
        logits = handle.module(chunk)
    if isinstance(targets, int):
        return logits.softmax(-1)[:, targets].double().cpu().numpy()
    rows = torch.arange(len(targets), device=logits.device)
    return logits.softmax(-1)[rows, torch.as_tensor(targets, device=logits.device)].double().cpu().numpy()


def score_queue(handle: ModelHandle, items: Sequence[tuple[Callable[[], torch.Tensor], int]], batch_size: int,
                tick: Callable[[], None]) -> np.ndarray:
    """The target probability of every image made by `items` ((maker of a [1, C, H, W] image, its
    target class) pairs, several images' work mixed), `batch_size` images per forward, `tick()`
    after each forward; float64 [len(items)]. The images are made batch by batch, on the device."""
    out = []
    for start in range(0, len(items), batch_size):
        part = items[start:start + batch_size]
        out.append(probabilities(handle, torch.cat([make() for make, _ in part]), [t for _, t in part]))
        tick()
    return np.concatenate(out) if out else np.zeros(0)


def ranks(cam: np.ndarray) -> np.ndarray:
    """Rank of every pixel of `cam` (0 = most important), ties broken in a fixed random order; int64 [H*W]."""
    flat = cam.ravel().astype(np.float64)
    jitter = np.random.default_rng(TIE_SEED).permutation(flat.size)
    order = np.lexsort((jitter, -flat))  # last key is the primary one
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size)
    return rank


def rank_map(rank: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`rank` as a float32 map in [0, 1] (1 = most important) with no ties: the percentile masks
    of ROAD then remove exactly the requested fraction, even where a CAM is flat."""
    return np.float32(1.0 - rank / max(rank.size - 1, 1)).reshape(shape)


def blurred(x: torch.Tensor) -> torch.Tensor:
    """`x` blurred with a Gaussian of sigma `BLUR_SIGMA` x its side (the insertion start)."""
    sigma = BLUR_SIGMA * max(x.shape[-2:])
    kernel = 2 * math.ceil(2 * sigma) + 1
    return TF.gaussian_blur(x, [kernel, kernel], [sigma, sigma])


def deletion_insertion(
    scorer: Scorer, rank_list: Sequence[np.ndarray], steps: int, tick: Callable[[], None],
    extra: Sequence[torch.Tensor] = (), ends: Optional[tuple[float, float]] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Deletion and insertion curves, float64 [n_maps, steps + 1] each, at fractions k / steps, the
    target's probability on the `extra` images ([1, C, H, W] each), scored in the same batches,
    and `ends`: the probability on the two end images every map shares (all pixels deleted, all
    blurred), scored here unless an earlier call's `ends` is given.

    Deletion (Petsiuk et al. 2018, RISE): the most important pixels first are set to 0 in the model's
    normalised space (the normalisation's mean colour; mid-grey for [-1, 1] inputs). Insertion:
    from the blurred image, the original's most important pixels first are put back. Written by
    hand (pytorch-grad-cam has no deletion/insertion); the images are made batch by batch
    (`tick()` after each batch)."""
    makers = curve_makers(scorer.x, rank_list, steps, extra, ends is None)
    flat = score_queue(scorer.handle, [(make, scorer.target) for make in makers], scorer.batch_size, tick)
    return assemble_curves(flat, len(rank_list), steps, scorer.base, ends)


def curve_makers(x: torch.Tensor, rank_list: Sequence[np.ndarray], steps: int, extra: Sequence[torch.Tensor] = (),
                 with_ends: bool = True) -> list[Callable[[], torch.Tensor]]:
    """The makers of `deletion_insertion`'s images, in its order: the two end images (`with_ends`),
    each map's deletion then insertion steps 1..steps-1, then `extra`. Each makes [1, C, H, W] on
    `x`'s device when called."""
    h, w = x.shape[-2:]
    zero, blur = torch.zeros_like(x), blurred(x)
    counts = [round(k * h * w / steps) for k in range(steps + 1)]
    makers = [lambda: zero, lambda: blur] if with_ends else []
    on_device = [torch.from_numpy(rank).reshape(h, w).to(x.device) for rank in rank_list]  # one copy per map
    makers += [partial(_perturbed, x, zero, blur, rank, kind, counts[k])
               for rank in on_device for kind in ("del", "ins") for k in range(1, steps)]
    makers += [partial(lambda image: image, image) for image in extra]
    return makers


def assemble_curves(flat: np.ndarray, n: int, steps: int, base: float, ends: Optional[tuple[float, float]]):
    """`deletion_insertion`'s result from the probabilities of `curve_makers`' images, in order."""
    if ends is None:
        ends, flat = (float(flat[0]), float(flat[1])), flat[2:]
    inner_count = n * 2 * (steps - 1)
    inner = flat[:inner_count].reshape(n, 2, steps - 1)
    deletion = np.column_stack([np.full(n, base), inner[:, 0], np.full(n, ends[0])])
    insertion = np.column_stack([np.full(n, ends[1]), inner[:, 1], np.full(n, base)])
    return deletion, insertion, flat[inner_count:], ends


def batch_count(n_maps: int, steps: int, n_extra: int, batch_size: int, ends: bool = True) -> int:
    """How many batches `deletion_insertion` runs (for progress totals); `ends`: it scores the end images."""
    return math.ceil((2 * ends + n_maps * 2 * (steps - 1) + n_extra) / batch_size)


def _perturbed(x, zero, blur, rank: torch.Tensor, kind: str, count: int) -> torch.Tensor:
    """The deletion or insertion image with the `count` most important pixels changed, made on
    `x`'s device from the map's ranks there ([H, W])."""
    top = rank < count
    return torch.where(top, zero, x) if kind == "del" else torch.where(top, x, blur)


def confidence_images(x: torch.Tensor, cams: np.ndarray) -> list[torch.Tensor]:
    """The images of pytorch-grad-cam's `CamMultImageConfidenceChange` (its own perturbation: the
    image times the map); their probability minus the image's is the confidence change."""
    perturb = CamMultImageConfidenceChange().perturbation
    return [perturb(x, torch.from_numpy(cam).to(x.device)) for cam in np.float32(cams)]


def chunks(random_rep: str, first_rep: str, reps: list[str]) -> list[list[str]]:
    """The representative maps in scoring order: the random one's and the first method's together
    (the first scores worth showing), then each other map alone."""
    first = list(dict.fromkeys([random_rep, first_rep]))
    return [first] + [[rep] for rep in reps if rep not in first]


def chunk_curves(scorer, chunk: list[str], maps: dict, rank_of: dict, steps: int, tick, ends, rows: dict):
    """Deletion/insertion curves and AUCs and the confidence change of the maps in `chunk`, into
    `rows`; returns the end images' probabilities (scored once, with the first chunk)."""
    extra = confidence_images(scorer.x, np.stack([maps[rep] for rep in chunk]))  # scored in the same batches
    deletion, insertion, multiplied, ends = deletion_insertion(
        scorer, [rank_of[rep] for rep in chunk], steps, tick, extra, ends)
    curve_rows(rows, chunk, deletion, insertion, multiplied, scorer.base, steps)
    return ends


def curve_rows(rows: dict, chunk: list[str], deletion, insertion, multiplied, base: float, steps: int) -> None:
    """Each map's deletion/insertion curves and AUCs and its confidence change, into `rows`."""
    fractions = np.linspace(0.0, 1.0, steps + 1)
    for i, rep in enumerate(chunk):
        rows[rep].update(
            deletion_auc=float(np.trapezoid(deletion[i], fractions)),
            insertion_auc=float(np.trapezoid(insertion[i], fractions)),
            deletion_curve=deletion[i].copy(), insertion_curve=insertion[i].copy(),
            confidence_change=float(multiplied[i] - base),
        )
