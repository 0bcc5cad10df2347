"""The grid pointing game's results folder (`write_grid_results`), written as `batch` writes its own:
one writer at a time (the folder's lock), every file atomically.

    OUT/grids/grid_G.png           each grid, as the model saw it (G from 000)
    OUT/grids/grid_G_cC_METHOD.jpg each cell's map over its grid, the cell outlined (the first
                                   `SHOWN_GRIDS` grids, those index.html shows)
    OUT/results.csv                one row per map: grid, cell, class, class_index, probability,
                                   path, method, mass, hit (baselines included)
    OUT/summary.json               per method the mean mass, hit rate and win rates with 95% intervals
    OUT/index.html                 the summary table and the grids with their maps (offline: pictures
                                   by relative path, no script)
Grids and cells are numbered from 0; cells in reading order (0 top-left ... 3 bottom-right)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from .._files import write_atomic
from ..faithfulness import RANDOM
from ..localisation import CENTRE
from ..methods import MethodsArg, get_method
from ..models import LayerArg, ModelHandle
from ..report import html_text, overlay_cam
from ..report.dataset_figures import interval_text
from .grid import GridGame, GridMaps, Progress, grid_pointing_game
from .grid_scores import cell_bounds
from .lock import hold_folder

#: index.html shows this many grids with their maps (results.csv holds every score).
SHOWN_GRIDS = 50
#: The cells' positions in words, in reading order.
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
#: What every summary says about the baselines.
BASELINE_NOTE = ("Every baseline scores 0.25 on average (one cell in four): a method that does not beat the random "
                 "map and the centre prior shows nothing about the model.")
_COLUMNS = ("grid", "cell", "class", "class_index", "probability", "path", "method", "mass", "hit")


def write_grid_results(handle: ModelHandle, photos_dir: str, out: str, methods: MethodsArg = ("gradcam",), *,
                       grids: int = 10, min_confidence: float = 0.5, seed: int = 0, layer: LayerArg = None,
                       progress: Optional[Progress] = None) -> GridGame:
    """Play `grid.grid_pointing_game` with these arguments and write its results folder `out` (see
    the module docstring), holding the folder's lock. Returns the `GridGame`. Raises what the game
    raises, `ResultsInUseError` (another run writes `out`) and `OSError` (a folder not writable)."""
    folder = Path(out)
    (folder / "grids").mkdir(parents=True, exist_ok=True)
    with hold_folder(folder):
        game = grid_pointing_game(handle, photos_dir, methods, grids=grids, min_confidence=min_confidence, seed=seed,
                                  layer=layer, progress=progress, on_grid=lambda g: _write_grid(folder, g),
                                  exclude=folder.resolve())
        write_atomic(folder / "results.csv", results_csv(game))
        write_atomic(folder / "summary.json", json.dumps(game.summary, indent=2, allow_nan=False))
        write_atomic(folder / "index.html", grid_report_html(game))
    return game


def _picture_bytes(picture: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _overlay_name(grid: int, cell: int, method: str) -> str:
    return f"grid_{grid:03d}_c{cell}_{method}.jpg"


def _write_grid(folder: Path, grid: GridMaps) -> None:
    """The grid's picture, and for the first `SHOWN_GRIDS` grids each method's map of each cell's
    class over it, that cell outlined in white."""
    write_atomic(folder / "grids" / f"grid_{grid.grid:03d}.png", _picture_bytes(grid.picture, "PNG"), sync=False)
    if grid.grid >= SHOWN_GRIDS:
        return
    bounds = cell_bounds(grid.picture.shape[:2])
    for cell, maps in enumerate(grid.maps):
        top, bottom, left, right = bounds[cell]
        for method, cam in maps.items():
            if method in (RANDOM, CENTRE):
                continue
            image = Image.fromarray(overlay_cam(grid.picture, cam))
            ImageDraw.Draw(image).rectangle((left, top, right - 1, bottom - 1), outline=(255, 255, 255), width=2)
            write_atomic(folder / "grids" / _overlay_name(grid.grid, cell, method),
                         _picture_bytes(np.asarray(image), "JPEG"), sync=False)


def results_csv(game: GridGame) -> str:
    """The game's scores as CSV text, one row per map (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for s in game.scores:
        cell = game.cells[s.grid][s.cell]
        writer.writerow([s.grid, s.cell, cell.label, cell.index, f"{cell.probability:.6f}", cell.path, s.method,
                         f"{s.mass:.6f}", int(s.hit)])
    return buffer.getvalue()


def _title(method: str) -> str:
    if method == RANDOM:
        return "random map (baseline)"
    if method == CENTRE:
        return "centre prior (baseline)"
    return get_method(method).title


def _rows(summary: dict) -> list[list[str]]:
    """The summary table's rows: method, mass, hit rate, beats random, beats centre."""
    rows = []
    for method, entry in summary["methods"].items():
        rows.append([_title(method), interval_text(entry.get("mass")), interval_text(entry.get("hit")),
                     interval_text(entry.get(f"win_{RANDOM}")), interval_text(entry.get(f"win_{CENTRE}"))])
    return rows


_HEAD = ["method", "mass in the cell (mean, 95% CI)", "hit rate (95% CI)", "beats random map",
         "beats centre prior"]


def grid_table(summary: dict) -> str:
    """The summary as a plain-text table (the `grid` command prints it), with the run's facts above
    and the baselines' sentence below."""
    facts = (f"{summary['model']} at {', '.join(summary['layers'])}: {summary['grids']} grids of "
             f"{summary['confident_classes']} classes reaching p >= {summary['min_confidence']:g} "
             f"(of {summary['photos']} photos), seed {summary['seed']}")
    rows = [_HEAD] + [[c if c != "–" else "-" for c in row] for row in _rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    lines = [facts, ""] + ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + ["", BASELINE_NOTE])


_STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;margin:.5em 0}"
          "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
          "img{width:160px;height:auto;display:block}.note{color:#444}")


def grid_report_html(game: GridGame) -> str:
    """index.html: the facts, the summary table with intervals, the baselines' sentence and the
    first `SHOWN_GRIDS` grids, each cell a row with its source and each method's map and scores.
    Every text from a file, a label or a note is escaped."""
    summary = game.summary
    esc = html_text
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Grid pointing game: {esc(game.model)}</title>"
             f"<style>{_STYLE}</style></head><body>", f"<h1>Grid pointing game: {esc(game.model)}</h1>",
             f"<p>{esc(grid_table(summary).splitlines()[0])}.</p>",
             "<p>Each grid holds four photos of four classes the model recognises confidently; each cell's class "
             "is explained on the whole grid, and a good map puts its mass in that cell (Böhle et al., CVPR "
             "2022).</p>", "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in _HEAD) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in _rows(summary)]
    parts += ["</table>", f"<p class='note'>{esc(BASELINE_NOTE)}</p>"]
    parts += [f"<p class='note'>{esc(n)}</p>" for n in game.notes]
    scores = {(s.grid, s.cell, s.method): s for s in game.scores}
    shown = min(len(game.cells), SHOWN_GRIDS)
    if shown < len(game.cells):
        parts.append(f"<p>The first {shown} of {len(game.cells)} grids are shown; results.csv holds every score.</p>")
    for g in range(shown):
        parts += [f"<h2>Grid {g}</h2><table><tr><th>cell</th><th>grid</th>"
                  + "".join(f"<th>{esc(_title(m))}</th>" for m in game.methods) + "</tr>"]
        for c, cell in enumerate(game.cells[g]):
            row = [f"{esc(POSITIONS[c])}: {esc(cell.label)} (p = {cell.probability:.2f})<br><small>{esc(cell.path)}"
                   "</small>", f"<img src='grids/grid_{g:03d}.png' alt='grid {g}'>"]
            for m in game.methods:
                s = scores[(g, c, m)]
                row.append(f"<img src='{esc('grids/' + _overlay_name(g, c, m), quote=True)}' alt=''>"
                           f"mass {s.mass:.2f}{', hit' if s.hit else ''}")
            parts.append("<tr>" + "".join(f"<td>{r}</td>" for r in row) + "</tr>")
        parts.append("</table>")
    return "\n".join(parts + ["</body></html>"])


__all__ = ["BASELINE_NOTE", "POSITIONS", "SHOWN_GRIDS", "grid_report_html", "grid_table", "results_csv",
           "write_grid_results"]
