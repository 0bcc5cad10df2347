"""The pure Plotly builders of `xai_core.figures`: synthetic arrays in, figures checked as data."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from xai_core.report import figures, image_report_html

H = W = 224


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _maps(n: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return {f"m{i}": ((xx + i * yy) / (W + i * H)).astype(np.float32) for i in range(n)}


def _of(fig: go.Figure, kind: str) -> list:
    return [t for t in fig.data if t.type == kind]


def test_prediction_bars_highlight_and_order() -> None:
    fig = figures.build_prediction_bars([("tabby", 0.6), ("tiger cat", 0.3), ("lynx", 0.1)], highlight=1)
    bar = fig.data[0]
    assert list(bar.y) == ["tabby", "tiger cat", "lynx"] and list(bar.x) == [0.6, 0.3, 0.1]
    assert bar.marker.color[1] != bar.marker.color[0] == bar.marker.color[2]
    assert fig.layout.yaxis.autorange == "reversed"  # best on top


def test_cam_grid_one_panel_per_map_on_one_colour_scale(image: np.ndarray) -> None:
    maps = _maps(5)
    fig = figures.build_cam_grid(image, maps, {"m0": 0.004, "m3": 2.5}, opacity=0.3, colorscale="Viridis", columns=3)
    heatmaps, images = _of(fig, "heatmap"), _of(fig, "image")
    assert len(heatmaps) == len(images) == 5
    assert [h.name for h in heatmaps] == list(maps)
    assert {h.coloraxis for h in heatmaps} == {"coloraxis"}  # ONE shared colour scale
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == 1
    viridis = go.Figure(layout=dict(colorscale=dict(sequential="Viridis"))).layout.colorscale.sequential
    assert fig.layout.coloraxis.colorscale == viridis
    assert all(h.opacity == 0.3 for h in heatmaps)
    assert all("importance %{z" in h.hovertemplate for h in heatmaps)
    captions = [a.text for a in fig.layout.annotations if a.text in ("4 ms", "2.5 s")]
    assert sorted(captions) == ["2.5 s", "4 ms"]
    assert {a.text for a in fig.layout.annotations} >= set(maps)  # the panel titles


def test_cam_grid_links_zoom_and_pan_across_panels(image: np.ndarray) -> None:
    fig = figures.build_cam_grid(image, _maps(4), {}, columns=2)
    layout = fig.layout
    assert layout.xaxis2.matches == layout.xaxis3.matches == layout.xaxis4.matches == "x"
    assert layout.yaxis2.matches == layout.yaxis3.matches == layout.yaxis4.matches == "y"
    assert layout.yaxis.range[0] > layout.yaxis.range[1]  # y points down, like the image


def test_heatmap_is_aligned_with_the_image_pixels() -> None:
    cam = np.zeros((H, W), np.float32)
    cam[100:110, 50:60] = 1.0
    trace = figures.heatmap_trace(cam)
    z = np.asarray(trace.z)
    assert z.shape == (112, 112)
    iy, ix = np.unravel_index(np.argmax(z), z.shape)
    # cell (iy, ix) is centred at pixel (y0 + dy*iy, x0 + dx*ix): inside the hot square
    assert 100 <= trace.y0 + trace.dy * iy < 110 and 50 <= trace.x0 + trace.dx * ix < 60
    small = figures.heatmap_trace(np.ones((7, 7), np.float32))
    assert np.asarray(small.z).shape == (7, 7) and small.dx == 1 and small.x0 == 0


def test_grid_changes_only_display_with_opacity_and_colormap(image: np.ndarray) -> None:
    maps = _maps(2)
    a = figures.build_cam_grid(image, maps, {}, opacity=0.2, colorscale="Jet")
    b = figures.build_cam_grid(image, maps, {}, opacity=0.8, colorscale="Hot")
    for ha, hb in zip(_of(a, "heatmap"), _of(b, "heatmap")):
        np.testing.assert_array_equal(np.asarray(ha.z), np.asarray(hb.z))
    assert a.layout.coloraxis.colorscale != b.layout.coloraxis.colorscale


def test_grid_rejects_no_maps(image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        figures.build_heatmap_grid(image, {})


LABELS = [[("tabby", 0.6), ("tiger cat", 0.2)], [("keyboard", 0.5), ("mouse", 0.1)], [("sky", 0.3), ("kite", 0.2)]]


def test_dff_overview_colours_pixels_by_dominant_concept(image: np.ndarray) -> None:
    heatmaps = np.zeros((3, H, W), np.float32)
    heatmaps[0, :, :70], heatmaps[1, :, 70:150], heatmaps[2, :, 150:] = 1.0, 0.8, 0.6
    heatmaps[:, :10, :] = 0.0  # nothing there: transparent
    fig = figures.build_dff_overview(image, heatmaps, LABELS)
    z = np.asarray(_of(fig, "heatmap")[0].z, dtype=float)
    assert z[50, 10] == 1 and z[50, 100] == 2 and z[50, 200] == 3
    assert np.isnan(z[5, 5])
    legend = [t.name.replace("<br>", " ") for t in _of(fig, "scatter")]  # long entries wrap (a narrow column)
    assert legend == [figures.concept_name(i, LABELS[i], probabilities=True, glued=True) for i in range(3)]
    # each label and its probability held together by no-break spaces: a line breaks between labels only
    assert legend[0] == "Concept 1: tabby\u00a060%, tiger\u00a0cat\u00a020%"
    narrow = figures.build_dff_overview(image, heatmaps, [[("tabby", 0.6), ("tiger cat", 0.2), ("Egyptian cat", 0.1)]] * 3)
    assert _of(narrow, "scatter")[0].name.replace("\u00a0", " ").split("<br>") == [
        "Concept 1: tabby 60%,", "tiger cat 20%,", "Egyptian cat 10%"]
    # a label longer than a line parts at its own spaces after all (never past the chart's edge)
    assert figures.wrapped("Concept 1: German\u00a0short-haired\u00a0pointer\u00a05%", 18).split("<br>") == [
        "Concept 1:", "German", "short-haired", "pointer 5%"]


def test_dff_components_and_concept_bars(image: np.ndarray) -> None:
    heatmaps = np.random.default_rng(1).random((3, H, W), dtype=np.float32)
    fig = figures.build_dff_components(image, heatmaps, LABELS, columns=3)
    assert [h.name for h in _of(fig, "heatmap")] == ["Concept 1: tabby", "Concept 2: keyboard", "Concept 3: sky"]
    bars = figures.build_concept_bars(LABELS)
    assert len(bars.data) == 3 and list(bars.data[1].x) == [0.5, 0.1]
    assert bars.data[0].marker.color != bars.data[1].marker.color


def test_report_html_is_self_contained(image: np.ndarray) -> None:
    grid = figures.build_cam_grid(image, _maps(2), {"m0": 0.1})
    bars = figures.build_prediction_bars([("tabby", 0.6)])
    html = image_report_html("CAM <report>", [("Prediction", bars), ("Maps", grid)],
                               {"model": "EfficientNet-Lite0", "layer": "stage7"}, notes=("a note",))
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "CAM &lt;report&gt;" in html and "stage7" in html and "a note" in html
    assert html.count("Plotly.newPlot") == 2
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js embedded, no CDN
    assert '"source":"data:image' in html  # the photo travels inside the file


def test_image_figure(image: np.ndarray) -> None:
    fig = figures.build_image(image, title="cat.png")
    assert [t.type for t in fig.data] == ["image"] and fig.data[0].source.startswith("data:image/jpeg;base64,")
    assert fig.layout.title.text == "cat.png"


@pytest.mark.parametrize("n, columns", [(14, 1), (14, 5), (1, 3), (7, 2)])
def test_grid_layouts_for_any_number_of_maps(image: np.ndarray, n: int, columns: int) -> None:
    fig = figures.build_cam_grid(image, _maps(n), {f"m{i}": 0.01 for i in range(n)}, columns=columns)
    assert len(_of(fig, "heatmap")) == n
    rows = -(-n // min(columns, n))
    assert fig.layout.height >= 300 * rows


def test_dff_colours_keep_contrast_with_the_image_beneath() -> None:
    """A concept lying on green leaves is not drawn in green: each concept's colour is chosen against
    the image's colour under it (the palette's own order would give the third concept green)."""
    side = 60
    image = np.zeros((side, side, 3), np.uint8)
    image[:, :20], image[:, 20:40], image[:, 40:] = (240, 240, 240), (20, 20, 20), (44, 160, 44)  # leaves: D3 green
    heatmaps = np.zeros((3, side, side), np.float32)
    for i in range(3):
        heatmaps[i, :, 20 * i:20 * (i + 1)] = 1.0
    heatmaps[2, :30, 40:] = 0.0  # the concept on the leaves is the smallest
    assert figures.CONCEPT_COLORS[2].upper() == "#2CA02C"
    colors = figures.concept_colors(image, heatmaps)
    lab = figures._lab(np.array([figures._rgb(c) for c in colors], dtype=np.float64))
    under = figures._lab(np.array([image[0, 0], image[0, 20], image[0, 40]], dtype=np.float64))
    assert len(set(colors)) == 3 and colors[2].upper() != "#2CA02C"
    assert (np.linalg.norm(lab - under, axis=1) >= figures.MIN_CONTRAST).all()
    overview = figures.build_dff_overview(image, heatmaps, [[("leaf", 0.9)]] * 3)
    bars = figures.build_concept_bars([[("leaf", 0.9)]] * 3, colors)
    assert [t.marker.color for t in overview.data[2:]] == colors == [t.marker.color for t in bars.data]


def test_long_titles_wrap_instead_of_running_past_the_chart() -> None:
    assert figures.wrapped("How often each map beats the random map on the same image", 30) == \
        "How often each map beats the<br>random map on the same image"
    assert figures.wrapped("ShapleyCAM", 4) == "ShapleyCAM"  # never inside a word
    grid = figures.build_heatmap_grid(np.zeros((8, 8, 3), np.uint8), {"Grad-CAM element-wise": np.zeros((8, 8))} |
                                      {f"m{i}": np.zeros((8, 8)) for i in range(4)}, columns=5)
    titles = [a.text for a in grid.layout.annotations]
    assert titles[0] == "Grad-CAM<br>element-wise" and grid.layout.margin.t > 40


def _crossings(trace, axis: int, at: float) -> list[float]:
    """Where the outline's contour (level 0.5) crosses the grid's row (axis 1) or column (axis 0)
    nearest pixel `at`, in the picture's pixel coordinates: halfway between two cells' centres."""
    z = np.asarray(trace.z)
    across, along = ((trace.y0, trace.dy), (trace.x0, trace.dx)) if axis == 1 else \
        ((trace.x0, trace.dx), (trace.y0, trace.dy))
    index = int(round((at - across[0]) / across[1]))
    line = z[index] if axis == 1 else z[:, index]
    return [along[0] + along[1] * (i + 0.5) for i in range(len(line) - 1) if (line[i] > 0.5) != (line[i + 1] > 0.5)]


@pytest.mark.parametrize("side", [224, 100])  # a map sent in 2x2 blocks, and one sent whole
def test_grid_draws_the_objects_outline_on_every_panel_at_its_pixels_edges(side: int) -> None:
    image = np.zeros((side, side, 3), np.uint8)
    maps = {f"m{i}": np.full((side, side), 0.3 * i, np.float32) for i in range(4)}
    mask = np.zeros((side, side), bool)
    mask[40:80, 20:60] = True  # rows 40..79, columns 20..59: edges at 39.5, 79.5 and 19.5, 59.5
    fig = figures.build_heatmap_grid(image, maps, columns=3, outline=mask)
    contours = _of(fig, "contour")
    assert len(contours) == 4 and [c.xaxis for c in contours] == [h.xaxis for h in _of(fig, "heatmap")]
    for trace in contours:
        assert trace.contours.start == trace.contours.end == 0.5 and trace.contours.coloring == "none"
        assert trace.line.color == figures.OUTLINE_COLOR and trace.showscale is False and trace.hoverinfo == "skip"
        assert trace.coloraxis is None  # the maps' one colour scale is left alone
    assert _crossings(contours[0], 1, at=60) == [19.5, 59.5] and _crossings(contours[0], 0, at=40) == [39.5, 79.5]
    edge = np.zeros((side, side), bool)
    edge[:30, side - 20:] = True  # touching the top and right edges: closed along them
    trace = figures.outline_trace(edge)
    assert _crossings(trace, 1, at=10) == [side - 20.5, side - 0.5] and _crossings(trace, 0, at=side - 10) == [-0.5, 29.5]
    assert not _of(figures.build_heatmap_grid(image, maps), "contour")  # no outline unless asked
    with pytest.raises(ValueError, match="outline"):
        figures.build_heatmap_grid(image, maps, outline=mask[:10])
