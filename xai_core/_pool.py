"""The worker threads for per-image CPU work of a batch: a leaf, importing nothing of ours."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

_POOL: Optional[ThreadPoolExecutor] = None


def worker_pool() -> ThreadPoolExecutor:
    """Threads for per-image CPU work of a batch (decoding, resizing): Pillow and torch release the
    GIL, so a batch's images are prepared in parallel while the model's device waits less."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="xai-worker")
    return _POOL


__all__ = ["worker_pool"]
