"""Figures and tables of a `Localisation` (does the map point at the object?): the picture on which
a box is dragged (`build_box_picker`) and the box read back from Plotly's selection
(`box_from_selection`), both in the picture's pixels, and the four scores per map beside the two
baselines (`localisation_table`). Pure: no Streamlit, no torch."""

from __future__ import annotations

import math
from typing import Mapping, Optional

import numpy as np
import plotly.graph_objects as go

from ..faithfulness import RANDOM
from ..localisation import CENTRE, Localisation
from .escaping import html_text
from .figures import OUTLINE_COLOR, image_uri

#: What the scores mean beside the baselines: said wherever they are shown.
CENTRE_PRIOR_NOTE = ("Objects sit near the centre of most photos: a map that does not beat the centre prior shows "
                     "nothing about the model.")
#: The table's score columns: (`Scores` field, header, what it measures), each higher is better.
LOCALISATION_COLUMNS = (
    ("pointing", "Pointing game ↑", "1 when the map's maximum lies in the object (grown by 15 px at 224 px), else 0 "
     "(Zhang et al. 2018)."),
    ("energy", "Energy ↑", "The share of the map's mass inside the object (the energy-based pointing game)."),
    ("rank", "Rank accuracy ↑", "The share of the object's pixels among the map's |object| highest pixels "
     "(Arras et al. 2022)."),
    ("iou", "IoU ↑", "Intersection over union of the map's region above half its maximum with the object."),
)
#: The grid of invisible points that makes the picture selectable (Plotly selects data points, and an
#: image has none): one every this many pixels.
_PICK_STEP = 4


def build_box_picker(image: np.ndarray, box: Optional[tuple[float, float, float, float]] = None,
                     height: int = 380) -> go.Figure:
    """The picture (uint8 [H, W, 3]) in its pixel coordinates, ready for a box selection (drag mode
    "select"), with `box` (x0, y0, x1, y1 in the picture's pixels: left and top inclusive, right and
    bottom exclusive) drawn as a rectangle when given. Pixel j is centred at j in the figure (its
    edges at j - 0.5 and j + 0.5); `box_from_selection` turns a selection back into a box."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h:_PICK_STEP, 0:w:_PICK_STEP]
    fig = go.Figure(go.Image(source=image_uri(image), hoverinfo="skip", name="picture"))
    fig.add_trace(go.Scatter(  # invisible points, selected or not; no hover label
        x=xs.ravel(), y=ys.ravel(), mode="markers", marker=dict(size=2, opacity=0), hoverinfo="none",
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)), name="pixels",
        showlegend=False))
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5,
                      line=dict(color=OUTLINE_COLOR, width=2.5))
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], constrain="domain", scaleanchor="x")
    fig.update_layout(dragmode="select", height=height, margin=dict(l=0, r=0, t=0, b=0), showlegend=False,
                      plot_bgcolor="white", newselection=dict(line=dict(color=OUTLINE_COLOR, width=2)),
                      activeselection=dict(fillcolor=OUTLINE_COLOR, opacity=0.1))
    return fig


def box_from_selection(selection: Mapping) -> Optional[tuple[float, float, float, float]]:
    """The last box of a Plotly box selection (Streamlit's `selection` state of `build_box_picker`'s
    figure: {"box": [{"x": [a, b], "y": [c, d], ...}]}), as (x0, y0, x1, y1) in the picture's pixels
    (rounded to 0.1 px), or None when the selection holds no box (or not four finite numbers)."""
    boxes = (selection or {}).get("box") or []
    if not boxes:
        return None
    last = boxes[-1]
    try:
        xs, ys = [float(v) for v in last["x"]], [float(v) for v in last["y"]]
    except (KeyError, TypeError, ValueError):
        return None
    if len(xs) != 2 or len(ys) != 2 or not all(math.isfinite(v) for v in xs + ys):
        return None
    return tuple(round(v + 0.5, 1) for v in (min(xs), min(ys), max(xs), max(ys)))  # type: ignore[return-value]


def localisation_table(localisation: Localisation, titles: Mapping[str, str]) -> dict[str, list]:
    """{column: values}: "method" (each map by `titles`, then the random map and the centre prior,
    each marked "(baseline)"), then one column per score of `LOCALISATION_COLUMNS` (NaN where a score
    is undefined)."""
    names = [m for m in localisation.scores if m not in (RANDOM, CENTRE)] + [RANDOM, CENTRE]
    shown = {RANDOM: "random (baseline)", CENTRE: "centre prior (baseline)"}
    table: dict[str, list] = {"method": [shown.get(m) or titles.get(m, m) for m in names]}
    for field, header, _ in LOCALISATION_COLUMNS:
        table[header] = [float(getattr(localisation.scores[m], field)) for m in names]
    return table


def localisation_table_html(localisation: Localisation, titles: Mapping[str, str]) -> str:
    """`localisation_table` as an HTML table for the report (numbers to 3 significant digits, "–"
    where undefined, every cell escaped, each score's meaning as its header's tooltip), followed by
    `CENTRE_PRIOR_NOTE`."""
    table = localisation_table(localisation, titles)
    helps = {header: meaning for _, header, meaning in LOCALISATION_COLUMNS}
    head = "".join(f"<th title='{html_text(helps.get(h, ''), quote=True)}'>{html_text(h)}</th>" for h in table)
    rows = ["".join(f"<td>{html_text(_cell(column[i]))}</td>" for column in table.values())
            for i in range(len(table["method"]))]
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return (f"<table class='scores'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p>{html_text(CENTRE_PRIOR_NOTE)}</p>")


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3g}"
    return str(value)


__all__ = ["CENTRE_PRIOR_NOTE", "LOCALISATION_COLUMNS", "box_from_selection", "build_box_picker",
           "localisation_table", "localisation_table_html"]
