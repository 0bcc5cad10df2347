"""A class folder for the dataset-mode concepts tests: crops and flips of the cat photo in tabby/ (and
of coffee in espresso/), enough images for a class's concepts (at least 8)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

IMAGES = Path(__file__).resolve().parents[1] / "assets" / "images"


def tabby_folder(root: Path, count: int = 9, others: int = 3) -> Path:
    """An ImageFolder: `count` crops/flips of the cat photo in tabby/, `others` of coffee in espresso/."""
    for folder, photo, n in (("tabby", "cat.png", count), ("espresso", "coffee.png", others)):
        (root / folder).mkdir(parents=True)
        base = Image.open(IMAGES / photo).convert("RGB")
        w, h = base.size
        for i in range(n):
            box = (i * w // 40, (i % 3) * h // 30, w - (i % 4) * w // 30, h - i * h // 50)
            picture = base.crop(box)
            picture = ImageOps.mirror(picture) if i % 2 else picture
            picture.save(root / folder / f"{i:02d}.jpg", quality=92)
    return root
