"""`load_image`: every source kind, EXIF, unusual modes, and clear refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import xai_core


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_sources_path_bytes_file_and_pil(cat_path):
    from_path = xai_core.load_image(cat_path)
    from_str = xai_core.load_image(str(cat_path))
    from_bytes = xai_core.load_image(cat_path.read_bytes())
    with open(cat_path, "rb") as fh:
        from_file = xai_core.load_image(fh)
    for img in (from_path, from_str, from_bytes, from_file, xai_core.load_image(from_path)):
        assert img.mode == "RGB" and img.size == (451, 300)
    np.testing.assert_array_equal(np.asarray(from_path), np.asarray(from_bytes))


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    out = xai_core.load_image(encode(img, "JPEG", exif=exif))
    assert out.size == (20, 60)
    top = np.asarray(out)[:5].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60, "the left strip must end up on top"


@pytest.mark.parametrize(
    "img, fmt",
    [
        (Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"),
        (Image.new("L", (32, 32), 100), "PNG"),
        (Image.fromarray(np.arange(1024, dtype=np.uint16).reshape(32, 32) * 60), "PNG"),
        (Image.fromarray(np.linspace(-3, 7, 1024, dtype=np.float32).reshape(32, 32)), "TIFF"),
        (Image.new("P", (32, 32), 3), "GIF"),
        (Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"),
        (Image.new("RGB", (3000, 24), (10, 200, 30)), "WEBP"),
        (Image.new("RGB", (40, 30), (10, 200, 30)), "BMP"),
    ],
    ids=["cmyk", "gray", "gray16", "float-tiff", "palette", "1x1", "3000x24-webp", "bmp"],
)
def test_unusual_but_valid_images(img, fmt):
    out = xai_core.load_image(encode(img, fmt))
    assert out.mode == "RGB" and out.size == img.size


def test_16bit_gray_keeps_its_contrast():
    ramp = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    out = np.asarray(xai_core.load_image(encode(Image.fromarray(ramp), "PNG")))
    assert out.min() == 0 and out.max() == 255


def test_transparent_pixels_go_on_neutral_grey():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    out = np.asarray(xai_core.load_image(encode(rgba, "PNG")))
    assert (out == 128).all()


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert np.asarray(xai_core.load_image(data))[0, 0, 0] > 200


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is text",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>",
        bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    ],
    ids=["empty", "text", "svg", "random"],
)
def test_non_images_are_refused(data):
    with pytest.raises(xai_core.InvalidImageError) as info:
        xai_core.load_image(data)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value) and str(info.value).endswith(".")


def test_truncated_image_is_refused(cat_path):
    data = cat_path.read_bytes()
    with pytest.raises(xai_core.InvalidImageError, match="damaged or truncated") as info:
        xai_core.load_image(data[: len(data) // 2])
    assert "(" not in str(info.value) and "bytes not processed" not in str(info.value)  # our words, not Pillow's


@pytest.mark.parametrize("side", [10_000, 14_000])  # 100 megapixels; 196, over Pillow's own 179 limit
def test_decompression_bomb_is_refused_with_our_limit(side):
    import warnings

    bomb = encode(Image.new("1", (side, side)), "PNG")  # megapixels in a few kB
    assert len(bomb) < 100_000
    with warnings.catch_warnings(record=True) as caught, pytest.raises(xai_core.InvalidImageError) as info:
        warnings.simplefilter("always")
        xai_core.load_image(bomb)
    message = str(info.value)
    assert message.startswith("The image is too large to decode safely") and "limit is 64 megapixels" in message
    assert f"{side * side / 1e6:.0f} megapixels" in message and "178956970" not in message
    assert message.count("(") <= 1 and [w for w in caught if "DecompressionBomb" in type(w.message).__name__] == []


def test_missing_path(tmp_path):
    with pytest.raises(xai_core.InvalidImageError, match="No image file"):
        xai_core.load_image(tmp_path / "missing.png")


def test_very_large_images_are_downscaled_and_say_so():
    from xai_core.images import WORK_PIXELS, downscaled_from

    big = Image.new("RGB", (6000, 4000), (30, 120, 200))  # 24 MP
    for fmt in ("JPEG", "PNG"):
        out = xai_core.load_image(encode(big, fmt))
        assert out.size[0] * out.size[1] <= WORK_PIXELS
        assert abs(out.size[0] / out.size[1] - 1.5) < 0.01
        assert downscaled_from(out) == (6000, 4000)
    assert downscaled_from(xai_core.load_image(encode(Image.new("RGB", (64, 48)), "PNG"))) is None


@pytest.mark.parametrize("size", [(1, 1), (3000, 24), (24, 3000), (60000, 1)])
def test_extreme_shapes_are_explained(lite, size):
    img = xai_core.load_image(encode(Image.new("RGB", size, (200, 120, 40)), "PNG"))
    result = xai_core.explain(lite, img, ["gradcam", "eigencam"])
    assert result.image.shape == (224, 224, 3)
    assert all(np.isfinite(m).all() for m in result.maps.values())


def test_input_notices_say_what_was_done_to_the_photo():
    from xai_core.images import input_notices

    big = xai_core.load_image(encode(Image.new("RGB", (6000, 4000)), "PNG"))
    (notice,) = input_notices(big)
    assert "6000x4000" in notice and f"{big.size[0]}x{big.size[1]}" in notice
    (tall,) = input_notices(xai_core.load_image(encode(Image.new("RGB", (30, 600)), "PNG")))
    assert "20 times taller than it is wide" in tall
    assert input_notices(xai_core.load_image(encode(Image.new("RGB", (64, 48)), "PNG"))) == ()
