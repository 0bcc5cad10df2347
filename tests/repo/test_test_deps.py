"""A missing test dependency is a skip on a developer's machine but a failure under CI=true, and
every test asks for its optional dependencies through `_deps.need` (never `pytest.importorskip`,
which skips silently everywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _deps import need

TESTS = Path(__file__).resolve().parents[1]


def test_a_missing_dependency_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_for_the_test"):
        need("no_such_module_for_the_test")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        need("no_such_module_for_the_test", reason="it is optional")
    assert need("json").dumps([1]) == "[1]"  # an installed one is simply imported


def test_no_test_skips_a_missing_import_silently() -> None:
    offenders = [str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                 if "importorskip" in p.read_text(encoding="utf-8") and p.name != Path(__file__).name]
    assert offenders == [], "use _deps.need, which fails under CI=true"
