"""A tiny name -> spec registry shared by the model and method registries (timm style)."""

from __future__ import annotations

from typing import Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Private dict behind `register`, `get` and `names`; duplicate names are rejected."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self._kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self._entries)
            raise UnknownNameError(f"Unknown {self._kind} {name!r}; choose one of: {choices}.") from None

    def names(self) -> list[str]:
        return list(self._entries)
