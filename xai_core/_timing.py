"""Wall-clock timing that is honest on accelerators: CUDA and MPS run kernels asynchronously, so
a timer read before the device has finished measures only the launch. Every timing in xai_core
that can cover device work goes through `synchronize` / `timer` / `median_time`."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Union

import torch

DeviceLike = Union[str, torch.device, None]


def synchronize(device: DeviceLike) -> None:
    """Wait until every kernel queued on `device` has finished (a no-op on the CPU)."""
    kind = torch.device(device).type if device is not None else "cpu"
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


@contextmanager
def timer(device: DeviceLike, into: dict, key: str) -> Iterator[None]:
    """Store the seconds the body took, device work included, as `into[key]` (also on error)."""
    synchronize(device)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        synchronize(device)
        into[key] = time.perf_counter() - t0


def median_time(fn: Callable[[], object], device: DeviceLike = None, repeats: int = 3) -> float:
    """Median seconds of `repeats` calls of `fn`, each timed with the device synchronised."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def elapsed(device: DeviceLike, since: float) -> float:
    """Seconds since `since` (a `time.perf_counter()` reading), after synchronising `device`."""
    synchronize(device)
    return time.perf_counter() - since


__all__ = ["synchronize", "timer", "median_time", "elapsed"]
