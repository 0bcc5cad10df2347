"""`.ci/run` (the README's test command) uses one venv: $XAI_VENV, else the set-up command's .venv
(installing requirements-dev.txt into it once), else, on a clean clone, a cached venv outside the
checkout. Run on a temporary copy of the script, with fake venvs (no pip, no network)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The commands .ci/run needs besides bash built-ins; apt-get is left out on purpose (no install).
TOOLS = ("cat", "sha256sum", "cut", "dirname", "rm", "touch", "id", "python3", "grep")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of .ci/run and the requirements files, as a fresh clone would have them."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", repo / ".ci" / "run")
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy2(ROOT / name, repo / name)
    return repo


def _run(repo: Path, dry: bool = True, **env: str) -> str:
    tools = repo.parent / "bin"
    tools.mkdir(exist_ok=True)
    for tool in TOOLS:
        if not (tools / tool).exists() and shutil.which(tool):
            (tools / tool).symlink_to(shutil.which(tool))
    environ = {"HOME": str(repo.parent / "home"), "PATH": str(tools), **env}
    if dry:
        environ["XAI_CI_DRY_RUN"] = "1"
    done = subprocess.run([shutil.which("bash"), str(repo / ".ci" / "run"), "-k", "nothing"], env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _fake_venv(folder: Path) -> Path:
    """A venv whose python and pip only record how they were called."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "pip"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{folder}/calls"\n')
        script.chmod(0o755)
    return folder


def test_a_clean_clone_uses_a_cached_venv_outside_the_checkout(checkout: Path) -> None:
    key = hashlib.sha256(b"".join((checkout / n).read_bytes() for n in ("requirements.txt", "requirements-dev.txt")))
    expected = checkout.parent / "home" / ".cache" / "xai-dashboard" / f"venv-{key.hexdigest()[:16]}"
    assert _run(checkout) == f"venv: {expected}\n"
    assert _run(checkout, XDG_CACHE_HOME="/elsewhere").startswith("venv: /elsewhere/xai-dashboard/venv-")


def test_the_set_up_commands_venv_is_reused(checkout: Path) -> None:
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").write_text("not executable")
    assert "/home/.cache/xai-dashboard/" in _run(checkout)  # a broken .venv is not used
    (checkout / ".venv" / "bin" / "python").chmod(0o755)
    assert _run(checkout) == f"venv: {checkout / '.venv'}\n"
    assert _run(checkout, XAI_VENV="/chosen/venv") == "venv: /chosen/venv\n"  # an explicit choice wins


def test_dev_requirements_are_installed_into_dot_venv_once(checkout: Path) -> None:
    venv = _fake_venv(checkout / ".venv")
    _run(checkout, dry=False)
    _run(checkout, dry=False)
    calls = (venv / "calls").read_text().splitlines()
    headless = next(line for line in (checkout / "requirements.txt").read_text().splitlines()
                    if line.startswith("opencv-python-headless=="))
    assert calls == ["pip install -q -r requirements-dev.txt",  # once: the second run finds it installed
                     # Quantus pulls opencv-python (the GUI build): the headless cv2 is put back
                     f"pip install -q --force-reinstall --no-deps {headless}",
                     "python -m pytest -q -p no:cacheprovider -k nothing",
                     "python -m pytest -q -p no:cacheprovider -k nothing"]
    assert list(venv.glob(".xai-dev-*"))
    (checkout / "requirements-dev.txt").write_text((checkout / "requirements-dev.txt").read_text() + "rich\n")
    _run(checkout, dry=False)  # changed requirements: installed again
    assert (venv / "calls").read_text().splitlines()[-3] == "pip install -q -r requirements-dev.txt"
    assert len(list(venv.glob(".xai-dev-*"))) == 1
