"""ROAD's noisy linear imputation (pytorch-grad-cam's `NoisyLinearImputer`) solved for many masks
at once, as batched tensor work on the images' device (CPU or CUDA); `road.FastImputer`, an exact
sparse solve of the same system, is the oracle the tests compare it with.

The system: every unknown pixel equals the weighted mean of its in-image 8 neighbours (1/6 the
sides, 1/12 the corners), the known pixels fixed, channel by channel. Its matrix (the library's with
the sign flipped) is symmetric, diagonally dominant and positive definite when a pixel is known.
Why multigrid-preconditioned conjugate gradient: the matrix is a 3x3 stencil on the pixel grid, so
it is applied to [systems, channels, H, W] tensors with shifted adds (no sparse matrix to build, no
factorisation); plain or Jacobi-preconditioned CG would need O(hole diameter) iterations (hundreds
at 224 px), a geometric V-cycle makes the count almost independent of the size. The V-cycle: one
Jacobi sweep before and after the coarse correction (the pre- and post-smoothing are each other's
adjoints, so the preconditioner is symmetric as CG needs), bilinear prolongation and its exact
adjoint as restriction, the same stencil on each coarser grid, where a cell is unknown only if all
its in-image children are (thin holes are left to the smoother), down to 8 px, where Jacobi sweeps
solve. CG starts from a push-pull (pyramid) fill of the known pixels and stops when every system's
residual is under `TOLERANCE`, all systems of a chunk together, at `MAX_ITERATIONS` at most."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: CG stops when the residual's 2-norm of every system is below this, in normalised-pixel units
#: (the library's noise is 0.01); the tests bound the resulting error against the exact solve.
TOLERANCE = 1e-4
#: CG's iteration cap (about 10 suffice at 224 px).
MAX_ITERATIONS = 50
#: Systems solved in one batch: on CPU small enough to limit memory, on a GPU large for throughput.
CPU_CHUNK, DEVICE_CHUNK = 32, 256
_COARSEST, _COARSE_SWEEPS = 8, 20


def harmonic_fill(images: torch.Tensor, unknown: torch.Tensor, *, tol: float = TOLERANCE,
                  max_iter: int = MAX_ITERATIONS) -> torch.Tensor:
    """`images` ([S, C, H, W]) with the pixels where `unknown` ([S, H, W], bool) is True replaced
    by the solution of `NoisyLinearImputer`'s system (without its noise), float32 on `images`'
    device; an image without any known pixel gets zeros there (as the exact solver)."""
    chunk = CPU_CHUNK if images.device.type == "cpu" else DEVICE_CHUNK
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    for start in range(0, images.shape[0], chunk):
        part = slice(start, start + chunk)
        out[part] = _solve(images[part].float(), unknown[part], tol, max_iter)
    return out


def _solve(x: torch.Tensor, unknown: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:
    unk = unknown[:, None].to(x.dtype)
    known = 1 - unk
    solvable = (known.flatten(1).amax(1) > 0).to(x.dtype)[:, None, None, None]  # else: all unknown, zeros
    levels = _levels(unk * solvable, x.shape[1])
    fine, xk = levels[0], x * known
    r = _sep121(xk, fine.t1, torch.empty_like(x)).mul_(fine.free)  # the right-hand side: the known neighbours
    u = _push_pull(xk, known).mul_(fine.free)
    ap = torch.empty_like(x)
    r.sub_(fine.apply(u, ap))
    z = _vcycle(levels, 0, r)
    p, rz = z.clone(), _dot(r, z)
    for _ in range(max_iter):
        fine.apply(p, ap)
        alpha = _ratio(rz, _dot(p, ap))
        u.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1)
        if float(_dot(r, r).max()) <= (12 * tol) ** 2:
            break
        z = _vcycle(levels, 0, r)
        rz_new = _dot(r, z)
        beta, rz = _ratio(rz_new, rz), rz_new
        p.mul_(beta).add_(z)
    return u.add_(xk)


class _Level:
    """One grid of the multigrid hierarchy: its unknown cells (`free`), the stencil's coefficients
    there and work buffers."""

    def __init__(self, free: torch.Tensor, inside: torch.Tensor, channels: int) -> None:
        self.free, self.inside = free, inside
        # 12 x the system (integer coefficients, exact in float32: a rounded diagonal would shift the
        # solution by up to 1e-7 x the condition number): 12 A x = uc x - free [1 2 1]x[1 2 1] x
        diag = _sep121(inside, torch.empty_like(inside), torch.empty_like(inside)) - 4 * inside
        self.uc = free * (diag + 4)
        self.inv = free / diag.clamp_min(1.0)  # Jacobi: the inverse diagonal on the unknown cells
        shape = (free.shape[0], channels, *free.shape[-2:])
        self.z, self.t1, self.t2, self.t3 = (torch.empty(shape, dtype=free.dtype, device=free.device)
                                             for _ in range(4))

    def apply(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """`out` = 12 x the system's matrix times `x` (zero off the unknown cells)."""
        _sep121(x, self.t1, self.t2)
        return torch.mul(self.uc, x, out=out).addcmul_(self.free, self.t2, value=-1)

    def smooth(self, z: torch.Tensor, r: torch.Tensor) -> None:
        """One Jacobi sweep on `z` for the right-hand side `r`."""
        self.apply(z, self.t3).sub_(r).mul_(self.inv)
        z.sub_(self.t3)


def _levels(free: torch.Tensor, channels: int) -> list[_Level]:
    levels = [_Level(free, torch.ones_like(free), channels)]
    while min(levels[-1].free.shape[-2:]) > _COARSEST:
        children = F.avg_pool2d(_pad_even(levels[-1].free), 2)
        inside = F.avg_pool2d(_pad_even(levels[-1].inside), 2)
        coarse_free = ((children == inside) & (inside > 0)).to(free.dtype)  # all in-image children unknown
        levels.append(_Level(coarse_free, (inside > 0).to(free.dtype), channels))
    return levels


def _vcycle(levels: list[_Level], index: int, r: torch.Tensor) -> torch.Tensor:
    """The preconditioner applied to the residual `r` of level `index` (into that level's `z`)."""
    level = levels[index]
    z = torch.mul(level.inv, r, out=level.z)
    if index == len(levels) - 1:
        for _ in range(_COARSE_SWEEPS - 1):
            level.smooth(z, r)
        return z
    residual = torch.sub(r, level.apply(z, level.t3), out=level.t3)
    coarse = levels[index + 1]
    correction = _vcycle(levels, index + 1, _restrict(residual).mul_(coarse.free))
    z.addcmul_(_prolong(correction, r.shape[-2:]), level.free)
    level.smooth(z, r)
    return z


def _sep121(x: torch.Tensor, tmp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`out` = `x` filtered by [1 2 1] x [1 2 1] with zeros outside the grid (`tmp`: a buffer)."""
    for src, dst, dim in ((x, tmp, -1), (tmp, out, -2)):
        n = src.shape[dim]
        if n == 1:
            torch.mul(src, 2, out=dst)
            continue
        torch.add(src.narrow(dim, 0, n - 2), src.narrow(dim, 2, n - 2), out=dst.narrow(dim, 1, n - 2))
        dst.narrow(dim, 0, 1).copy_(src.narrow(dim, 1, 1))
        dst.narrow(dim, n - 1, 1).copy_(src.narrow(dim, n - 2, 1))
        dst.add_(src, alpha=2)
    return out


def _pad_even(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, w % 2, 0, h % 2)) if h % 2 or w % 2 else x


def _prolong(coarse: torch.Tensor, shape) -> torch.Tensor:
    """Bilinear (cell-centred, edges replicated) interpolation to twice the size, cropped to `shape`."""
    h, w = coarse.shape[-2:]
    return F.interpolate(coarse, size=(2 * h, 2 * w), mode="bilinear", align_corners=False)[..., :shape[0], :shape[1]]


def _restrict(fine: torch.Tensor) -> torch.Tensor:
    """The adjoint of `_prolong` (full weighting, weights summing to 4) of `fine` padded to even sides,
    written with slices: exact and deterministic on every device (the interpolation's own gradient is
    not deterministic on CUDA)."""
    fine = _pad_even(fine)
    for dim in (-1, -2):
        even, odd = fine.unflatten(dim, (-1, 2)).unbind(dim)
        out = (even + odd).mul_(0.75)
        out.narrow(dim, 0, out.shape[dim] - 1).add_(even.narrow(dim, 1, out.shape[dim] - 1), alpha=0.25)
        out.narrow(dim, 0, 1).add_(even.narrow(dim, 0, 1), alpha=0.25)
        out.narrow(dim, 1, out.shape[dim] - 1).add_(odd.narrow(dim, 0, out.shape[dim] - 1), alpha=0.25)
        out.narrow(dim, -1, 1).add_(odd.narrow(dim, -1, 1), alpha=0.25)
        fine = out
    return fine


def _push_pull(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A smooth fill of the pixels of weight 0: the known values (`values`, 0 elsewhere) averaged
    down a pyramid, then blended back up with bilinear interpolation."""
    ws, vs = [weights], [values]
    while min(ws[-1].shape[-2:]) > 1:
        ws.append(F.avg_pool2d(_pad_even(ws[-1]), 2))
        vs.append(F.avg_pool2d(_pad_even(vs[-1]), 2))
    fill = vs[-1] / ws[-1].clamp_min(1e-12)
    for w, v in zip(reversed(ws[:-1]), reversed(vs[:-1])):
        fill = torch.addcmul(v, 1 - w, _prolong(fill, w.shape[-2:]))
    return fill


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.einsum("scij,scij->s", a, b)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """`num / den` per system as [S, 1, 1, 1], 0 where `den` is 0 (no unknown: nothing to do)."""
    return torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))[:, None, None, None]
