"""A tiny random Hugging Face ViT classifier saved as a `hf:` folder, for the tests that need one."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from _deps import need


def save_tiny_vit(folder, *, blocks: int = 2, labels: Optional[Sequence[str]] = None, classes: int = 3,
                  seed: int = 0, **config) -> Path:
    """A ViT of 32 px inputs (4 x 4 patches of 8 px, width 32, 2 heads) with `blocks` blocks and random
    weights drawn after `torch.manual_seed(seed)`, written with its image processor into `folder`
    (`save_pretrained`); `labels` (else `classes` unnamed classes) and other `config` fields as given."""
    transformers = need("transformers", reason="Hugging Face models are optional: "
                                               "pip install -r requirements-hf.txt (CI installs it)")
    if labels is not None:
        config.update(num_labels=len(labels), id2label=dict(enumerate(labels)))
    else:
        config.setdefault("num_labels", classes)
    torch.manual_seed(seed)
    vit = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=blocks,
                                 num_attention_heads=2, intermediate_size=64, **config)
    transformers.ViTForImageClassification(vit).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return Path(folder)


def save_classifiers(root: Path, families: Sequence[str], make) -> dict:
    """family -> the folder under `root` that `make(family)`'s (model, processor) was saved into, each
    model's random weights drawn after `torch.manual_seed(0)`."""
    folders = {}
    for family in families:
        torch.manual_seed(0)
        model, processor = make(family)
        model.save_pretrained(root / family)
        processor.save_pretrained(root / family)
        folders[family] = root / family
    return folders
