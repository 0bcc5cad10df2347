"""Partial results drawn as they come, while a cached computation is still running.

The computation runs in the script thread inside an `st.cache_data` function, where every st call
is recorded and replayed on later cache hits. So the partial results are not drawn there: the
computation hands each one to `show` (no st call), and a helper thread carrying the script run's
context draws the latest one into slots made before the call. Nothing is recorded, and a cache
hit shows only what the page draws afterwards."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, Optional, TypeVar

from pages._streamlit_internals import attach_to_this_run

T = TypeVar("T")


class _Latest(Generic[T]):
    """The newest of the values handed over, and how many came."""

    def __init__(self) -> None:
        self.value: Optional[T] = None
        self.count = 0
        self.changed = threading.Condition()

    def put(self, value: T) -> None:
        with self.changed:
            self.value, self.count = value, self.count + 1
            self.changed.notify()


@contextmanager
def live(draw: Callable[[T, int], None]) -> Iterator[Callable[[T], None]]:
    """Yields `show(value)`, to hand to the computation. A helper thread draws the latest value
    shown with `draw(value, n)`, n counting the values (use it in element keys, which must be
    unique in a script run); `draw` writes into slots made beforehand (`with slot.container():`
    replaces the previous drawing). Values that come while one is being drawn are skipped but the
    last. On exit it stops, skipping what was not drawn yet (the page then draws the complete
    result), and raises what `draw` raised."""
    latest: _Latest[T] = _Latest()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        drawn = 0
        while True:
            with latest.changed:
                latest.changed.wait_for(lambda: stop.is_set() or latest.count > drawn)
                if stop.is_set():
                    return
                value, drawn = latest.value, latest.count
            try:
                draw(value, drawn)
            except Exception as err:  # raised in the script thread after the computation
                errors.append(err)
                return

    thread = threading.Thread(target=run, name="live-results", daemon=True)
    attach_to_this_run(thread)
    thread.start()
    try:
        yield latest.put
    finally:
        with latest.changed:
            stop.set()
            latest.changed.notify()
        thread.join()
    if errors:
        raise errors[0]
