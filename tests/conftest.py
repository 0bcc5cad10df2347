"""Shared fixtures. Tests never touch the network: XAI_OFFLINE=1 makes `auto` fall back at once."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from torchvision.transforms._presets import ImageClassification

os.environ.setdefault("XAI_OFFLINE", "1")

import xai_core  # noqa: E402
from _apptest import app, downloads  # noqa: E402,F401  (AppTest fixtures, shared by the page tests)

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "assets" / "images"
#: ImageNet indices of the domestic/wild cats (tabby .. Egyptian cat).
CAT_CLASSES = set(range(281, 286))


@pytest.fixture(scope="session")
def cat_path() -> Path:
    return IMAGES / "cat.png"


@pytest.fixture(scope="session")
def coffee_path() -> Path:
    return IMAGES / "coffee.png"


@pytest.fixture(scope="session")
def lite():
    """The bundled, pretrained EfficientNet-Lite0 (meaningful predictions)."""
    return xai_core.load_model("efficientnet_lite0", device="cpu")


def small_input(handle, size: int):
    """The same handle with a `size`-pixel input, so library-equality checks stay fast."""
    return dataclasses.replace(handle, transforms=ImageClassification(crop_size=size, resize_size=size))


@pytest.fixture(scope="session")
def random_resnet():
    """ResNet-50 with random weights (seeded) and 64-pixel inputs: for equality with pytorch-grad-cam."""
    torch.manual_seed(0)
    return small_input(xai_core.load_model("resnet50", weights=None, device="cpu"), 64)


def no_hooks_left(module: torch.nn.Module) -> bool:
    """True when no forward/backward hook of any kind remains anywhere in `module`."""
    for m in module.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            if getattr(m, attr, None):
                return False
    return True


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny tensors (the attention tests): on a busy 2-core
    machine two threads spin against each other and such a module takes ten times as long."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
