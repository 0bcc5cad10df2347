"""Test dependencies that a developer may lack (the browser, transformers, Ray, TorchCAM, timm):
a test that needs a missing one is skipped on a developer's machine, but fails under CI=true, where
.ci/run installs requirements-dev.txt, so that a missing dependency never passes as a skipped test."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn, Optional

import pytest


def in_ci() -> bool:
    """True under CI=true (as .ci/run is run by CI)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test (or module) for `reason`; fail it instead under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: every test dependency must be installed)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(module: str, reason: Optional[str] = None) -> ModuleType:
    """`module`, imported; `unavailable` (skip, or fail under CI=true) when it cannot be imported."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        unavailable(f"{reason or f'{module} is missing: pip install -r requirements-dev.txt'} ({err})")
