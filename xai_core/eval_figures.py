"""Pure Plotly figure builders for `evaluate`'s results: an `Evaluation` in, `go.Figure` out.

No Streamlit and no torch here (the `Evaluation` type is only named for the annotations), so the
figures can be tested on their own and reused in exports."""

from __future__ import annotations

import html
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

if TYPE_CHECKING:  # no import at run time: that would pull in torch
    from .evaluate import Evaluation

RANDOM = "random"
#: One colour per method, in the order of the evaluation; the random baseline is grey and dashed.
METHOD_COLORS = tuple(qualitative.D3)
RANDOM_COLOR = "#7f7f7f"
IDENTICAL_MARK = "≡"
_FONT = dict(size=15)
_CURVES = {
    "deletion": ("Deletion: most important pixels removed first (a lower area is better)",
                 "fraction of pixels removed"),
    "insertion": ("Insertion: most important pixels put back first (a higher area is better)",
                  "fraction of pixels inserted"),
}
_METRICS = {
    "spearman": ("Spearman rank correlation between maps", "RdBu", -1.0, 1.0),
    "iou": ("Overlap (IoU) of the top 20% pixels", "Blues", 0.0, 1.0),
}


def build_curves(evaluation: "Evaluation", kind: str = "deletion") -> go.Figure:
    """Target-class probability against the fraction of pixels removed (`kind="deletion"`) or
    inserted (`"insertion"`): one line per method, the random baseline dashed; the legend gives
    each area under the curve. Raises `ValueError` for another `kind`."""
    if kind not in _CURVES:
        raise ValueError(f"kind must be one of {', '.join(_CURVES)}, not {kind!r}.")
    title, x_title = _CURVES[kind]
    x = np.asarray(evaluation.fractions, dtype=float)
    fig = go.Figure()
    methods = [m for m in evaluation.scores if m != RANDOM] + [m for m in evaluation.scores if m == RANDOM]
    for i, method in enumerate(methods):
        score = evaluation.scores[method]
        is_random = method == RANDOM
        auc = score[f"{kind}_auc"]
        fig.add_trace(go.Scatter(
            x=x, y=np.asarray(score[f"{kind}_curve"], dtype=float), mode="lines", name=f"{method} (AUC {auc:.3f})",
            line=dict(color=RANDOM_COLOR if is_random else METHOD_COLORS[i % len(METHOD_COLORS)],
                      dash="dash" if is_random else "solid", width=2),
            hovertemplate=f"{html.escape(method)}<br>{x_title}: %{{x:.0%}}<br>probability %{{y:.3f}}<extra></extra>",
        ))
    fig.update_layout(
        title=title, font=_FONT, height=420, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white",
        xaxis=dict(title=x_title, range=[0, 1], tickformat=".0%", gridcolor="#eee", automargin=True),
        yaxis=dict(title=f"probability of {evaluation.target_label}", rangemode="tozero", gridcolor="#eee",
                   automargin=True),
        legend=dict(title="method"),
    )
    return fig


def build_agreement(evaluation: "Evaluation", metric: str = "spearman") -> go.Figure:
    """The methods' pairwise agreement as a heatmap matrix (`metric="spearman"` or `"iou"`), each
    cell labelled with its value; pairs identical by construction are marked with ≡ and explained
    under the matrix. Raises `ValueError` for another `metric`."""
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(_METRICS)}, not {metric!r}.")
    title, colorscale, zmin, zmax = _METRICS[metric]
    agreement = evaluation.agreement
    methods = list(agreement.methods)
    z = np.asarray(getattr(agreement, metric), dtype=float)
    identical = {frozenset((a, b)): reason for a, b, reason in agreement.identical_by_construction}
    text, hover = [], []
    for a in methods:
        row_text, row_hover = [], []
        for b in methods:
            value = z[methods.index(a), methods.index(b)]
            reason = identical.get(frozenset((a, b))) if a != b else None
            row_text.append(f"{value:.2f}" + (f" {IDENTICAL_MARK}" if reason else ""))
            row_hover.append(f"{a} vs {b}: {value:.3f}" + (f"<br>{html.escape(reason)}" if reason else ""))
        text.append(row_text)
        hover.append(row_hover)
    fig = go.Figure(go.Heatmap(
        z=z, x=methods, y=methods, zmin=zmin, zmax=zmax, colorscale=colorscale, text=text,
        texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title=metric),
    ))
    side = 140 + 70 * len(methods)
    lines = []
    if identical:  # explained under the title (a subtitle never collides with the tick labels)
        reason = f"{IDENTICAL_MARK} identical by construction: {next(iter(identical.values()))}"
        lines = textwrap.wrap(reason, width=max(40, (side + 100) // 8))
        title += "".join(f"<br><sup>{html.escape(line)}</sup>" for line in lines)
    fig.update_layout(
        title=title, font=_FONT, height=side + 30 * len(lines), width=side + 160,
        margin=dict(l=10, r=10, t=50 + 30 * len(lines), b=10),
        xaxis=dict(side="bottom", automargin=True), yaxis=dict(autorange="reversed", automargin=True),
    )
    return fig
