"""The Compare models page's figures: one row per method (A's map | B's map | B - A on a diverging scale
centred on 0), the prediction bars under each model's title, the agreement table, the one-line summary
of the predictions, and the object's mask brought onto the comparison's common grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai_core import Explanation, Prediction
from xai_core.compare import Comparison, MethodComparison, common_grid, difference, spearman, top_iou
from xai_core.models import Geometry
from xai_core.report.compare_figures import (agreement_table, build_comparison_row, build_predictions,
                                             object_on_grid, prediction_line, target_line, difference_limit)

SIZE = 32


def _explanation(size: int = SIZE, geometry=None) -> Explanation:
    return Explanation(maps={}, target=0, target_label="tabby", target_probability=0.5, layers=("layer4",),
                       model="m", image=np.zeros((size, size, 3), np.uint8), timings={}, notes=(), options={},
                       top=(), geometry=geometry)


def _compared(map_a, map_b, method: str = "gradcam", title: str = "Grad-CAM") -> MethodComparison:
    if map_a is None or map_b is None:
        return MethodComparison(method, title, map_a, map_b, None, None, None, f"{title} ran on one model only.")
    return MethodComparison(method, title, map_a, map_b, difference(map_a, map_b), spearman(map_a, map_b),
                            top_iou(map_a, map_b))


def _comparison(methods: dict, top_b=None, label_b: str = "tabby", same: bool = True) -> Comparison:
    top_a = (Prediction(281, "tabby", 0.62), Prediction(285, "Egyptian cat", 0.2))
    top_b = top_b or (Prediction(281, "tabby", 0.91), Prediction(282, "tiger cat", 0.05))
    return Comparison("a", "b", top_a, top_b, "tabby", label_b, 281, 281 if label_b == "tabby" else 282, 0.62, 0.91,
                      np.full((SIZE, SIZE, 3), 120, np.uint8), methods, _explanation(), _explanation(), (), same)


def _ramp() -> np.ndarray:
    return np.tile(np.linspace(0, 1, SIZE, dtype=np.float32), (SIZE, 1))


def test_the_row_shows_a_b_and_their_difference_centred_on_zero():
    ramp = _ramp()
    fig = build_comparison_row(_comparison({"gradcam": _compared(ramp, ramp[:, ::-1].copy())}), "gradcam")
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert [t.coloraxis for t in heatmaps] == ["coloraxis", "coloraxis", "coloraxis2"]
    assert np.allclose(heatmaps[2].z, np.asarray(heatmaps[1].z) - np.asarray(heatmaps[0].z), atol=1e-6)
    axis = fig.layout.coloraxis2
    assert (axis.cmin, axis.cmid, axis.cmax) == (-1.0, 0.0, 1.0)
    low, high = axis.colorscale[0][1], axis.colorscale[-1][1]  # blue for "more in A", red for "more in B"
    rgb = [tuple(int(v) for v in c[c.index("(") + 1:-1].split(",")) for c in (low, high)]
    assert rgb[0][2] > rgb[0][0] and rgb[1][0] > rgb[1][2]
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 1.0)
    assert [a.text for a in fig.layout.annotations][:3] == ["Model A", "Model B", "Difference B − A"]
    assert sum(t.type == "image" for t in fig.data) == 3
    assert fig.layout.xaxis2.matches == "x" and fig.layout.xaxis3.matches == "x"  # zoom and pan linked


def test_the_difference_scale_fits_the_largest_change_symmetrically():
    ramp = _ramp()
    fig = build_comparison_row(_comparison({"gradcam": _compared(ramp, ramp * 0.77)}), "gradcam")
    axis = fig.layout.coloraxis2
    assert (axis.cmin, axis.cmid, axis.cmax) == (-0.3, 0.0, 0.3)  # 0.23 rounded up to a tenth
    assert list(axis.colorbar.ticktext) == ["−0.3 (A)", "0", "+0.3 (B)"]
    assert difference_limit(np.zeros((2, 2))) == 1.0 and difference_limit(None) == 1.0
    assert difference_limit(np.array([0.2, -0.05])) == 0.2 and difference_limit(np.array([-1.0])) == 1.0


def test_a_map_missing_leaves_its_panel_and_the_difference_labelled():
    fig = build_comparison_row(_comparison({"legrad": _compared(None, _ramp(), "legrad", "LeGrad")}), "legrad")
    assert [t.coloraxis for t in fig.data if t.type == "heatmap"] == ["coloraxis"]
    texts = [a.text for a in fig.layout.annotations]
    assert "not given for<br>model A" in texts and "no difference:<br>one map only" in texts


def test_titles_are_text_and_wrap_alike():
    ramp = _ramp()
    fig = build_comparison_row(_comparison({"gradcam": _compared(ramp, ramp)}), "gradcam",
                               titles=("<b>A</b> " + "very long model title " * 3, "B"))
    first = fig.layout.annotations[0].text
    assert "<b>" not in first and "&lt;b&gt;" in first and "<br>" in first
    assert fig.layout.margin.t > 40  # room for the wrapped lines


def test_an_outline_of_another_shape_is_refused_and_one_of_the_grid_drawn():
    ramp = _ramp()
    comparison = _comparison({"gradcam": _compared(ramp, ramp)})
    with pytest.raises(ValueError, match="common grid"):
        build_comparison_row(comparison, "gradcam", outline=np.ones((4, 4), bool))
    mask = np.zeros((SIZE, SIZE), bool)
    mask[8:20, 8:20] = True
    fig = build_comparison_row(comparison, "gradcam", outline=mask)
    assert sum(t.type == "contour" for t in fig.data) == 3


def test_predictions_and_the_summary_lines():
    comparison = _comparison({})
    assert prediction_line(comparison) == "tabby 62% → tabby 91%"
    assert target_line(comparison) == "The maps explain “tabby”: 62% in model A, 91% in model B."
    own = _comparison({}, top_b=(Prediction(282, "tiger cat", 0.7),), label_b="tiger cat")
    assert target_line(own).startswith("The maps explain each model's own top class: “tabby” (62%) in model A, "
                                       "“tiger cat” (91%) in model B")
    fig = build_predictions(comparison, "b", "Model <i>B</i>")
    assert list(fig.data[0].y) == ["tabby", "tiger cat"] and fig.data[0].marker.color[0] == "#d62728"
    assert fig.layout.title.text == "Model &lt;i&gt;B&lt;/i&gt;"  # text, never markup
    assert build_predictions(comparison, "a", "Model A").data[0].y == ("tabby", "Egyptian cat")
    with pytest.raises(ValueError):
        build_predictions(comparison, "c", "C")


def test_the_agreement_table():
    ramp = _ramp()
    flat = np.zeros((SIZE, SIZE), np.float32)
    comparison = _comparison({"gradcam": _compared(ramp, ramp),
                              "layercam": _compared(ramp, flat, "layercam", "LayerCAM"),
                              "legrad": _compared(None, ramp, "legrad", "LeGrad")})
    table = agreement_table(comparison)
    assert table["method"] == ["Grad-CAM", "LayerCAM", "LeGrad"]
    assert table["Spearman ρ"][0] == pytest.approx(1.0) and table["Top-20% IoU"][0] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in table["Spearman ρ"][1:])  # a constant map; a missing one
    assert agreement_table(comparison, ["legrad"])["method"] == ["LeGrad"]


def test_the_object_on_the_common_grid():
    mask = np.zeros((SIZE, SIZE), bool)
    mask[4:12, 20:30] = True
    same = _comparison({})
    assert (object_on_grid(same, mask) == mask).all()
    with pytest.raises(ValueError, match="model A's picture"):
        object_on_grid(same, np.ones((3, 3), bool))
    # model A sees the whole 64 x 64 original at half resolution, model B its left half at full
    geometry_a = Geometry((64, 64), (64, 64), (0, 0, 64, 64), (32, 32), (0, 0), (32, 32))
    geometry_b = Geometry((64, 64), (64, 64), (0, 0, 32, 64), (32, 64), (0, 0), (32, 64))
    grid = common_grid(geometry_a, geometry_b)
    other = Comparison("a", "b", (), (), "t", "t", 0, 0, 0.5, 0.5, np.zeros((*grid.shape, 3), np.uint8), {},
                       _explanation(SIZE, geometry_a), _explanation(SIZE, geometry_b), (), False)
    left = np.zeros((SIZE, SIZE), bool)
    left[:, :8] = True  # the original's x 0..16: on the grid (x 0..32 at one pixel a column), its left half
    on = object_on_grid(other, left)
    assert on.shape == grid.shape
    assert on[:, :14].all() and not on[:, 18:].any()
