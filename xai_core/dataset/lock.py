"""One writer per results folder: a job holds an exclusive lock on OUT/.lock for its whole run
(`fcntl.flock`, released by the kernel when the process ends, even killed), and the file records the
holder's process id and host. A second job on the same folder stops at once with one sentence that
names the holder. Written here: the `filelock` package truncates the lock file when it opens it, so
a second process would erase the holder's id before it could be read."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from ..errors import ResultsInUseError

#: The lock file's name in the results folder.
LOCK_NAME = ".lock"


#: What flock raises on a file system without locks (some FUSE mounts of buckets).
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
#: The note of a run on such a file system (`JobResult.notes`).
UNLOCKED = ("The results folder's file system does not support locks, so this run could not make sure that no "
            "other run wrote the folder at the same time; run one at a time there.")


@contextlib.contextmanager
def hold_folder(out: Path) -> Iterator[bool]:
    """Hold `out`'s lock for the block (`out` exists); yields True, or False on a file system
    that has no locks (the run goes on: a bucket mounted for a Ray cluster may be one). Raises
    `ResultsInUseError` at once when another process holds it. Works on local disks and on NFS
    (Linux emulates flock there with byte-range locks, which the server arbitrates)."""
    fd = os.open(Path(out) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in _NO_LOCKS:
                yield False
                return
            if err.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise ResultsInUseError(f"The results folder is in use by another batch run ({_holder(fd)}); wait "
                                    "for it to finish, or give --output another folder.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        yield True
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """Who holds the lock, as the lock file says ("process 123 on host h"); the holder writes it
    just after taking the lock, so an empty file is read again for a moment."""
    for _ in range(20):
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"null")
        except ValueError:
            holder = None
        if isinstance(holder, dict) and "pid" in holder:
            return f"process {holder['pid']} on host {holder.get('host', '?')}"
        time.sleep(0.01)
    return "another process"


__all__ = ["LOCK_NAME", "UNLOCKED", "hold_folder"]
