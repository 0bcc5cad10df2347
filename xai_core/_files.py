"""Atomic file writes (a leaf, importing nothing of ours): a file's new content goes to a temporary
file in the same folder whose name is unique to the process and the call, is flushed to the disk
(fsync) and only then renamed over the file (os.replace), so a reader, a kill or a full disk sees
the previous complete file or the new one, never a truncated one. Written here: the standard
library has no atomic write (the `atomicwrites` package is archived)."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator, Union


def temporary_name(path: Union[str, os.PathLike]) -> Path:
    """A name beside `path` that no other process or call uses: `.NAME.PID-RANDOM.tmp`."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_file(path: Union[str, os.PathLike], sync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into (`with atomic_file(p) as f: f.write(...)`):
    when the block ends it is flushed to the disk and renamed over `path`; when the block (or the
    flush) raises, e.g. OSError(ENOSPC) for a full disk, the temporary file is removed, `path` is
    left as it was and the error goes on. `sync=False` skips the fsync (a reader or a kill still
    never sees half a file; a power cut may): for many small files that can be made again."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as file:
            yield file
            file.flush()
            if sync:
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Union[str, os.PathLike], data: Union[bytes, str], sync: bool = True) -> Path:
    """Write `data` (str: as UTF-8) to `path` atomically (`atomic_file`); returns `path`."""
    with atomic_file(path, sync) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


__all__ = ["atomic_file", "temporary_name", "write_atomic"]
