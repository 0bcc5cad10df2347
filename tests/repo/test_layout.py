"""The package's layout (issue 17): capability subpackages behind one public door each, no import
cycle (not even one hidden by an import inside a function), no private name used outside its own
subpackage, small modules, and pages that import only what a public module offers."""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "xai_core"
SUBPACKAGES = ("cli", "compare", "concepts", "dataset", "faithfulness", "localisation", "methods", "models", "report")
MAX_ROOT_FILES, MAX_LINES = 14, 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names."""
    if not node.level:
        return node.module or ""
    base = importer if _is_package(importer) else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def _imports(name: str):
    """(target module, imported names or None, whether inside a function) for each import of ours."""
    tree = ast.parse(MODULES[name].read_text())
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}

    def in_function(node) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(name, node)
            if target == "xai_core" or target.startswith("xai_core."):
                yield target, [a.name for a in node.names], in_function(node), node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("xai_core"):
                    yield alias.name, None, in_function(node), node


def _edges() -> dict[str, set[str]]:
    """Module -> the modules it imports: `from P import sub` (a submodule) leads to the submodule,
    `from P import name` to P itself."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name in MODULES:
        for target, names, _, node in _imports(name):
            for imported in names or [None]:
                sub = f"{target}.{imported}" if imported else None
                graph[name].add(sub if sub in MODULES else target)
    return graph


def _cycle(graph: dict[str, set[str]]):
    """One cycle of `graph` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_no_import_cycle_between_modules():
    assert _cycle(_edges()) is None


def test_no_import_cycle_between_subpackages():
    """The root's modules and each subpackage as one node each (the root door imports them all)."""
    def unit(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else "xai_core"

    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in _edges().items():
        for target in targets:
            if unit(module) != unit(target) and unit(module) != "xai_core":
                graph[unit(module)].add(unit(target))
    assert _cycle(graph) is None


def test_no_function_level_import_of_our_modules():
    found = [f"{name}:{node.lineno}" for name in MODULES for _, _, inside, node in _imports(name) if inside]
    assert found == []


def test_no_private_name_leaves_its_subpackage():
    """`from M import _x` only inside the package that holds M (for a submodule `_x` of package M:
    inside M); the root's private leaf modules (`_timing`, `_names`...) belong to the whole package."""
    leaks = []
    for name in MODULES:
        for target, names, _, node in _imports(name):
            for imported in names or []:
                if not imported.startswith("_"):
                    continue
                owner = target if f"{target}.{imported}" in MODULES else target.rpartition(".")[0] or target
                if _is_package(target) and f"{target}.{imported}" not in MODULES:
                    owner = target
                if not (name == owner or name.startswith(owner + ".")):
                    leaks.append(f"{name}:{node.lineno} imports {imported} from {target}")
    assert leaks == []


def test_module_sizes_and_the_root():
    root_files = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root_files) <= MAX_ROOT_FILES, root_files
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__") == list(SUBPACKAGES)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_subpackage_has_a_door(package):
    """Its `__init__` says in a few lines what it does and which module to open first, lists what it
    offers in `__all__`, and exports no name that hides one of its submodules."""
    module = importlib.import_module(f"xai_core.{package}")
    doc = module.__doc__ or ""
    assert 2 <= len(doc.strip().splitlines()) <= 6 and "first" in doc, doc
    assert module.__all__ and all(hasattr(module, n) for n in module.__all__)
    for name in module.__all__:
        if f"xai_core.{package}.{name}" in MODULES:
            assert getattr(module, name) is importlib.import_module(f"xai_core.{package}.{name}"), name


def _public(module_name: str, attribute: str) -> bool:
    """Whether `attribute` of `module_name` is offered: in its `__all__`, or a submodule of it."""
    if f"{module_name}.{attribute}" in MODULES:
        return True
    return attribute in getattr(importlib.import_module(module_name), "__all__", ())


def test_pages_use_only_what_public_modules_offer():
    used = []
    for path in [ROOT / "streamlit_app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xai_core"):
                used += [(path.name, node.module, a.name) for a in node.names]
            elif isinstance(node, ast.Attribute):
                chain, value = [node.attr], node.value
                while isinstance(value, ast.Attribute):
                    chain.insert(0, value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id == "xai_core":
                    module = "xai_core"
                    for attr in chain:
                        used.append((path.name, module, attr))
                        if f"{module}.{attr}" not in MODULES:
                            break
                        module = f"{module}.{attr}"
    assert used, "the pages use xai_core"
    assert [u for u in used if not _public(u[1], u[2])] == []


def test_faithfulness_exports_only_what_other_packages_use():
    """`xai_core.faithfulness` offers what the rest of the package imports from it, not its internals
    (`evaluate.py`, which assembles the pieces, opens the modules)."""
    used = {a for m in MODULES if not m.startswith("xai_core.faithfulness")
            for target, names, _, _ in _imports(m) if target == "xai_core.faithfulness" for a in names or ()}
    offered = set(importlib.import_module("xai_core.faithfulness").__all__)
    assert offered == used


def _module_constants(path: Path) -> set[str]:
    """The public upper-case names a module assigns at its top level (`A = ...`, `A, B = ...`)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for name in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(name, ast.Name) and name.id.isupper() and not name.id.startswith("_"):
                    names.add(name.id)
    return names


def test_one_name_per_thing():
    """A public constant is defined in one module (others import it): two modules defining `HF`, `TIMM`,
    `RANDOM` or `PREFIXES` each for themselves gave one name two meanings, or one thing two copies."""
    where = defaultdict(list)
    for name, path in MODULES.items():
        for constant in _module_constants(path):
            where[constant].append(name)
    assert {c: m for c, m in where.items() if len(m) > 1} == {}


def test_the_random_weights_text_is_written_once():
    text = "random initialisation (no pretrained weights)"
    assert sum(p.read_text().count(text) for p in MODULES.values()) == 1
