"""A `ClassConcepts` as a results folder: concepts.json (every number, the crops' files and
sources), crops/ (each concept's crops as JPEG) and index.html, an offline, self-contained atlas
(importance bars with their intervals and the fidelity curves as inline SVG, the crops, the notes).
Every string from a user, a model or a file is escaped (`report.html_text`)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Optional, Sequence

from PIL import Image

from .._files import write_atomic
from ..report import html_text, importance_bars
from .results import ClassConcepts

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
          ".crops img{width:96px;height:96px;margin:2px;image-rendering:pixelated}.note{color:#555}"
          "figure{display:inline-block;margin:2px;text-align:center;font-size:11px}")


def _number(value: Optional[float]) -> Optional[float]:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def crop_name(concept: int, rank: int) -> str:
    """The crop's file under crops/."""
    return f"concept_{concept:02d}_{rank:02d}.jpg"


def concepts_summary(result: ClassConcepts, sources: Sequence[str]) -> dict:
    """JSON-ready: the settings, each concept (importance with its interval, per class, labels, crops
    with their source files), the residual, the fidelity curves and areas, the notes."""
    concepts = []
    for c in result.concepts:
        concepts.append({
            "index": c.index, "labels": [{"label": label, "probability": p} for label, p in c.labels],
            "importance": _number(c.importance), "importance_low": _number(c.importance_low),
            "importance_high": _number(c.importance_high), "mean_coefficient": _number(c.mean_coefficient),
            "importance_by_class": {k: [_number(v) for v in t] for k, t in c.importance_by_class.items()},
            "crops": [{"file": f"crops/{crop_name(c.index, r)}", "image": n, "source": sources[n], "x": x, "y": y}
                      for r, (n, x, y, _) in enumerate(c.crops)],
        })
    return {
        "model": result.model, "layer": result.layer, "targets": list(result.targets), "images": result.images,
        "method": result.method, "solver": result.solver, "seed": result.seed, "residual": _number(result.residual),
        "picture_size": list(result.picture_size), "concepts": concepts,
        "fidelity": {k: ([_number(x) if isinstance(x, float) else x for x in v] if isinstance(v, list)
                         else _number(v) if isinstance(v, float) else v)
                     for k, v in result.fidelity.items()},
        "notes": list(result.notes), "timings": {k: _number(v) for k, v in result.timings.items()},
    }


def write_concept_results(result: ClassConcepts, out: str, sources: Sequence[str]) -> dict:
    """Write the results folder `out` (concepts.json, crops/, index.html); `sources[i]` names image
    i (e.g. its path relative to the input). Returns the summary. Raises `OSError`."""
    folder = Path(out)
    (folder / "crops").mkdir(parents=True, exist_ok=True)
    for c in result.concepts:
        for rank, (_, _, _, crop) in enumerate(c.crops):
            buffer = io.BytesIO()
            Image.fromarray(crop).save(buffer, format="JPEG", quality=90)
            write_atomic(folder / "crops" / crop_name(c.index, rank), buffer.getvalue(), sync=False)
    summary = concepts_summary(result, sources)
    write_atomic(folder / "concepts.json", json.dumps(summary, indent=2, allow_nan=False))
    write_atomic(folder / "index.html", atlas_html(summary))
    return summary


def _curves(fidelity: dict) -> str:
    """Inline SVG: class probability against concepts removed, by importance (blue) and random (grey)."""
    width, height, pad = 420, 220, 36
    removed, rand = fidelity["removed"], fidelity["random"]
    top = max([v for v in removed + rand if v is not None] + [1e-9])
    steps = max(len(removed) - 1, 1)

    def point(i: int, v: float) -> str:
        return f"{pad + i / steps * (width - 2 * pad):.1f},{height - pad - v / top * (height - 2 * pad):.1f}"

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             "aria-label='class probability against the number of concepts removed'>",
             f"<rect x='{pad}' y='{pad}' width='{width - 2 * pad}' height='{height - 2 * pad}' fill='none' stroke='#ccc'/>"]
    for values, colour in ((rand, "#999"), (removed, "#4a7fb5")):
        pts = " ".join(point(i, v) for i, v in enumerate(values) if v is not None)
        parts.append(f"<polyline points='{pts}' fill='none' stroke='{colour}' stroke-width='2'/>")
    parts.append(f"<text x='{pad}' y='{height - 8}' font-size='11'>concepts removed: 0 to {steps}</text>")
    parts.append(f"<text x='{pad}' y='{pad - 8}' font-size='11'>class probability (max {top:.3g})</text>")
    return "".join(parts) + "</svg>"


def _interval(mean, low, high) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else f"{mean:.3f}"


def atlas_html(summary: dict) -> str:
    """index.html of the results folder (offline: inline SVG and CSS, crops from crops/)."""
    esc = html_text
    title = f"Concepts of {' and '.join(summary['targets'])} in {summary['model']}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>",
             f"<p>{summary['images']} images, layer {esc(summary['layer'])}, {len(summary['concepts'])} concepts "
             f"({esc(summary['solver'])}, seed {summary['seed']}). Importance: {esc(summary['method'])}; mean share "
             f"of the class logit with a 95% bootstrap interval. Mean residual: "
             f"{_interval(summary['residual'], None, None)}.</p>",
             "<h2>Importance</h2>", importance_bars(summary["concepts"], width=520, left=180, row=26), "<table><tr><th>concept</th><th>labels</th><th>importance</th>"
             + "".join(f"<th>for {esc(t)}</th>" for t in summary["targets"]) + "</tr>"]
    for c in summary["concepts"]:
        labels = ", ".join(f"{esc(x['label'])} ({x['probability']:.2f})" for x in c["labels"])
        cells = [str(c["index"]), labels, _interval(c["importance"], c["importance_low"], c["importance_high"])]
        cells += [_interval(*c["importance_by_class"].get(t, [None, None, None])) for t in summary["targets"]]
        parts.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    parts.append("</table>")
    f = summary["fidelity"]
    if f:
        parts += ["<h2>Fidelity</h2><p>Class probability as the concepts are projected out of the activations, most "
                  "important first (blue) or in a random order (grey); a lower area means the concepts carry the "
                  "decision.</p>", _curves(f),
                  "<table><tr><th>removed</th><th>by importance</th><th>random order</th></tr>"]
        parts += [f"<tr><td>{i}</td><td>{a:.4f}</td><td>{b:.4f}</td></tr>"
                  for i, (a, b) in enumerate(zip(f["removed"], f["random"]))]
        parts.append(f"<tr><th>area</th><td>{_interval(f['auc'], f['auc_low'], f['auc_high'])}</td>"
                     f"<td>{_interval(f['random_auc'], f['random_auc_low'], f['random_auc_high'])}</td></tr></table>")
    parts.append("<h2>Where each concept is</h2>")
    for c in summary["concepts"]:
        labels = ", ".join(esc(x["label"]) for x in c["labels"])
        parts.append(f"<h3>Concept {c['index']}: {labels}</h3><div class='crops'>")
        parts += [f"<figure><img src='{esc(crop['file'], quote=True)}' alt='{esc(crop['source'], quote=True)}'>"
                  f"<figcaption>{esc(Path(crop['source']).name)}</figcaption></figure>" for crop in c["crops"]]
        parts.append("</div>")
    parts += [f"<p class='note'>{esc(n)}</p>" for n in summary["notes"]]
    return "\n".join(parts + ["</body></html>"])


__all__ = ["atlas_html", "concepts_summary", "crop_name", "write_concept_results"]
