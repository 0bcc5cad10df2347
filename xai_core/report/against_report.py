"""A dataset run against a model B (`batch --against`) in words, for the HTML report and the Dataset
page alike: the "against" block of summary.json as a table (method, mean agreement with its
interval, per-class agreement) and a sentence on the accuracy change, and each row's `agreement`
(its mean Spearman over the methods), which the gallery sorts by ("least agreement first"); with
--eval a second table: each method's faithfulness scores of both models' maps and the change B − A."""

from __future__ import annotations

import math
from typing import Optional, Sequence

from ..faithfulness import HIGHER_IS_BETTER
from .dataset_figures import SCORE_WORDS, interval_text
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


def against_scores_table(summary: dict) -> dict[str, list[str]]:
    """The against block's "faithfulness" (a run with --eval) as a table {column: cells}, one row per
    method and score: model A's mean score of its maps, model B's of its own and the paired change
    B − A, each with its 95% interval, over the images both models' maps were scored on, and which
    way is better; {} without it."""
    block = (summary.get("against") or {}).get("faithfulness") or {}
    if not block:
        return {}
    titles = {m: str(e.get("title", m)) for m, e in ((summary.get("against") or {}).get("methods") or {}).items()}
    table: dict[str, list[str]] = {"Method": [], "Score": [], "Model A (mean, 95% CI)": [],
                                   "Model B (mean, 95% CI)": [], "B − A (mean, 95% CI)": [], "Images": []}
    for method, scores in block.items():
        for score, entry in scores.items():
            better = "higher" if HIGHER_IS_BETTER.get(score, True) else "lower"
            table["Method"].append(titles.get(method, str(method)))
            table["Score"].append(f"{SCORE_WORDS.get(score, score)} ({better} is better)")
            table["Model A (mean, 95% CI)"].append(interval_text(entry.get("a")))
            table["Model B (mean, 95% CI)"].append(interval_text(entry.get("b")))
            table["B − A (mean, 95% CI)"].append(interval_text(entry.get("change")))
            table["Images"].append(str((entry.get("change") or {}).get("n", 0)))
    return table


_SCORES_NOTE = ("Faithfulness of each model's own maps, scored with that model (deletion, insertion, ROAD), over "
               "the images both models' maps were scored on: means and the paired change B − A, with 95% "
               "bootstrap intervals.")


def against_scores_note(summary: dict) -> str:
    """What `against_scores_table` shows, in a sentence ('' without it): the report and the Dataset
    page caption the table with it."""
    return _SCORES_NOTE if against_scores_table(summary) else ""


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
    if block.get("layers"):
        out.append(f"Model B's target layer{'s' * (len(block['layers']) != 1)}: {', '.join(block['layers'])}.")
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
    lines.append("</table>")
    scores = against_scores_table(summary)
    if scores:
        lines += [f"<p>{html_text(_SCORES_NOTE)}</p>",
                  "<table class='summary'><tr>" + "".join(f"<th>{html_text(h)}</th>" for h in scores) + "</tr>"]
        lines += ["<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in cells) + "</tr>"
                  for cells in zip(*scores.values())]
        lines.append("</table>")
    return "\n".join(lines)


__all__ = ["CLASSES_SHOWN", "against_scores_note", "against_scores_table", "against_section_html", "against_sentences",
           "against_table", "mean_agreement", "with_agreement"]
