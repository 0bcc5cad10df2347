"""`xai_core.report.localisation_figures`: the box picker's figure and the box read back from Plotly's
selection (Streamlit's selection state, as its frontend sends it), both in the picture's pixels, and
the scores' table beside the baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xai_core.localisation import CENTRE, Localisation, Scores
from xai_core.report import figures
from xai_core.report.localisation_figures import (CENTRE_PRIOR_NOTE, LOCALISATION_COLUMNS, box_from_selection,
                                                  build_box_picker, localisation_table,
                                                  localisation_table_html)


def _selection(*boxes) -> dict:
    """Streamlit's selection state of a box selection (frontend PlotlyChart: {xref, yref, x, y})."""
    return {"points": [], "point_indices": [], "lasso": [],
            "box": [{"xref": "x", "yref": "y", "x": list(x), "y": list(y)} for x, y in boxes]}


def test_a_box_dragged_on_the_picker_is_read_back_in_the_pictures_pixels() -> None:
    # pixel j spans j - 0.5 .. j + 0.5 in the figure: a box around pixels 60..169 and 40..199 ...
    assert box_from_selection(_selection(((59.5, 169.5), (39.5, 199.5)))) == (60, 40, 170, 200)
    # ... whichever way it was dragged; the last box of several counts; values rounded to 0.1 px
    assert box_from_selection(_selection(((169.5, 59.5), (199.5, 39.5)))) == (60, 40, 170, 200)
    assert box_from_selection(_selection(((0, 1), (0, 1)), ((10.04, 20.26), (5, 6)))) == (10.5, 5.5, 20.8, 6.5)
    for nothing in ({}, None, _selection(), {"box": [{"x": [], "y": []}]}, {"box": [{"x": [1, "a"], "y": [0, 1]}]},
                    {"box": [{"x": [0, float("nan")], "y": [0, 1]}]}, {"box": [{"y": [0, 1]}]}):
        assert box_from_selection(nothing) is None


def test_the_picker_shows_the_picture_ready_for_a_box_and_the_box_in_use() -> None:
    image = np.zeros((224, 200, 3), np.uint8)
    fig = build_box_picker(image)
    assert fig.layout.dragmode == "select" and not fig.layout.shapes
    assert [t.type for t in fig.data] == ["image", "scatter"]
    points = fig.data[1]  # selectable points over the whole picture, invisible, without a hover label
    assert min(points.x) == 0 and max(points.x) >= 196 and max(points.y) >= 220
    assert points.marker.opacity == 0 and points.hoverinfo == "none"
    assert list(fig.layout.xaxis.range) == [-0.5, 199.5] and list(fig.layout.yaxis.range) == [223.5, -0.5]
    (shape,) = build_box_picker(image, (60, 40, 170, 200)).layout.shapes
    assert (shape.x0, shape.y0, shape.x1, shape.y1) == (59.5, 39.5, 169.5, 199.5)  # the pixels' edges
    assert shape.line.color == figures.OUTLINE_COLOR
    # the rectangle drawn is the box read back
    assert box_from_selection(_selection(((shape.x0, shape.x1), (shape.y0, shape.y1)))) == (60, 40, 170, 200)


def test_the_table_lists_each_map_then_both_baselines() -> None:
    nan = math.nan
    scores = {"gradcam": Scores(1.0, 0.6, 0.5, 0.4), "layercam": Scores(0.0, 0.2, 0.1, nan),
              "random": Scores(0.0, 0.3, 0.3, 0.1), CENTRE: Scores(1.0, 0.7, 0.8, 0.6)}
    result = Localisation(np.ones((4, 4), bool), scores, 1.0, False, ())
    table = localisation_table(result, {"gradcam": "Grad-CAM", "layercam": "LayerCAM"})
    assert table["method"] == ["Grad-CAM", "LayerCAM", "random (baseline)", "centre prior (baseline)"]
    assert list(table) == ["method"] + [header for _, header, _ in LOCALISATION_COLUMNS]
    assert table["Energy ↑"] == [0.6, 0.2, 0.3, 0.7] and math.isnan(table["IoU ↑"][1])
    assert "centre prior" in CENTRE_PRIOR_NOTE
    page = localisation_table_html(result, {"gradcam": "<b>Grad</b>", "layercam": "LayerCAM"})
    assert "<td>&lt;b&gt;Grad&lt;/b&gt;</td>" in page and "<b>" not in page  # a title is text, never markup
    assert "<td>0.6</td>" in page and "<td>–</td>" in page and page.endswith(f"<p>{CENTRE_PRIOR_NOTE}</p>")


@pytest.mark.parametrize("field", [f for f, _, _ in LOCALISATION_COLUMNS])
def test_every_score_has_a_column(field: str) -> None:
    assert field in Scores.__dataclass_fields__
