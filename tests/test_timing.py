"""Timings synchronise the device before reading the clock (CUDA and MPS run asynchronously)."""

from __future__ import annotations

import types

import pytest
import torch

import xai_core
from xai_core import _timing
from xai_core.methods import cost


@pytest.fixture
def events(monkeypatch):
    """Record, in order, device synchronisations ("sync <device>") and clock reads ("clock")."""
    log: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append(f"sync {device}"))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: log.append("sync mps"))
    clock = iter(range(1000))
    monkeypatch.setattr(_timing, "time", types.SimpleNamespace(perf_counter=lambda: log.append("clock") or next(clock)))
    return log


def test_synchronize_waits_for_the_device_it_is_given(events):
    _timing.synchronize("cuda:0")
    _timing.synchronize(torch.device("mps"))
    _timing.synchronize("cpu")
    _timing.synchronize(None)
    assert events == ["sync cuda:0", "sync mps"]


def test_median_time_synchronises_before_each_clock_read(events):
    seconds = _timing.median_time(lambda: events.append("work"), torch.device("cuda", 0), repeats=2)
    assert events == ["sync cuda:0", "clock", "work", "sync cuda:0", "clock"] * 2
    assert seconds == 1


def test_timer_synchronises_and_stores_also_on_error(events):
    into: dict = {}
    with _timing.timer("cuda", into, "step"):
        events.append("work")
    assert events == ["sync cuda", "clock", "work", "sync cuda", "clock"] and into == {"step": 1}
    events.clear()
    with pytest.raises(ValueError), _timing.timer("cuda", into, "failed"):
        raise ValueError
    assert events == ["sync cuda", "clock", "sync cuda", "clock"] and "failed" in into


def test_elapsed_synchronises_first(events):
    assert _timing.elapsed("cuda", since=-5) == 5
    assert events == ["sync cuda", "clock"]


@pytest.fixture
def synced(monkeypatch):
    """The devices `_timing.synchronize` was asked to wait for (it still does its work)."""
    calls: list = []
    real = _timing.synchronize
    monkeypatch.setattr(_timing, "synchronize", lambda device: calls.append(device) or real(device))
    return calls


def test_cost_calibration_times_through_timing(random_resnet, synced, monkeypatch):
    timed = []
    real = cost.median_time
    monkeypatch.setattr(cost, "median_time", lambda fn, device=None, repeats=3: timed.append(device) or real(fn, device, repeats))
    monkeypatch.delitem(cost._CALIBRATIONS, random_resnet.module, raising=False)
    cost.estimate_cost(random_resnet, ["ablationcam", "scorecam"], "layer3")
    # single and batched forwards and the head, on the model's device; the CPU-only rescale without one
    assert timed.count(random_resnet.device) == 3 and timed.count(None) == 1
    assert synced.count(random_resnet.device) == 2 * (3 + 1 + 1)


def test_explain_and_factorize_timings_synchronise_the_models_device(random_resnet, cat_path, synced):
    result = xai_core.explain(random_resnet, cat_path, ["gradcam", "fullgrad"], layer="layer4")
    assert {"forward", "backward", "gradcam", "fullgrad", "total"} <= set(result.timings)
    # forward, backward, gradcam and fullgrad stages: before and after each; then the total
    assert synced.count(random_resnet.device) >= 2 * 4 + 1
    synced.clear()
    xai_core.factorize(random_resnet, cat_path, n_components=2, layer="layer4")
    assert synced.count(random_resnet.device) >= 3  # forward, labels, total

