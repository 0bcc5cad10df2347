"""Plotly figures of a model comparison (`xai_core.compare.Comparison`) for the dashboard's "Compare
models" page: one row per method (model A's map | model B's map | the difference B - A on a diverging
scale centred on 0), each model's prediction bars, the agreement table, the one-line summary of the two
predictions, and the object's mask brought onto the comparison's common grid. Pure: no Streamlit."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..compare import Comparison, common_grid, on_grid
from ..models import Geometry
from .compare_pictures import DIFFERENCE_COLORMAP
from .escaping import html_text
from .figures import (_FONT, _GRID_TITLE_CHARS, _MARGIN, _TITLE_LINE_PX, _axis, _link_image_axes,
                      build_prediction_bars, heatmap_trace, image_uri, outline_trace, wrapped)

#: The agreement table's columns: (key, header, what it means).
AGREEMENT_COLUMNS = (
    ("spearman", "Spearman ρ", "rank correlation of the two maps' pixels: 1 = the same order of importance, "
     "0 = unrelated, below 0 = opposite"),
    ("top_iou", "Top-20% IoU", "overlap (intersection over union) of each map's 20% most important pixels: "
     "1 = the same region"),
)
_COLORBAR = dict(orientation="h", thickness=12, y=-0.03, yanchor="top", xanchor="center", ticks="outside")


def prediction_line(comparison: Comparison) -> str:
    """'tabby 62% → tabby 91%': model A's top class and its probability, then model B's (plain text)."""
    return f"{_top(comparison.top_a)} → {_top(comparison.top_b)}"


def target_line(comparison: Comparison) -> str:
    """Which class the maps explain and its probability in each model, in one plain sentence."""
    a, b = comparison.target_label_a, comparison.target_label_b
    pa, pb = _percent(comparison.probability_a), _percent(comparison.probability_b)
    if a == b:
        return f"The maps explain “{a}”: {pa} in model A, {pb} in model B."
    return f"The maps explain each model's own top class: “{a}” ({pa}) in model A, “{b}” ({pb}) in model B."


def build_predictions(comparison: Comparison, side: str, title: str) -> go.Figure:
    """Model `side`'s ("a" or "b") top predictions as bars, the explained class highlighted, under a
    short `title` (e.g. "Model A": the same height for both models, so charts side by side stay
    level; name the models beside the chart). Raises ValueError for another side."""
    if side not in ("a", "b"):
        raise ValueError(f"side is 'a' or 'b', not {side!r}.")
    top = comparison.top_a if side == "a" else comparison.top_b
    target = comparison.target_a if side == "a" else comparison.target_b
    indices = [int(p[0]) for p in top]
    fig = build_prediction_bars([(p[1], p[2]) for p in top],
                                highlight=indices.index(target) if target in indices else None)
    fig.update_layout(title=dict(text=html_text(title), x=0.02, xanchor="left", font=dict(size=15)),
                      margin=dict(l=10, r=50, t=40, b=10), height=fig.layout.height + 30)
    return fig


def build_comparison_row(comparison: Comparison, method: str, *, titles: Sequence[str] = ("Model A", "Model B"),
                         opacity: float = 0.5, colorscale: str = "Jet", panel_height: int = 250,
                         outline: Optional[np.ndarray] = None) -> go.Figure:
    """Three panels over the shared picture (`comparison.image`): model A's map, model B's map (one
    colour scale 0..1, `colorscale`, at `opacity`) and the difference B - A (`DIFFERENCE_COLORMAP`,
    ±`difference_limit` centred on 0: red where B's map is higher, blue where A's is), zoom and pan linked. A map
    the method does not give (it applies to one model only) leaves its panel and the difference's
    with the picture alone, labelled. `outline`: the object's mask on the common grid, drawn on every
    panel. Raises KeyError for a method not compared, ValueError for an outline of another shape."""
    compared = comparison.methods[method]
    image = comparison.image
    height, width = image.shape[:2]
    if outline is not None and np.shape(outline) != (height, width):
        raise ValueError(f"The outline's mask is {np.shape(outline)}, not the common grid's {(height, width)}.")
    names = [*titles[:2], "Difference B − A"]
    shown = [wrapped(html_text(t), _GRID_TITLE_CHARS // 3) for t in names]
    extra = _TITLE_LINE_PX * max(t.count("<br>") for t in shown)
    fig = make_subplots(rows=1, cols=3, subplot_titles=shown, horizontal_spacing=0.02)
    source = image_uri(image)
    panels = [(compared.map_a, "coloraxis", "importance %{z:.2f}", opacity),
              (compared.map_b, "coloraxis", "importance %{z:.2f}", opacity),
              (compared.difference, "coloraxis2", "B − A %{z:+.2f}", max(opacity, 0.75))]
    for i, (values, axis, hover, alpha) in enumerate(panels):
        fig.add_trace(go.Image(source=source, hoverinfo="skip", name="image"), row=1, col=i + 1)
        if values is not None:
            fig.add_trace(heatmap_trace(values, coloraxis=axis, opacity=float(alpha), name=html_text(names[i]),
                                        hovertemplate="x=%{x}, y=%{y}<br>" + hover + "<extra></extra>"),
                          row=1, col=i + 1)
        else:
            fig.add_annotation(text=_missing(compared, i), showarrow=False, font=dict(size=13, color="#333"),
                               bgcolor="rgba(255,255,255,0.85)", xref=f"{_axis('x', i)} domain",
                               yref=f"{_axis('y', i)} domain", x=0.5, y=0.5)
        if outline is not None:
            fig.add_trace(outline_trace(outline), row=1, col=i + 1)
    _link_image_axes(fig, 3, width, height)
    limit = difference_limit(compared.difference)
    fig.update_layout(
        coloraxis=dict(colorscale=colorscale, cmin=0.0, cmax=1.0,
                       colorbar=dict(_COLORBAR, x=0.33, len=0.5, title=dict(text="importance", side="right"),
                                     tickvals=[0, 0.5, 1])),
        coloraxis2=dict(colorscale=DIFFERENCE_COLORMAP, cmin=-limit, cmid=0.0, cmax=limit,
                        colorbar=dict(_COLORBAR, x=0.84, len=0.3, tickvals=[-limit, 0, limit],
                                      ticktext=[f"−{limit:g} (A)", "0", f"+{limit:g} (B)"])),
        height=panel_height + 40 + extra + 60, font=_FONT, showlegend=False, dragmode="zoom", plot_bgcolor="white",
        margin=dict(_MARGIN, t=_MARGIN["t"] + extra, b=_MARGIN["b"] + 60),
    )
    fig.update_annotations(font_size=15, selector=dict(yref="paper"))
    return fig


def difference_limit(difference: Optional[np.ndarray]) -> float:
    """The difference's colour range ±limit: its largest absolute value rounded up to a tenth (small
    changes stay visible), 1 where there is none (no difference, or all zero)."""
    largest = float(np.abs(difference).max()) if difference is not None and difference.size else 0.0
    return 1.0 if largest == 0.0 else min(1.0, math.ceil(round(largest * 10, 6)) / 10)


def _missing(compared, panel: int) -> str:
    if panel == 2:
        return "no difference:<br>one map only"
    return f"not given for<br>model {'AB'[panel]}"


def agreement_table(comparison: Comparison, methods: Optional[Sequence[str]] = None) -> dict[str, list]:
    """{"method": titles, "Spearman ρ": [...], "Top-20% IoU": [...]} for `methods` (default: every
    method compared, in order); a number that cannot be computed (a map missing or constant) is NaN."""
    chosen = list(comparison.methods) if methods is None else list(methods)
    table: dict[str, list] = {"method": [comparison.methods[m].title for m in chosen]}
    for key, header, _ in AGREEMENT_COLUMNS:
        table[header] = [_number(getattr(comparison.methods[m], key)) for m in chosen]
    return table


def object_on_grid(comparison: Comparison, picture_mask: np.ndarray) -> np.ndarray:
    """The object marked on model A's picture (`picture_mask`, bool [H, W] in the pixels of
    `comparison.explanation_a.image`) on the comparison's common grid (bool, `comparison.image`'s
    height and width): the mask itself when both models see the image alike, else resampled onto the
    part both see (a grid pixel is the object where at least half of what it samples is). The mask
    `Comparison.verdict(mask=...)` takes. Raises ValueError for a mask of another shape."""
    picture_mask = np.asarray(picture_mask, dtype=bool)
    picture = comparison.explanation_a.image.shape[:2]
    if picture_mask.shape != picture:
        raise ValueError(f"The object's mask is {picture_mask.shape}, not model A's picture's {picture}.")
    if comparison.same_geometry:
        return picture_mask
    geometry_a = _geometry(comparison.explanation_a)
    grid = common_grid(geometry_a, _geometry(comparison.explanation_b))
    return on_grid(picture_mask.astype(np.float32), geometry_a, grid) >= 0.5


def _geometry(explanation) -> Geometry:
    """The explanation's geometry, or its picture as its own original (as `compare_models` takes it)."""
    if explanation.geometry is not None:
        return explanation.geometry
    return Geometry.identity((explanation.image.shape[1], explanation.image.shape[0]))


def _number(value: Optional[float]) -> float:
    return float("nan") if value is None or math.isnan(value) else round(float(value), 4)


def _top(top: tuple) -> str:
    return f"{top[0][1]} {_percent(top[0][2])}" if top else "–"


def _percent(probability: float) -> str:
    return f"{probability:.0%}" if probability >= 0.01 else f"{probability:.2g}"


__all__ = ["AGREEMENT_COLUMNS", "agreement_table", "build_comparison_row", "build_predictions", "difference_limit",
           "object_on_grid",
           "prediction_line", "target_line"]
