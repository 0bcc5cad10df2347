"""index.html's "Concepts per class" section of a dataset run with --concepts (summary.json's
"concepts" block, `concepts.dataset_concepts`): per class its concepts with their labels, importance
bars (mean share of the class logit, the 95% interval as a line), the fidelity area, a crop and a link
to the class's own atlas (OUT/concepts/<class>/index.html). Plain HTML and inline SVG, every string
escaped (`html_text`)."""

from __future__ import annotations

from typing import Optional

from .escaping import html_text

def _interval(mean: Optional[float], low: Optional[float], high: Optional[float]) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else f"{mean:.3f}"


def importance_bars(concepts: list, width: int = 460, left: int = 200, row: int = 22) -> str:
    """Inline SVG: one horizontal bar per concept (its mean importance, from zero) and its 95%
    interval as a line; `concepts`: summary entries (index, labels, importance, importance_low,
    importance_high; missing values are left out). Used by this section and by a class's own atlas
    (`concepts.write_concept_results`), at their own sizes."""
    values = [v for c in concepts for v in (c.get("importance"), c.get("importance_low"), c.get("importance_high"))
              if v is not None] + [0.0]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    bar = row - 8

    def x(v: float) -> float:
        return left + (v - low) / span * (width - left - 10)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{row * len(concepts) + 6}' "
             "role='img' aria-label='importance of each concept with its 95% interval'>",
             f"<line x1='{x(0):.1f}' y1='0' x2='{x(0):.1f}' y2='{row * len(concepts)}' stroke='#888'/>"]
    for i, c in enumerate(concepts):
        y = i * row + 3
        name = "concept {}: {}".format(c["index"], c["labels"][0]["label"] if c.get("labels") else "")
        parts.append(f"<text x='0' y='{y + bar - 1}' font-size='12'>{html_text(name)}</text>")
        if c.get("importance") is not None:
            a, b = sorted((x(0), x(c["importance"])))
            parts.append(f"<rect x='{a:.1f}' y='{y}' width='{max(b - a, 1):.1f}' height='{bar}' fill='#4a7fb5'/>")
        if c.get("importance_low") is not None and c.get("importance_high") is not None:
            parts.append(f"<line x1='{x(c['importance_low']):.1f}' y1='{y + bar / 2:g}' x2='{x(c['importance_high']):.1f}' "
                         f"y2='{y + bar / 2:g}' stroke='#000' stroke-width='2'/>")
    return "".join(parts) + "</svg>"


def concepts_section(summary: dict) -> str:
    """The section's HTML for `summary` (summary.json's content); '' without a "concepts" block."""
    block = summary.get("concepts")
    if not isinstance(block, dict):
        return ""
    skipped = block.get("skipped", {})
    lines = ["<h2>Concepts per class</h2>",
             f"<p>{html_text(block.get('k'))} concepts per class with at least {html_text(block.get('min_images'))} "
             f"images, at layer {html_text(block.get('layer', ''))}, from the activations kept during the run. "
             f"Importance: {html_text(block.get('method', ''))}, the mean share of the class logit with its 95% "
             f"bootstrap interval. Skipped for having fewer images: {html_text(skipped.get('predicted', 0))} predicted "
             f"and {html_text(skipped.get('true', 0))} true classes.</p>"]
    lines += [f"<p class='note'>{html_text(n)}</p>" for n in block.get("notes", [])]
    for entry in block.get("classes", []):
        folder = entry["folder"]
        kind = "predicted as" if entry["kind"] == "predicted" else "true class"
        f = entry.get("fidelity") or {}
        lines.append(f"<h3>{html_text(kind)} {html_text(entry['label'])} ({html_text(entry['images'])} images)</h3>"
                     f"<p><a href='{html_text(folder + '/index.html', quote=True)}'>the class's atlas</a>; fidelity "
                     f"area {_interval(f.get('auc'), f.get('auc_low'), f.get('auc_high'))} removing the concepts by "
                     f"importance, {_interval(f.get('random_auc'), None, None)} in a random order.</p>")
        lines.append(importance_bars(entry["concepts"]))
        lines.append("<table class='summary'><tr><th>concept</th><th>labels</th><th>importance (95% CI)</th>"
                     "<th>where</th></tr>")
        for c in entry["concepts"]:
            labels = ", ".join(f"{html_text(x['label'])} ({x['probability']:.2f})" for x in c.get("labels", []))
            crop = (f"<img src='{html_text(folder + '/' + c['crops'][0], quote=True)}' width='64' height='64' "
                    f"alt='concept {c['index']}'>" if c.get("crops") else "")
            lines.append(f"<tr><td>{html_text(c['index'])}</td><td>{labels}</td><td>"
                         f"{_interval(c.get('importance'), c.get('importance_low'), c.get('importance_high'))}"
                         f"</td><td>{crop}</td></tr>")
        lines.append("</table>")
    return "\n".join(lines)


__all__ = ["concepts_section", "importance_bars"]
