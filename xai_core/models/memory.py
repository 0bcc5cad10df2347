"""Whether a model fits before it is built: the bytes of its parameters and buffers, counted while it
is built on the meta device (nothing is allocated, and the build stops as soon as the count passes
a limit), and the memory a device has free. A model too large for the machine is then refused in
one sentence instead of being built until the OOM killer ends the process without a word.

psutil is not a dependency, and it does not read a container's limit either: the CPU's free memory
is read here from Linux's /proc/meminfo and the cgroup's memory files (os.sysconf elsewhere)."""

from __future__ import annotations

import itertools
import os
import threading
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn.modules.module import (register_module_buffer_registration_hook,
                                     register_module_parameter_registration_hook)

from ..errors import InvalidOptionError

#: Where Linux says how much memory is available, and where a cgroup v2 container's memory limit
#: and use are read (the OOM killer's own numbers).
MEMINFO, CGROUP = "/proc/meminfo", "/sys/fs/cgroup"


class _Passed(Exception):
    """The count passed its limit: ends the meta build at once."""


def meta_bytes(build: Callable[[], object], limit: Optional[int] = None) -> Optional[int]:
    """Bytes of the parameters and buffers registered by the modules `build()` makes (floating
    point counted as float32, the dtype models are run in), with `build` run on the meta device so
    nothing is allocated. The build is stopped as soon as the count passes `limit` (the count so far
    is returned, more than `limit`). None when `build` cannot run on the meta device (e.g. a model
    that reads a tensor's values while it is built): the size is then unknown. Only this thread's
    modules are counted; a tensor registered twice (tied weights) counts once."""
    me, seen, total = threading.get_ident(), {}, [0]

    def count(module: nn.Module, name: str, tensor: Optional[torch.Tensor]) -> None:
        if tensor is None or threading.get_ident() != me or id(tensor) in seen:
            return
        seen[id(tensor)] = tensor  # held, so that no other tensor takes its id
        total[0] += tensor.numel() * (4 if tensor.is_floating_point() else tensor.element_size())
        if limit is not None and total[0] > limit:
            raise _Passed

    hooks = [register_module_parameter_registration_hook(count), register_module_buffer_registration_hook(count)]
    try:
        with torch.device("meta"):
            build()
    except _Passed:
        pass
    except Exception:  # noqa: BLE001 - the model cannot be built without real tensors: its size is unknown
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def available_bytes(device: torch.device) -> Optional[int]:
    """Bytes free for new tensors on `device`: on CUDA the driver's free memory plus what torch's
    allocator holds unused; elsewhere the host's (`host_available_bytes`). None when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    return host_available_bytes()


def host_available_bytes() -> Optional[int]:
    """The host memory a process can still take without swapping or being killed: Linux's
    MemAvailable, no more than a cgroup v2 container's limit less its use (page cache it can drop
    not counted as used); else the free physical pages; None where neither can be read."""
    try:
        with open(MEMINFO, encoding="ascii") as f:
            free = int(dict(line.split(":", 1) for line in f if ":" in line)["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    room = _cgroup_room()
    return free if room is None else min(free, room)


def _cgroup_room() -> Optional[int]:
    """memory.max - (memory.current - inactive_file) of this cgroup v2, or None (no limit, not v2)."""
    try:
        with open(os.path.join(CGROUP, "memory.max"), encoding="ascii") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(CGROUP, "memory.current"), encoding="ascii") as f:
            used = int(f.read())
        with open(os.path.join(CGROUP, "memory.stat"), encoding="ascii") as f:
            stat = dict(line.split() for line in f if len(line.split()) == 2)
        return max(int(limit) - used + int(stat.get("inactive_file", 0)), 0)
    except (OSError, ValueError):
        return None


def in_words(n: int) -> str:
    """`n` bytes in words, e.g. "12.3 GB" or "4.0 MB"."""
    return f"{n / 1e9:.1f} GB" if n >= 10**9 else f"{n / 1e6:.1f} MB"


def check_fits(module: nn.Module, device: torch.device, source: str) -> None:
    """Refuse (InvalidOptionError, one sentence) to move `module` onto a CUDA `device` whose free
    memory cannot hold its parameters and buffers (the CPU's memory is checked before a build)."""
    if device.type != "cuda":
        return
    need = sum(t.numel() * t.element_size() for t in itertools.chain(module.parameters(), module.buffers()))
    free = available_bytes(device)
    if free is not None and need > free:
        raise InvalidOptionError(f"{source} needs {in_words(need)} for its parameters but {device} has "
                                 f"{in_words(free)} free; use another device (e.g. cpu) or free its memory.")


__all__ = ["CGROUP", "MEMINFO", "available_bytes", "check_fits", "host_available_bytes", "in_words", "meta_bytes"]
