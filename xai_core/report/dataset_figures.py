"""Figures and gallery helpers of a dataset run (summary.json's content and results.parquet's rows):
the score means with their 95% intervals, the win rates against the random map, and the gallery's
filters and sorting. Pure functions, no Streamlit: the dashboard's Dataset page and tests use them."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..faithfulness import HIGHER_IS_BETTER, RANDOM
from ..localisation import CENTRE
from ..predict import LOW_CONFIDENCE, is_correct
from .escaping import html_text
from .figures import title_margin, wrapped

#: How the figures name the scores, each with which way is better.
SCORE_TITLES = {"deletion_auc": "Deletion AUC ↓", "insertion_auc": "Insertion AUC ↑", "road_combined": "ROAD combined ↑"}
#: The one word for each score in running text, the gallery's scores and its sort menu: the same on
#: the Dataset page and in the dataset report (index.html).
SCORE_WORDS = {"deletion_auc": "deletion", "insertion_auc": "insertion", "road_combined": "ROAD"}
#: The sort menu's label of each column that is not a method's (a method's: `column_label`).
COLUMN_WORDS = {"path": "file", "probability": "probability", "seconds": "seconds",
                "agreement": "least agreement first (models A and B, mean Spearman)"}
#: The gallery's outcome filter: its values, by label (`outcome_choices`: those that apply to a run).
OUTCOMES = {"all": None, "correct": "right", "wrong": "wrong", "refused files": "error"}
_RANDOM_COLOR, _METHOD_COLOR = "#9e9e9e", "#1f77b4"


def interval_text(entry: Optional[dict], percent: Optional[bool] = None) -> str:
    """A summary entry as its value and 95% interval: a mean as '0.123 [0.101, 0.140]', a proportion
    (an entry with its count "k" of "n", e.g. a Wilson interval) as '100% [61%, 100%] (6 of 6)';
    `percent` True or False forces percents or decimals (None: percents for proportions only).
    '–' for no value."""
    if not entry or entry.get("mean") is None:
        return "–"
    counted = entry.get("k") is not None and entry.get("n") is not None
    fmt = "{:.0%}" if (counted if percent is None else percent) else "{:.3f}"
    text = f"{fmt.format(entry['mean'])} [{fmt.format(entry['low'])}, {fmt.format(entry['high'])}]"
    return f"{text} ({entry['k']} of {entry['n']})" if counted else text


def target_fact(summary: dict) -> str:
    """What the run explained, in words: "target: tabby" (a fixed class) or "target: each image's top
    class", with ", or the class its ground truth's label names (N images)" where box labels chose
    some images' targets (`batch --ground-truth`)."""
    settings = summary.get("settings", {})
    fixed = settings.get("target") is not None
    text = "target: " + (str(summary.get("target_label") or f"class {settings['target']}") if fixed
                         else "each image’s top class")
    located = summary.get("localisation")
    counts = located.get("counts") if isinstance(located, dict) else None
    labelled = counts.get("labelled", 0) if isinstance(counts, dict) else 0
    if isinstance(labelled, int) and labelled > 0:
        text += f", or the class its ground truth’s label names ({labelled} image{'s' if labelled != 1 else ''})"
    return text


def scores_in(summary: dict) -> list[str]:
    """The evaluation scores a summary holds (none for a run without evaluation)."""
    methods = summary.get("methods", {}).values()
    return [s for s in HIGHER_IS_BETTER if any(s in entry for entry in methods)]


def method_titles(summary: dict) -> dict[str, str]:
    """{method id: its title} of a summary's methods, the random map's included."""
    return {m: e.get("title", m) for m, e in summary.get("methods", {}).items()}


def _chart_titles(summary: dict) -> dict[str, str]:
    """`method_titles` as a chart's text (read from a file: never Plotly markup)."""
    return {m: html_text(t) for m, t in method_titles(summary).items()}


def _error_bar(entries: Sequence[Optional[dict]]) -> tuple[list, dict]:
    """Means, and Plotly's asymmetric error bars from {"mean", "low", "high"} (None: no value)."""
    means = [e["mean"] if e and e.get("mean") is not None else None for e in entries]
    plus = [e["high"] - e["mean"] if m is not None else None for e, m in zip(entries, means)]
    minus = [e["mean"] - e["low"] if m is not None else None for e, m in zip(entries, means)]
    return means, dict(type="data", symmetric=False, array=plus, arrayminus=minus, thickness=1.5, width=6)


def build_score_intervals(summary: dict) -> go.Figure:
    """One panel per score (deletion, insertion, ROAD): each method's mean over the images with its
    95% bootstrap interval as an error bar, the random map in grey; the hover says how many images
    were not scored. Without scores, the seconds per image instead."""
    titles = _chart_titles(summary)
    scores = scores_in(summary) or ["seconds"]
    names = {**SCORE_TITLES, "seconds": "Seconds per image ↓"}
    fig = make_subplots(rows=1, cols=len(scores), subplot_titles=[names[s] for s in scores], horizontal_spacing=0.08)
    for col, score in enumerate(scores, start=1):
        methods = [m for m, e in summary.get("methods", {}).items() if score in e]
        means, errors = _error_bar([summary["methods"][m][score] for m in methods])
        fig.add_trace(go.Bar(
            x=[titles[m] for m in methods], y=means, error_y=errors, name=names[score], showlegend=False,
            marker_color=[_RANDOM_COLOR if m == RANDOM else _METHOD_COLOR for m in methods],
            customdata=[[summary["methods"][m][score].get("n"), _not_scored(summary["methods"][m][score])]
                        for m in methods],
            hovertemplate="%{x}: %{y:.3f} (95% CI in the bar, %{customdata[0]} images%{customdata[1]})<extra></extra>",
        ), row=1, col=col)
    n = summary.get("explained", 0)
    title = wrapped(f"Scores over {n} image{'s' * (n != 1)}: means with 95% bootstrap intervals", 50)
    fig.update_layout(title=title, height=390, margin=dict(l=40, r=20, t=title_margin(title) + 55, b=40),
                      template="plotly_white")
    fig.update_annotations(yshift=10)  # the panels' titles clear of their top tick labels
    return fig


def _not_scored(entry: Optional[dict]) -> str:
    """', 3 not scored' for an entry with images left out for want of a score, else ''."""
    count = (entry or {}).get("not_scored") or 0
    return f", {count} not scored" if count else ""


def build_win_rates(summary: dict) -> go.Figure:
    """Grouped bars: per method and score, the share of images where the method's map scores
    better than the random map on the same image (over the images where both have a score), with
    its 95% interval (Wilson's for summaries that carry counts); a dashed line at 50%."""
    titles = _chart_titles(summary)
    fig = go.Figure()
    methods = [m for m in summary.get("methods", {}) if m != RANDOM]
    for score in scores_in(summary):
        entries = [summary["methods"][m].get(f"{score}_win_rate") for m in methods]
        means, errors = _error_bar(entries)
        counts = [[e.get("k"), e.get("n")] if e and e.get("k") is not None else ["?", "?"] for e in entries]
        fig.add_trace(go.Bar(x=[titles[m] for m in methods], y=means, error_y=errors, name=SCORE_TITLES[score],
                             customdata=counts, hovertemplate=f"%{{x}} beats random on {SCORE_TITLES[score]}: "
                             "%{y:.0%} (%{customdata[0]} of %{customdata[1]} images)<extra></extra>"))
    fig.add_hline(y=0.5, line_dash="dash", line_color=_RANDOM_COLOR)
    # named in the right margin, level with its line: over the bars it would hide one
    fig.add_annotation(text="chance", xref="paper", x=1, xanchor="left", xshift=4, y=0.5, yref="y", showarrow=False,
                       font=dict(color=_RANDOM_COLOR))
    title = wrapped("How often each map beats the random map on the same image", 50)
    fig.update_layout(title=title, barmode="group", yaxis=dict(range=[0, 1.05], tickformat=".0%"), height=380,
                      template="plotly_white", margin=dict(l=40, r=70, t=title_margin(title), b=110),
                      legend=dict(orientation="h", y=-0.35))
    return fig


def win_rate_table(summary: dict) -> dict[str, list[str]]:
    """{column: values}: each method's win rate against the random map per score, with its interval
    and count; a "not scored" column when some images of a method or the random map have no score
    (they are left out of its means and win rates)."""
    titles = method_titles(summary)
    entries = summary.get("methods", {})
    methods = [m for m in entries if m != RANDOM]
    scores = scores_in(summary)
    table = {"method": [titles[m] for m in methods]}
    for score in scores:
        table[f"beats random on {SCORE_TITLES[score]}"] = [
            interval_text(entries[m].get(f"{score}_win_rate"), percent=True) for m in methods]
    missing = {m: ", ".join(f"{SCORE_TITLES[s]} {entries[m][s]['not_scored']}" for s in scores
                            if (entries[m].get(s) or {}).get("not_scored"))
               for m in methods + [RANDOM] if m in entries}
    if any(missing.values()):
        table["not scored"] = [missing[m] or "–" for m in methods]
        if missing.get(RANDOM):
            table["not scored"] = [f"{text}; random map: {missing[RANDOM]}" for text in table["not scored"]]
    return table


#: How the tables name the localisation scores (`dataset.LOCALISATION_SCORES`; higher is better for each).
LOCALISATION_TITLES = {"pointing": "pointing game", "energy": "energy", "rank": "rank accuracy", "iou": "IoU"}


def localisation_table(summary: dict) -> dict[str, list[str]]:
    """{column: values} of summary.json's "localisation" ({} without): per map (each method, the
    random map, the centre prior) each score's mean with its 95% interval, then per method its win
    rates against the random map and against the centre prior, one share per score in
    `LOCALISATION_TITLES`' order ('–' for a baseline)."""
    maps = (summary.get("localisation") or {}).get("maps") or {}
    if not maps:
        return {}
    table = {"map": [entry.get("title", name) for name, entry in maps.items()]}
    for score, title in LOCALISATION_TITLES.items():
        table[title] = [interval_text(entry.get(score)) for entry in maps.values()]
    for baseline, words in ((RANDOM, "random map"), (CENTRE, "centre prior")):
        table[f"beats the {words} ({', '.join(LOCALISATION_TITLES.values())})"] = [
            " · ".join(interval_text(entry[f"{s}_win_rate_{baseline}"], percent=True).split(" [")[0]
                       for s in LOCALISATION_TITLES) if f"pointing_win_rate_{baseline}" in entry else "–"
            for entry in maps.values()]
    return table


# --- the gallery ------------------------------------------------------------------------------------


def outcome(row: dict) -> str:
    """'error' (a refused file), 'right' or 'wrong' (with a true label), else ''."""
    if row.get("error"):
        return "error"
    if not row.get("true_label"):
        return ""
    return "right" if is_correct(row.get("label"), row.get("true_label")) else "wrong"


def row_class(row: dict) -> Optional[str]:
    """The class a gallery row is filed under: its true label, else its predicted label."""
    return row.get("true_label") or row.get("label")


def classes(rows: Sequence[dict]) -> list[str]:
    """The classes of the gallery's class filter, sorted."""
    return sorted({c for c in map(row_class, rows) if c})


def _method_column(column: str) -> Optional[tuple[str, str]]:
    """(method, its score id or "seconds") of a column such as `gradcam_deletion_auc`, else None."""
    for suffix in ("seconds", *SCORE_WORDS, *LOCALISATION_TITLES):
        if column.endswith(f"_{suffix}") and len(column) > len(suffix) + 1:
            return column[:-len(suffix) - 1], suffix
    return None


def column_label(column: str, titles: dict[str, str]) -> Optional[str]:
    """How people read column `column`: 'file', 'probability', 'seconds', or a method's title (from
    `titles`, else its id) and the score's word, 'Grad-CAM · deletion', 'Grad-CAM · seconds',
    'Grad-CAM · pointing game'; None for a column that has no label (it is not offered for sorting:
    the baselines' localisation scores among them)."""
    if column in COLUMN_WORDS:
        return COLUMN_WORDS[column]
    if column.endswith(("_top_iou", "_spearman")):  # against a model B: one sort, "agreement" (not a localisation IoU)
        return None
    if column.startswith("b_"):  # against a model B with --eval: model B's scores of its own maps
        split = _method_column(column[2:])
        return (f"model B · {titles.get(split[0], split[0])} · {SCORE_WORDS[split[1]]}"
                if split is not None and split[1] in SCORE_WORDS else None)
    split = _method_column(column)
    if split is None:
        return None
    method, what = split
    if what in LOCALISATION_TITLES and method in (RANDOM, CENTRE):  # the baselines' scores: not a sort
        return None
    return f"{titles.get(method, method)} · {SCORE_WORDS.get(what) or LOCALISATION_TITLES.get(what, what)}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sortable_columns(rows: Sequence[dict]) -> list[str]:
    """The numeric columns the gallery can sort by (probability, seconds, each method's seconds and
    scores: those with a label, a finite number in some row), in column order."""
    keys = list(rows[0]) if rows else []
    return [k for k in keys if k != "path" and column_label(k, {}) is not None
            and any(_is_number(r.get(k)) for r in rows)]


def sort_choices(rows: Sequence[dict], titles: dict[str, str]) -> dict[str, str]:
    """The gallery's sort menu: {column id: its label (`column_label`)}, the file first, then
    `sortable_columns`. The Dataset page and the dataset report both show these labels."""
    return {k: column_label(k, titles) for k in ["path", *sortable_columns(rows)]}


def outcome_choices(rows: Sequence[dict]) -> dict[str, Optional[str]]:
    """The outcome filter's choices that apply to `rows` (a subset of `OUTCOMES`, by label): correct
    and wrong only when some explained row has a true label, refused files only when a file was refused."""
    truth = any(r.get("true_label") and not r.get("error") for r in rows)
    refused = any(r.get("error") for r in rows)
    applies = {None: True, "right": truth, "wrong": truth, "error": refused}
    return {label: value for label, value in OUTCOMES.items() if applies[value]}


def has_predictions(rows: Sequence[dict]) -> bool:
    """Whether some row has a top-1 probability (the low-confidence filter applies)."""
    return any(not r.get("error") and _is_number(r.get("probability")) for r in rows)


def filter_rows(rows: Sequence[dict], cls: Optional[str] = None, want: Optional[str] = None,
                low_only: bool = False, threshold: float = LOW_CONFIDENCE) -> list[dict]:
    """The rows of class `cls` (None: all), outcome `want` ('right', 'wrong', 'error'; None: all),
    and, with `low_only`, a top-1 probability below `threshold`."""
    return [r for r in rows if (cls is None or row_class(r) == cls) and (want is None or outcome(r) == want)
            and (not low_only or (r.get("probability") is not None and r["probability"] < threshold))]


def sort_rows(rows: Sequence[dict], key: str = "path", descending: bool = False) -> list[dict]:
    """`rows` sorted by column `key`; rows without a value come last either way."""
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    return sorted(present, key=lambda r: r[key], reverse=descending) + missing


def page_of(rows: Sequence[dict], page: int, per_page: int = 12) -> tuple[list[dict], int]:
    """(the rows of 1-based page `page`, clamped to the pages there are; the number of pages)."""
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(1, int(page)), pages)
    return list(rows[(page - 1) * per_page: page * per_page]), pages


__all__ = ["COLUMN_WORDS", "LOCALISATION_TITLES", "LOW_CONFIDENCE", "OUTCOMES", "SCORE_TITLES", "SCORE_WORDS", "build_score_intervals",
           "build_win_rates", "classes", "column_label", "filter_rows", "has_predictions", "interval_text",
           "localisation_table", "method_titles", "outcome", "outcome_choices", "page_of", "row_class", "scores_in", "sort_choices",
           "sort_rows", "sortable_columns", "target_fact", "win_rate_table"]
