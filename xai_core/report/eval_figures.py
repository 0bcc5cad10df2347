"""Pure builders for `evaluate`'s results: an `Evaluation` in, a Plotly `go.Figure`, a table, or
Markdown / HTML text out. Each takes `names` ({method id: what to call it}, e.g. the titles; ids
by default), and shows only the scores computed so far of a partial `Evaluation`.

No Streamlit here, and the builders touch no tensor (the `Evaluation` type is only named for the
annotations), so the figures can be tested on their own and reused in exports."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Callable, Mapping, Optional

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from ..faithfulness import RANDOM
from .escaping import html_text, markdown_text
from .figures import title_margin, wrapped

if TYPE_CHECKING:
    from ..faithfulness import Evaluation

#: One colour per method, in the order of the evaluation; the random baseline is grey and dashed.
METHOD_COLORS = tuple(qualitative.D3)
RANDOM_COLOR = "#7f7f7f"
IDENTICAL_MARK = "≡"
#: Below this target probability the headline warns that probability-based scores say little.
LOW_PROBABILITY = 0.01
_FONT = dict(size=15)
_CURVES = {
    "deletion": ("Deletion: most important pixels removed first", "a lower area is better", "fraction of pixels removed"),
    "insertion": ("Insertion: most important pixels put back first", "a higher area is better",
                  "fraction of pixels inserted"),
}
#: The curves sit in half-width columns: their titles wrap at this many characters.
_CURVE_TITLE_CHARS = 28
#: The score table's columns: (score key, column label, "lower"/"higher" is better, plain-language help).
SCORE_COLUMNS = (
    ("deletion_auc", "Deletion AUC ↓", "lower",
     "Area under the class probability as the map's most important pixels are removed first: a faithful map "
     "makes the probability fall at once (Petsiuk et al. 2018, arXiv 1806.07421)."),
    ("insertion_auc", "Insertion AUC ↑", "higher",
     "Area under the class probability as the most important pixels are put back into a blurred copy first: "
     "a faithful map brings the class back early (Petsiuk et al. 2018)."),
    ("road_morf", "ROAD MoRF ↓", "lower",
     "Change in probability when the most relevant pixels (20-80%) are replaced by noisy linear imputation, "
     "which hides the removal's shape from the model (ROAD, Rong et al. 2022, arXiv 2202.00449)."),
    ("road_lerf", "ROAD LeRF ↑", "higher",
     "Change in probability when the least relevant pixels are imputed: a faithful map loses little (ROAD)."),
    ("road_combined", "ROAD combined ↑", "higher", "(LeRF - MoRF) / 2: both ROAD orders in one number."),
    ("confidence_change", "Confidence change ↑", "higher",
     "Probability on the image multiplied by the map, minus on the image (pytorch-grad-cam's "
     "CamMultImageConfidenceChange): does the highlighted part alone keep the class?"),
    ("sanity_spearman", "Sanity Spearman ↓", "lower",
     "Rank correlation with the map of a model whose target layer and head are randomized: a map that "
     "barely changes (above 0.5) does not depend on what the model learned (Adebayo et al. 2018, "
     "arXiv 1810.03292)."),
)
#: Shown in place of a score still being computed.
PENDING_MARK = "…"
_METRICS = {
    "spearman": ("Spearman rank correlation between maps", "RdBu", -1.0, 1.0),
    "iou": ("Overlap (IoU) of the top 20% pixels", "Blues", 0.0, 1.0),
}


def build_curves(evaluation: "Evaluation", kind: str = "deletion",
                 names: Optional[Mapping[str, str]] = None) -> go.Figure:
    """Target-class probability against the fraction of pixels removed (`kind="deletion"`) or
    inserted (`"insertion"`): one line per method whose curve is computed, the random baseline
    dashed; the legend gives each area under the curve. A method keeps its colour whichever
    methods are shown. Raises `ValueError` for another `kind`."""
    if kind not in _CURVES:
        raise ValueError(f"kind must be one of {', '.join(_CURVES)}, not {kind!r}.")
    heading, better, x_title = _CURVES[kind]
    title = f"{wrapped(heading, _CURVE_TITLE_CHARS)}<br><sup>{better}</sup>"
    name = _namer(names)
    x = np.asarray(evaluation.fractions, dtype=float)
    fig = go.Figure()
    methods = [m for m in evaluation.scores if m != RANDOM] + [m for m in evaluation.scores if m == RANDOM]
    shown = [m for m in methods if f"{kind}_curve" in evaluation.scores[m]]
    legend_px = 24 * len(shown) + 10  # one entry per row in a narrow column
    for method in shown:
        score = evaluation.scores[method]
        is_random = method == RANDOM
        auc = score[f"{kind}_auc"]
        fig.add_trace(go.Scatter(
            x=x, y=np.asarray(score[f"{kind}_curve"], dtype=float), mode="lines",
            name=f"{name(method)} (AUC {auc:.3f})",
            line=dict(color=RANDOM_COLOR if is_random else METHOD_COLORS[methods.index(method) % len(METHOD_COLORS)],
                      dash="dash" if is_random else "solid", width=2),
            hovertemplate=f"{html_text(name(method))}<br>{x_title}: %{{x:.0%}}<br>probability %{{y:.3f}}"
                          "<extra></extra>",
        ))
    fig.update_layout(
        # the title from the figure's top, with room under it for the plot's top tick label
        title=dict(text=title, yref="container", y=1, yanchor="top", pad=dict(t=8)), font=_FONT,
        height=420 + legend_px, margin=dict(l=10, r=10, t=title_margin(title) + 20, b=10 + legend_px),
        plot_bgcolor="white",
        # x labels right of their ticks, y labels off the axis: the x axis's 0% clear of the y axis's 0
        xaxis=dict(title=x_title, range=[0, 1], tickformat=".0%", gridcolor="#eee", automargin=True,
                   ticklabelposition="outside right"),
        yaxis=dict(title=f"probability of {html_text(evaluation.target_label)}", rangemode="tozero", gridcolor="#eee",
                   automargin=True, ticklabelstandoff=6),
        # below the x-axis title, in the bottom margin: the charts sit in narrow columns
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, xanchor="left", x=0),
    )
    return fig


def build_agreement(evaluation: "Evaluation", metric: str = "spearman",
                    names: Optional[Mapping[str, str]] = None) -> go.Figure:
    """The methods' pairwise agreement as a heatmap matrix (`metric="spearman"` or `"iou"`), each
    cell labelled with its value; pairs identical by construction are marked with ≡ and explained
    under the matrix. Raises `ValueError` for another `metric`."""
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(_METRICS)}, not {metric!r}.")
    title, colorscale, zmin, zmax = _METRICS[metric]
    agreement, name = evaluation.agreement, _namer(names)
    methods = list(agreement.methods)
    labels = [name(m) for m in methods]
    z = np.asarray(getattr(agreement, metric), dtype=float)
    identical = {frozenset((a, b)): reason for a, b, reason in agreement.identical_by_construction}
    text, hover = [], []
    for a in methods:
        row_text, row_hover = [], []
        for b in methods:
            value = z[methods.index(a), methods.index(b)]
            reason = identical.get(frozenset((a, b))) if a != b else None
            row_text.append(f"{value:.2f}" + (f" {IDENTICAL_MARK}" if reason else ""))
            row_hover.append(f"{html_text(name(a))} vs {html_text(name(b))}: {value:.3f}"
                             + (f"<br>{html_text(reason)}" if reason else ""))
        text.append(row_text)
        hover.append(row_hover)
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, zmin=zmin, zmax=zmax, colorscale=colorscale, text=text,
        texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorbar=dict(title=dict(text=metric, side="right")),  # beside the bar, clear of its top tick
    ))
    side = 140 + 70 * len(methods)
    lines = []
    if identical:  # explained under the title (a subtitle never collides with the tick labels)
        reason = f"{IDENTICAL_MARK} identical by construction: {next(iter(identical.values()))}"
        lines = textwrap.wrap(reason, width=max(40, (side + 100) // 8))
        title += "".join(f"<br><sup>{html_text(line)}</sup>" for line in lines)
    fig.update_layout(
        title=title, font=_FONT, height=side + 30 * len(lines), width=side + 160,
        margin=dict(l=10, r=10, t=50 + 30 * len(lines), b=10),
        xaxis=dict(side="bottom", automargin=True), yaxis=dict(autorange="reversed", automargin=True),
    )
    return fig


def headline(evaluation: "Evaluation", names: Optional[Mapping[str, str]] = None) -> str:
    """Markdown bullets: the best map by deletion, by insertion (each next to the random map's
    score), how many maps beat the random map on both, and a caution when the class is so unlikely
    (under 1%) that every probability-based score is near zero. Counts the maps scored so far. Its
    texts (a class label among them) are `markdown_text`: the bullets and bold are its only markup."""
    return "\n".join("- " + "".join(_markdown_piece(text, bold) for text, bold in line)
                      for line in _headline_lines(evaluation, _namer(names)))


def _markdown_piece(text: str, bold: bool) -> str:
    """`text` as Markdown (bold or not), with the spaces at its ends that join it to its neighbours
    (`markdown_text` makes one line of it and trims them)."""
    core = f"**{markdown_text(text)}**" if bold else markdown_text(text)
    return (" " if text[:1].isspace() else "") + core + (" " if text[-1:].isspace() else "")


def _html_piece(text: str, bold: bool) -> str:
    """`text` as HTML (bold or not), with the spaces at its ends that join it to its neighbours
    (`html_text` makes one line of it and trims them), as `_markdown_piece` does for Markdown."""
    core = f"<strong>{html_text(text)}</strong>" if bold else html_text(text)
    return (" " if text[:1].isspace() else "") + core + (" " if text[-1:].isspace() else "")


def headline_html(evaluation: "Evaluation", names: Optional[Mapping[str, str]] = None) -> str:
    """`headline` as an HTML list (every text escaped), for the HTML report."""
    items = ("<li>" + "".join(_html_piece(text, bold) for text, bold in line) + "</li>"
             for line in _headline_lines(evaluation, _namer(names)))
    return f"<ul class='headline'>{''.join(items)}</ul>"


def _headline_lines(evaluation: "Evaluation", name: Callable[[str], str]) -> list[list[tuple[str, bool]]]:
    """The headline's lines, each a list of (text, bold)."""
    scores = {m: s for m, s in evaluation.scores.items() if m != RANDOM and "deletion_auc" in s}
    baseline = evaluation.scores[RANDOM]
    lines: list[list[tuple[str, bool]]] = []
    if scores and "deletion_auc" in baseline:
        deletion = min(scores, key=lambda m: scores[m]["deletion_auc"])
        insertion = max(scores, key=lambda m: scores[m]["insertion_auc"])
        beaten = [m for m, s in scores.items()
                  if s["deletion_auc"] < baseline["deletion_auc"] and s["insertion_auc"] > baseline["insertion_auc"]]
        others = [name(m) for m in scores if m not in beaten]
        lines += [
            [("Probability falls fastest when ", False), (name(deletion), True),
             (f"'s pixels are removed (deletion AUC {scores[deletion]['deletion_auc']:.3g}, random map "
              f"{baseline['deletion_auc']:.3g}).", False)],
            [("It comes back fastest when ", False), (name(insertion), True),
             (f"'s pixels are put back (insertion AUC {scores[insertion]['insertion_auc']:.3g}, random map "
              f"{baseline['insertion_auc']:.3g}).", False)],
            [(f"{len(beaten)} of {len(scores)} maps beat the random map on both"
              + (f"; not {', '.join(others)}." if others else "."), False)],
        ]
    if evaluation.target_probability < LOW_PROBABILITY:
        lines.append([(
            f"The model gives {evaluation.target_label} only {evaluation.target_probability:.2g}: deletion, "
            "insertion, ROAD and the confidence change all follow that probability, so they are near zero and "
            "say little here; the sanity check and the agreement still apply.", False)])
    return lines


def score_table(evaluation: "Evaluation", names: Optional[Mapping[str, str]] = None) -> dict[str, list]:
    """The scores as table columns: "method", each `SCORE_COLUMNS` label (floats; None where a score
    was not computed) and "sanity check" ("passed", "failed", "-" when not checked, or
    `PENDING_MARK` while the check runs), one row per method scored so far, the random baseline
    last. A partial evaluation's columns still being computed are left out."""
    name = _namer(names)
    methods = [m for m in evaluation.scores if m != RANDOM and "deletion_auc" in evaluation.scores[m]]
    methods += [RANDOM] if "deletion_auc" in evaluation.scores[RANDOM] else []
    rows = [evaluation.scores[m] for m in methods]
    table: dict[str, list] = {"method": [f"{name(m)} (baseline)" if m == RANDOM else name(m) for m in methods]}
    for key, label, _, _ in SCORE_COLUMNS:
        if not rows or any(key in row for row in rows):
            table[label] = [_number(row.get(key)) for row in rows]
    verdicts = {True: "passed", False: "failed", None: "-"}
    table["sanity check"] = [verdicts[row["sanity_passed"]] if "sanity_passed" in row
                             else ("-" if m == RANDOM else PENDING_MARK) for m, row in zip(methods, rows)]
    return table


def score_table_html(evaluation: "Evaluation", names: Optional[Mapping[str, str]] = None) -> str:
    """`score_table` as an HTML table (numbers to 3 significant digits, every cell escaped), with
    each column's meaning as its header's tooltip, for the HTML report."""
    table = score_table(evaluation, names)
    helps = {label: f"{better} is better. {text}" for _, label, better, text in SCORE_COLUMNS}
    head = "".join(f"<th title='{html_text(helps.get(label, ''), quote=True)}'>{html_text(label)}</th>"
                   for label in table)
    cells = ["".join(f"<td>{html_text(_cell(column[i]))}</td>" for column in table.values())
             for i in range(len(table["method"]))]
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    return f"<table class='scores'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_sanity(evaluation: "Evaluation", threshold: float,
                 names: Optional[Mapping[str, str]] = None) -> go.Figure:
    """The sanity check as horizontal bars: each checked method's Spearman similarity to its map on the
    randomized model, red above `threshold` (the map barely changed: it fails), green below."""
    checked = [m for m, s in evaluation.scores.items() if s.get("sanity_spearman") is not None]
    values = [float(evaluation.scores[m]["sanity_spearman"]) for m in checked]
    labels = [_namer(names)(m) for m in checked]
    fig = go.Figure(go.Bar(
        x=values, y=labels, orientation="h",
        marker_color=["#d62728" if v > threshold else "#2ca02c" for v in values],
        hovertemplate="%{y}: Spearman %{x:.3f}<extra></extra>",
    ))
    for label, value in zip(labels, values):  # right of the bar, or of zero for a negative one (never on a name)
        fig.add_annotation(x=max(value, 0.0), y=label, text=f"{value:.2f}", showarrow=False, xanchor="left", xshift=4)
    fig.add_vline(x=threshold, line=dict(color="#444", dash="dot"),
                  annotation_text=f"fails above {threshold:g}", annotation_position="top")
    title = wrapped("Sanity check: similarity to the map of a randomized model (lower is better)", 44)
    fig.update_layout(
        title=title, font=_FONT, height=170 + 40 * len(checked), margin=dict(l=10, r=10, t=title_margin(title) + 40,
                                                                             b=10), plot_bgcolor="white",
        xaxis=dict(range=[min(-0.2, min(values, default=0) - 0.1), 1.1], title="Spearman rank correlation",
                   gridcolor="#eee", automargin=True),
        yaxis=dict(autorange="reversed", automargin=True),
    )
    return fig


def _number(value):
    return None if value is None or not np.isfinite(value) else float(value)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _namer(names: Optional[Mapping[str, str]]) -> Callable[[str], str]:
    return (lambda m: m) if names is None else (lambda m: names.get(m, m))


__all__ = ["IDENTICAL_MARK", "LOW_PROBABILITY", "METHOD_COLORS", "PENDING_MARK", "RANDOM_COLOR", "SCORE_COLUMNS",
           "build_agreement", "build_curves", "build_sanity", "headline", "headline_html", "score_table",
           "score_table_html"]
