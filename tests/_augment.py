"""Augmented copies of a sample photo (flipped, cropped, turned, brightened a little): a class of
several images where assets/images has one photo of it (the concepts-across-a-class tests)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

IMAGES = Path(__file__).resolve().parents[1] / "assets" / "images"


def augmented(name: str, count: int) -> list[tuple[str, bytes]]:
    """`count` (file name, PNG bytes) copies of sample photo `name`, each a little different."""
    image = Image.open(IMAGES / name).convert("RGB")
    w, h = image.size
    out = []
    for i in range(count):
        copy = ImageOps.mirror(image) if i % 2 else image
        margin = 0.04 * (i % 3)
        copy = copy.crop((int(w * margin), int(h * margin), int(w * (1 - margin / 2)), int(h * (1 - margin))))
        copy = ImageEnhance.Brightness(copy.rotate(3 * (i % 4) - 4, fillcolor=(128, 128, 128))).enhance(0.85 + 0.07 * i)
        buffer = io.BytesIO()
        copy.save(buffer, format="PNG")
        out.append((f"{name.rsplit('.', 1)[0]}_{i}.png", buffer.getvalue()))
    return out
