"""The object's outline as text (`outline_text`) and its drawing over a map (`report.pictures.draw_outline`):
a box's outline is its rectangle through the border pixels' centres, read back exactly; what is not an
outline draws nothing; the drawing lands on the box's border in the picture's size or any other."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from xai_core.localisation import outline_polygons, outline_text
from xai_core.report.pictures import draw_outline


def _box(shape=(224, 224), box=(40, 60, 120, 180)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def _jpeg(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_a_boxs_outline_is_its_rectangle_through_the_border_pixels_centres():
    text = outline_text(_box())
    assert text.startswith("224x224;M") and text.endswith("Z")
    size, (polygon,) = outline_polygons(text)
    assert size == (224, 224) and len(polygon) == 4
    assert polygon[:, 0].min() == 40.5 and polygon[:, 0].max() == 119.5  # columns 40..119
    assert polygon[:, 1].min() == 60.5 and polygon[:, 1].max() == 179.5  # rows 60..179


def test_every_part_of_a_mask_is_outlined_largest_first_and_the_text_stays_bounded():
    mask = _box(box=(10, 10, 30, 30)) | _box(box=(100, 100, 200, 200))
    size, polygons = outline_polygons(outline_text(mask))
    assert size == (224, 224) and len(polygons) == 2
    assert polygons[0][:, 0].min() == 100.5 and polygons[1][:, 0].min() == 10.5
    noise = np.random.default_rng(0).random((224, 224)) > 0.5  # thousands of specks and ragged borders
    size, polygons = outline_polygons(outline_text(noise))
    assert 1 <= len(polygons) <= 8 and sum(len(p) for p in polygons) <= 400


def test_an_empty_mask_and_text_that_is_not_an_outline_give_nothing():
    assert outline_text(np.zeros((8, 8), dtype=bool)) is None
    for text in (None, "", "M1 2L3 4Z", "axb;M1 2L3 4Z", 7, "224x224;<script>"):
        assert outline_polygons(text) == ((0, 0), [])
    data = _jpeg(np.zeros((16, 16, 3), dtype=np.uint8))
    assert draw_outline(data, None) is data and draw_outline(data, "not an outline") is data


def test_the_outline_is_drawn_on_the_boxs_border_at_any_size():
    text = outline_text(_box())
    for side in (224, 448):  # the picture's size, and twice it (scaled)
        drawn = np.asarray(Image.open(io.BytesIO(draw_outline(_jpeg(np.full((side, side, 3), 128, np.uint8)), text))))
        s = side / 224
        magenta = (drawn[..., 0] > 200) & (drawn[..., 1] < 80) & (drawn[..., 2] > 200)
        rows, cols = np.nonzero(magenta)
        assert abs(cols.min() - 40.5 * s) <= 2 and abs(cols.max() - 119.5 * s) <= 2
        assert abs(rows.min() - 60.5 * s) <= 2 and abs(rows.max() - 179.5 * s) <= 2
        assert not magenta[int(120 * s), int(80 * s)]  # the inside is left as it was
