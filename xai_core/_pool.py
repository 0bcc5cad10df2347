"""Thread pools sized by what the process is given: `usable_cpus` (the one place that says how many
CPUs this process may use), `LazyPool` (a pool made on first use, once, under a lock) and the
worker threads for per-image CPU work of a batch. A leaf, importing nothing of ours."""

from __future__ import annotations

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional


def usable_cpus() -> int:
    """How many CPUs this process may use (at least 1): inside a Ray actor, the CPUs Ray assigned to
    it (`get_assigned_resources()["CPU"]`, rounded up); else the CPUs its affinity mask allows
    (`os.sched_getaffinity`, e.g. `taskset` or a container's cpuset); else `os.cpu_count()`. Never
    more than the affinity allows. What sizes our pools and a local Ray, instead of every core of
    the machine (N actors on one node would otherwise run N pools of all its cores each)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        allowed = os.cpu_count() or 1
    assigned = _ray_actor_cpus()
    if assigned is not None:
        allowed = min(allowed, assigned)
    return max(1, allowed)


def _ray_actor_cpus() -> Optional[int]:
    """The CPUs Ray assigned to the actor this process runs, or None outside an actor. Ray is only
    looked at when this process has imported it (it is optional: never imported here)."""
    ray = sys.modules.get("ray")
    if ray is None or not getattr(ray, "is_initialized", lambda: False)():
        return None
    try:
        context = ray.get_runtime_context()
        if context.get_actor_id() is None:  # the driver, or a plain task
            return None
        cpus = context.get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - a Ray without these calls: fall back on the affinity
        return None
    return max(1, math.ceil(cpus)) if cpus else None


class LazyPool:
    """A `ThreadPoolExecutor` of min(`cap`, `usable_cpus()`) threads, made on the first `get()`:
    threads asking at once all get the same pool (made once, under a lock), sized when it is first
    needed, e.g. inside a Ray actor after Ray assigned it its CPUs."""

    def __init__(self, cap: int, name: str):
        self.cap, self.name = cap, name
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        """The pool, made on the first call."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=min(self.cap, usable_cpus()),
                                                    thread_name_prefix=self.name)
                pool = self._pool
        return pool


_WORKERS = LazyPool(8, "xai-worker")


def worker_pool() -> ThreadPoolExecutor:
    """Threads for per-image CPU work of a batch (decoding, resizing), one per usable CPU, at most 8
    (`usable_cpus`): Pillow and torch release the GIL, so a batch's images are prepared in parallel
    while the model's device waits less."""
    return _WORKERS.get()


__all__ = ["LazyPool", "usable_cpus", "worker_pool"]
