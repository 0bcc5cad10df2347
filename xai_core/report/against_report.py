"""A dataset run against a model B (`batch --against`) in words, for the HTML report and the Dataset
page alike: the "against" block of summary.json as a table (method, mean agreement with its
interval, per-class agreement) and a sentence on the accuracy change, and each row's `agreement`
(its mean Spearman over the methods), which the gallery sorts by ("least agreement first")."""

from __future__ import annotations

import math
from typing import Optional, Sequence

from .dataset_figures import interval_text
from .escaping import html_text

#: The per-class cell lists this many classes (the least-agreeing first), then how many more.
CLASSES_SHOWN = 5


def mean_agreement(row: dict, methods: Sequence[str]) -> Optional[float]:
    """The mean of a row's Spearman correlations over `methods` (those defined), None without any."""
    values = [row.get(f"{m}_spearman") for m in methods]
    values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def with_agreement(rows: Sequence[dict], methods: Sequence[str]) -> list[dict]:
    """`rows`, each with `agreement` (`mean_agreement`; None where no method's maps were compared)."""
    return [{**row, "agreement": mean_agreement(row, methods)} for row in rows]


def against_table(summary: dict) -> dict[str, list[str]]:
    """The against block as a table {column: cells}, one row per method: its title, the mean
    Spearman and the mean top-20% IoU with their 95% intervals, and the per-class mean Spearman (the
    least-agreeing `CLASSES_SHOWN` classes first); {} without a model B."""
    block = summary.get("against") or {}
    if not block.get("methods"):
        return {}
    table: dict[str, list[str]] = {"Method": [], "Spearman (mean, 95% CI)": [], "top-20% IoU (mean, 95% CI)": [],
                                   "per class: Spearman (least agreeing first)": []}
    for method, entry in block["methods"].items():
        table["Method"].append(str(entry.get("title", method)))
        table["Spearman (mean, 95% CI)"].append(interval_text(entry.get("spearman")))
        table["top-20% IoU (mean, 95% CI)"].append(interval_text(entry.get("top_iou")))
        table["per class: Spearman (least agreeing first)"].append(_classes(entry.get("classes") or {}))
    return table


def _classes(classes: dict) -> str:
    known = sorted(((v["spearman"]["mean"], str(name)) for name, v in classes.items()
                    if (v.get("spearman") or {}).get("mean") is not None))
    shown = "; ".join(f"{name} {mean:.2f}" for mean, name in known[:CLASSES_SHOWN])
    more = len(known) - CLASSES_SHOWN
    return (shown + (f"; and {more} more" if more > 0 else "")) or "–"


def against_sentences(summary: dict) -> list[str]:
    """What the table does not say, in sentences: which model B, how many images were compared,
    and each model's accuracy with the change (where folders are classes)."""
    block = summary.get("against") or {}
    if not block:
        return []
    model = (summary.get("settings") or {}).get("model", "model A")
    out = [f"Model A {model} against model B {block.get('model', '?')} (fingerprint {block.get('fingerprint', '?')}): "
           f"{block.get('compared', 0)} images compared"
           + (f", {block['not_compared']} not (model B does not know the class model A explains; see the rows' "
              "b_note)" if block.get("not_compared") else "") + "."]
    if block.get("accuracy_a") or block.get("accuracy_b"):
        change = block.get("accuracy_change")
        out.append(f"Accuracy: A {interval_text(block.get('accuracy_a'))}, B {interval_text(block.get('accuracy_b'))}"
                   + (f"; change B − A {interval_text(change, percent=True)}." if change else "."))
    return out


def against_section_html(summary: dict) -> str:
    """The report's "Model A against model B" section (every text escaped), '' without a model B."""
    table = against_table(summary)
    if not table:
        return ""
    lines = ["<h2>Model A against model B</h2>",
             "<p>" + " ".join(html_text(s) for s in against_sentences(summary)) + " Agreement of the two models' "
             "maps of the same class: Spearman's rank correlation of the pixels and the IoU of each map's top 20%, "
             "means with 95% bootstrap intervals.</p>",
             "<table class='summary'><tr>" + "".join(f"<th>{html_text(h)}</th>" for h in table) + "</tr>"]
    for cells in zip(*table.values()):
        lines.append("<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in cells) + "</tr>")
    return "\n".join(lines) + "</table>"


__all__ = ["CLASSES_SHOWN", "against_section_html", "against_sentences", "against_table", "mean_agreement",
           "with_agreement"]
