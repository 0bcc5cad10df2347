"""The object's outline as text, for a gallery to draw over the maps: `outline_text(mask)` traces an
aligned mask's outer borders (OpenCV's contours, simplified to within a pixel) into
"WxH;M x y L x y ... Z ..." (an SVG path in the picture's pixels, after the picture's size), which
the Dataset page draws with Pillow and index.html as an SVG over each map; `outline_polygons` reads
it back. Hand-written: no library writes a mask's outline as an SVG path."""

from __future__ import annotations

import re
from typing import Optional

import cv2
import numpy as np

#: At most this many polygons (the largest) and points in all: a bounded cell of the results table.
_MAX_POLYGONS, _MAX_POINTS = 8, 400
_NUMBER = r"\d+(?:\.\d+)?"
_POINT = re.compile(rf"[ML]({_NUMBER}) ({_NUMBER})")
#: What `outline_text` writes after the size: polygons "Mx yLx y...Z", nothing else.
_PATH = re.compile(rf"(?:M{_NUMBER} {_NUMBER}(?:L{_NUMBER} {_NUMBER})*Z)+")


def outline_text(mask: np.ndarray) -> Optional[str]:
    """The outer borders of bool `mask` [H, W] (the aligned object) as "WxH;PATH", each polygon
    through its border pixels' centres; None for an empty mask. Holes are not drawn."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        return None
    found, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(found, key=cv2.contourArea, reverse=True)[:_MAX_POLYGONS]
    tolerance = 1.0
    while True:  # simplify until the whole outline is within the budget of points
        polygons = [cv2.approxPolyDP(c, tolerance, True).reshape(-1, 2) for c in contours]
        if sum(len(p) for p in polygons) <= _MAX_POINTS:
            break
        tolerance *= 2
    parts = []
    for points in polygons:
        xy = points + 0.5  # pixel (column, row) -> its centre
        parts.append("M" + "L".join(f"{x:g} {y:g}" for x, y in xy) + "Z")
    return f"{mask.shape[1]}x{mask.shape[0]};" + "".join(parts)


def outline_polygons(text: Optional[str]) -> tuple[tuple[int, int], list[np.ndarray]]:
    """((width, height), [float [n, 2] (x, y) polygons]) of an `outline_text`; ((0, 0), []) for
    None or text that is not one (a hand-edited table is not trusted: nothing is drawn)."""
    if not isinstance(text, str) or ";" not in text:
        return (0, 0), []
    size, path = text.split(";", 1)
    match = re.fullmatch(r"(\d+)x(\d+)", size.strip())
    if match is None or _PATH.fullmatch(path) is None:
        return (0, 0), []
    polygons = []
    for part in path.split("Z"):
        points = [(float(x), float(y)) for x, y in _POINT.findall(part)]
        if len(points) >= 2:
            polygons.append(np.asarray(points, dtype=np.float64))
    return (int(match.group(1)), int(match.group(2))), polygons


__all__ = ["outline_polygons", "outline_text"]
