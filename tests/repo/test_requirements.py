"""Every third-party distribution the code imports directly is pinned with == (the product's in
requirements.txt, an optional one's in its own requirements file, imported by one module only; the
benchmarks' and tests' in requirements-dev.txt, which includes them all)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from conftest import ROOT

PRODUCT = [ROOT / "xai_core", ROOT / "pages", ROOT / "streamlit_app.py"]
DEV = [ROOT / "benchmarks", ROOT / "tests", ROOT / "examples"]
#: Optional dependencies of the product: the one module that imports them, and their requirements file.
OPTIONAL = {"ray": (ROOT / "xai_core" / "dataset" / "ray_engine.py", "requirements-ray.txt"),
            "transformers": (ROOT / "xai_core" / "models" / "hf.py", "requirements-hf.txt"),
            "huggingface_hub": (ROOT / "xai_core" / "models" / "hf.py", "requirements-hf.txt"),
            "pycocotools": (ROOT / "xai_core" / "localisation" / "align.py", "requirements-coco.txt")}


def _files(paths: list[Path]) -> list[Path]:
    return [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]


def _top_level_imports(files: list[Path]) -> set[str]:
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _local_modules(files: list[Path]) -> set[str]:
    """Modules of this checkout (packages at the root, and files imported as top-level modules from
    the folders scripts and tests run in)."""
    return {"xai_core", "pages"} | {f.stem for f in files}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned(requirements: Path) -> set[str]:
    """Distributions pinned with == in `requirements`, following `-r` includes."""
    pins = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            pins |= _pinned(requirements.parent / line[2:].strip())
        elif "==" in line:
            pins.add(_normalise(line.split("==")[0].split("[")[0]))
    return pins


def _unpinned(paths: list[Path], requirements: Path) -> dict[str, list[str]]:
    files = _files(paths)
    third_party = _top_level_imports(files) - set(sys.stdlib_module_names) - _local_modules(_files(PRODUCT + DEV))
    owners = packages_distributions()
    missing = {name: owners.get(name, ["<not installed>"]) for name in sorted(third_party)}
    pins = _pinned(requirements)
    return {name: dists for name, dists in missing.items() if not {_normalise(d) for d in dists} & pins}


def test_the_parser_sees_what_is_imported():
    imports = _top_level_imports(_files(PRODUCT))
    assert {"torch", "pytorch_grad_cam", "scipy", "ttach", "matplotlib", "streamlit", "PIL"} <= imports


@pytest.mark.parametrize("paths, requirements", [(PRODUCT, "requirements.txt"), (DEV, "requirements-dev.txt")],
                         ids=["product", "dev"])
def test_every_imported_distribution_is_pinned(paths, requirements):
    unpinned = _unpinned(paths, ROOT / requirements)
    if requirements == "requirements.txt":  # the optional ones are checked below
        unpinned = {name: dists for name, dists in unpinned.items() if name not in OPTIONAL}
    assert unpinned == {}


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_optional_dependencies_are_pinned_and_imported_by_their_module_only(name):
    module, requirements = OPTIONAL[name]
    assert name in _top_level_imports([module])
    assert _normalise(name) in _pinned(ROOT / requirements)
    assert _normalise(name) in _pinned(ROOT / "requirements-dev.txt")  # CI installs it
    others = [f for f in _files(PRODUCT) if f != module and name in _top_level_imports([f])]
    assert others == []  # the product works without it
