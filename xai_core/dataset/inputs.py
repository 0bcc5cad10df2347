"""The input files of a job: a folder (an ImageFolder tree gives true labels), a `.txt` list or a glob."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..errors import InvalidOptionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Source:
    """One input file: `path` relative to the input (POSIX), `file` on disk, `true_label` (the
    subfolder's name in an ImageFolder tree, else None)."""

    path: str
    file: str
    true_label: Optional[str] = None


def list_inputs(spec: str, exclude: Optional[Path] = None) -> tuple[Path, list[Source]]:
    """The input files of `spec`: a folder (every image under it; an ImageFolder tree, i.e. every
    image exactly one subfolder deep, gives each file its subfolder's name as true label), a text
    file listing one path a line (relative to its folder; `#` starts a comment), or a glob.
    Files under `exclude` (a results folder inside the input) are left out. A file reached through
    a symbolic link keeps the path it is listed under; neither a folder's walk nor a glob's `**`
    enters a linked folder, so a link loop is never followed. Returns (the folder paths are relative to,
    the files sorted by path). Raises `InvalidOptionError` (one sentence) when nothing is found or
    the input cannot be listed (a symbolic-link loop, a folder that cannot be read...)."""
    text = str(spec).strip()
    try:
        return _list(text, exclude)
    except InvalidOptionError:
        raise
    except (OSError, RuntimeError, ValueError) as err:  # RuntimeError: pathlib's symbolic-link loops
        raise InvalidOptionError(f"The input {text!r} cannot be listed ({type(err).__name__}: a symbolic-link loop "
                                 "or an unreadable folder?); give a readable folder, .txt list or glob.") from None


def _list(text: str, exclude: Optional[Path]) -> tuple[Path, list[Source]]:
    path = Path(text).expanduser()
    if path.is_dir():
        root = path.resolve()
        files = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                       and not (exclude is not None and f.resolve().is_relative_to(exclude)))
        rel = [f.relative_to(root) for f in files]
        folder_tree = bool(rel) and all(len(r.parts) == 2 for r in rel)
        sources = [Source(r.as_posix(), str(f), r.parts[0] if folder_tree else None) for r, f in zip(rel, files)]
    elif path.is_file() and path.suffix.lower() == ".txt":
        root = path.resolve().parent
        lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
        sources = []
        for line in dict.fromkeys(filter(None, lines)):
            f = (root / line).resolve() if not Path(line).is_absolute() else Path(line)
            sources.append(Source(os.path.relpath(f, root).replace(os.sep, "/"), str(f)))
    elif any(ch in text for ch in "*?["):
        root = Path(os.path.abspath(_glob_root(text)))  # not resolved: a linked file keeps its listed path
        files = sorted(dict.fromkeys(Path(os.path.abspath(f)) for f in _glob(text) if f.is_file()))
        sources = [Source(Path(os.path.relpath(f, root)).as_posix(), str(f)) for f in files]
    elif path.is_file():
        root = path.resolve().parent
        sources = [Source(path.name, str(path.resolve()))]
    else:
        raise InvalidOptionError(f"The input {text!r} is neither a folder, a .txt list, a file nor a glob that exists.")
    if exclude is not None:
        sources = [s for s in sources if not Path(s.file).resolve().is_relative_to(exclude)]
    if not sources:
        where = " outside the results folder" if exclude is not None else ""
        raise InvalidOptionError(f"No images found in {text!r}{where} (looked for {', '.join(IMAGE_SUFFIXES)}).")
    return root, sorted(sources, key=lambda s: s.path)


def _glob_root(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = [p for p in parts[:_wild(parts)]]
    return str(Path(*fixed)) if fixed else "."


def _wild(parts: tuple[str, ...]) -> int:
    """The index of the first part of a glob with a wildcard."""
    return next(i for i, p in enumerate(parts) if any(ch in p for ch in "*?["))


def _glob(pattern: str) -> Iterator[Path]:
    """The paths `pattern` matches as `glob.glob(pattern, recursive=True)` finds them, except that
    `**` never enters a linked folder, as a folder input's walk (`rglob`) does not: a symbolic-link
    loop is not followed, and each file under the folder is found once. The walk is pathlib's
    (whose `**` skips linked folders; glob.glob's follows them into a loop until the path is too
    long); hand-written here: its trailing `**` lists folders only (glob.glob's lists files too),
    it takes `**` only as a whole part, and it matches hidden names, which glob.glob leaves to
    parts that start with a dot."""
    parts = Path(pattern).parts
    root = Path(_glob_root(pattern))
    rest = [p if p == "**" else re.sub(r"\*{2,}", "*", p) for p in parts[_wild(parts):]]
    if rest[-1] == "**":
        rest.append("*")
    dotted = [p for p in rest if p.startswith(".")]
    for path in root.glob("/".join(rest)):
        names = path.relative_to(root).parts
        if all(not n.startswith(".") or any(fnmatch.fnmatchcase(n, p) for p in dotted) for n in names):
            yield path


__all__ = ["IMAGE_SUFFIXES", "Source", "list_inputs"]
