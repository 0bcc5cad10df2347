"""The README's CLI commands work as written right after its set-up command: every `xai_core`
command in its code blocks is spelled with the set-up's `.venv/bin/python` (nothing activates the
venv) and runs to exit status 0, writing the files it names. Run from a temporary folder whose
`assets` is the checkout's, with the checkout on PYTHONPATH (as a run from the checkout has it);
`.venv/bin/python` becomes this interpreter when the checkout has no .venv."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ".venv/bin/python"


def readme_commands() -> list[str]:
    """Every line of the README's fenced code blocks that runs `xai_core` (`-m xai_core`)."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines() if "-m xai_core" in line]


def test_the_readme_has_cli_commands_and_spells_them_with_the_venv() -> None:
    commands = readme_commands()
    assert {shlex.split(c)[3] for c in commands} >= {"cam", "dff", "eval"}
    assert all(c.startswith(f"{VENV_PYTHON} -m xai_core ") for c in commands), commands


@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: shlex.split(c)[3])
def test_readme_command_runs_as_written(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    python = ROOT / VENV_PYTHON
    argv[0] = str(python) if python.exists() else sys.executable
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    env = dict(os.environ, PYTHONPATH=str(ROOT), XAI_OFFLINE="1")
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    if argv[3] == "batch":  # a results folder, and the last line counts the files
        written = tmp_path / argv[argv.index("--output") + 1]
        assert (written / "results.parquet").is_file() and (written / "index.html").is_file()
        assert done.stdout.strip().splitlines()[-1].startswith("Explained ")
    elif argv[3] == "grid":  # a results folder of the grid pointing game
        written = tmp_path / argv[argv.index("--output") + 1]
        assert (written / "summary.json").is_file() and (written / "index.html").is_file()
    elif "--output" in argv:
        written = tmp_path / argv[argv.index("--output") + 1]
        assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {argv[argv.index('--output') + 1]}" in done.stdout
    else:
        assert done.stdout.strip()  # eval prints its score table


def _inline_commands() -> list[str]:
    """Every `xai_core` command in the README, in code blocks and in inline code spans."""
    text = (ROOT / "README.md").read_text()
    spans = re.findall(r"`([^`\n]*-m xai_core[^`]*)`", text.replace("\n", " "))
    return readme_commands() + [s.strip() for s in spans]


def test_readme_commands_write_into_ignored_folders() -> None:
    """A newcomer who runs the README's commands in the checkout leaves no untracked file behind."""
    outputs = []
    for command in _inline_commands():
        argv = shlex.split(command)
        outputs += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--output", "--output-dir")]
    outputs = [o for o in outputs if not o.startswith("/") and o.upper() != o]  # not OUT / DIR placeholders
    assert len(outputs) >= 4, outputs
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *outputs], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert set(ignored) == set(outputs)


def test_readme_installs_with_the_venv_pip() -> None:
    """Every `pip install` in the README is the set-up venv's (`.venv/bin/pip`), like its other commands."""
    text = (ROOT / "README.md").read_text()
    bare = [m.start() for m in re.finditer(r"pip install", text) if not text[: m.start()].endswith(".venv/bin/")]
    assert bare == [], [text[i - 40:i + 40] for i in bare]
