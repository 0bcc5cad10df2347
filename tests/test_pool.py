"""The thread pools are sized by what the process is given (`usable_cpus`: its CPU affinity, or in a
Ray actor the CPUs the actor was given), not by the machine's cores, and made once even when many
threads ask for them at the same moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import types
from pathlib import Path

import pytest

from xai_core import _pool
from xai_core._pool import LazyPool, usable_cpus
from _deps import need

ROOT = Path(__file__).resolve().parents[1]
affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")


def _fake_ray(cpus):
    """A module that answers like Ray inside an actor that was given `cpus` CPUs."""
    context = types.SimpleNamespace(get_actor_id=lambda: "actor", get_assigned_resources=lambda: {"CPU": cpus})
    return types.SimpleNamespace(is_initialized=lambda: True, get_runtime_context=lambda: context)


def _pools_in_a_process(preamble: str) -> dict:
    """The sizes of the writer's and the decoder's pools in a fresh process after `preamble` ran."""
    code = preamble + textwrap.dedent("""
        import json
        from xai_core._pool import worker_pool
        from xai_core.dataset.writer import writer_pool
        print(json.dumps({"writer": writer_pool()._max_workers, "decoder": worker_pool()._max_workers}))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@affinity
def test_a_process_pinned_to_one_cpu_gets_pools_of_one_thread():
    assert _pools_in_a_process("import os\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n") == \
        {"writer": 1, "decoder": 1}


def test_a_ray_actor_given_one_cpu_gets_pools_of_one_thread():
    preamble = textwrap.dedent("""
        import os, sys, types
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(os.cpu_count())))  # every core of the machine allowed
        context = types.SimpleNamespace(get_actor_id=lambda: "actor", get_assigned_resources=lambda: {"CPU": 1.0})
        sys.modules["ray"] = types.SimpleNamespace(is_initialized=lambda: True, get_runtime_context=lambda: context)
    """)
    assert _pools_in_a_process(preamble) == {"writer": 1, "decoder": 1}


def test_usable_cpus_follows_the_affinity_and_the_actors_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert usable_cpus() == 1 and LazyPool(32, "t").get()._max_workers == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert usable_cpus() == 16 and LazyPool(8, "t").get()._max_workers == 8
    monkeypatch.setitem(sys.modules, "ray", _fake_ray(2.0))
    assert usable_cpus() == 2 and LazyPool(32, "t").get()._max_workers == 2
    monkeypatch.setitem(sys.modules, "ray", _fake_ray(0.5))  # a fraction of a CPU: one thread
    assert usable_cpus() == 1
    monkeypatch.setitem(sys.modules, "ray", _fake_ray(64.0))  # never more than the affinity allows
    assert usable_cpus() == 16
    driver = types.SimpleNamespace(get_actor_id=lambda: None, get_assigned_resources=lambda: {"CPU": 1.0})
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: True,
                                                                  get_runtime_context=lambda: driver))
    assert usable_cpus() == 16  # the driver (not an actor): its affinity


def test_threads_asking_at_once_get_one_pool_made_once(monkeypatch):
    made = []

    def slow_pool(**kwargs):  # a slow constructor widens the window in which an unguarded check races
        time.sleep(0.05)
        made.append(kwargs)
        return types.SimpleNamespace(**kwargs)

    monkeypatch.setattr(_pool, "ThreadPoolExecutor", slow_pool)
    lazy, threads = LazyPool(4, "t"), 32
    barrier, got = threading.Barrier(threads), [None] * threads

    def ask(n):
        barrier.wait()
        got[n] = lazy.get()

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(made) == 1 and all(pool is got[0] for pool in got)


def test_a_real_ray_actor_sizes_its_pools_by_the_cpus_it_was_given():
    ray = need("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    if ray.is_initialized():
        pytest.skip("a Ray session of another test is running")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        @ray.remote(num_cpus=1)
        class Probe:
            def sizes(self):
                from xai_core._pool import usable_cpus, worker_pool
                from xai_core.dataset.writer import writer_pool
                return usable_cpus(), writer_pool()._max_workers, worker_pool()._max_workers

        assert ray.get(Probe.remote().sizes.remote(), timeout=240) == (1, 1, 1)
    finally:
        ray.shutdown()
