"""The one parser of comma lists of names (methods, layers): a leaf, importing nothing of ours."""

from __future__ import annotations

from typing import Sequence, Union


def split_names(value: Union[str, Sequence[str], None], lower: bool = False) -> list[str]:
    """The names in a comma list or a sequence, stripped (and lower-cased with `lower`), without
    empty items or repeats, in their order."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = (str(item).strip() for item in items)
    return list(dict.fromkeys(n.lower() if lower else n for n in names if n))


__all__ = ["split_names"]
