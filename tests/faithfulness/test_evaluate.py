"""`evaluate`: faithfulness against a random baseline on the pretrained model, the right ranking on a
model whose answer is known, the sanity check, agreement, and the shared model left untouched."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import NoisyLinearImputer, ROADLeastRelevantFirst, ROADMostRelevantFirst
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import nn
from torchvision.transforms._presets import ImageClassification

import xai_core
from xai_core import _timing, cli
from xai_core.faithfulness import curves, estimate, road, sanity
from xai_core.faithfulness.baseline import random_map
from conftest import IMAGES, ROOT, no_hooks_left

METHODS = ["gradcam", "hirescam", "layercam", "eigencam"]
SCORE_KEYS = {"deletion_auc", "insertion_auc", "deletion_curve", "insertion_curve", "road_morf", "road_lerf",
              "road_combined", "confidence_change", "sanity_spearman", "sanity_passed"}


@pytest.fixture(scope="module")
def cat_eval(lite, cat_path):
    """One full evaluation (default settings) of 4 methods on the cat photo, with the shared
    module's parameters before it."""
    before = {k: v.clone() for k, v in lite.module.state_dict().items()}
    explanation = xai_core.explain(lite, cat_path, METHODS)
    return explanation, xai_core.evaluate(lite, cat_path, explanation), before


@pytest.fixture(scope="module")
def cat_partials(lite, cat_path, cat_eval):
    """The same evaluation with `on_partial`: each event in order, ("tick", stage) from `progress`
    or ("partial", Evaluation), and the result."""
    explanation, _, _ = cat_eval
    events = []
    result = xai_core.evaluate(lite, cat_path, explanation, progress=lambda stage, *_: events.append(("tick", stage)),
                               on_partial=lambda partial: events.append(("partial", partial)))
    return events, result


class TopLeftNet(nn.Module):
    """Two classes; the logit of class 0 grows with the energy of the input's top-left quadrant only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        energy = x[:, :, : h // 2, : w // 2].pow(2).mean(dim=(1, 2, 3))
        return torch.stack([4 * energy - 3.5, torch.zeros_like(energy)], dim=1)


@pytest.fixture(scope="module")
def toy(lite):
    net = TopLeftNet()
    return dataclasses.replace(lite, name="toy", module=net, layers=OrderedDict(body=net), default_layer="body",
                               transforms=ImageClassification(crop_size=64, resize_size=64), lock=threading.RLock())


@pytest.fixture(scope="module")
def noise_image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


def hand_made(toy, image, **maps) -> xai_core.Explanation:
    return xai_core.Explanation(maps=maps, target=0, target_label="top-left", target_probability=0.97,
                                layers=("body",), model=toy.name, image=toy.display_image(image), timings={},
                                notes=(), options={})


def quadrant(top: bool, left: bool, size: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.float32(((yy < size // 2) == top) & ((xx < size // 2) == left))


def test_gradcam_beats_the_random_baseline_on_the_cat(cat_eval):
    explanation, result, _ = cat_eval
    gradcam, random = result.scores["gradcam"], result.scores["random"]
    assert gradcam["deletion_auc"] < random["deletion_auc"]
    assert gradcam["insertion_auc"] > random["insertion_auc"]
    # the curves start / end at the model's probability on the untouched image
    for curve in (gradcam["deletion_curve"][0], gradcam["insertion_curve"][-1]):
        assert curve == pytest.approx(explanation.target_probability, abs=1e-3)
    assert gradcam["deletion_curve"][-1] < 0.05 and gradcam["insertion_curve"][0] < 0.05


def test_result_contract(cat_eval):
    explanation, result, _ = cat_eval
    assert list(result.scores) == METHODS + ["random"]
    assert result.target == explanation.target and result.model == "efficientnet_lite0"
    np.testing.assert_allclose(result.fractions, np.linspace(0, 1, 21))
    for score in result.scores.values():
        assert set(score) == SCORE_KEYS
        for key in ("deletion_curve", "insertion_curve"):
            assert isinstance(score[key], np.ndarray) and score[key].shape == (21,)
        assert all(isinstance(score[k], float) for k in SCORE_KEYS if "curve" not in k and "sanity" not in k)
    assert not any(isinstance(v, torch.Tensor) for s in result.scores.values() for v in s.values())
    json.dumps(result.summary())  # JSON-ready as it is
    assert {"deletion_insertion", "road", "sanity", "total"} <= set(result.timings)


def test_partial_results_come_map_by_map_then_road_then_the_sanity_check(cat_eval, cat_partials):
    events, result = cat_partials
    partials = [e for kind, e in events if kind == "partial"]
    # at `head` gradcam = hirescam: three distinct maps, the random one's with gradcam's first
    assert [p.pending for p in partials] == [("deletion_insertion", "road", "sanity")] * 2 + [
        ("road", "sanity"), ("sanity",), ()]
    curve_keys = {"deletion_auc", "insertion_auc", "deletion_curve", "insertion_curve", "confidence_change"}
    road_keys = {"road_morf", "road_lerf", "road_combined"}
    scored = [{m for m, s in p.scores.items() if s} for p in partials]
    assert scored[:3] == [{"random", "gradcam", "hirescam"}, {"random", "gradcam", "hirescam", "layercam"},
                          set(METHODS + ["random"])]
    for partial in partials[:3]:
        assert all(set(s) in (set(), curve_keys) for s in partial.scores.values())  # no ROAD, no sanity yet
    assert all(set(s) == curve_keys | road_keys for s in partials[3].scores.values())
    assert list(partials[-1].scores) == METHODS + ["random"]
    # the first scores come after the first two maps' batches only: before any other map's or ROAD's
    first = [kind for kind, _ in events].index("partial")
    assert first == curves.batch_count(2, 20, 2, curves.CPU_BATCH)
    assert {stage for kind, stage in events[:first]} == {"insert/delete"}
    # every partial score is the final one, the final partial is the result, equal to a plain run's
    for partial in partials:
        for method, score in partial.scores.items():
            for key, value in score.items():
                np.testing.assert_array_equal(value, result.scores[method][key])
        np.testing.assert_array_equal(partial.agreement.spearman, result.agreement.spearman)
    assert partials[-1] is result and result.pending == ()
    _, plain, _ = cat_eval
    for method, score in plain.scores.items():
        for key, value in score.items():
            np.testing.assert_array_equal(result.scores[method][key], value)
    assert result.same_as == {"hirescam": "gradcam"} and result.notes == plain.notes


def test_notes_name_methods_as_asked(cat_eval):
    _, result, _ = cat_eval
    assert "hirescam scored as gradcam: their maps are equal." in result.notes
    titles = {m: xai_core.get_method(m).title for m in METHODS}
    named = result.named_notes(titles)
    assert "HiResCAM scored as Grad-CAM: their maps are equal." in named
    assert any("EigenCAM" in n and "sanity check" in n for n in named)
    assert not any(m in n for n in named for m in METHODS)


def test_the_sanity_check_recomputes_the_maps_with_the_explanation_options(lite, cat_path, monkeypatch):
    explanation = xai_core.explain(lite, cat_path, ["fastscorecam"], options={"fastscorecam": {"top_k": 8}})
    if "methods" not in explanation.options:  # until explain records the methods' options
        explanation = dataclasses.replace(explanation, options={**explanation.options,
                                                                "methods": {"fastscorecam": {"top_k": 8}}})
    calls, real = [], sanity.explain
    monkeypatch.setattr(sanity, "explain", lambda *a, **k: calls.append(k) or real(*a, **k))
    result = xai_core.evaluate(lite, cat_path, explanation, steps=2, road_percentiles=(50,))
    assert [k["options"] for k in calls] == [{"fastscorecam": {"top_k": 8}}]
    assert result.scores["fastscorecam"]["sanity_spearman"] is not None


def test_timings_synchronise_the_handle_device(toy, noise_image, monkeypatch):
    synced = []
    monkeypatch.setattr(_timing, "synchronize", synced.append)
    device = torch.device("cpu")  # evaluate must pass the handle's own device, whatever it is
    handle = dataclasses.replace(toy, device=device)
    explanation = hand_made(handle, noise_image, used=quadrant(True, True))
    result = xai_core.evaluate(handle, noise_image, explanation, sanity=False, steps=2, road_percentiles=(50,))
    assert len(synced) >= 5 and all(d is device for d in synced)  # before and after 2 stages, and the total
    assert {"deletion_insertion", "road", "total"} <= set(result.timings)
    synced.clear()
    monkeypatch.setattr(curves, "_FORWARD_S", weakref.WeakKeyDictionary())  # time the forward again
    curves.forward_seconds(handle)  # the estimate's speed before any evaluation
    assert len(synced) == 6 and all(d is device for d in synced)  # 3 timed forwards, each synchronised


def test_no_gradient_is_left_on_the_shared_model_or_its_randomized_copy(lite, cat_path):
    explanation = xai_core.explain(lite, cat_path, ["gradcam", "fullgrad"])
    xai_core.evaluate(lite, cat_path, explanation, steps=2, road_percentiles=(50,))
    copy = sanity.randomized_handle(lite, explanation.layers)
    assert [n for n, p in lite.module.named_parameters() if p.grad is not None] == []
    assert [n for n, p in copy.module.named_parameters() if p.grad is not None] == []


def test_a_map_of_the_region_the_model_uses_ranks_first(toy, noise_image):
    used, elsewhere = quadrant(top=True, left=True), quadrant(top=False, left=False)
    result = xai_core.evaluate(toy, noise_image, hand_made(toy, noise_image, used=used, elsewhere=elsewhere),
                               sanity=False)
    good, bad = result.scores["used"], result.scores["elsewhere"]
    assert good["deletion_auc"] < bad["deletion_auc"] - 0.3
    assert good["insertion_auc"] > bad["insertion_auc"] + 0.3
    assert good["road_combined"] > bad["road_combined"]
    assert good["confidence_change"] > bad["confidence_change"]
    assert good["sanity_passed"] is None  # not a registered method: nothing to recompute


def test_sanity_check_passes_gradcam_and_flags_a_class_agnostic_map(cat_eval):
    _, result, _ = cat_eval
    # Grad-CAM's map follows the (randomized) class weights; EigenCAM's first principal component
    # survives a random re-projection of the same features.
    assert result.scores["gradcam"]["sanity_passed"] is True
    assert result.scores["gradcam"]["sanity_spearman"] < 0.3
    assert result.scores["eigencam"]["sanity_passed"] is False
    assert result.scores["eigencam"]["sanity_spearman"] > 0.7
    assert result.scores["random"]["sanity_spearman"] is None
    assert any("eigencam" in note and "sanity" in note for note in result.notes)


def test_sanity_copy_is_cached_randomized_and_separate(lite, cat_eval):
    copy_a = sanity.randomized_handle(lite, ("head",))
    copy_b = sanity.randomized_handle(lite, ("head",))
    assert copy_a.module is copy_b.module is not lite.module and copy_a.lock is copy_b.lock is not lite.lock
    assert not torch.equal(copy_a.module.fc.weight, lite.module.fc.weight)
    assert torch.equal(copy_a.module.stage7[0]._depthwise_conv.weight, lite.module.stage7[0]._depthwise_conv.weight)


def test_agreement_of_identical_maps_and_the_labelled_pair(cat_eval):
    _, result, _ = cat_eval
    agreement = result.agreement
    i, j = agreement.methods.index("gradcam"), agreement.methods.index("hirescam")
    assert agreement.spearman[i, j] > 0.999 and agreement.iou[i, j] == 1.0
    assert [(a, b) for a, b, _ in agreement.identical_by_construction] == [("gradcam", "hirescam")]
    assert "global average pooling" in agreement.identical_by_construction[0][2]
    assert result.scores["hirescam"]["deletion_auc"] == result.scores["gradcam"]["deletion_auc"]
    np.testing.assert_array_equal(agreement.spearman, agreement.spearman.T)
    rng = np.random.default_rng(1)
    a, b = rng.random((32, 32), dtype=np.float32), rng.random((32, 32), dtype=np.float32)
    rho, iou = sanity.agreement_matrices([a, a.copy(), b], [curves.ranks(m) for m in (a, a, b)])
    assert rho[0, 1] == 1.0 and iou[0, 1] == 1.0 and abs(rho[0, 2]) < 0.2 and iou[0, 2] < 0.3


def test_shared_module_untouched_and_no_hooks_left(lite, cat_eval):
    _, _, before = cat_eval
    after = lite.module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert no_hooks_left(lite.module)
    assert no_hooks_left(sanity.randomized_handle(lite, ("head",)).module)
    assert torch.is_grad_enabled()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside the library's imputer
def test_fast_imputer_solves_the_library_system():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.standard_normal((3, 24, 20)).astype(np.float32))
    yy, xx = np.mgrid[0:24, 0:20]
    mask = torch.from_numpy(np.float32(((yy - 10) ** 2 + (xx - 8) ** 2 > 30) & (rng.random((24, 20)) > 0.1)))
    ours = road.FastImputer(noise=0.0)(image, mask)
    library = NoisyLinearImputer(noise=0.0)(image, mask)
    torch.testing.assert_close(ours, library, atol=1e-5, rtol=0)
    assert torch.equal(ours[:, mask.bool()], image[:, mask.bool()])
    assert torch.equal(road.FastImputer()(image, torch.ones(24, 20)), image)


def test_road_and_confidence_change_equal_the_library_metric_classes(toy, noise_image):
    maps = {"used": quadrant(True, True), "half": np.float32(np.mgrid[0:64, 0:64][1] / 63)}
    percentiles = (30, 70)
    result = xai_core.evaluate(toy, noise_image, hand_made(toy, noise_image, **maps), sanity=False, steps=4,
                               road_percentiles=percentiles)
    x = toy.preprocess(noise_image).repeat(2, 1, 1, 1)
    cams = np.stack([curves.rank_map(curves.ranks(m), (64, 64)) for m in maps.values()])
    targets = [ClassifierOutputSoftmaxTarget(0)] * 2
    library = []
    for seed, (cls, p) in enumerate((c, p) for c in (ROADMostRelevantFirst, ROADLeastRelevantFirst) for p in percentiles):
        metric = cls(p)
        metric.perturbation.imputer = road.FastImputer(seed=seed)  # same noise as `evaluate`'s
        library.append(metric(x, cams, targets, toy.module))
    morf, lerf = np.mean(library[:2], axis=0), np.mean(library[2:], axis=0)
    change = CamMultImageConfidenceChange()(x, np.stack(list(maps.values())), targets, toy.module)
    for i, method in enumerate(maps):
        score = result.scores[method]
        assert score["road_morf"] == pytest.approx(morf[i], abs=1e-5)
        assert score["road_lerf"] == pytest.approx(lerf[i], abs=1e-5)
        assert score["road_combined"] == pytest.approx((lerf[i] - morf[i]) / 2, abs=1e-5)
        assert score["confidence_change"] == pytest.approx(change[i], abs=1e-5)


def test_concurrent_evaluations_equal_serial_ones(toy, noise_image):
    explanation = hand_made(toy, noise_image, used=quadrant(True, True), other=quadrant(True, False))
    serial = xai_core.evaluate(toy, noise_image, explanation, sanity=False, steps=8)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: xai_core.evaluate(toy, noise_image, explanation, sanity=False, steps=8),
                                range(3)))
    for result in results:
        for method, score in serial.scores.items():
            for key, value in score.items():
                np.testing.assert_array_equal(result.scores[method][key], value)


def test_progress_counts_up_and_can_cancel(toy, noise_image):
    explanation = hand_made(toy, noise_image, used=quadrant(True, True))
    calls = []
    xai_core.evaluate(toy, noise_image, explanation, sanity=False, steps=4,
                      progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert [done for _, done, _ in calls] == list(range(1, len(calls) + 1)) and calls[-1][1] == calls[-1][2]
    assert {stage for stage, _, _ in calls} == {"insert/delete", "ROAD"}
    with pytest.raises(xai_core.Cancelled):
        xai_core.evaluate(toy, noise_image, explanation, sanity=False, progress=lambda *a: False)


@pytest.mark.parametrize("change, message", [
    (dict(steps=1), "steps"),
    (dict(maps={"used": np.zeros((32, 32), np.float32)}), "input"),
    (dict(model="other"), "same model"),
    (dict(maps={"random": np.zeros((64, 64), np.float32)}), "random"),
    (dict(image=np.zeros((64, 64, 3), np.uint8)), "another image"),
])
def test_invalid_evaluations_are_refused(toy, noise_image, change, message):
    explanation = hand_made(toy, noise_image, used=quadrant(True, True))
    steps = change.pop("steps", 20)
    with pytest.raises(xai_core.InvalidOptionError, match=message):
        xai_core.evaluate(toy, noise_image, dataclasses.replace(explanation, **change), steps=steps)


def test_random_baseline_is_smooth_seeded_and_normalised():
    a, b = random_map((224, 224)), random_map((224, 224))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.min() == 0.0 and a.max() == 1.0
    assert np.abs(np.diff(a, axis=1)).max() < 0.05  # no pixel noise


def test_cli_eval_refuses_bad_steps_with_one_error_line(cat_path, capsys):
    assert cli.main(["eval", "--img", str(cat_path), "--model", "efficientnet_lite0", "--steps", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "steps" in lines[0]


def test_cli_eval_json():
    env = {**os.environ, "XAI_OFFLINE": "1"}
    args = ("eval", "--img", IMAGES / "cat.png", "--model", "efficientnet_lite0", "--method",
            "gradcam,hirescam", "--steps", "4", "--json")
    proc = subprocess.run([sys.executable, "-m", "xai_core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["model"] == "efficientnet_lite0" and summary["target"]["label"]
    assert list(summary["scores"]) == ["gradcam", "hirescam", "random"]
    for score in summary["scores"].values():
        assert {"deletion_auc", "insertion_auc", "road_morf", "road_lerf", "road_combined", "confidence_change",
                "sanity_spearman", "sanity_passed"} <= set(score)
        assert len(score["deletion_curve"]) == 5
    assert summary["scores"]["gradcam"]["sanity_passed"] is True
    agreement = summary["agreement"]
    assert agreement["methods"] == ["gradcam", "hirescam"] and len(agreement["spearman"]) == 2
    assert agreement["iou"][0][1] == 1.0
    assert agreement["identical_by_construction"][0]["methods"] == ["gradcam", "hirescam"]


def test_the_estimate_counts_each_distinct_map_once(cat_eval, lite, cat_path):
    explanation, _, _ = cat_eval  # at head, a GAP layer: gradcam = hirescam

    def estimate(*methods, **options):
        return xai_core.estimate_evaluation_seconds(lite, hand_made_like(explanation, *methods), **options)

    one, same, two = (estimate(*methods, sanity=False)
                      for methods in (["gradcam"], ["gradcam", "hirescam"], ["gradcam", "layercam"]))
    assert one == same > 0
    # each distinct map adds its images (tests/faithfulness/test_estimate.py counts them exactly)
    assert two > one
    assert estimate("gradcam", sanity=False, steps=10) < one
    assert estimate("gradcam") > one  # by default with the sanity check: plus recomputing the map


def test_the_estimate_follows_the_last_evaluation_with_the_model(toy, noise_image, monkeypatch):
    # the module's earlier evaluations with the toy model would be averaged in: start from none
    monkeypatch.setattr(estimate, "_OBSERVED", weakref.WeakKeyDictionary())
    explanation = hand_made(toy, noise_image, used=quadrant(True, True), other=quadrant(False, True))
    result = xai_core.evaluate(toy, noise_image, explanation, steps=6, road_percentiles=(50,))
    # hand-made maps are no registered method: no sanity check
    measured = sum(result.timings.get(k, 0.0) for k in ("deletion_insertion", "road", "sanity"))
    again = xai_core.estimate_evaluation_seconds(toy, explanation, steps=6, road_percentiles=(50,))
    assert again == pytest.approx(measured, rel=0.1)  # (plus the scorer's one image, outside the stages)
    # finer steps: the curves' part grows with the images evaluate will score, at the measured price
    coarse, finer = (estimate.evaluation_parts(toy, explanation, steps=s, road_percentiles=(50,)) for s in (6, 12))
    images = [sum(estimate.forward_batches(3, s, (50,), curves.default_batch_size(toy))["curves"]) for s in (6, 12)]
    assert finer["curves"] / coarse["curves"] == pytest.approx(images[1] / images[0])


def hand_made_like(explanation: xai_core.Explanation, *methods: str) -> xai_core.Explanation:
    return dataclasses.replace(explanation, maps={m: explanation.maps[m] for m in methods})


def test_nested_dissection_orders_every_unknown_pixel_once():
    rng = np.random.default_rng(1)
    unknown = np.flatnonzero(rng.random(90 * 70) > 0.3)
    order = road.nested_dissection(unknown // 70, unknown % 70, leaf=8)
    assert sorted(order.tolist()) == list(range(unknown.size))
    assert road.nested_dissection(np.arange(0), np.arange(0)).size == 0
