"""Model source `hf:` at its limits: the network is never tried, whatever the environment says and
whoever imported huggingface_hub first (timm does); the user's environment is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xai_core.errors import WeightsUnavailableError
from xai_core.models import hf, load_model

from test_hf_source import _hub_cache, _save

transformers = pytest.importorskip("transformers", reason="Hugging Face models are optional: "
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
