"""Model source `hf:` at its limits: the network is never tried, whatever the environment says and
whoever imported huggingface_hub first (timm does); the user's environment is left as it was; and a
config that describes a model larger than the free memory is refused in one sentence before
anything is allocated (a real build would end the process through the OOM killer, without a word)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from xai_core.errors import InvalidOptionError, WeightsUnavailableError
from xai_core.models import hf, load_model, memory

from _deps import need
from test_hf_source import EXPECTED, _classifier, _hub_cache, _one_sentence, _save

transformers = need("transformers", reason="Hugging Face models are optional: "
                                                          "pip install -r requirements-hf.txt (CI installs it)")
import huggingface_hub  # noqa: E402  (comes with transformers)

ROOT = Path(__file__).resolve().parents[2]

#: Loads each model named on the command line, with every DNS lookup and connection refused and
#: recorded; prints what each load gave, the lookups tried, and whether the environment and
#: huggingface_hub's offline switch are as they were. argv[1] "timm": timm is imported first.
SPY = textwrap.dedent("""
    import json, os, socket, sys
    tried = []
    def refuse(*args, **kwargs):
        tried.append(repr(args[:2]))
        raise OSError("no network in this test")
    socket.getaddrinfo = refuse
    socket.socket.connect = lambda self, address: refuse(address)
    socket.socket.connect_ex = lambda self, address: refuse(address)
    if sys.argv[1] == "timm":
        import timm  # imports huggingface_hub, which reads HF_HUB_OFFLINE now, once
    import huggingface_hub.constants
    from xai_core.errors import XAIError
    from xai_core.models import load_model
    env, switch, got = dict(os.environ), huggingface_hub.constants.HF_HUB_OFFLINE, {}
    for name in sys.argv[2:]:
        try:
            got[name] = load_model(name, device="cpu").weights_source
        except XAIError as err:
            got[name] = f"{type(err).__name__}: {err}"
    print(json.dumps({"got": got, "tried": tried, "same_env": dict(os.environ) == env,
                      "switch": [switch, huggingface_hub.constants.HF_HUB_OFFLINE]}))
""")


@pytest.fixture(scope="module")
def vit(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("hf") / "vit")


@pytest.mark.parametrize("case", ["after import timm", "HF_HUB_OFFLINE=0"])
def test_the_network_is_never_tried(case, vit, tmp_path):
    """In a fresh process, so that who imports huggingface_hub first, and what it reads then, is real."""
    _hub_cache(tmp_path / "cache", "someone/tiny-vit", vit)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(ROOT), HF_HOME=str(tmp_path / "home"), HF_HUB_CACHE=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1")
    if case == "HF_HUB_OFFLINE=0":
        env["HF_HUB_OFFLINE"] = "0"
    names = [f"hf:{vit}", "hf:someone/tiny-vit", "hf:someorg/not-cached"]
    run = subprocess.run([sys.executable, "-c", SPY, "timm" if "timm" in case else "-", *names], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["tried"] == []
    assert report["got"][names[0]] == "the Hugging Face folder vit"
    assert report["got"][names[1]] == "the Hugging Face cache (someone/tiny-vit)"
    refusal = report["got"][names[2]]
    assert refusal.startswith("WeightsUnavailableError: hf:someorg/not-cached is not on this machine")
    assert "\n" not in refusal and refusal.endswith(".")
    assert report["same_env"] and report["switch"] == [False, False]  # set back to what the process had


def test_the_environment_and_the_offline_switch_are_left_as_they_were(vit, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    before = dict(os.environ)
    load_model(f"hf:{vit}", device="cpu")
    with pytest.raises(WeightsUnavailableError):
        load_model("hf:someorg/not-cached", device="cpu")
    assert dict(os.environ) == before and huggingface_hub.constants.HF_HUB_OFFLINE is False


def test_overlapping_loads_hold_the_offline_switch_until_the_last_ends(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with hf.offline(huggingface_hub):
        with hf.offline(huggingface_hub):
            assert huggingface_hub.constants.HF_HUB_OFFLINE is True
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True  # another load still runs
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="reads this process's memory from /proc")
@pytest.mark.parametrize("weights,blocks", [("DEFAULT", 10_000), (None, 100)])
def test_a_config_larger_than_the_free_memory_is_refused_before_it_is_built(weights, blocks, tmp_path, monkeypatch):
    """ViT-Base's width and 10,000 blocks: 71 billion parameters, 283 GB, which no machine here could
    build (random weights: 100 blocks, 2.8 GB, so that a regression fails this test instead of
    ending it). 1 GB free is pretended, so that the refusal comes at once on any machine."""
    folder = tmp_path / "huge"
    transformers.ViTConfig(hidden_size=768, num_hidden_layers=blocks, num_attention_heads=12,
                           intermediate_size=3072, num_labels=10).save_pretrained(folder)
    transformers.ViTImageProcessor().save_pretrained(folder)  # no weights: none are needed to refuse it
    monkeypatch.setattr(hf, "host_available_bytes", lambda: 10**9, raising=False)
    before, started = _rss(), time.perf_counter()
    with pytest.raises(InvalidOptionError) as info:
        load_model(f"hf:{folder}", weights=weights, device="cpu")
    seconds, grown = time.perf_counter() - started, _rss() - before
    message = _one_sentence(info.value)
    assert "parameters alone need more than the 1.0 GB of memory free here" in message
    assert message.startswith(f"hf:{folder}'s config.json describes a model")
    assert grown < 200 * 2**20, grown  # nothing was allocated (the meta device)
    assert seconds < 60, seconds  # measured: about 1 s
    assert torch.empty(1).device.type == "cpu"  # the meta device is not left on


def test_a_model_that_fits_is_counted_exactly_without_being_allocated():
    config = transformers.ViTConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                    intermediate_size=3072, num_labels=1000)
    auto = transformers.AutoModelForImageClassification
    counted = memory.meta_bytes(lambda: auto.from_config(config))
    with torch.device("meta"):
        model = auto.from_config(config)
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}.values()
    assert counted == sum(t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in tensors)
    assert counted > 300 * 10**6  # ViT-Base: 86 million parameters
    stopped = memory.meta_bytes(lambda: auto.from_config(config), limit=10**6)
    assert 10**6 < stopped < counted  # stopped on the way


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_every_family_is_counted_on_the_meta_device(family):
    """So that the size check is not skipped for any of them (None: not countable)."""
    model = _classifier(family)[0]
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}.values()
    real = sum(t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in tensors)
    config = model.config
    config.architectures = [type(model).__name__]  # as saved (DeiT's auto class needs it)
    assert memory.meta_bytes(lambda: transformers.AutoModelForImageClassification.from_config(config)) == real


def test_a_model_that_cannot_be_built_on_the_meta_device_is_not_counted():
    class ReadsValues(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3))
            self.steps = int(torch.linspace(0, 1, 3).sum().item())  # no values on the meta device

    assert memory.meta_bytes(ReadsValues) is None
    assert torch.empty(1).device.type == "cpu"


def test_the_free_memory_is_the_hosts_within_a_containers_limit(tmp_path, monkeypatch):
    meminfo, cgroup = tmp_path / "meminfo", tmp_path / "cgroup"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n")
    cgroup.mkdir()
    monkeypatch.setattr(memory, "MEMINFO", str(meminfo))
    monkeypatch.setattr(memory, "CGROUP", str(cgroup))
    assert memory.host_available_bytes() == 20_480_000_000  # not in a container
    (cgroup / "memory.max").write_text("max\n")
    assert memory.host_available_bytes() == 20_480_000_000  # a container without a limit
    (cgroup / "memory.max").write_text(f"{3 * 10**9}\n")
    (cgroup / "memory.current").write_text(f"{2 * 10**9}\n")
    (cgroup / "memory.stat").write_text(f"anon 1\ninactive_file {5 * 10**8}\n")
    assert memory.host_available_bytes() == 15 * 10**8  # its limit, less its use but for the page cache
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "none"))  # not Linux: free pages, if known
    assert memory.host_available_bytes() is None or memory.host_available_bytes() <= 15 * 10**8


def test_a_gpu_without_room_refuses_the_model_in_one_sentence(monkeypatch):
    module = torch.nn.Linear(1000, 1000)  # 4.0 MB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * 10**6, 80 * 10**9))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 10**6 - 10**5)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    with pytest.raises(InvalidOptionError) as info:
        memory.check_fits(module, torch.device("cuda"), "hf:big")
    assert _one_sentence(info.value) == ("hf:big needs 4.0 MB for its parameters but cuda has 3.9 MB free; use "
                                         "another device (e.g. cpu) or free its memory.")
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2 * 10**6)
    memory.check_fits(module, torch.device("cuda"), "hf:big")  # 5 MB: the allocator's unused cache counts
    memory.check_fits(module, torch.device("cpu"), "hf:big")  # the CPU's is checked before the build
