"""xai_core.explain_batch: one Explanation per image, each equal to `explain` on that image (per-image
targets, every method, augmentation smoothing), clear errors, cancellation, and fair sharing of the
model's lock with other users while a large batch runs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import xai_core
from conftest import IMAGES, no_hooks_left


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", input_size=64)


def _photos(count: int = 5) -> list:
    photos = [xai_core.load_image(p) for p in sorted(IMAGES.iterdir())][:3]
    return (photos + [ImageOps.mirror(p) for p in photos])[:count]


def _assert_same(batch_result, single, methods, atol=1e-5):
    assert batch_result.target == single.target and batch_result.target_label == single.target_label
    assert batch_result.target_probability == pytest.approx(single.target_probability, abs=1e-5)
    np.testing.assert_array_equal(batch_result.image, single.image)
    for method in methods:
        assert batch_result.maps[method].shape == single.maps[method].shape
        np.testing.assert_allclose(batch_result.maps[method], single.maps[method], atol=atol, err_msg=method)


def test_every_method_with_per_image_targets_equals_explain(tiny):
    methods = [m for m in xai_core.methods_for(tiny) if m not in ("kpcacam", "ablationcam")]  # both: below
    images = _photos(5)
    targets = [None, 3, tiny.categories[7], None, 999]
    results = xai_core.explain_batch(tiny, images, methods, targets=targets, layer="layer4", batch_size=2,
                                     options={"fastscorecam": {"top_k": 8}})
    assert len(results) == 5 and [r.target for r in results][1:3] == [3, 7] and results[4].target == 999
    for image, target, result in zip(images, targets, results):
        single = xai_core.explain(tiny, image, methods, target=target, layer="layer4",
                                  options={"fastscorecam": {"top_k": 8}})
        _assert_same(result, single, methods)
    for image, result in zip(images, results):  # the top 5 of each image, as predict gives them
        want = xai_core.predict(tiny, image, top_k=5)
        assert [p.index for p in result.top] == [p.index for p in want]
        assert [p.probability for p in result.top] == pytest.approx([p.probability for p in want], abs=1e-5)
    assert len({r.target for r in results}) > 1  # the images differ, and so do their maps
    assert not np.allclose(results[0].maps["gradcam"], results[3].maps["gradcam"])
    assert no_hooks_left(tiny.module)


def test_one_target_for_all_fused_layers_and_eigen_smooth(tiny):
    images = _photos(3)
    methods = ["gradcam", "gradcam++", "eigengradcam", "kpcacam"]
    results = xai_core.explain_batch(tiny, images, methods, targets=5,
                                     layer=["layer3", "layer4"], eigen_smooth=True)
    for image, result in zip(images, results):
        assert result.target == 5
        _assert_same(result, xai_core.explain(tiny, image, methods, target=5, layer=["layer3", "layer4"],
                                              eigen_smooth=True), methods)


#: AblationCAM's weights (score - ablated score) / score subtract two nearly equal float32 scores, which
#: amplifies the float noise between a batched and a single forward: on our 2-core x86-64 CPUs oneDNN's
#: convolutions give EfficientNet-Lite0's `head` activations differing by 2e-6 (relative) in a batch of 3
#: and alone, and the maps by up to 1.1e-5 (the cat photo with the unlikely target 'coffee mug').
ABLATION_BATCH_ATOL = 5e-5


def test_ablationcam_over_a_batch_equals_explain(lite):
    """On a trained model (a random model's scores are near 0, where the division amplifies without
    bound); within `ABLATION_BATCH_ATOL`, the other methods within 1e-5."""
    images = _photos(3)
    results = xai_core.explain_batch(lite, images, ["ablationcam"], targets=[None, "coffee mug", None])
    for image, result in zip(images, results):
        _assert_same(result, xai_core.explain(lite, image, ["ablationcam"], target=result.target), ["ablationcam"],
                     atol=ABLATION_BATCH_ATOL)


def test_augmentation_smoothing_is_per_image(lite):
    images = _photos(2)
    results = xai_core.explain_batch(lite, images, ["gradcam", "eigencam"], aug_smooth=True)
    for image, result in zip(images, results):
        single = xai_core.explain(lite, image, ["gradcam", "eigencam"], aug_smooth=True)
        _assert_same(result, single, ["gradcam", "eigencam"])
    assert results[0].target != results[1].target  # each image smoothed at its own top-1


def test_one_sentence_errors(tiny):
    images = _photos(2)
    with pytest.raises(xai_core.InvalidOptionError, match="one target per image \\(2\\), not 3"):
        xai_core.explain_batch(tiny, images, targets=[1, 2, 3])
    with pytest.raises(xai_core.InvalidImageError, match="^Image 2 of 2: "):
        xai_core.explain_batch(tiny, [images[0], b"not an image"])
    with pytest.raises(xai_core.InvalidOptionError, match="batch_size"):
        xai_core.explain_batch(tiny, images, batch_size=0)
    with pytest.raises(xai_core.InvalidOptionError, match="CUDA"):
        xai_core.explain_batch(tiny, images, precision="bf16")
    with pytest.raises(xai_core.UnknownNameError):
        xai_core.explain_batch(tiny, images, targets=[0, "no such class"])
    assert xai_core.explain_batch(tiny, []) == []


def test_progress_after_each_batch_and_cancel(tiny):
    images = _photos(5)
    seen = []
    xai_core.explain_batch(tiny, images, batch_size=2, progress=lambda *a: seen.append(a))
    assert seen == [("images", 2, 5), ("images", 4, 5), ("images", 5, 5)]
    with pytest.raises(xai_core.Cancelled):
        xai_core.explain_batch(tiny, images, batch_size=2, progress=lambda stage, done, total: done < 2)
    assert no_hooks_left(tiny.module)


def test_another_users_gradcam_finishes_while_a_256_image_batch_runs(tiny):
    """Fair sharing: the lock is held one batch at a time, so a single Grad-CAM from another thread
    (another dashboard session) gets the model between two batches of a 256-image job."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (72, 72, 3), dtype=np.uint8)) for _ in range(256)]
    done = {"images": 0}
    started = threading.Event()

    def report(stage, count, total):
        done["images"] = count
        started.set()

    job = threading.Thread(target=lambda: done.update(results=xai_core.explain_batch(
        tiny, images, ["gradcam", "hirescam"], batch_size=16, progress=report)))
    job.start()
    assert started.wait(120)
    other = xai_core.explain(tiny, images[0], ["gradcam"])
    finished_with = done["images"]
    job.join(300)
    assert other.maps["gradcam"].shape == (64, 64)
    assert 16 <= finished_with < 256, "the other user's Grad-CAM waited for the whole 256-image job"
    assert len(done["results"]) == 256
    np.testing.assert_allclose(done["results"][0].maps["gradcam"], other.maps["gradcam"], atol=1e-5)


def test_the_bf16_shared_pass_hands_on_float32_close_to_fp32(tiny):
    """precision="bf16" is offered on CUDA only; its shared pass (bfloat16 autocast) is exercised
    here on the CPU, where autocast runs too: float32 activations and gradients, maps near fp32's."""
    from pytorch_grad_cam import GradCAM

    from xai_core.methods import device_cams
    from xai_core.models import guard
    from xai_core.methods.shared_pass import run_shared_pass

    x = torch.cat([tiny.preprocess(p) for p in _photos(2)])
    layer = [tiny.layers["layer4"]]
    passes = {p: run_shared_pass(tiny.module, layer, x, [None, None], {"logit"}, lambda: guard(tiny), p)
              for p in (None, "bf16")}
    low = passes["bf16"]
    assert all(t.dtype == torch.float32 for t in low.activations + low.grads["logit"] + [low.logits])
    maps = {p: device_cams.cams(GradCAM, s.activations, s.grads["logit"], (64, 64), False) for p, s in passes.items()}
    assert float((maps["bf16"] - maps[None]).abs().max()) < 0.1
    assert no_hooks_left(tiny.module)


def test_a_ready_tensor_batch_gives_the_maps_of_its_photos(tiny):
    """A DataLoader's batch (normalised as the model's preprocessing) goes to the model as it is."""
    photos = _photos(3)
    from_photos = xai_core.explain_batch(tiny, photos, ["gradcam", "hirescam"], batch_size=2)
    x = torch.cat([tiny.preprocess(p) for p in photos])
    from_tensor = xai_core.explain_batch(tiny, x, ["gradcam", "hirescam"], batch_size=2)
    for a, b in zip(from_tensor, from_photos):
        _assert_same(a, b, ["gradcam", "hirescam"])
    with pytest.raises(xai_core.InvalidImageError, match="float \\[N, 3, H, W\\]"):
        xai_core.explain_batch(tiny, x[0], ["gradcam"])
