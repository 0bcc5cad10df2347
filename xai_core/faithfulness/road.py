"""ROAD (Rong et al. 2022, arXiv 2202.00449) with pytorch-grad-cam's perturbations and formulas (a
test checks the scores equal its metric classes'): its noisy linear imputation solved for every mask
of a call at once on the input's device (`imputation.harmonic_fill`), with the library's noise;
`FastImputer`, an exact sparse solve of the same system, is the oracle the tests compare it with."""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import numpy as np
import torch
from pytorch_grad_cam.metrics.road import (
    NoisyLinearImputer,
    ROADLeastRelevantFirst,
    ROADMostRelevantFirst,
    neighbors_weights,
)
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import splu

from .curves import Scorer
from .imputation import harmonic_fill

#: pytorch-grad-cam's ROAD percentiles used by its metrics tutorial (its classes default to 10..90).
ROAD_PERCENTILES = (20, 40, 60, 80)


class RoadJobs:
    """ROAD (Rong et al. 2022, arXiv 2202.00449): the perturbations of pytorch-grad-cam's
    `ROADMostRelevantFirst` and `ROADLeastRelevantFirst` at each percentile (a job each), for every
    map of `rank_maps` ([n_maps, H, W]) on the image `x` ([1, C, H, W]). The masks (the library's
    percentile thresholds) and the noise (job j's like a `FastImputer(seed=j)` called map by map)
    are made at once; the imputation is solved, all masks together on `x`'s device, when first
    needed (`images`, or `impute_together` for several images' jobs in one batch)."""

    def __init__(self, x: torch.Tensor, rank_maps: np.ndarray, percentiles: Sequence[int]) -> None:
        self.percentiles, self.x, self._n_maps = list(percentiles), x, len(rank_maps)
        image = x[0].detach().cpu()
        unknown, noise = [], []
        jobs = [(cls, p) for cls in (ROADMostRelevantFirst, ROADLeastRelevantFirst) for p in self.percentiles]
        for seed, (cls, percentile) in enumerate(jobs):
            perturbation = cls(percentile).perturbation
            perturbation.imputer = _binary_mask  # the library's percentile mask, no imputation
            generator = torch.Generator().manual_seed(seed)
            for cam in rank_maps:
                unknown.append(perturbation(image, torch.from_numpy(cam)) == 0)
                noise.append(torch.randn((image.shape[0], int(unknown[-1].sum())), generator=generator))
        self.unknown = torch.stack(unknown)  # [jobs * maps, H, W], job by job then map by map
        self._noise = torch.cat(noise, dim=1)  # [C, all unknown pixels], in the order `unknown` lists them
        self._images = None

    @property
    def job_count(self) -> int:
        return 2 * len(self.percentiles)

    def images(self) -> torch.Tensor:
        """The imputed images, [jobs * maps, C, H, W] on `x`'s device, job by job then map by map."""
        if self._images is None:
            impute_together([self])
        return self._images

    def _set_solution(self, filled: torch.Tensor) -> None:
        """Store `harmonic_fill`'s solution for `unknown` ([jobs * maps, C, H, W]) plus the noise."""
        noise = torch.zeros((filled.shape[1], *self.unknown.shape), device=filled.device)
        noise[:, self.unknown.to(filled.device)] = self._noise.to(filled.device)
        self._images = filled.add_(noise.transpose(0, 1), alpha=NoisyLinearImputer().noise)

    def scores(self, scorer: Scorer, tick: Callable[[], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(morf, lerf, combined), float64 [n_maps]: as pytorch-grad-cam's metrics compute them, the
        target's softmax probability on each imputed image minus on the image
        (`PerturbationConfidenceMetric`), averaged over the percentiles (`AveragerAcrossThresholds`)
        and combined as `ROADCombined` does: (LeRF - MoRF) / 2. `tick()` after each job's images."""
        images, n = self.images().to(scorer.x.device), self._n_maps
        changes, pending = [], []
        for job in range(self.job_count):
            pending.append(images[job * n:(job + 1) * n])
            if sum(len(t) for t in pending) >= scorer.batch_size or job == self.job_count - 1:
                changes.append(scorer.probability(torch.cat(pending)) - scorer.base)
                pending = []
            tick()
        return self.combine(np.concatenate(changes))

    def makers(self, device) -> list[Callable[[], torch.Tensor]]:
        """One maker per imputed image ([1, C, H, W] on `device`), job by job then map by map: the
        order `combine` expects. The first one called solves the imputation if not done yet."""
        return [partial(self._imputed, i, device) for i in range(self.job_count * self._n_maps)]

    def _imputed(self, i: int, device) -> torch.Tensor:
        return self.images()[i:i + 1].to(device)

    def combine(self, changes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(morf, lerf, combined) from the probability changes of `makers`' images, in that order."""
        per_job = changes.reshape(self.job_count, self._n_maps)
        morf = per_job[:len(self.percentiles)].mean(axis=0)
        lerf = per_job[len(self.percentiles):].mean(axis=0)
        return morf, lerf, (lerf - morf) / 2


def impute_together(jobs: Sequence[RoadJobs]) -> None:
    """Solve the imputations of `jobs` (several images' `RoadJobs`, same image size and device) in
    one `harmonic_fill` call, so a GPU gets them as one batch."""
    jobs = [job for job in jobs if job._images is None]
    if not jobs:
        return
    device = jobs[0].x.device
    images = torch.cat([job.x.expand(len(job.unknown), -1, -1, -1) for job in jobs])
    filled = harmonic_fill(images, torch.cat([job.unknown for job in jobs]).to(device))
    for job, part in zip(jobs, filled.split([len(job.unknown) for job in jobs])):
        job._set_solution(part)


def _binary_mask(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """An imputer that returns the library perturbation's binary mask (1 = known pixel)."""
    return mask


class FastImputer(NoisyLinearImputer):
    """pytorch-grad-cam's ROAD `NoisyLinearImputer` (same linear system, same noise), with the
    system built in one vectorised COO pass instead of a `lil_matrix`, its unknowns ordered by
    nested dissection of the pixel grid, and factorised by SuperLU in symmetric mode without
    pivoting (the matrix is symmetric and diagonally dominant): the same solution (a test checks
    it), 5-10x faster at 224 px. Its noise comes from its own generator,
    seeded with `seed`."""

    def __init__(self, noise: float = 0.01, seed: int = 0) -> None:
        super().__init__(noise=noise)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        flat_mask = mask.reshape(-1).cpu().numpy()
        unknown = np.flatnonzero(flat_mask == 0)
        flat_img = img.reshape(img.shape[0], -1).clone()
        if unknown.size == 0:
            return img.clone()
        if unknown.size == flat_mask.size:  # nothing to interpolate from: the system is singular
            values = torch.zeros(img.shape[0], unknown.size)
        else:
            a, b = _system(flat_mask, img.reshape(img.shape[0], -1).cpu().numpy(), img.shape[-2:])
            order = nested_dissection(unknown // img.shape[-1], unknown % img.shape[-1])
            lu = splu(a[order][:, order].tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0,
                      options={"SymmetricMode": True})
            solved = np.empty_like(b)
            solved[order] = lu.solve(b[order])
            values = torch.tensor(solved, dtype=torch.float).t()
        flat_img[:, unknown] = values + self.noise * torch.randn(values.shape, generator=self.generator)
        return flat_img.reshape_as(img)


def nested_dissection(rows: np.ndarray, cols: np.ndarray, leaf: int = 64) -> np.ndarray:
    """A fill-reducing elimination order of the pixels at (`rows`, `cols`), for the imputation's
    grid-shaped system: split the bounding box along its longer side, order each half, then the
    separating line. Half the fill-in time of SuperLU's own MMD ordering for large masks (it also
    skips the ordering's own cost). Written here: scipy has no nested dissection for SuperLU."""
    order: list[np.ndarray] = []

    def split(idx: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> None:
        if idx.size <= leaf:
            order.append(idx)
            return
        if r1 - r0 >= c1 - c0:
            mid, coord = (r0 + r1) // 2, rows[idx]
            split(idx[coord < mid], r0, mid, c0, c1)
            split(idx[coord > mid], mid + 1, r1, c0, c1)
        else:
            mid, coord = (c0 + c1) // 2, cols[idx]
            split(idx[coord < mid], r0, r1, c0, mid)
            split(idx[coord > mid], r0, r1, mid + 1, c1)
        order.append(idx[coord == mid])

    if rows.size:
        split(np.arange(rows.size), int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    return np.concatenate(order) if order else np.arange(0)


def _system(flat_mask: np.ndarray, flat_img: np.ndarray, shape) -> tuple:
    """`NoisyLinearImputer.setup_sparse_system`'s equations (CSC matrix, right-hand sides [N, C])."""
    height, width = shape
    unknown = np.flatnonzero(flat_mask == 0)
    n = unknown.size
    var = np.zeros(flat_mask.size, np.int64)
    var[unknown] = np.arange(n)
    row0, col0 = unknown // width, unknown % width
    b = np.zeros((n, flat_img.shape[0]))
    weight_sum = np.ones(n)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], []
    for (d0, d1), weight in neighbors_weights:
        r, c = row0 + d0, col0 + d1
        valid = (r >= 0) & (c >= 0) & (r < height) & (c < width)
        ids, coords = np.flatnonzero(valid), (r * width + c)[valid]
        known = flat_mask[coords] > 0.5
        b[ids[known]] -= weight * flat_img[:, coords[known]].T
        free = flat_mask[coords] < 0.5
        rows.append(ids[free])
        cols.append(var[coords[free]])
        vals.append(np.full(int(free.sum()), weight))
        weight_sum[~valid] -= weight
    vals.insert(0, -weight_sum)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return a.tocsc(), b

