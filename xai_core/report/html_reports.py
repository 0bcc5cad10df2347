"""The HTML reports: one image's (`image_report_html`: the dashboard's CAM, DFF and Faithfulness
exports) and a dataset run's (`dataset_report_html`, written as its index.html).

index.html of a dataset run: the summary (score means with 95% intervals, win rates against the
random map, accuracy) and a gallery of every image with its maps, filterable by class, correct or
wrong and low confidence, sortable by any score. One self-contained file (the rows embedded as JSON,
plain JavaScript, pictures from `maps/` by relative path): it opens offline from the results folder.
The gallery shows whichever pictures were written: the overlays (KEY_METHOD.jpg, or a previous
version's .png), else each map drawn in the browser from the row's `thumbs` (a small copy of its raw
map, `dataset.writer`) over the picture, else no images, with a sentence that says why.
Written here: no library we use builds such a report."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from .._files import write_atomic
from ..faithfulness import RANDOM
from ..predict import LOW_CONFIDENCE
from .dataset_figures import interval_text, scores_in
from .figures import PNG_EXPORT
from .pictures import JET

NAMES = {"deletion_auc": "deletion AUC (lower is better)", "insertion_auc": "insertion AUC (higher is better)",
         "road_combined": "ROAD combined (higher is better)"}
SHORT = {"deletion_auc": "deletion", "insertion_auc": "insertion", "road_combined": "ROAD"}


def write_dataset_report(out: Path, rows: Sequence[dict], summary: dict) -> Path:
    """Write `out/index.html` for `rows` (results.parquet's) and `summary` (summary.json's),
    atomically: a failed write (a full disk) leaves the previous index.html whole."""
    return write_atomic(Path(out) / "index.html", dataset_report_html(rows, summary))


def _summary_table(summary: dict) -> str:
    methods = summary.get("methods", {})
    scores = scores_in(summary)
    head = ["Method"] + [f"{NAMES[s]} (mean, 95% CI)" for s in scores] + [f"beats random on {SHORT[s]} (share of images)" for s in scores]
    lines = ["<table class='summary'><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for method, entry in methods.items():
        cells = [entry.get("title", method)]
        cells += [interval_text(entry.get(s)) for s in scores]
        cells += [interval_text(entry.get(f"{s}_win_rate")) if method != RANDOM else "–" for s in scores]
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(lines) + "</table>"


def dataset_report_html(rows: Sequence[dict], summary: dict) -> str:
    """The dataset run's index.html (see the module docstring). Every text is escaped for where it
    goes: HTML text for the header and the table, and in the embedded JSON every `<`, `>` and `&`
    (so no file name or label can close the script or open a comment), with NaN and infinities as null."""
    settings = summary.get("settings", {})
    facts = [f"{summary.get('explained', 0)} of {summary.get('files', 0)} files explained",
             f"{summary.get('refused', 0)} refused",
             f"model {settings.get('model', '?')}", f"layer {', '.join(settings.get('layers', []))}"]
    if summary.get("fingerprint"):
        facts.append(f"model fingerprint {summary['fingerprint']}")
    if settings.get("target") is not None:
        facts.append(f"target {summary.get('target_label') or settings['target']}")
    if (summary.get("seconds_per_image") or {}).get("mean") is not None:
        scored = " and the faithfulness scores" if settings.get("evaluate") else ""
        facts.append(f"{summary['seconds_per_image']['mean']:.3f} s per image (decoding, every method's map{scored} "
                     "and the pictures written: each image's share of its batch)")
    if "accuracy" in summary:
        facts.append(f"accuracy {interval_text(summary['accuracy'])}")
    if summary.get("accuracy_note"):
        facts.append(summary["accuracy_note"])
    data = script_json({"rows": list(rows), "methods": list(settings.get("methods", [])),
                        "titles": {m: e.get("title", m) for m, e in summary.get("methods", {}).items()},
                        "low": LOW_CONFIDENCE, "jet": JET.tolist()})
    parts = {"title": html.escape(f"Explanations: {summary.get('input', 'dataset')}"),
             "facts": html.escape(" · ".join(facts)), "summary": _summary_table(summary), "data": data}
    return _SLOT.sub(lambda m: parts[m.group(1)], TEMPLATE)  # one pass: no text can fill another slot


#: A slot of `TEMPLATE`.
_SLOT = re.compile(r"\{\{(title|facts|summary|data)\}\}")
#: Characters that must not appear raw inside a <script> block (an HTML parser reads `</script>`,
#: `<!--` before JSON.parse does).
_SCRIPT_UNSAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def script_json(value: object) -> str:
    """`value` as JSON for a `<script type="application/json">` block: `<`, `>` and `&` escaped as
    \\u003c, \\u003e and \\u0026 (JSON.parse reads them back as they were), NaN and infinities as null."""
    return json.dumps(_finite(value), allow_nan=False).translate(_SCRIPT_UNSAFE)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    return _finite(float(value))  # numpy scalars


def image_report_html(
    title: str,
    figures: Sequence[tuple[str, go.Figure]],
    settings: Mapping[str, object],
    notes: Sequence[str] = (),
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """A self-contained HTML report: `title`, a settings table, `notes`, then each (heading, html)
    of `sections` (trusted HTML fragments built by xai_core, e.g. a score table), then each
    (heading, figure) interactive, with plotly.js embedded once (opens offline, no CDN)."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items()
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto;color:#222}"
        "th{text-align:left;padding-right:1em;vertical-align:top}td,th{padding:.2em .5em}"
        "table{border-collapse:collapse;margin-bottom:1em}tr:nth-child(odd){background:#f4f6f8}"
        ".note{background:#eef5ff;padding:.5em 1em;border-left:4px solid #1f77b4;margin:.5em 0}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<table>{rows}</table>",
        *[f"<div class='note'>{html.escape(n)}</div>" for n in notes],
    ]
    for heading, fragment in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(fragment)
    for i, (heading, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        config = {"toImageButtonOptions": PNG_EXPORT, "displaylogo": False}
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config=config))
    parts.append("</body></html>")
    return "\n".join(parts)


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table.summary{border-collapse:collapse;margin:.5rem 0 1.5rem}
table.summary td,table.summary th{border:1px solid #ccc;padding:.3rem .6rem;font-size:.9rem;text-align:left}
#controls{display:flex;gap:1rem;flex-wrap:wrap;align-items:center;margin:.5rem 0 1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem;margin:.5rem 0;display:flex;gap:.75rem;align-items:flex-start}
.card img{width:160px;height:160px;object-fit:cover;border-radius:3px}
.card figure{margin:0;text-align:center;font-size:.8rem}
.drawn{position:relative;width:160px;height:160px}
.drawn canvas{position:absolute;left:0;top:0;width:160px;height:160px;opacity:.5;border-radius:3px}
.meta{font-size:.85rem;min-width:14rem}.wrong{color:#b00020}.right{color:#1b7f3b}.error{color:#b00020}
</style></head><body>
<h1>{{title}}</h1><p>{{facts}}</p>
<h2>Methods over the dataset</h2>
<p>Means with 95% bootstrap intervals; "beats random" is the share of images where the method's map
scores better than the random map on the same image, with its 95% Wilson interval (deletion: lower is
better; insertion and ROAD: higher).</p>
{{summary}}
<h2>Gallery</h2>
<div id="controls">
<label>Class <select id="cls"><option value="">all</option></select></label>
<label>Prediction <select id="correct"><option value="">all</option><option value="right">correct</option>
<option value="wrong">wrong</option><option value="error">refused files</option></select></label>
<label><input type="checkbox" id="low"> low confidence only (top-1 below <span id="lowv"></span>)</label>
<label>Sort by <select id="sort"><option value="path">file</option></select></label>
<label><input type="checkbox" id="desc"> descending</label>
<span id="count"></span>
</div>
<p id="nopictures" hidden></p>
<div id="gallery"></div>
<script id="data" type="application/json">{{data}}</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const rows = D.rows, methods = D.methods;
const $ = id => document.getElementById(id);
$('lowv').textContent = D.low;
const norm = s => String(s || '').replace(/_/g, ' ').trim().toLowerCase();
const classes = [...new Set(rows.map(r => r.true_label || r.label).filter(Boolean))].sort();
classes.forEach(c => $('cls').add(new Option(c, c)));
const numeric = Object.keys(rows[0] || {}).filter(k => k !== 'maps_index' && rows.some(r => typeof r[k] === 'number'));
numeric.forEach(k => $('sort').add(new Option(k, k)));
const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const index = new Map(rows.map((r, i) => [r, i]));
const written = r => r.error ? 'none' : (r.pictures || 'legacy');  // legacy: a previous version's layout
if (rows.length && rows.every(r => written(r) === 'none')) {
  $('nopictures').hidden = false;
  $('nopictures').textContent = 'This run wrote no pictures (--pictures none), so the gallery lists the files '
    + 'without images; rerun the batch command with --pictures maps or all to see them.';
}
function mapFigure(r, m) {
  const title = `<figcaption>${esc(D.titles[m] || m)}</figcaption>`, level = written(r);
  if (level === 'all' || level === 'legacy')
    return `<figure><img loading="lazy" src="maps/${esc(r.key)}_${esc(m)}.${level === 'all' ? 'jpg' : 'png'}" alt="${esc(m)}">${title}</figure>`;
  if (level === 'maps' && r.thumbs && r.thumbs.maps[m])
    return `<figure><div class="drawn"><img loading="lazy" src="maps/${esc(r.key)}.jpg" alt="${esc(m)}">`
      + `<canvas data-row="${index.get(r)}" data-method="${esc(m)}"></canvas></div>${title}</figure>`;
  return '';
}
function draw(canvas) {  // a raw map's thumbnail in jet colours, over its picture at half opacity
  const t = rows[+canvas.dataset.row].thumbs, bytes = atob(t.maps[canvas.dataset.method]);
  canvas.width = t.w; canvas.height = t.h;
  const ctx = canvas.getContext('2d'), img = ctx.createImageData(t.w, t.h);
  for (let i = 0; i < bytes.length; i++) {
    const c = D.jet[bytes.charCodeAt(i)];
    img.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}
function state(r) { if (r.error) return 'error'; if (!r.true_label) return ''; return norm(r.label) === norm(r.true_label) ? 'right' : 'wrong'; }
function render() {
  const cls = $('cls').value, want = $('correct').value, low = $('low').checked, key = $('sort').value, desc = $('desc').checked;
  let shown = rows.filter(r => (!cls || (r.true_label || r.label) === cls) && (!want || state(r) === want)
    && (!low || (r.probability !== null && r.probability < D.low)));
  shown.sort((a, b) => { const x = a[key], y = b[key];
    if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (desc ? -1 : 1); });
  $('count').textContent = shown.length + ' of ' + rows.length + ' images';
  $('gallery').innerHTML = shown.map(r => {
    if (r.error) return `<div class="card"><div class="meta"><b>${esc(r.path)}</b><br><span class="error">${esc(r.error)}</span></div></div>`;
    const s = state(r);
    const truth = r.true_label ? `<br>true: <span class="${s}">${esc(r.true_label)}</span>` : '';
    const scores = methods.map(m => ['deletion_auc', 'insertion_auc', 'road_combined'].filter(k => r[m + '_' + k] !== undefined && r[m + '_' + k] !== null)
      .map(k => `${esc(D.titles[m] || m)} ${k}: ${r[m + '_' + k].toFixed(3)}`).join('<br>')).filter(Boolean).join('<br>');
    const maps = methods.map(m => mapFigure(r, m)).join('');
    const picture = written(r) === 'none' ? `<figure><figcaption>${esc(r.path)}</figcaption></figure>`
      : `<figure><img loading="lazy" src="maps/${esc(r.key)}.jpg" alt="image"><figcaption>${esc(r.path)}</figcaption></figure>`;
    return `<div class="card">${picture}${maps}
      <div class="meta"><b>${esc(r.label)}</b> ${(100 * r.probability).toFixed(1)}%${truth}<br>target: ${esc(r.target_label)}<br>${scores}</div></div>`;
  }).join('');
  document.querySelectorAll('#gallery canvas').forEach(draw);
}
['cls', 'correct', 'low', 'sort', 'desc'].forEach(id => $(id).addEventListener('change', render));
render();
</script></body></html>
"""


__all__ = ["dataset_report_html", "image_report_html", "script_json", "write_dataset_report"]
