"""Pure Plotly figure builders for the dashboard and its HTML report: numpy in, `go.Figure` out.

No Streamlit and no torch here, so every figure can be tested on its own and reused in exports.
Images are embedded once per panel as PNG data URIs (`go.Image(source=...)`), heatmaps as arrays.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from typing import Mapping, Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .escaping import html_text

#: Colormaps offered for the importance maps (Plotly's named colour scales).
COLORSCALES = ("Jet", "Turbo", "Viridis", "Inferno", "Hot", "Greys")
#: One distinct colour per DFF concept (up to 10; D3's category10).
CONCEPT_COLORS = tuple(qualitative.D3)
#: The PNG export of the modebar's camera button (2x, so slides stay sharp).
PNG_EXPORT = {"format": "png", "scale": 2}
#: Heatmaps are sent to the browser at most this many cells on a side.
MAX_HEATMAP_SIDE = 112
_FONT = dict(size=15)
_MARGIN = dict(l=10, r=10, t=40, b=10)
#: Characters of the panel titles of a heatmap grid, over all its columns, on a narrow window.
_GRID_TITLE_CHARS = 72
_TITLE_LINE_PX = 20
#: A concept's colour is at least this far (CIE76 delta E) from the image's colour under it, where
#: the palette allows (a concept over green leaves is not drawn in green).
MIN_CONTRAST = 40.0


def wrapped(text: str, width: int) -> str:
    """`text` broken at spaces into lines of at most `width` characters, joined with <br> (Plotly
    never wraps a title or an annotation: a long one is cut at the chart's edge); no-break spaces
    break only where the words they hold together exceed `width`. Written here: Plotly has no
    wrapping of its own."""
    lines = []
    for line in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False):
        # words held together by no-break spaces (`concept_name`'s labels) part where they are too long
        glued = len(line) > width and "\u00a0" in line
        lines += textwrap.wrap(line.replace("\u00a0", " "), width, break_long_words=False,
                               break_on_hyphens=False) if glued else [line]
    return "<br>".join(lines) or text


def title_margin(title: str, line_px: int = 22, pad: int = 20) -> int:
    """The top margin a title of `wrapped` lines needs."""
    return pad + line_px * (title.count("<br>") + 1)


def image_uri(image: np.ndarray, quality: int = 90) -> str:
    """`image` (uint8 [H, W, 3]) as a base64 JPEG data URI, for `go.Image(source=...)` (a fifth of
    a PNG's size, and the photo is sent once per panel)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap_trace(heatmap: np.ndarray, *, max_side: int = MAX_HEATMAP_SIDE, **kwargs) -> go.Heatmap:
    """`heatmap` (float [H, W], aligned with the image's pixels) as a `go.Heatmap` in pixel
    coordinates, averaged over f x f blocks when larger than `max_side` (a 224-pixel map is sent
    as 112 x 112: a quarter of the bytes, and CAMs have no finer detail than that)."""
    heatmap, f = _blocks(heatmap, max_side)
    # A cell covering pixels f*i .. f*i+f-1 is centred at f*i + (f-1)/2 (pixel j spans j-0.5..j+0.5).
    return go.Heatmap(z=heatmap, x0=(f - 1) / 2, dx=f, y0=(f - 1) / 2, dy=f, zsmooth="best", **kwargs)


def _blocks(array: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """(`array` float32 averaged over f x f blocks, f): f = 1 when no side exceeds `max_side`."""
    array = np.asarray(array, dtype=np.float32)
    f = max(1, math.ceil(max(array.shape) / max_side))
    if f > 1:
        h, w = array.shape[0] // f, array.shape[1] // f
        array = array[: h * f, : w * f].reshape(h, f, w, f).mean(axis=(1, 3))
    return array, f


#: The object's outline (`build_heatmap_grid(outline=...)`): magenta, a colour none of the offered
#: colour scales holds, so the line shows over any map.
OUTLINE_COLOR = "#ff00ff"


def outline_trace(mask: np.ndarray, *, max_side: int = MAX_HEATMAP_SIDE) -> go.Contour:
    """The outline of `mask` (bool [H, W], on the picture) as a contour line at the object's
    edge, in the picture's pixel coordinates (blocks averaged as `heatmap_trace` does, so the line
    lies within a block of the pixels' edge): Plotly draws it, no hand-traced polygon."""
    inside, f = _blocks(np.asarray(mask, dtype=bool), max_side)
    inside = np.pad(inside, 1)  # an object touching the picture's edge is closed along that edge
    return go.Contour(z=inside, x0=(f - 1) / 2 - f, dx=f, y0=(f - 1) / 2 - f, dy=f, showscale=False,
                      contours=dict(start=0.5, end=0.5, size=1, coloring="none", showlabels=False),
                      line=dict(color=OUTLINE_COLOR, width=2.5), hoverinfo="skip", name="object")


def build_image(image: np.ndarray, title: str = "") -> go.Figure:
    """The picture alone (uint8 [H, W, 3]), in pixel coordinates, for reports."""
    fig = go.Figure(go.Image(source=image_uri(image), hoverinfo="skip", name="image"))
    _link_image_axes(fig, 1, image.shape[1], image.shape[0])
    fig.update_layout(title=html_text(title) or None, height=420, width=460, margin=_MARGIN, font=_FONT)
    return fig


def build_prediction_bars(
    predictions: Sequence[tuple[str, float]], highlight: Optional[int] = None
) -> go.Figure:
    """Horizontal bars of `(label, probability)` pairs, best on top; bar `highlight` (a position in
    `predictions`, e.g. the explained class) is drawn in the accent colour."""
    labels = [html_text(label) for label, _ in predictions]  # class labels: text, never Plotly markup
    probs = [float(p) for _, p in predictions]
    colors = ["#d62728" if i == highlight else "#1f77b4" for i in range(len(labels))]
    fig = go.Figure(
        go.Bar(
            x=probs, y=labels, orientation="h", marker_color=colors,
            text=[f"{p:.1%}" for p in probs], textposition="auto", cliponaxis=False,
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(  # the right margin holds a label drawn beyond a bar near 100%
        height=70 + 40 * max(len(labels), 1), margin=dict(l=10, r=50, t=10, b=10), font=_FONT,
        xaxis=dict(range=[0, 1], tickformat=".0%", automargin=True),
        yaxis=dict(autorange="reversed", automargin=True), showlegend=False, plot_bgcolor="white",
    )
    return fig


def build_heatmap_grid(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    captions: Optional[Mapping[str, str]] = None,
    opacity: float = 0.5,
    colorscale: str = "Jet",
    columns: int = 3,
    panel_height: int = 320,
    colorbar_title: str = "importance",
    outline: Optional[np.ndarray] = None,
) -> go.Figure:
    """One panel per map (title -> float [H, W] in [0, 1]): the image with the map overlaid at
    `opacity`, all panels on ONE shared colour scale (0..1) with one colour bar, zoom and pan linked
    across panels, hover giving the importance value, and `captions[title]` written under a panel.
    `outline`: an object's mask (bool [H, W], the maps' shape) whose outline (`outline_trace`) is
    drawn on every panel. Raises ValueError for no map, or an outline of another shape."""
    if not maps:
        raise ValueError("build_heatmap_grid needs at least one map.")
    if outline is not None and np.shape(outline) != image.shape[:2]:
        raise ValueError(f"The outline's mask is {np.shape(outline)}, not the picture's {image.shape[:2]}.")
    titles = list(maps)
    cols = max(1, min(int(columns), len(titles)))
    rows = math.ceil(len(titles) / cols)
    # a panel's title wraps to its share of a narrow window (about 1024 px: 72 characters in all)
    shown = [wrapped(html_text(t), max(12, _GRID_TITLE_CHARS // cols)) for t in titles]
    extra = _TITLE_LINE_PX * (max(t.count("<br>") for t in shown))
    total_height = panel_height * rows + 40 + extra * rows
    gap_px = (70 if captions else 45) + extra  # room for the caption under a panel and the title of the next
    vertical = min(gap_px / total_height, 0.9 / (rows - 1)) if rows > 1 else 0.0
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=shown, horizontal_spacing=0.02,
                        vertical_spacing=vertical)
    source = image_uri(image)
    height, width = image.shape[:2]
    for i, title in enumerate(titles):
        row, col = divmod(i, cols)
        fig.add_trace(go.Image(source=source, hoverinfo="skip", name="image"), row=row + 1, col=col + 1)
        fig.add_trace(
            heatmap_trace(
                maps[title], coloraxis="coloraxis", opacity=float(opacity), name=html_text(title),
                hovertemplate="x=%{x}, y=%{y}<br>importance %{z:.2f}<extra>" + html_text(title) + "</extra>",
            ),
            row=row + 1, col=col + 1,
        )
        if outline is not None:
            fig.add_trace(outline_trace(outline), row=row + 1, col=col + 1)
    _link_image_axes(fig, len(titles), width, height)
    if captions:
        for i, title in enumerate(titles):
            if captions.get(title):
                fig.add_annotation(
                    text=captions[title], showarrow=False, font=dict(size=13, color="#444"),
                    xref=f"{_axis('x', i)} domain", yref=f"{_axis('y', i)} domain",
                    x=0.5, y=-0.02, xanchor="center", yanchor="top",
                )
    fig.update_layout(
        coloraxis=dict(colorscale=colorscale, cmin=0.0, cmax=1.0,
                       colorbar=dict(title=dict(text=colorbar_title, side="right"), thickness=16, len=0.9)),
        height=total_height, font=_FONT, showlegend=False, dragmode="zoom", plot_bgcolor="white",
        # the titles' lines above the first row; the captions' line under the last
        margin=dict(_MARGIN, t=_MARGIN["t"] + extra, b=_MARGIN["b"] + (24 if captions else 0)),
    )
    fig.update_annotations(font_size=15, selector=dict(yref="paper"))
    return fig


def build_cam_grid(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    seconds: Mapping[str, float],
    *,
    opacity: float = 0.5,
    colorscale: str = "Jet",
    columns: int = 3,
) -> go.Figure:
    """The CAM comparison: `build_heatmap_grid` with each map's compute time under its panel
    (`seconds[title]`, missing entries left blank)."""
    captions = {t: _duration(seconds[t]) for t in maps if t in seconds}
    return build_heatmap_grid(image, maps, captions=captions, opacity=opacity, colorscale=colorscale, columns=columns)


def build_dff_components(
    image: np.ndarray,
    heatmaps: np.ndarray,
    labels: Sequence[Sequence[tuple[str, float]]],
    *,
    opacity: float = 0.5,
    colorscale: str = "Jet",
    columns: int = 4,
) -> go.Figure:
    """One panel per DFF component (`heatmaps` [k, H, W]) titled by its concept number and top label."""
    maps = {concept_name(i, labels[i], glued=True): heatmaps[i] for i in range(len(heatmaps))}
    return build_heatmap_grid(image, maps, opacity=opacity, colorscale=colorscale, columns=columns, panel_height=260)


def build_dff_overview(
    image: np.ndarray,
    heatmaps: np.ndarray,
    labels: Sequence[Sequence[tuple[str, float]]],
    *,
    opacity: float = 0.55,
    threshold: float = 0.15,
    colors: Optional[Sequence[str]] = None,
) -> go.Figure:
    """Every pixel coloured by its dominant component (where that component's heatmap exceeds
    `threshold`), with a legend giving each concept's top labels and probabilities. `colors`: one
    per concept (default: `concept_colors`, chosen against the image's own colours)."""
    k = len(heatmaps)
    colors = list(colors) if colors is not None else concept_colors(image, heatmaps)
    dominant = np.argmax(heatmaps, axis=0).astype(np.float32)
    dominant[np.max(heatmaps, axis=0) < threshold] = np.nan
    scale = []
    for i, color in enumerate(colors):
        scale += [[i / k, color], [(i + 1) / k, color]]
    fig = go.Figure(go.Image(source=image_uri(image), hoverinfo="skip", name="image"))
    fig.add_trace(
        go.Heatmap(
            z=dominant + 1, zmin=0.5, zmax=k + 0.5, colorscale=scale, showscale=False, opacity=float(opacity),
            hovertemplate="x=%{x}, y=%{y}<br>concept %{z}<extra></extra>", name="dominant concept",
        )
    )  # full resolution and no smoothing: the concept borders stay crisp
    for i, color in enumerate(colors):
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="markers", marker=dict(size=14, color=color, symbol="square"),
                       name=wrapped(html_text(concept_name(i, labels[i], probabilities=True, glued=True)), _LEGEND_CHARS),
                       showlegend=True)
        )
    height, width = image.shape[:2]
    _link_image_axes(fig, 1, width, height)
    fig.update_layout(
        height=560 + 24 * k, margin=dict(l=10, r=10, t=10, b=10), font=_FONT, plot_bgcolor="white",
        legend=dict(title=dict(text="Concepts (top labels)"), orientation="v", x=0, xanchor="left",
                    y=-0.02, yanchor="top", font=dict(size=14)),
    )
    return fig


def build_concept_bars(labels: Sequence[Sequence[tuple[str, float]]],
                       colors: Optional[Sequence[str]] = None) -> go.Figure:
    """Each concept's top labels with their probabilities as bars, one colour per concept
    (`colors`, as `build_dff_overview`'s; default: `CONCEPT_COLORS` in order)."""
    colors = list(colors) if colors is not None else [CONCEPT_COLORS[i % len(CONCEPT_COLORS)] for i in range(len(labels))]
    fig = go.Figure()
    for i, concept in enumerate(labels):
        names = [f"{i + 1}: {html_text(label)}" for label, _ in concept]
        probs = [float(p) for _, p in concept]
        fig.add_trace(
            go.Bar(x=probs, y=names, orientation="h", name=f"concept {i + 1}",
                   marker_color=colors[i],
                   text=[f"{p:.1%}" for p in probs], textposition="auto", cliponaxis=False,
                   hovertemplate="%{y}: %{x:.2%}<extra></extra>")
        )
    rows = sum(len(c) for c in labels)
    fig.update_layout(  # the right margin holds a label drawn beyond a bar near 100%
        height=70 + 28 * max(rows, 1), margin=dict(l=10, r=50, t=10, b=10), font=_FONT, showlegend=False,
        xaxis=dict(range=[0, 1], tickformat=".0%", automargin=True),
        yaxis=dict(autorange="reversed", automargin=True), bargap=0.25, plot_bgcolor="white",
    )
    return fig


#: The overview's legend entries wrap at this many characters (it sits in a column).
_LEGEND_CHARS = 30


def concept_colors(image: np.ndarray, heatmaps: np.ndarray, threshold: float = 0.15) -> list[str]:
    """One colour per concept from `CONCEPT_COLORS`, chosen against the image's own colours: the
    concepts covering most pixels choose first, each the unused colour farthest (CIE76 delta E)
    from the image's mean colour where it is the dominant concept, so no concept is drawn in the
    colour it lies on. Written here: Plotly and matplotlib have no contrast-aware palette."""
    k = len(heatmaps)
    palette = list(CONCEPT_COLORS)
    lab = _lab(np.array([_rgb(c) for c in palette], dtype=np.float64))
    dominant = np.argmax(heatmaps, axis=0)
    dominant[np.max(heatmaps, axis=0) < threshold] = -1
    pixels = _lab(np.asarray(image, dtype=np.float64).reshape(-1, 3))
    free, chosen = [], {}
    for i in sorted(range(k), key=lambda i: -int(np.count_nonzero(dominant == i))):
        free = free or list(range(len(palette)))  # more concepts than colours: the palette again
        where = (dominant == i).reshape(-1)
        under = pixels[where].mean(axis=0) if where.any() else pixels.mean(axis=0)
        distance = np.linalg.norm(lab[free] - under, axis=1)
        contrasting = np.flatnonzero(distance >= MIN_CONTRAST)  # the palette's order where it contrasts
        pick = free[int(contrasting[0])] if contrasting.size else free[int(np.argmax(distance))]
        chosen[i] = palette[pick]
        free.remove(pick)
    return [chosen[i] for i in range(k)]


def _rgb(color: str) -> tuple[float, float, float]:
    color = color.lstrip("#")
    return tuple(int(color[j:j + 2], 16) for j in (0, 2, 4))  # type: ignore[return-value]


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0-255) [N, 3] to CIELAB [N, 3] (D65)."""
    c = rgb / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = c @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def concept_name(index: int, labels: Sequence[tuple[str, float]], probabilities: bool = False,
                 glued: bool = False) -> str:
    """'Concept 2: tabby' (or with probabilities: 'Concept 2: tabby 62%, tiger cat 20%'). `glued`:
    each label (with its probability) holds no-break spaces, so `wrapped` breaks a figure's title or
    legend between labels, never inside one ("tiger / cat") nor between a label and its number."""
    def piece(text: str) -> str:
        return text.replace(" ", "\u00a0") if glued else text

    if probabilities:
        return f"Concept {index + 1}: " + ", ".join(piece(f"{label} {p:.0%}") for label, p in labels)
    return f"Concept {index + 1}: {piece(labels[0][0])}" if labels else f"Concept {index + 1}"


def _axis(letter: str, index: int) -> str:
    return letter if index == 0 else f"{letter}{index + 1}"


def _link_image_axes(fig: go.Figure, panels: int, width: int, height: int) -> None:
    """Pixel axes for every panel: hidden ticks, y pointing down, square pixels, and every panel's
    axes matching the first one's (so zoom and pan are linked)."""
    for i in range(panels):
        xa, ya = _axis("xaxis", i), _axis("yaxis", i)
        fig.layout[xa].update(visible=False, range=[-0.5, width - 0.5], constrain="domain",
                              **({} if i == 0 else {"matches": "x"}))
        fig.layout[ya].update(visible=False, range=[height - 0.5, -0.5], constrain="domain",
                              scaleanchor=_axis("x", i), **({} if i == 0 else {"matches": "y"}))


def _duration(seconds: float) -> str:
    if seconds < 0.001:
        return "<1 ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


__all__ = ["COLORSCALES", "CONCEPT_COLORS", "MAX_HEATMAP_SIDE", "OUTLINE_COLOR", "PNG_EXPORT", "build_cam_grid", "build_concept_bars",
           "build_dff_components", "build_dff_overview", "build_heatmap_grid", "build_image", "build_prediction_bars",
           "concept_colors", "concept_name", "heatmap_trace", "image_uri", "outline_trace", "title_margin",
           "wrapped"]
