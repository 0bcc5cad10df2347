"""The deployment's models file: the models a server offers besides the built-ins. This module only
reads and checks the file; `load.load_entry` loads an entry.

The file is the one named by the environment variable `XAI_MODELS`, else `models.toml` at the
project root (no such file: no extra models). Each `[[model]]` table has `name` (the id used by the
model picker and in links: lowercase letters, digits, `_`, `.`, `-`), `source` ("torchvision:NAME",
"timm:NAME", "hf:FOLDER" or "hf:HUB_ID" (a Hugging Face classifier) or a built-in model), and
optionally `weights` (a tag such as "DEFAULT", or a file), `labels` (a text or JSON file) and
`title` (how the UI names it). Relative paths start at the models
file's folder. Every message names the file by its base name and each path as the file writes it
(an absolute one by its base name), never the server's folders: the dashboard shows them. An `hf:`
source names a folder (relative: from the models file's folder) unless it is no folder there and
reads as a hub id (`owner/name`), which is then looked up in the Hugging Face cache.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InvalidOptionError, UnknownNameError
from .hf import is_hub_id
from .specs import AUTO, HF, SOURCE_PREFIXES, builtin_models

ENV = "XAI_MODELS"
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "models.toml"
#: The keys of a `[[model]]` table; the first two are required.
KEYS = ("name", "source", "weights", "labels", "title")
_NAME = re.compile(r"[a-z0-9_.-]+")
_TAG = re.compile(r"[A-Z0-9_]+")  # a weights tag ("DEFAULT", "IMAGENET1K_V2"), as load_model tells them


@dataclass(frozen=True)
class CatalogEntry:
    """One `[[model]]` of the models file. `weights` and `labels` are a tag or an absolute path
    (None: the source's default weights, its own labels); `shown` maps each absolute path to how
    messages name it (as the file writes it); `origin` names the file and the entry in messages.
    `source` is as the file writes it (the dashboard shows it); `target`, when set, is what
    `load_model` is given instead (an `hf:` folder made absolute)."""

    name: str
    source: str
    title: str
    weights: Optional[str] = None
    labels: Optional[str] = None
    origin: str = ""
    shown: tuple[tuple[str, str], ...] = ()
    target: str = ""

    def public(self, text: str) -> str:
        """`text` with every absolute path of this entry replaced by the name the file gives it."""
        for path, name in self.shown:
            text = text.replace(path, name)
        return text


def models_file() -> Optional[Path]:
    """The models file in use: `$XAI_MODELS` (even if missing: `entries` then says so), else
    `models.toml` at the project root when it exists, else None."""
    named = os.environ.get(ENV, "").strip()
    if named:
        return Path(named).expanduser().resolve()
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def entries() -> list[CatalogEntry]:
    """The models file's entries, in its order ([] without a models file). Raises
    `InvalidOptionError` with one sentence (the file, the entry, what is wrong) for a missing or
    malformed file or entry."""
    path = models_file()
    if path is None:
        return []
    where = f"The models file {path.name}" + (f" (${ENV})" if os.environ.get(ENV, "").strip() else "")
    if not path.is_file():
        raise InvalidOptionError(f"{where} does not exist; set {ENV} to an existing TOML file or unset it.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidOptionError(f"{where} cannot be read ({type(err).__name__}); give a UTF-8 TOML file.") from None
    except tomllib.TOMLDecodeError as err:
        raise InvalidOptionError(f"{where} is not valid TOML ({err}); fix its syntax.") from None
    extra = sorted(set(data) - {"model"})
    if extra:
        raise InvalidOptionError(f"{where} has unknown top-level keys ({', '.join(extra)}); list models as [[model]] tables.")
    tables = data.get("model", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InvalidOptionError(f"{where} must list its models as [[model]] tables.")
    found: list[CatalogEntry] = []
    for i, table in enumerate(tables, start=1):
        entry = _entry(table, f"{where}, model {i}" + (f" ({table['name']!r})" if isinstance(table.get("name"), str) else ""),
                       path.parent)
        if entry.name in {e.name for e in found}:
            raise InvalidOptionError(f"{entry.origin} repeats the name {entry.name!r}; give each model its own name.")
        found.append(entry)
    return found


def _entry(table: dict, origin: str, folder: Path) -> CatalogEntry:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise InvalidOptionError(f"{origin} has unknown keys ({', '.join(unknown)}); use only {', '.join(KEYS)}.")
    for key in KEYS:
        if key in table and not (isinstance(table[key], str) and table[key].strip()):
            raise InvalidOptionError(f"{origin}: {key} must be a non-empty string.")
    for key in KEYS[:2]:
        if key not in table:
            raise InvalidOptionError(f"{origin} has no {key}; every [[model]] needs a name and a source.")
    name, source = table["name"].strip(), table["source"].strip()
    builtins = builtin_models()
    if not _NAME.fullmatch(name):
        raise InvalidOptionError(f"{origin}: name {name!r} may hold only lowercase letters, digits, '_', '.' and '-'.")
    if name == AUTO or name in builtins:
        raise InvalidOptionError(f"{origin}: name {name!r} is taken by a built-in model; choose another name.")
    kind, _, arch = source.partition(":")
    if not ((kind in SOURCE_PREFIXES and arch.strip()) or source in builtins):
        raise InvalidOptionError(
            f"{origin}: source {source!r} is none of torchvision:NAME, timm:NAME, hf:PATH or a built-in model "
            f"({', '.join(builtins)})."
        )
    shown: list[tuple[str, str]] = []
    target = f"{HF}:{_path(arch.strip(), folder, shown)}" if kind == HF and _hf_folder(arch.strip(), folder) else ""
    weights = table["weights"].strip() if "weights" in table else None
    if weights is not None and not _TAG.fullmatch(weights):
        weights = _path(weights, folder, shown)
    labels = _path(table["labels"].strip(), folder, shown) if "labels" in table else None
    title = table.get("title", name).strip()
    return CatalogEntry(name, source, title, weights, labels, origin, tuple(shown), target)


def _hf_folder(written: str, folder: Path) -> bool:
    """Whether `hf:written` names a folder (else a hub id): an absolute path, a folder that exists
    (relative: from the models file's folder), or any text that is no hub id (`./model`)."""
    path = Path(written).expanduser()
    return path.is_absolute() or (folder / path).is_dir() or not is_hub_id(written)


def _path(written: str, folder: Path, shown: list[tuple[str, str]]) -> str:
    """The absolute path for `written` (relative: from `folder`), noting how messages name it."""
    path = Path(written).expanduser()
    absolute = os.path.normpath(path if path.is_absolute() else folder / path)
    shown.append((absolute, written if not path.is_absolute() else path.name))
    return absolute


def get_entry(name: str) -> CatalogEntry:
    """The models file's entry `name`; raises `UnknownNameError`, or `InvalidOptionError` for a bad file."""
    found = {e.name: e for e in entries()}
    if name not in found:
        choices = ", ".join(found) or "none: the server has no models file"
        raise UnknownNameError(f"The models file offers no model {name!r}; its models: {choices}.")
    return found[name]


__all__ = ["CatalogEntry", "ENV", "entries", "get_entry", "models_file"]
