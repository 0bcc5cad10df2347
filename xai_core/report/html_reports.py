"""The HTML reports: one image's (`image_report_html`: the dashboard's CAM, DFF and Faithfulness
exports) and a dataset run's (`dataset_report_html`, written as its index.html).

index.html of a dataset run: the summary (score means with 95% intervals, win rates against the
random map, accuracy) and a gallery of every image with its maps, filterable by class, correct or
wrong and low confidence (each filter only where it applies), sortable by any score or time, in the
Dataset page's words (`dataset_figures.sort_choices`), `gallery.PAGE` images a page. Its size does not
grow with the run: it embeds the summary and the gallery's first page (as JSON, plain JavaScript,
pictures from `maps/` by relative path), and loads the whole run's rows from sidecar files in
gallery/ (`gallery.py`) with a `<script src>`; it opens offline from the results folder.
The gallery shows whichever pictures were written: the overlays (KEY_METHOD.jpg, or a previous
version's .png), else each map drawn in the browser over the picture from a small copy of its raw
map (`dataset.writer`'s `thumbs`, embedded for the first page, gallery/thumbs/KEY.png beyond it),
else no images, with a sentence that says why.
Written here: no library we use builds such a report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Optional, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from .._files import write_atomic
from ..faithfulness import RANDOM
from ..predict import LOW_CONFIDENCE
from .concepts_section import concepts_section
from .dataset_figures import (LOCALISATION_TITLES, SCORE_WORDS, has_predictions, interval_text, localisation_table,
                              method_titles, outcome_choices, scores_in, sort_choices, target_fact)
from .escaping import html_text
from .figures import PNG_EXPORT
from .against_report import against_section_html, with_agreement
from .gallery import B_THUMB, PAGE, Thumbnails, classes_of, gallery_order, prune_gallery, script_json, write_gallery
from .pictures import JET

NAMES = {"deletion_auc": "deletion AUC (lower is better)", "insertion_auc": "insertion AUC (higher is better)",
         "road_combined": "ROAD combined (higher is better)"}


def write_dataset_report(out: Path, rows: Sequence[dict], summary: dict,
                         thumbnails: Optional[Thumbnails] = None) -> Path:
    """Write `out/index.html` for `rows` (results.parquet's) and `summary` (summary.json's), with
    the gallery's sidecars in `out/gallery` first (`gallery.write_gallery`) and, once index.html is
    written, without those it no longer reads. `thumbnails` gives rows their map thumbnails a page
    or a chunk at a time (None: the rows carry theirs). Every file is written atomically: a failed
    write (a full disk) leaves the previous index.html whole."""
    path = Path(out) / "index.html"
    methods = summary.get("settings", {}).get("methods", [])
    rows = gallery_order(with_agreement(rows, methods) if summary.get("against") else rows)
    if thumbnails is not None:
        rows[:PAGE] = thumbnails(rows[:PAGE])
    script, thumbs = write_gallery(out, rows, _tiles(summary), thumbnails)
    write_atomic(path, dataset_report_html(rows, summary, script))
    prune_gallery(out, script, thumbs)
    return path


def _tiles(summary: dict) -> list[str]:
    """The maps a row's thumbnail strip may hold, in order: each method's, then (a run against a
    model B) model B's, named `B_THUMB` + method."""
    methods = list(summary.get("settings", {}).get("methods", []))
    return methods + [B_THUMB + m for m in methods] if summary.get("against") else methods


def _summary_table(summary: dict) -> str:
    methods = summary.get("methods", {})
    scores = scores_in(summary)
    head = ["Method"] + [f"{NAMES[s]} (mean, 95% CI)" for s in scores] + [f"beats random on {SCORE_WORDS[s]} (share of images)" for s in scores]
    lines = ["<table class='summary'><tr>" + "".join(f"<th>{html_text(h)}</th>" for h in head) + "</tr>"]
    for method, entry in methods.items():
        cells = [entry.get("title", method)]
        cells += [interval_text(entry.get(s)) for s in scores]
        cells += [interval_text(entry.get(f"{s}_win_rate")) if method != RANDOM else "–" for s in scores]
        lines.append("<tr>" + "".join(f"<td>{html_text(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(lines) + "</table>"


def _localisation_section(summary: dict) -> str:
    """With ground truth: the localisation means with their intervals and win rates against both
    baselines (`localisation_table`), the centre prior's sentence and the counts line; else ''."""
    table = localisation_table(summary)
    if not table:
        return ""
    block = summary["localisation"]
    lines = ["<h2>Does the map point at the object?</h2>",
             f"<p>{html_text(block.get('note', ''))} Against {html_text(block.get('ground_truth', ''))}: means "
             "with 95% bootstrap intervals; \"beats\" is the share of images where the method's map scores higher "
             f"than the baseline's on the same image. {html_text(block.get('counts_note', ''))}</p>",
             "<table class='summary'><tr>" + "".join(f"<th>{html_text(h)}</th>" for h in table) + "</tr>"]
    for cells in zip(*table.values()):
        lines.append("<tr>" + "".join(f"<td>{html_text(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(lines) + "</table>"


def dataset_report_html(rows: Sequence[dict], summary: dict, script: Optional[str] = None) -> str:
    """The dataset run's index.html (see the module docstring): `rows`' first `PAGE` in the gallery's
    order embedded, the whole run read from `script` (the path of `gallery.write_gallery`'s rows
    script, relative to index.html; None: only the embedded rows). Every text is escaped for where
    it goes: HTML text for the header and the table, and in the embedded JSON every `<`, `>` and `&`
    (so no file name or label can close the script or open a comment), with NaN and infinities as null."""
    settings = summary.get("settings", {})
    facts = [f"{summary.get('explained', 0)} of {summary.get('files', 0)} files explained",
             f"{summary.get('refused', 0)} refused",
             f"model {settings.get('model', '?')}", f"layer {', '.join(settings.get('layers', []))}"]
    if summary.get("fingerprint"):
        facts.append(f"model fingerprint {summary['fingerprint']}")
    facts.append(target_fact(summary))
    if (summary.get("seconds_per_image") or {}).get("mean") is not None:
        scored = " and the faithfulness scores" if settings.get("evaluate") else ""
        facts.append(f"{summary['seconds_per_image']['mean']:.3f} s per image (decoding, every method's map{scored} "
                     "and the pictures written: each image's share of its batch)")
    if "accuracy" in summary:
        facts.append(f"accuracy {interval_text(summary['accuracy'])}")
    if summary.get("accuracy_note"):
        facts.append(summary["accuracy_note"])
    if summary.get("duplicates_note"):
        facts.append(summary["duplicates_note"])
    rows = gallery_order(rows)
    nopictures = bool(rows) and all(r.get("error") or r.get("pictures") == "none" for r in rows)
    titles = method_titles(summary)
    # the filters and the sort menu the Dataset page offers, with its words (`dataset_figures`)
    data = script_json({"rows": rows[:PAGE], "total": len(rows), "page": PAGE, "script": script,
                        "nopictures": nopictures, "classes": classes_of(rows),
                        "sorts": list(sort_choices(rows, titles).items()),
                        "outcomes": list(outcome_choices(rows).items()), "lowfilter": has_predictions(rows),
                        "methods": list(settings.get("methods", [])), "titles": titles, "words": SCORE_WORDS,
                        "located": "localisation" in summary, "located_words": LOCALISATION_TITLES,
                        "low": LOW_CONFIDENCE, "jet": JET.tolist(), "against": bool(summary.get("against")),
                        "tiles": _tiles(summary), "b_thumb": B_THUMB})
    parts = {"title": html_text(f"Explanations: {summary.get('input', 'dataset')}"),
             "facts": html_text(" · ".join(facts)), "data": data,
             "summary": (_summary_table(summary) + _localisation_section(summary) + against_section_html(summary)
                         + concepts_section(summary))}
    return _SLOT.sub(lambda m: parts[m.group(1)], TEMPLATE)  # one pass: no text can fill another slot


#: A slot of `TEMPLATE`.
_SLOT = re.compile(r"\{\{(title|facts|summary|data)\}\}")


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
        f"<tr><th>{html_text(str(k))}</th><td>{html_text(str(v))}</td></tr>" for k, v in settings.items()
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html_text(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto;color:#222}"
        "th{text-align:left;padding-right:1em;vertical-align:top}td,th{padding:.2em .5em}"
        "table{border-collapse:collapse;margin-bottom:1em}tr:nth-child(odd){background:#f4f6f8}"
        ".note{background:#eef5ff;padding:.5em 1em;border-left:4px solid #1f77b4;margin:.5em 0}</style>",
        "</head><body>",
        f"<h1>{html_text(title)}</h1>",
        f"<table>{rows}</table>",
        *[f"<div class='note'>{html_text(n)}</div>" for n in notes],
    ]
    for heading, fragment in sections:
        parts.append(f"<h2>{html_text(heading)}</h2>")
        parts.append(fragment)
    for i, (heading, fig) in enumerate(figures):
        parts.append(f"<h2>{html_text(heading)}</h2>")
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
.drawn svg{position:absolute;left:0;top:0;width:160px;height:160px;pointer-events:none}
.drawn path{fill:none;stroke:#ff00ff;stroke-width:2.5;vector-effect:non-scaling-stroke}
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
<label id="outcomefilter">Prediction <select id="correct"></select></label>
<label id="missfilter" hidden><input type="checkbox" id="miss"> pointing-game misses only (a map's maximum off the object)</label>
<label id="lowfilter"><input type="checkbox" id="low"> low confidence only (top-1 below <span id="lowv"></span>)</label>
<label>Sort by <select id="sort"></select></label>
<label><input type="checkbox" id="desc"> descending</label>
<span id="count"></span>
<span id="pager" hidden><button id="prev">previous</button> <span id="pageno"></span> <button id="next">next</button></span>
</div>
<p id="nopictures" hidden></p>
<p id="partial" hidden></p>
<div id="gallery"></div>
<script id="data" type="application/json">{{data}}</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const methods = D.methods, tiles = D.tiles, first = D.rows;  // first: the first page, in the run's order, with thumbnails
const $ = id => document.getElementById(id);
$('lowv').textContent = `${Math.round(100 * D.low)}%`;  // as the Dataset page says it
const norm = s => String(s || '').replace(/_/g, ' ').trim().toLowerCase();
D.classes.forEach(c => $('cls').add(new Option(c, c)));
D.sorts.forEach(([k, label]) => $('sort').add(new Option(label, k)));  // labels shown, ids as values
D.outcomes.forEach(([label, v]) => $('correct').add(new Option(label, v || '')));  // only those that apply
$('outcomefilter').hidden = D.outcomes.length < 2;
$('lowfilter').hidden = !D.lowfilter;
$('missfilter').hidden = !D.located;
const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const written = r => r.error ? 'none' : (r.pictures || 'legacy');  // legacy: a previous version's layout
// The rows: the embedded first page until the whole run's (gallery/rows-*.js, by column) has loaded.
const fromRows = rows => ({n: rows.length, col: k => rows.map(r => r[k]), row: i => rows[i]});
const fromColumns = c => {
  const at = new Map(c.columns.map((k, j) => [k, c.values[j]]));
  return {n: c.n, col: k => at.get(k) || [], row: i => {
    const r = {thumb: c.thumb[i]}; at.forEach((v, k) => { r[k] = v[i]; }); return r; }};
};
let source = fromRows(first), loading = Boolean(D.script && D.total > first.length), pageNo = 0, order = [];
if (D.nopictures) {
  $('nopictures').hidden = false;
  $('nopictures').textContent = 'This run wrote no pictures (--pictures none), so the gallery lists the files '
    + 'without images; rerun the batch command with --pictures maps or all to see them.';
}
const shownRows = new Map();  // row number -> row, for the page on screen
function thumbsOf(r, i) {  // {h, w, has(m)}: embedded bytes for the first page, else gallery/thumbs/KEY.png
  const t = i < first.length ? first[i].thumbs : null;
  if (t) return {h: t.h, w: t.w, has: m => Boolean(t.maps[m])};
  if (r.thumb) return {h: r.thumb[0], w: r.thumb[1], has: m => r.thumb[2].includes(tiles.indexOf(m))};
  return null;
}
function outline(r) {  // the object's outline (ground truth, "WxH;PATH" in the picture's pixels) as an SVG
  const o = String(r.ground_truth_outline || ''), at = o.indexOf(';');
  const size = /^([0-9]+)x([0-9]+)$/.exec(o.slice(0, at)), path = o.slice(at + 1);
  if (at < 0 || !size || !/^(M[0-9.]+ [0-9.]+(L[0-9.]+ [0-9.]+)*Z)+$/.test(path)) return '';  // none, or not one (a hand-edited table)
  return `<svg viewBox="0 0 ${size[1]} ${size[2]}" preserveAspectRatio="xMidYMid slice"><path d="${path}"/></svg>`;
}
function mapFigure(r, i, m) {
  const title = `<figcaption>${esc(D.titles[m] || m)}</figcaption>`, level = written(r), t = thumbsOf(r, i);
  if (level === 'all' || level === 'legacy')
    return `<figure><div class="drawn"><img loading="lazy" src="maps/${esc(r.key)}_${esc(m)}.${level === 'all' ? 'jpg' : 'png'}" alt="${esc(m)}">`
      + `${outline(r)}</div>${title}</figure>`;
  if (level === 'maps' && t && t.has(m))
    return `<figure><div class="drawn"><img loading="lazy" src="maps/${esc(r.key)}.jpg" alt="${esc(m)}">`
      + `<canvas data-row="${i}" data-method="${esc(m)}"></canvas>${outline(r)}</div>${title}</figure>`;
  return '';
}
const strips = new Map();  // key -> its thumbnails' file, loaded once per page
function draw(canvas) {  // a raw map's thumbnail in jet colours, over its picture at half opacity
  const i = +canvas.dataset.row, m = canvas.dataset.method, t = i < first.length ? first[i].thumbs : null;
  if (t) {
    const bytes = atob(t.maps[m]);
    canvas.width = t.w; canvas.height = t.h;
    const ctx = canvas.getContext('2d'), img = ctx.createImageData(t.w, t.h);
    for (let j = 0; j < bytes.length; j++) {
      const c = D.jet[bytes.charCodeAt(j)];
      img.data.set([c[0], c[1], c[2], 255], 4 * j);
    }
    ctx.putImageData(img, 0, 0);
    return;
  }
  const r = shownRows.get(i), [h, w, present] = r.thumb, tile = present.indexOf(tiles.indexOf(m));
  canvas.width = w; canvas.height = h;
  if (!strips.has(r.key)) { const img = new Image(); img.src = `gallery/thumbs/${esc(r.key)}.png`; strips.set(r.key, img); }
  const img = strips.get(r.key), paint = () => canvas.getContext('2d').drawImage(img, 0, tile * h, w, h, 0, 0, w, h);
  if (img.complete && img.naturalWidth) paint(); else img.addEventListener('load', paint);
}
function state(r) { if (r.error) return 'error'; if (!r.true_label) return ''; return norm(r.label) === norm(r.true_label) ? 'right' : 'wrong'; }
function card(r, i) {
  if (r.error) return `<div class="card"><div class="meta"><b>${esc(r.path)}</b><br><span class="error">${esc(r.error)}</span></div></div>`;
  const s = state(r);
  const truth = r.true_label ? `<br>true: <span class="${s}">${esc(r.true_label)}</span>` : '';
  const scores = methods.map(m => {  // as the Dataset page: "Grad-CAM: deletion 0.123, insertion 0.456"
    const s = Object.keys(D.words).filter(k => r[m + '_' + k] !== undefined && r[m + '_' + k] !== null)
      .map(k => `${esc(D.words[k])} ${r[m + '_' + k].toFixed(3)}`);
    if (D.located) Object.keys(D.located_words).forEach(k => { const v = r[m + '_' + k];  // localisation scores
      if (v !== undefined && v !== null) s.push(k === 'pointing' ? (v ? 'points at the object' : 'misses the object')
        : `${esc(D.located_words[k])} ${v.toFixed(3)}`); });
    return s.length ? `${esc(D.titles[m] || m)}: ${s.join(', ')}` : ''; }).filter(Boolean).join('<br>');
  const maps = methods.map(m => mapFigure(r, i, m) + (D.against ? againstFigure(r, i, m) : '')).join('');
  const picture = written(r) === 'none' ? `<figure><figcaption>${esc(r.path)}</figcaption></figure>`
    : `<figure><img loading="lazy" src="maps/${esc(r.key)}.jpg" alt="image"><figcaption>${esc(r.path)}</figcaption></figure>`;
  return `<div class="card">${picture}${maps}
    <div class="meta"><b>${esc(r.label)}</b> ${(100 * r.probability).toFixed(1)}%${truth}<br>target: ${esc(r.target_label)}<br>${scores}${D.against ? againstMeta(r) : ''}</div></div>`;
}
function againstFigure(r, i, m) {  // model B's map of the same class beside model A's
  if (r.b_maps_file === null || r.b_maps_file === undefined) return '';
  const title = `<figcaption>model B · ${esc(D.titles[m] || m)}</figcaption>`, t = thumbsOf(r, i), b = D.b_thumb + m;
  if (written(r) === 'all')  // its overlay
    return `<figure><img loading="lazy" src="maps/${esc(r.key)}_b_${esc(m)}.jpg" alt="model B ${esc(m)}">${title}</figure>`;
  if (written(r) === 'maps' && t && t.has(b))  // its raw map's thumbnail over model B's picture
    return `<figure><div class="drawn"><img loading="lazy" src="maps/${esc(r.key)}_b.jpg" alt="model B ${esc(m)}">`
      + `<canvas data-row="${i}" data-method="${esc(b)}"></canvas></div>${title}</figure>`;
  return '';
}
function againstMeta(r) {  // model B's prediction and each method's agreement
  if (r.b_label === null || r.b_label === undefined) return '';
  const agree = methods.filter(m => r[m + '_spearman'] !== null && r[m + '_spearman'] !== undefined)
    .map(m => `${esc(D.titles[m] || m)} Spearman ${r[m + '_spearman'].toFixed(2)}`).join(', ');
  return `<br>model B: <b>${esc(r.b_label)}</b> ${(100 * r.b_probability).toFixed(1)}%`
    + (agree ? `<br>agreement: ${agree}` : '') + (r.b_note ? `<br>${esc(r.b_note)}` : '');
}
function select() {  // the row numbers the controls select, in their order (over the whole run once it has loaded)
  const cls = $('cls').value, want = $('correct').value, low = $('low').checked, key = $('sort').value, desc = $('desc').checked;
  const miss = $('miss').checked, points = methods.map(m => source.col(m + '_pointing'));  // 0: a pointing-game miss
  const truth = source.col('true_label'), label = source.col('label'), error = source.col('error'), p = source.col('probability');
  const chosen = [];
  for (let i = 0; i < source.n; i++) {
    if (cls && (truth[i] || label[i]) !== cls) continue;
    if (want && state({error: error[i], label: label[i], true_label: truth[i]}) !== want) continue;
    if (low && !(p[i] !== null && p[i] < D.low)) continue;
    if (miss && !points.some(v => v[i] === 0)) continue;
    chosen.push(i);
  }
  const v = source.col(key);
  chosen.sort((a, b) => { const x = v[a], y = v[b];
    if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (desc ? -1 : 1); });
  return chosen;
}
function show() {
  const pages = Math.max(1, Math.ceil(order.length / D.page));
  pageNo = Math.min(Math.max(pageNo, 0), pages - 1);
  const ids = order.slice(pageNo * D.page, (pageNo + 1) * D.page);
  shownRows.clear(); strips.clear();
  ids.forEach(i => shownRows.set(i, source.row(i)));
  $('count').textContent = loading ? `${D.total} images, loading the gallery's other pages`
    : order.length + ' of ' + source.n + ' images';
  $('pager').hidden = loading || pages < 2;
  $('pageno').textContent = `page ${pageNo + 1} of ${pages}`;
  $('prev').disabled = pageNo === 0; $('next').disabled = pageNo === pages - 1;
  $('gallery').innerHTML = ids.map(i => card(shownRows.get(i), i)).join('');
  document.querySelectorAll('#gallery canvas').forEach(draw);
}
function render() { if (!loading) { pageNo = 0; order = select(); show(); } }
['cls', 'correct', 'low', 'miss', 'sort', 'desc'].forEach(id => $(id).addEventListener('change', render));
$('prev').addEventListener('click', () => { pageNo--; show(); window.scrollTo(0, $('controls').offsetTop); });
$('next').addEventListener('click', () => { pageNo++; show(); window.scrollTo(0, $('controls').offsetTop); });
order = first.map((r, i) => i);
if (loading) show(); else render();
if (loading) {  // a script element, not fetch(): it works when the page is opened from a file
  window.xaiGallery = columns => { source = fromColumns(columns); };
  const tag = document.createElement('script');
  tag.src = D.script;
  tag.onload = () => { loading = false; render(); };
  tag.onerror = () => {
    loading = false;
    $('partial').hidden = false;
    $('partial').textContent = `The gallery's other pages are in ${D.script} next to this file, which could not be read: `
      + `the filters and sorting work on the first ${first.length} of ${D.total} images only.`;
    render();
  };
  document.head.appendChild(tag);
}
</script></body></html>
"""


__all__ = ["dataset_report_html", "image_report_html", "script_json", "write_dataset_report"]
