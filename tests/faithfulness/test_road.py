"""ROAD's batched imputation (`imputation.harmonic_fill`) against the exact sparse solve
(`road.FastImputer`, itself checked against the library's `NoisyLinearImputer` in test_evaluate.py),
on real masks of the sample photos and on edge cases; and ROAD's scores against pytorch-grad-cam's
`ROADCombined` / `ROADMostRelevantFirst` / `ROADLeastRelevantFirst` with the same noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam.metrics.road import ROADCombined, ROADLeastRelevantFirst, ROADMostRelevantFirst
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

import xai_core
from xai_core.faithfulness import ROAD_PERCENTILES, curves, imputation, road
from xai_core.faithfulness.baseline import random_map
from xai_core.faithfulness.road import RoadJobs
from conftest import IMAGES

#: The largest per-pixel difference allowed from the exact solution, in normalised-pixel units
#: (the library's noise is 0.01); at most 1.2e-4 is measured on the sample photos (1 or 2 threads).
PIXEL_TOLERANCE = 1e-3
#: ROAD scores against the library's metric classes given the same noise: at most 6e-6 is measured on
#: the sample photos (1 or 2 threads), what the 1.2e-4 per-pixel difference above leaves in the
#: softmax; asserted with a margin of 10x.
SCORE_TOLERANCE = 6e-5
METHODS = ["gradcam", "layercam"]  # distinct maps at the default layer


def exact(image: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """The exact solutions ([S, C, H, W]) of the systems of `unknown` ([S, H, W]) on `image`."""
    imputer = road.FastImputer(noise=0.0)
    return torch.stack([imputer(image, (~mask).float()) for mask in unknown])


def rank_maps(explanation: xai_core.Explanation, shape) -> np.ndarray:
    """The rank maps `evaluate` scores ROAD with: the methods' maps, then the random map."""
    maps = [np.float32(explanation.maps[m]) for m in METHODS] + [random_map(shape)]
    return np.stack([curves.rank_map(curves.ranks(m), shape) for m in maps])


@pytest.fixture(scope="module")
def photos(lite):
    """(path, model input [1, C, H, W], explanation) of two sample photos."""
    out = []
    for name in ("cat.png", "rocket.jpg"):
        path = IMAGES / name
        out.append((path, lite.preprocess(xai_core.load_image(path)), xai_core.explain(lite, path, METHODS)))
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_batched_solution_matches_the_exact_solver_on_photo_masks(photos):
    worst = 0.0
    for _, x, explanation in photos:
        jobs = RoadJobs(x, rank_maps(explanation, tuple(x.shape[-2:])), ROAD_PERCENTILES)
        assert jobs.unknown.shape == (8 * 3, *x.shape[-2:])
        got = imputation.harmonic_fill(x.expand(len(jobs.unknown), -1, -1, -1), jobs.unknown)
        want = exact(x[0], jobs.unknown)
        worst = max(worst, float((got - want).abs().max()))
        for k, mask in enumerate(jobs.unknown):
            assert torch.equal(got[k][:, ~mask], x[0][:, ~mask])  # the known pixels are left as they are
    assert worst <= PIXEL_TOLERANCE


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("index", [0, 1])
def test_road_scores_equal_the_library_metrics(lite, photos, index):
    path, x, explanation = photos[index]
    percentiles = ROAD_PERCENTILES
    result = xai_core.evaluate(lite, path, explanation, sanity=False, steps=2, road_percentiles=percentiles)
    assert result.same_as == {}
    cams = rank_maps(explanation, tuple(x.shape[-2:]))
    inputs = x.repeat(len(cams), 1, 1, 1)
    targets = [ClassifierOutputSoftmaxTarget(explanation.target)] * len(cams)

    def seeded(cls, offset):
        """The library metric at a percentile, its imputer's noise that of `evaluate`'s job."""
        def make(percentile):
            metric = cls(percentile)
            metric.perturbation.imputer = road.FastImputer(seed=offset + list(percentiles).index(percentile))
            return metric
        return make

    combined = ROADCombined(percentiles=list(percentiles))
    combined.morf_averager.imputer = seeded(ROADMostRelevantFirst, 0)
    combined.lerf_averager.imputer = seeded(ROADLeastRelevantFirst, len(percentiles))
    with torch.no_grad():  # each averager once: `ROADCombined` recomputes both otherwise
        morf = combined.morf_averager(inputs, cams, targets, lite.module)
        lerf = combined.lerf_averager(inputs, cams, targets, lite.module)
        combined.morf_averager, combined.lerf_averager = (lambda *_: morf), (lambda *_: lerf)
        library_combined = combined(inputs, cams, targets, lite.module)
    for i, method in enumerate(METHODS + ["random"]):
        score = result.scores[method]
        assert score["road_morf"] == pytest.approx(morf[i], abs=SCORE_TOLERANCE)
        assert score["road_lerf"] == pytest.approx(lerf[i], abs=SCORE_TOLERANCE)
        assert score["road_combined"] == pytest.approx(library_combined[i], abs=SCORE_TOLERANCE)


def edge_systems():
    """(name, unknown mask [H, W]) of the cases the exact solver handles."""
    h, w = 23, 37
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    return [
        ("empty", np.zeros((h, w), bool)),
        ("full", np.ones((h, w), bool)),
        ("one pixel", (yy == 11) & (xx == 20)),
        ("corner pixel", (yy == 0) & (xx == 0)),
        ("blob", (yy - 9) ** 2 + (xx - 25) ** 2 < 60),
        ("all but one", ~((yy == 3) & (xx == 30))),
        ("scattered", rng.random((h, w)) < 0.6),
        ("edge band", xx >= w - 5),
    ]


def test_edge_cases_match_the_exact_solver_in_one_batch():
    image = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 23, 37)).astype(np.float32))
    names, masks = zip(*edge_systems())
    unknown = torch.from_numpy(np.stack(masks))
    got = imputation.harmonic_fill(image.expand(len(masks), -1, -1, -1), unknown)
    want = exact(image, unknown)
    assert torch.isfinite(got).all()
    for name, g, e in zip(names, got, want):
        assert float((g - e).abs().max()) <= 1e-4, name
    assert torch.equal(got[names.index("empty")], image)
    assert torch.equal(got[names.index("full")], torch.zeros_like(image))
    # a 1-pixel hole: the weighted mean of its 8 neighbours
    k = torch.tensor([[1, 2, 1], [2, 0, 2], [1, 2, 1]], dtype=torch.float32) / 12
    mean = (image[:, 10:13, 19:22] * k).sum((1, 2))
    torch.testing.assert_close(got[names.index("one pixel")][:, 11, 20], mean, atol=1e-5, rtol=0)


def test_a_non_square_image_of_odd_sides():
    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.standard_normal((3, 45, 71)).astype(np.float32))
    yy, xx = np.mgrid[0:45, 0:71]
    masks = np.stack([(yy - 20) ** 2 / 300 + (xx - 40) ** 2 / 900 < 1, xx + yy < 60, rng.random((45, 71)) < 0.3])
    unknown = torch.from_numpy(masks)
    got = imputation.harmonic_fill(image.expand(3, -1, -1, -1), unknown)
    assert float((got - exact(image, unknown)).abs().max()) <= 1e-4


def test_road_images_carry_the_library_noise():
    """`RoadJobs`' images equal the library perturbations with `FastImputer(seed=job)` called map by map."""
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((1, 3, 32, 40)).astype(np.float32))
    cams = np.stack([curves.rank_map(curves.ranks(rng.random((32, 40))), (32, 40)) for _ in range(2)])
    jobs = RoadJobs(x, cams, (30, 70))
    want = []
    for seed, (cls, p) in enumerate((c, p) for c in (ROADMostRelevantFirst, ROADLeastRelevantFirst) for p in (30, 70)):
        perturbation = cls(p).perturbation
        perturbation.imputer = road.FastImputer(seed=seed)
        want += [perturbation(x[0], torch.from_numpy(cam)) for cam in cams]
    assert float((jobs.images() - torch.stack(want)).abs().max()) <= 1e-4


def test_the_iteration_cap_still_gives_a_finite_fill():
    image = torch.randn(1, 3, 40, 40)
    unknown = torch.zeros(1, 40, 40, dtype=torch.bool)
    unknown[0, 5:35, 5:35] = True
    once = imputation.harmonic_fill(image, unknown, max_iter=1)
    assert torch.isfinite(once).all() and float(once[0][:, unknown[0]].abs().max()) < 5


def test_prolongation_is_bilinear_and_restriction_its_adjoint():
    """The V-cycle is symmetric (as CG needs) only if `_restrict` is exactly `_prolong`'s adjoint."""
    for fine in ((12, 16), (7, 9), (1, 5)):
        coarse = ((fine[0] + 1) // 2, (fine[1] + 1) // 2)
        a = torch.randn(2, 3, *coarse, dtype=torch.float64)
        b = torch.randn(2, 3, *fine, dtype=torch.float64)
        up = F.interpolate(a, size=(2 * coarse[0], 2 * coarse[1]), mode="bilinear", align_corners=False)
        torch.testing.assert_close(imputation._prolong(a, fine), up[..., :fine[0], :fine[1]])
        torch.testing.assert_close((imputation._prolong(a, fine) * b).sum(), (a * imputation._restrict(b)).sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_solve_on_cuda_equals_the_one_on_cpu():
    rng = np.random.default_rng(4)
    image = torch.from_numpy(rng.standard_normal((4, 3, 64, 48)).astype(np.float32))
    unknown = torch.from_numpy(rng.random((4, 64, 48)) < np.linspace(0.1, 0.9, 4)[:, None, None])
    cpu = imputation.harmonic_fill(image, unknown)
    cuda = imputation.harmonic_fill(image.cuda(), unknown.cuda())
    assert cuda.device.type == "cuda"
    assert float((cuda.cpu() - cpu).abs().max()) <= 1e-4
