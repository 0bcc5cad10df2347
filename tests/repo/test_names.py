"""One name per thing (issue 26, point 7), the parts `test_layout.py` does not hold: no public
function or class of `xai_core` that nothing uses (the never-called `attention_method()` was one),
and no table of method ids that repeats what the methods registry lists (`ATTENTION_METHODS` was
`list_methods(ATTENTION)` written out by hand)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import xai_core
from xai_core import methods
from xai_core.methods import registry

from conftest import ROOT

PACKAGE = ROOT / "xai_core"
#: Where a public name of the package may be used: the package, the app, its pages, the benchmarks,
#: the examples and the tests.
USERS = [*PACKAGE.rglob("*.py"), ROOT / "streamlit_app.py", *(ROOT / "pages").glob("*.py"),
         *(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "examples").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]


def _defined(path: Path) -> list[str]:
    """The public functions and classes `path` defines at its top level."""
    return [node.name for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


def _without_all(text: str) -> str:
    """`text` without its `__all__ = [...]` lists (naming a function there is not using it)."""
    return re.sub(r"__all__\s*=\s*[\[(].*?[\])]", "", text, flags=re.S)


def test_every_public_function_and_class_is_used():
    texts = {path: _without_all(path.read_text(encoding="utf-8")) for path in USERS if path.name != Path(__file__).name}
    unused = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _defined(path):
            pattern = re.compile(rf"\b{re.escape(name)}\b")
            uses = sum(len(pattern.findall(text)) for text in texts.values())
            if uses <= 1:  # its definition only
                unused.append(f"{path.relative_to(ROOT)}::{name}")
    assert unused == []


def test_no_table_repeats_the_registrys_list_of_a_kind():
    """A tuple or list of method ids equal to `list_methods(kind)` for some kind is a second copy."""
    kinds = {spec.kind for spec in (registry.get_method(m) for m in xai_core.list_methods())}
    by_kind = {kind: sorted(xai_core.list_methods(kind)) for kind in kinds}
    copies = []
    for module in (methods, registry, xai_core):
        for name in dir(module):
            value = getattr(module, name)
            if name.isupper() and isinstance(value, (tuple, list)) and value and all(isinstance(v, str) for v in value):
                copies += [f"{module.__name__}.{name} = list_methods({kind!r})"
                           for kind, ids in by_kind.items() if sorted(value) == ids]
    assert copies == []
