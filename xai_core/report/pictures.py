"""Pictures of explanations: pure builders returning numpy uint8 arrays or PIL images (the overlays
are pytorch-grad-cam's), plus one explicit `save` helper. Captions and legends are drawn with Pillow,
so nothing here touches pyplot's global state."""

from __future__ import annotations

import io
import os
from typing import Optional, Sequence

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pytorch_grad_cam.utils.image import show_cam_on_image, show_factorization_on_image

from ..factorize import Factorization
from ..localisation import outline_polygons
from .figures import OUTLINE_COLOR
from ..explain import Explanation
from ..methods import get_method

#: Caption / legend text size in pixels, and the padding around text.
FONT_SIZE, PAD = 13, 6
BACKGROUND, INK = (255, 255, 255), (20, 20, 20)


def overlay_cam(image: np.ndarray, cam: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """`cam` (float [H, W] in [0, 1]) as a jet heatmap over `image` (uint8 RGB [H, W, 3]), with
    pytorch-grad-cam's `show_cam_on_image`; returns uint8 RGB [H, W, 3]."""
    rgb = np.float32(image) / 255.0
    return show_cam_on_image(rgb, np.clip(cam, 0.0, 1.0), use_rgb=True, image_weight=image_weight)


#: OpenCV's jet colormap as RGB rows, one per uint8 level: the colours `overlay_cam` paints with.
JET = cv2.cvtColor(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)[0]
_JET_TABLE = np.ascontiguousarray(JET[:, None, :])  # as cv2.applyColorMap's user colormap: RGB out


def overlay_cams(images: np.ndarray, cams: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """`overlay_cam` of a whole batch at once, equal to it image by image: `cams` (float [N, H, W]
    in [0, 1]) as jet heatmaps over `images` (uint8 RGB [N, H, W, 3]), in numpy over the batch (a
    table look-up for the colours, one blend in place, each image divided by its own maximum);
    returns uint8 RGB [N, H, W, 3]."""
    levels = np.clip(np.asarray(cams, dtype=np.float32), 0.0, 1.0)
    levels *= 255
    n, height, width = levels.shape
    # OpenCV colours the batch as one tall image (C, the GIL released); then show_cam_on_image's
    # operations in place
    blend = np.float32(cv2.applyColorMap(levels.astype(np.uint8).reshape(n * height, width), _JET_TABLE))
    blend = blend.reshape(n, height, width, 3)
    blend /= 255
    blend *= 1 - image_weight
    picture = np.float32(images)
    picture /= 255.0
    picture *= image_weight
    blend += picture
    blend /= blend.max(axis=(1, 2, 3), keepdims=True)
    blend *= 255
    return blend.astype(np.uint8)


def component_colors(n: int) -> list[np.ndarray]:
    """`n` distinct RGBA colours (floats in [0, 1]) sampled from gist_rainbow, as the DFF paper's code
    and pytorch-grad-cam's default do."""
    cmap = matplotlib.colormaps["gist_rainbow"]
    return [np.array(cmap(i / max(n, 1))) for i in range(n)]


def overlay_factorization(
    image: np.ndarray, heatmaps: np.ndarray, colors: Optional[Sequence[np.ndarray]] = None
) -> np.ndarray:
    """Each pixel coloured by its dominant component (brightness = heatmap value) over `image`, with
    pytorch-grad-cam's `show_factorization_on_image` (given a copy: it edits its input in place);
    returns uint8 RGB [H, W, 3]."""
    colors = list(colors) if colors is not None else component_colors(len(heatmaps))
    explanations = np.array(heatmaps, dtype=np.float32, copy=True)  # the library zeroes it in place
    return show_factorization_on_image(np.float32(image) / 255.0, explanations, colors=colors)


def concept_labels(labels: Sequence[Sequence[tuple[str, float]]]) -> list[str]:
    """One legend entry per component in pytorch-grad-cam's `create_labels_legend` style: lines of
    `label:score`, the label cut to its first three comma-separated names."""
    return ["\n".join(f"{','.join(name.split(',')[:3])}:{score:.2f}" for name, score in comp) for comp in labels]


def cam_caption(explanation: Explanation, method: str, model_blocks: Optional[int] = None) -> list[str]:
    """The caption lines of `method`'s picture: its title, then exactly what its map depends on, as
    the method registry declares it (`MethodSpec.depends_on`): the target layer(s) or the blocks
    read, and the target label and probability or "class-agnostic". `model_blocks`: how many
    transformer blocks the model has (caps LeGrad's last blocks), None if unknown. Raises
    `UnknownNameError` for an unknown method."""
    spec = get_method(method)
    target = f"{explanation.target_label} ({explanation.target_probability:.1%})"
    options = explanation.options.get("methods", {}).get(spec.id)
    return [spec.title, spec.depends_on(explanation.layers, target, options, model_blocks)]


def build_cam_picture(explanation: Explanation, method: str, model_blocks: Optional[int] = None) -> Image.Image:
    """The preprocessed input and its `method` heatmap overlay side by side, over `cam_caption`'s
    lines (the method's title, and what its map depends on). Raises `KeyError` when `method` is not
    in `explanation.maps`."""
    image = explanation.image
    panels = np.hstack([image, overlay_cam(image, explanation.maps[method])])
    return _with_caption(Image.fromarray(panels), cam_caption(explanation, method, model_blocks))


def build_dff_picture(factorization: Factorization) -> Image.Image:
    """The preprocessed input, its components in distinct colours, and a legend of each component's
    concept labels, side by side under a caption."""
    image = factorization.image
    colors = component_colors(len(factorization.heatmaps))
    overlay = overlay_factorization(image, factorization.heatmaps, colors)
    legend = _legend(concept_labels(factorization.labels), colors, height=image.shape[0])
    top = Image.new("RGB", (2 * image.shape[1] + legend.width, legend.height), BACKGROUND)
    top.paste(Image.fromarray(image), (0, 0))
    top.paste(Image.fromarray(overlay), (image.shape[1], 0))
    top.paste(legend, (2 * image.shape[1], 0))
    caption = [f"Deep Feature Factorization · layer {factorization.layer} · {len(factorization.heatmaps)} components"]
    return _with_caption(top, caption)


def draw_outline(data: bytes, outline: Optional[str], color: str = OUTLINE_COLOR) -> bytes:
    """JPEG `data` (a map over its picture) with the object's `outline` (`localisation.outline_text`,
    in the picture's pixels, scaled to the image's size) drawn over it, 2 px wide with a dark edge so
    it shows over any colour; `data` unchanged when there is no outline to draw."""
    (width, height), polygons = outline_polygons(outline)
    if not polygons or not data:
        return data
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    sx, sy = image.width / width, image.height / height
    draw = ImageDraw.Draw(image)
    for points in polygons:
        xy = [(x * sx, y * sy) for x, y in points]
        draw.line(xy + xy[:1], fill="#000000", width=4, joint="curve")
        draw.line(xy + xy[:1], fill=color, width=2, joint="curve")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def save(picture: Image.Image | np.ndarray, path: str | os.PathLike) -> str:
    """Write `picture` to `path` (format from its extension), creating the folder; returns the path.
    Raises `OSError` or `ValueError` (unknown extension) from Pillow."""
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, dtype=np.uint8))
    image.save(path)
    return path


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=FONT_SIZE)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: float) -> str:
    """`text`, cut with an ellipsis so that it fits in `width` pixels."""
    font = _font()
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _with_caption(picture: Image.Image, lines: Sequence[str]) -> Image.Image:
    """`picture` above a white strip holding `lines` of text."""
    line_height = FONT_SIZE + 4
    canvas = Image.new("RGB", (picture.width, picture.height + len(lines) * line_height + 2 * PAD), BACKGROUND)
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        text = _fit(draw, line, picture.width - 2 * PAD)
        draw.text((PAD, picture.height + PAD + i * line_height), text, fill=INK, font=_font())
    return canvas


def _legend(entries: Sequence[str], colors: Sequence[np.ndarray], height: int, width: int = 224) -> Image.Image:
    """A white panel listing each entry's lines next to a swatch of its colour (at least `height` tall)."""
    line_height, swatch = FONT_SIZE + 4, FONT_SIZE
    needed = PAD + sum(len(e.splitlines()) * line_height + PAD for e in entries)
    panel = Image.new("RGB", (width, max(height, needed)), BACKGROUND)
    draw = ImageDraw.Draw(panel)
    y = PAD
    for entry, color in zip(entries, colors):
        rgb = tuple(int(round(255 * c)) for c in color[:3])
        draw.rectangle([PAD, y + 2, PAD + swatch, y + 2 + swatch], fill=rgb)
        for line in entry.splitlines():
            x = 2 * PAD + swatch
            draw.text((x, y), _fit(draw, line, width - x - PAD), fill=INK, font=_font())
            y += line_height
        y += PAD
    return panel


__all__ = ["JET", "build_cam_picture", "build_dff_picture", "cam_caption", "component_colors", "concept_labels",
           "draw_outline", "overlay_cam",
           "overlay_cams", "overlay_factorization", "save"]
