"""The picture of a model comparison (`Comparison`, one method): model A's map | model B's map | the
difference B - A on a diverging colour scale centred on 0 (red: more in B, blue: more in A), each
panel titled, the scale drawn under the difference, the verdict underneath. Pillow only."""

from __future__ import annotations

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from ..compare import Comparison, MethodComparison
from .pictures import BACKGROUND, FONT_SIZE, INK, PAD, _fit, _font, _with_caption, overlay_cam

#: The diverging colour scale of the difference (matplotlib's): blue -1 (model A's), white 0, red +1 (model B's).
DIFFERENCE_COLORMAP = "RdBu_r"
_SCALE_HEIGHT = 10


def difference_colours(difference: np.ndarray) -> np.ndarray:
    """`difference` (float [h, w] in [-1, 1]) coloured on `DIFFERENCE_COLORMAP` with 0 at its centre
    (white): uint8 RGB [h, w, 3]."""
    levels = (np.clip(np.asarray(difference, dtype=np.float32), -1.0, 1.0) + 1.0) / 2.0
    return (matplotlib.colormaps[DIFFERENCE_COLORMAP](levels)[..., :3] * 255).round().astype(np.uint8)


def build_comparison_picture(comparison: Comparison, method: str) -> Image.Image:
    """Three titled panels side by side (A's map over the shared picture, B's, the difference over a
    faint grey copy of the picture with its colour scale below), over the verdict and any note of
    this method. A map that is missing (the method does not apply to that model) is a grey panel
    saying so. Raises `KeyError` for a method not compared."""
    compared = comparison.methods[method]
    image = comparison.image
    h, w = image.shape[:2]
    panels = [_map_panel(image, compared.map_a), _map_panel(image, compared.map_b), _difference_panel(image, compared)]
    titles = [(f"A: {comparison.model_a}", f"{comparison.target_label_a} {_percent(comparison.probability_a)}"),
              (f"B: {comparison.model_b}", f"{comparison.target_label_b} {_percent(comparison.probability_b)}"),
              (f"{compared.title}: B - A", "blue: more in A, red: more in B")]
    line_height = FONT_SIZE + 4
    title_height = 2 * line_height + PAD
    canvas = Image.new("RGB", (3 * w, title_height + h + _SCALE_HEIGHT + FONT_SIZE + 2 * PAD), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, (panel, title) in enumerate(zip(panels, titles)):
        for j, line in enumerate(title):
            draw.text((i * w + PAD, PAD // 2 + j * line_height), _fit(draw, line, w - 2 * PAD), fill=INK, font=_font())
        canvas.paste(Image.fromarray(panel), (i * w, title_height))
    _scale(canvas, draw, 2 * w, title_height + h + PAD // 2, w)
    said = comparison.verdict(method)
    lines = [said] + ([compared.note] if compared.note and compared.note != said else [])
    return _with_caption(canvas, [part for line in lines for part in _wrapped(draw, line, canvas.width - 2 * PAD)])


def _percent(probability: float) -> str:
    return f"{probability:.0%}" if probability >= 0.01 else f"{probability:.2%}"


def _wrapped(draw: ImageDraw.ImageDraw, text: str, width: float) -> list[str]:
    """`text` broken between words into lines that fit in `width` pixels (a word longer than a line
    is cut by `_with_caption`)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=_font()) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _map_panel(image: np.ndarray, cam) -> np.ndarray:
    if cam is None:
        return _grey(image)
    return overlay_cam(image, cam)


def _difference_panel(image: np.ndarray, compared: MethodComparison) -> np.ndarray:
    if compared.difference is None:
        return _grey(image)
    colours = difference_colours(compared.difference).astype(np.float32)
    return (0.75 * colours + 0.25 * _grey(image).astype(np.float32)).astype(np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    luminance = np.asarray(image, dtype=np.float32) @ np.float32([0.299, 0.587, 0.114])
    return np.repeat((128 + luminance / 4)[..., None], 3, axis=-1).astype(np.uint8)


def _scale(canvas: Image.Image, draw: ImageDraw.ImageDraw, left: int, top: int, width: int) -> None:
    """The difference's colour bar (-1 .. 0 .. +1) and its three ticks' labels."""
    bar = difference_colours(np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :].repeat(_SCALE_HEIGHT, 0))
    canvas.paste(Image.fromarray(bar), (left, top))
    y = top + _SCALE_HEIGHT
    for text, x in (("-1", left + PAD), ("0", left + width // 2 - PAD // 2), ("+1", left + width - 2 * PAD - 8)):
        draw.text((x, y), text, fill=INK, font=_font())


__all__ = ["DIFFERENCE_COLORMAP", "build_comparison_picture", "difference_colours"]
