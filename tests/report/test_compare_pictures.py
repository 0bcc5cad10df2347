"""The comparison picture: three titled panels (A | B | difference), the difference on a diverging
scale centred on 0 (white), blue where model A's map is higher, red where model B's is; a map that is
missing is a grey panel; the verdict is written underneath, wrapped rather than cut."""

from __future__ import annotations

import numpy as np

from xai_core.compare import Comparison, MethodComparison, difference, spearman, top_iou
from xai_core.report import build_comparison_picture
from xai_core.report.compare_pictures import difference_colours


def test_the_scale_is_centred_on_white():
    colours = difference_colours(np.array([[-1.0, 0.0, 1.0]], np.float32))[0].astype(int)
    blue, white, red = colours
    assert (white >= 245).all()
    assert blue[2] > blue[0] + 50 and red[0] > red[2] + 50


def _comparison(map_a, map_b, size: int = 48) -> Comparison:
    compared = MethodComparison("gradcam", "Grad-CAM", map_a, map_b,
                                None if map_a is None or map_b is None else difference(map_a, map_b),
                                None if map_a is None or map_b is None else spearman(map_a, map_b),
                                None if map_a is None or map_b is None else top_iou(map_a, map_b),
                                None if map_a is not None and map_b is not None else "Grad-CAM ran on model B only.")
    image = np.full((size, size, 3), 128, np.uint8)
    return Comparison("a", "b", (), (), "cat", "cat", 0, 0, 0.5, 0.9, image, {"gradcam": compared}, None, None, (),
                      True)


def test_three_panels_and_the_verdict():
    size = 48
    left = np.zeros((size, size), np.float32)
    left[:, : size // 2] = 1.0
    picture = np.asarray(build_comparison_picture(_comparison(left, left[:, ::-1].copy()), "gradcam").convert("RGB"))
    assert picture.shape[1] == 3 * size
    row = picture[40 + size // 2].astype(int)  # the middle row of the panels, under the two title lines
    diff = row[2 * size:]
    assert diff[4, 2] > diff[4, 0] + 40  # left: A's map was higher there -> blue
    assert diff[-4, 0] > diff[-4, 2] + 40  # right: B's -> red
    assert picture.shape[0] > 40 + size + 30  # the scale and the verdict underneath


def test_a_missing_map_is_a_grey_panel():
    ramp = np.tile(np.linspace(0, 1, 48, dtype=np.float32), (48, 1))
    picture = np.asarray(build_comparison_picture(_comparison(None, ramp), "gradcam").convert("RGB"))
    panel = picture[45:80, 5:43].astype(int)
    assert (panel.max(axis=-1) - panel.min(axis=-1) <= 2).all()
