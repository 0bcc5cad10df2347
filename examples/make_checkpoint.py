"""A worked example of "Explain your own model": a 3-class ResNet-18 checkpoint and its labels.

    .venv/bin/python examples/make_checkpoint.py out/

writes `out/resnet18_3class.pt` (a plain state dict of torchvision's `resnet18(num_classes=3)`) and
`out/labels.txt` (one label a line), the files `examples/models.toml` offers to the dashboard. The
weights are random (seeded, so every run writes the same file): the point is the plumbing (a
user's architecture, class count and labels), not what the maps mean. A real checkpoint is written
the same way, `torch.save(model.state_dict(), path)`; one nested under "state_dict" or "model", or
with DataParallel's "module." or Lightning's "model." prefixes, loads as well.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torchvision

WEIGHTS, LABELS = "resnet18_3class.pt", "labels.txt"
CLASSES = ("cat", "coffee", "flower")  # three of the bundled sample photos (assets/images)


def make_checkpoint(folder: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the checkpoint and its labels into `folder` (created if needed); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))
    weights, labels = folder / WEIGHTS, folder / LABELS
    torch.save(model.state_dict(), weights)
    labels.write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    return weights, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="where to write the checkpoint and labels.txt (e.g. out/)")
    weights, labels = make_checkpoint(parser.parse_args().folder)
    print(f"wrote {weights} ({len(CLASSES)} classes, random weights) and {labels}")


if __name__ == "__main__":
    main()
