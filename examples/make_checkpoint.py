"""A worked example of "Explain your own model": a 3-class ResNet-18 checkpoint and its labels, and a
3-class Hugging Face ViT folder.

    .venv/bin/python examples/make_checkpoint.py out/

writes `out/resnet18_3class.pt` (a plain state dict of torchvision's `resnet18(num_classes=3)`),
`out/labels.txt` (one label a line) and, where transformers is installed (requirements-hf.txt),
`out/tiny-vit` (a `save_pretrained` folder of a small ViT and its image processor, labels in its
config), the files `examples/models.toml` offers to the dashboard. The
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

WEIGHTS, LABELS, VIT = "resnet18_3class.pt", "labels.txt", "tiny-vit"
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


def make_vit(folder: str | Path, seed: int = 0) -> Path:
    """Write a small ViT (64 px inputs, 4 x 4 patches, 4 blocks, random weights) with the labels in its
    config and its image processor into `folder`/tiny-vit, as `save_pretrained` does for any Hugging
    Face classifier; returns the model's folder. Needs transformers (ImportError otherwise)."""
    import transformers

    target = Path(folder) / VIT
    torch.manual_seed(seed)
    config = transformers.ViTConfig(image_size=64, patch_size=16, hidden_size=64, num_hidden_layers=4,
                                    num_attention_heads=4, intermediate_size=128, num_labels=len(CLASSES),
                                    id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)})
    transformers.ViTForImageClassification(config).save_pretrained(target)
    transformers.ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="where to write the checkpoint, labels.txt and tiny-vit/ (e.g. out/)")
    folder = parser.parse_args().folder
    weights, labels = make_checkpoint(folder)
    print(f"wrote {weights} ({len(CLASSES)} classes, random weights) and {labels}")
    try:
        vit = make_vit(folder)
    except ImportError:
        print("transformers is not installed (requirements-hf.txt): the hf: example folder was not written")
    else:
        print(f"wrote {vit}/ (a Hugging Face ViT, {len(CLASSES)} classes, random weights)")


if __name__ == "__main__":
    main()
