"""Progress bars on stderr: one per slow method (`MethodBar`), and the dataset job's with its rate and
the time left (`RateBar`)."""

from __future__ import annotations

import sys
import time


class MethodBar:
    """progress(method, done, total) callback drawing one text bar per slow method on stderr."""

    WIDTH = 30

    def __init__(self) -> None:
        self._last: tuple[str, int] = ("", -1)

    def __call__(self, method: str, done: int, total: int) -> None:
        step = int(self.WIDTH * done / max(total, 1))
        if (method, step) == self._last and done < total:
            return
        self._last = (method, step)
        bar = "#" * step + "-" * (self.WIDTH - step)
        sys.stderr.write(f"\r{method:>14} [{bar}] {done}/{total}" + ("\n" if done >= total else ""))
        sys.stderr.flush()


class RateBar:
    """progress(done, total) callback: a text bar with the rate and the time left, on stderr."""

    WIDTH = 30

    def __init__(self) -> None:
        self._started = None

    def __call__(self, done: int, total: int) -> None:
        if total == 0:
            sys.stderr.write("  images: nothing to do, every file was done before with these settings\n")
            sys.stderr.flush()
            return
        now = time.perf_counter()
        if self._started is None:
            self._started = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 and done else 0.0
        left = f"{(total - done) / rate:.0f} s left" if rate else "starting"
        step = int(self.WIDTH * done / max(total, 1))
        bar = "#" * step + "-" * (self.WIDTH - step)
        sys.stderr.write(f"\r  images [{bar}] {done}/{total}  {rate:.1f} images/s, {left}   "
                         + ("\n" if done >= total else ""))
        sys.stderr.flush()


__all__ = ["MethodBar", "RateBar"]
