"""`Explanation.geometry`: ground truth in the original image's pixels lands on the same pixels of the
model's picture, through the resize and the centre crop (and the aspect bound, padding, EXIF)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image
from torchvision.transforms._presets import ImageClassification

import xai_core
from xai_core.images import WORK_PIXELS
from xai_core.models import Geometry
from xai_core.models.geometry import center_crop_offset

BACKGROUND, COLOUR = (30, 40, 50), (240, 20, 10)


def _painted(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """A plain image of `size` (w, h) with a coloured rectangle at `box` (left, top, right, bottom)."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[...] = BACKGROUND
    pixels[box[1]:box[3], box[0]:box[2]] = COLOUR
    return Image.fromarray(pixels)


def _where_colour(picture: np.ndarray) -> np.ndarray:
    """Where the picture is closer to the rectangle's colour than to the background."""
    red = picture[..., 0].astype(int)
    return red > (BACKGROUND[0] + COLOUR[0]) / 2


def _colour_rectangle(picture: np.ndarray) -> np.ndarray:
    """The rectangle of the rows and the columns where the colour is: each edge where the resize
    makes a pixel more colour than background. At its four corner pixels the resize mixes both
    axes' edges, so the colour alone may miss them (checked: at most those four differ)."""
    colour = _where_colour(picture)
    rectangle = colour.any(axis=1)[:, None] & colour.any(axis=0)[None, :]
    assert (rectangle != colour).sum() <= 4 and not (colour & ~rectangle).any()
    return rectangle


@pytest.mark.parametrize("size, box", [
    ((500, 300), (33, 60, 190, 217)),    # wide: the crop cuts the sides, the box near the left edge
    ((280, 460), (100, 20, 207, 351)),   # tall: the crop cuts top and bottom, the box beyond them
    ((640, 480), (250, 170, 420, 333)),  # a photo's aspect, the box in the middle
])
def test_a_box_lands_where_its_colour_is_in_the_picture(lite, size, box):
    """A rectangle painted into a non-square image: the box aligned through `explanation.geometry`
    covers exactly the pixels where its colour is in `explanation.image` (resize, then centre crop)."""
    explanation = xai_core.explain(lite, _painted(size, box), methods=["gradcam"])
    geometry = explanation.geometry
    assert geometry.original == size and geometry.picture == (224, 224)
    assert geometry.offset != (0, 0)  # the crop matters
    aligned = geometry.box_to_picture(*box)
    assert aligned.shape == explanation.maps["gradcam"].shape and aligned.dtype == bool
    assert aligned.any()
    np.testing.assert_array_equal(aligned, _colour_rectangle(explanation.image))
    # the same box as a mask of the original's size lands on the same pixels
    mask = np.zeros(size[::-1], np.uint8)
    mask[box[1]:box[3], box[0]:box[2]] = 255
    np.testing.assert_array_equal(geometry.mask_to_picture(mask), aligned)


def test_an_object_the_crop_cuts_away_gives_an_empty_mask(lite):
    explanation = xai_core.explain(lite, _painted((600, 300), (0, 0, 40, 300)), methods=["gradcam"])
    assert not explanation.geometry.box_to_picture(0, 0, 40, 300).any()
    assert not _where_colour(explanation.image).any()


def test_explain_batch_records_each_images_geometry(lite):
    images = [_painted((500, 300), (33, 60, 190, 217)), _painted((280, 460), (100, 20, 207, 351))]
    first, second = xai_core.explain_batch(lite, images, methods=["gradcam"])
    assert first.geometry.original == (500, 300) and second.geometry.original == (280, 460)
    np.testing.assert_array_equal(second.geometry.box_to_picture(100, 20, 207, 351), _colour_rectangle(second.image))


def test_a_ready_tensor_is_its_own_original(lite):
    x = lite.prepare([_painted((300, 300), (10, 10, 50, 50))]).x.cpu()
    (explanation,) = xai_core.explain_batch(lite, x, methods=["gradcam"])
    assert explanation.geometry == Geometry.identity((224, 224))
    box = explanation.geometry.box_to_picture(10, 20, 30, 40)
    assert box.sum() == 20 * 20 and box[20:40, 10:30].all()


def test_extreme_aspect_is_cropped_before_the_resize(lite):
    """A 1000x100 strip: `load_image` keeps it, the aspect bound keeps its central 400x100."""
    geometry = xai_core.explain(lite, _painted((1000, 100), (480, 10, 520, 90)), methods=["gradcam"]).geometry
    assert geometry.kept == (300, 0, 700, 100)
    assert not geometry.box_to_picture(0, 0, 290, 100).any()  # left of the kept part


def test_a_downscaled_rotated_photo_keeps_its_shown_size(lite):
    """A photo over WORK_PIXELS with an EXIF quarter turn: the geometry's original is the size as
    shown (the user's coordinates), and a box in it lands where it would at full size."""
    stored = Image.new("RGB", (5000, 4000), BACKGROUND)  # shown as 4000 wide, 5000 high
    assert 5000 * 4000 > WORK_PIXELS
    exif = Image.Exif()
    exif[0x0112] = 6
    data = io.BytesIO()
    stored.save(data, "JPEG", exif=exif)
    image = xai_core.load_image(data.getvalue())
    prepared = lite.prepare([image])
    geometry = prepared.geometries[0]
    assert geometry.original == (4000, 5000) and geometry.decoded == image.size
    assert geometry.decoded[0] < geometry.decoded[1]  # shown upright
    whole = geometry.box_to_picture(0, 0, 4000, 5000)
    assert whole.all()


@pytest.mark.parametrize("side, crop", [(256, 224), (341, 224), (224, 224), (225, 224), (200, 224), (201, 224),
                                        (7, 10), (10, 7), (99, 2)])
def test_the_crop_offset_is_torchvisions(side, crop):
    """`center_crop_offset` restates torchvision's private anchor and padding rules: pinned here
    against `center_crop` of an image whose pixels are their own column index (+1, 0 is padding)."""
    row = torch.arange(1, side + 1, dtype=torch.int32)[None, None, :].expand(1, 3, side).contiguous()
    cropped = F.center_crop(row, [3, crop])[0, 0]
    offset = center_crop_offset(side, crop)
    expected = torch.tensor([j + offset + 1 if 0 <= j + offset < side else 0 for j in range(crop)], dtype=torch.int32)
    assert torch.equal(cropped, expected)


@pytest.mark.parametrize("size, resize, crop", [((500, 300), [256], [224]), ((300, 500), [232], [224]),
                                                ((320, 240), [200, 260], [224, 224]), ((123, 77), [64], [80, 80]),
                                                ((640, 480), [384, 384], [384, 384])])
def test_a_mask_aligns_as_torchs_nearest_exact_resize_then_the_crop(size, resize, crop):
    """`mask_to_picture` equals resizing the mask with torch's "nearest-exact" to the resize's real
    output size, then torchvision's centre crop (padding with 0 where the crop is larger)."""
    transforms = ImageClassification(crop_size=crop[0], resize_size=resize[0])
    transforms.resize_size, transforms.crop_size = resize, crop  # as hf_processor sets [height, width] sizes
    image = Image.new("RGB", size)
    prepared = xai_core.models.preprocessing.prepare(transforms, [image], torch.device("cpu"))
    geometry = prepared.geometries[0]
    assert geometry.picture[::-1] == tuple(prepared.pixels.shape[1:3])
    mask = np.random.default_rng(0).random(size[::-1]) > 0.5
    resized = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None].float(),
                                              size=geometry.resized[::-1], mode="nearest-exact")
    expected = F.center_crop(resized, list(geometry.picture[::-1]))[0, 0].numpy() > 0
    np.testing.assert_array_equal(geometry.mask_to_picture(mask), expected)


def test_old_call_sites_need_no_geometry():
    fields = xai_core.Explanation.__dataclass_fields__
    assert fields["geometry"].default is None
