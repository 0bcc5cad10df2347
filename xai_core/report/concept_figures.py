"""Figures of concepts across a class (`xai_core.concepts`), built from the JSON-ready summary that
`concepts_summary` returns (concepts.json's content), so the dashboard and a results folder draw the
same: each concept's importance with its 95% interval, each concept's map over one image, and the
fidelity curves (class probability as concepts are removed). Pure Plotly, no Streamlit."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from .escaping import html_text
from .figures import CONCEPT_COLORS, build_heatmap_grid, wrapped

_FONT = dict(size=15)
#: A concept's name on the importance chart's axis wraps at this many characters (it shares a
#: column's width with the bars at 1024 px).
_AXIS_CHARS = 26
_REMOVED_COLOR, _RANDOM_COLOR = "#d62728", "#9e9e9e"


def concept_title(entry: dict, labels: int = 2, glued: bool = False) -> str:
    """'#2 · snow, husky': the concept's number (its index + 1) and its first `labels` labels
    (plain text: escape it for Plotly or Markdown where it is shown). `glued`: each label holds
    no-break spaces, so `figures.wrapped` breaks between labels, never inside one."""
    names = [str(item.get("label", "")) for item in entry.get("labels", [])[:labels]]
    if glued:
        names = [n.replace(" ", "\u00a0") for n in names]
    return f"#{int(entry['index']) + 1}" + (f" · {', '.join(names)}" if names else "")


def by_importance(summary: dict) -> list[dict]:
    """The summary's concepts, most important first (a concept without an importance last)."""
    return sorted(summary.get("concepts", []),
                  key=lambda c: (c.get("importance") is None, -(c.get("importance") or 0.0), c["index"]))


def interval(mean: Optional[float], low: Optional[float], high: Optional[float], fmt: str = "{:.3f}") -> str:
    """'0.123 [0.101, 0.140]', or '–' for no value."""
    if mean is None:
        return "–"
    if low is None or high is None:
        return fmt.format(mean)
    return f"{fmt.format(mean)} [{fmt.format(low)}, {fmt.format(high)}]"


def method_caption(summary: dict) -> str:
    """One sentence (plain text): how the importances were computed, the mean residual and over how
    many images, e.g. 'Importance: exact (linear head) share of the class logit over 6 images;
    residual (logit − bias − the concepts) −0.071 on average.'"""
    n = summary.get("images", 0)
    residual = summary.get("residual")
    what = "logit − bias − the concepts" if str(summary.get("method", "")).startswith("exact") \
        else "logit − the concepts, the head's bias included"
    rest = f"; residual ({what}) {residual:+.3f} on average." if residual is not None else "."
    return (f"Importance: {summary.get('method', '?')} share of the class logit over {n} image{'s' * (n != 1)} at "
            f"layer {summary.get('layer', '?')}{rest}")


def _errors(entries: Sequence[tuple]) -> tuple[list, dict]:
    """Means and Plotly's asymmetric error bars from (mean, low, high) triples (None: no value)."""
    means = [e[0] if e and e[0] is not None else None for e in entries]
    plus = [e[2] - e[0] if m is not None and e[2] is not None else 0.0 for e, m in zip(entries, means)]
    minus = [e[0] - e[1] if m is not None and e[1] is not None else 0.0 for e, m in zip(entries, means)]
    return means, dict(type="data", symmetric=False, array=plus, arrayminus=minus, thickness=1.5, width=6,
                       color="#333")


def build_concept_importance(summary: dict) -> go.Figure:
    """Horizontal bars, most important concept on top: each concept's mean share of the class logit
    over the images with its 95% bootstrap interval as an error bar; with two classes (shared
    concepts), one bar per class (over that class's images). Each concept is named by
    `concept_title`; a dashed line at 0 (a concept that speaks against the class goes left)."""
    concepts = by_importance(summary)
    targets = list(summary.get("targets", []))
    names = [wrapped(html_text(concept_title(c, glued=True)), _AXIS_CHARS) for c in concepts]
    fig = go.Figure()
    groups = [(None, "all images")] if len(targets) < 2 else [(t, t) for t in targets]
    for g, (target, label) in enumerate(groups):
        if target is None:
            entries = [(c.get("importance"), c.get("importance_low"), c.get("importance_high")) for c in concepts]
        else:
            entries = [tuple(c.get("importance_by_class", {}).get(target) or (None, None, None)) for c in concepts]
        means, errors = _errors(entries)
        fig.add_trace(go.Bar(
            x=means, y=names, orientation="h", error_x=errors, name=html_text(label), showlegend=len(groups) > 1,
            marker_color=CONCEPT_COLORS[0] if len(groups) == 1 else CONCEPT_COLORS[g % len(CONCEPT_COLORS)],
            customdata=[[interval(*e)] for e in entries],
            hovertemplate="%{y}<br>" + (html_text(label) + ": " if target is not None else "")
            + "%{customdata[0]} (mean [95% interval])<extra></extra>",
        ))
    fig.add_vline(x=0, line_dash="dash", line_color="#888")
    rows = max(len(concepts), 1) * len(groups)
    lines = sum(n.count("<br>") for n in names)
    legend = dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom") if len(groups) > 1 else None
    fig.update_layout(
        height=110 + 36 * rows + 20 * lines + (30 if legend else 0), font=_FONT, barmode="group",
        margin=dict(l=10, r=20, t=10 + (36 if legend else 0), b=10), plot_bgcolor="white", legend=legend,
        showlegend=len(groups) > 1,
        xaxis=dict(title=dict(text="share of the class logit (95% interval)"), zeroline=False, automargin=True,
                   gridcolor="#eee"),
        yaxis=dict(autorange="reversed", automargin=True),
    )
    return fig


def build_concept_maps(picture: np.ndarray, maps: np.ndarray, summary: dict, *, opacity: float = 0.5,
                       colorscale: str = "Jet", columns: int = 3) -> go.Figure:
    """Each concept's map (`maps` float [k, H, W] in [0, 1], aligned with `picture` uint8 [H, W, 3],
    e.g. `ClassConcepts.maps(image)`) over the picture, most important concept first, one shared
    colour scale (`figures.build_heatmap_grid`). Raises ValueError when `maps` and the summary's
    concepts differ in number."""
    concepts = summary.get("concepts", [])
    if len(maps) != len(concepts):
        raise ValueError(f"{len(maps)} maps for {len(concepts)} concepts.")
    ordered = by_importance(summary)
    named = {concept_title(c, glued=True): maps[int(c["index"])] for c in ordered}
    return build_heatmap_grid(picture, named, opacity=opacity, colorscale=colorscale,
                              columns=max(1, min(columns, len(named))), panel_height=260,
                              colorbar_title="concept")


def build_fidelity_curves(summary: dict) -> go.Figure:
    """The class probability (mean over the images) against the number of concepts removed: by
    importance (most important first) and in a random order, each named with its area under the
    curve and the area's 95% interval (a faithful ranking falls faster: a smaller area). Raises
    ValueError for a summary without fidelity curves."""
    fidelity = summary.get("fidelity") or {}
    if not fidelity.get("removed"):
        raise ValueError("This summary has no fidelity curves (class_concepts(..., fidelity=False)).")
    fig = go.Figure()
    for key, name, color, dash in (("removed", "by importance", _REMOVED_COLOR, "solid"),
                                   ("random", "random order", _RANDOM_COLOR, "dash")):
        values = fidelity.get(key) or []
        prefix = "" if key == "removed" else "random_"
        area = interval(fidelity.get(f"{prefix}auc"), fidelity.get(f"{prefix}auc_low"),
                        fidelity.get(f"{prefix}auc_high"))
        fig.add_trace(go.Scatter(
            x=list(range(len(values))), y=values, mode="lines+markers", name=f"{name}: AUC {area}",
            line=dict(color=color, dash=dash, width=2.5), marker=dict(size=7),
            hovertemplate=f"{name}<br>%{{x}} removed: %{{y:.1%}}<extra></extra>",
        ))
    targets = " or ".join(html_text(t) for t in summary.get("targets", []))
    k = max(len(fidelity.get("removed", [])) - 1, 1)
    # the chart shares a row with its explanation: 30 characters a line fit its column at 1024 px
    title = wrapped(f"Probability of {targets} as concepts are removed", 30)
    top = 30 + 22 * (title.count("<br>") + 1)  # the title's lines, then a gap above the top tick label
    plot, below = 260, 130  # the plot's height; under it the ticks, the axis title and the legend's two lines
    fig.update_layout(
        height=top + plot + below, font=_FONT, plot_bgcolor="white", margin=dict(l=10, r=20, t=top, b=below),
        xaxis=dict(title=dict(text="concepts removed"), tickmode="linear", dtick=1 if k <= 10 else math.ceil(k / 10),
                   range=[-0.3, k + 0.3], automargin=True, gridcolor="#eee"),
        yaxis=dict(title=dict(text="class probability"), tickformat=".0%", rangemode="tozero", automargin=True,
                   gridcolor="#eee"),
        legend=dict(orientation="h", x=0, xanchor="left", y=-72 / plot, yanchor="top", font=dict(size=13)),
    )
    # the title as an annotation anchored at its bottom line just above the plot (a layout title of
    # several lines anchored at its top is drawn higher than its box: Plotly counts one line)
    fig.add_annotation(text=title, name="title", xref="paper", x=0, xanchor="left", yref="paper", y=1,
                       yanchor="bottom", yshift=16, showarrow=False, align="left", font=dict(size=17))
    return fig


__all__ = ["build_concept_importance", "build_concept_maps", "build_fidelity_curves", "by_importance",
           "concept_title", "interval", "method_caption"]
