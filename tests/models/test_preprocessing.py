"""xai_core.models.preprocessing: the model's preprocessing as batched tensor work matches
torchvision's PIL preset within one or two uint8 levels, keeps the order of a batch of mixed sizes,
gives the picture the input was made from, and takes a ready tensor batch (a DataLoader's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification

import xai_core
from conftest import IMAGES
from xai_core.errors import InvalidImageError
from xai_core.images import bounded_aspect
from xai_core.models import from_tensor
from xai_core.models.preprocessing import prepare

CPU = torch.device("cpu")


def _photos() -> list:
    """The sample photos at several sizes (down- and up-scaled, one a 5:1 strip, one grey)."""
    base = [xai_core.load_image(p) for p in sorted(IMAGES.iterdir())]
    scaled = [p.resize((int(p.width * s), int(p.height * s))) for p, s in zip(base, (0.3, 0.5, 1.7, 0.9))]
    strip = base[0].resize((1000, 200))
    grey = ImageOps.grayscale(base[1]).convert("RGB")
    return base + scaled + [strip, grey, Image.new("RGB", (100, 80), (10, 200, 30))]


@pytest.mark.parametrize("transforms", [
    ImageClassification(crop_size=224, resize_size=256),
    ImageClassification(crop_size=224, resize_size=232),
    ImageClassification(crop_size=200, resize_size=248, interpolation=InterpolationMode.BICUBIC,
                        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
], ids=["bilinear-256", "bilinear-232", "bicubic-248"])
def test_the_batched_input_matches_the_pil_preset_within_two_levels(transforms):
    photos = _photos()
    ours = prepare(transforms, photos, CPU)
    theirs = torch.stack([transforms(bounded_aspect(p)) for p in photos])
    assert ours.x.shape == theirs.shape and ours.x.dtype == torch.float32
    levels = (ours.x - theirs).abs() * 255 * torch.tensor(transforms.std)[None, :, None, None]
    assert float(levels.max()) <= 2.0 + 1e-3  # torch's and Pillow's antialiased resizes round differently
    assert float(levels.mean()) < 0.01  # ... at very few pixels
    # the crop, scaling and normalisation are the preset's: a photo already at the crop's size is exact
    exact = Image.fromarray(np.asarray(photos[0])[:transforms.crop_size[0], :transforms.crop_size[0]])
    sized = ImageClassification(crop_size=transforms.crop_size[0], resize_size=transforms.crop_size[0],
                                mean=transforms.mean, std=transforms.std)
    torch.testing.assert_close(prepare(sized, [exact], CPU).x[0], sized(exact), rtol=0, atol=1e-6)


def test_a_batch_of_mixed_sizes_keeps_its_order_and_its_pictures():
    transforms = ImageClassification(crop_size=64, resize_size=72)
    photos = _photos()
    together = prepare(transforms, photos, CPU)
    for i, photo in enumerate(photos):
        alone = prepare(transforms, [photo], CPU)
        torch.testing.assert_close(together.x[i], alone.x[0], rtol=0, atol=0)
        assert torch.equal(together.pixels[i], alone.pixels[0])
    # the pixels are the uint8 picture the input was made from
    assert together.pixels.shape == (len(photos), 64, 64, 3) and together.pixels.dtype == torch.uint8
    scaled = together.pixels.permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor(transforms.mean)[None, :, None, None], torch.tensor(transforms.std)[None, :, None, None]
    torch.testing.assert_close(together.x, (scaled - mean) / std)


def test_the_handle_prepares_and_displays_through_the_batched_path(lite, cat_path):
    photo = xai_core.load_image(cat_path)
    prepared = lite.prepare([photo, ImageOps.mirror(photo)])
    torch.testing.assert_close(lite.preprocess(photo), prepared.x[:1], rtol=0, atol=0)
    np.testing.assert_array_equal(lite.display_image(photo), prepared.pixels[0].numpy())
    np.testing.assert_array_equal(lite.display_image(ImageOps.mirror(photo)), prepared.pixels[1].numpy())


def test_a_tensor_batch_is_taken_as_it_is_and_its_pictures_are_its_pixels(lite, cat_path):
    photo = xai_core.load_image(cat_path)
    prepared = lite.prepare([photo])
    ready = from_tensor(lite.transforms, prepared.x.double(), CPU)
    assert ready.x.dtype == torch.float32
    torch.testing.assert_close(ready.x, prepared.x, rtol=0, atol=1e-6)
    assert torch.equal(ready.pixels, prepared.pixels)


@pytest.mark.parametrize("bad", [torch.zeros(3, 32, 32), torch.zeros(2, 1, 32, 32), torch.zeros(2, 3, 8, 8,
                                 dtype=torch.uint8), torch.zeros(0, 3, 8, 8)], ids=["3d", "1-channel", "uint8", "empty"])
def test_a_tensor_of_the_wrong_shape_or_type_is_refused_in_one_sentence(lite, bad):
    with pytest.raises(InvalidImageError, match=r"^A tensor batch must be float \[N, 3, H, W\].*\.$"):
        from_tensor(lite.transforms, bad, CPU)
