"""The dataset job on Ray (`python -m xai_core batch --engine ray [--address ADDRESS]`).

`run_ray` runs the same per-batch function as the local engine, `dataset.explain_records`, with Ray
Data: the records become plain columns (path, file, true_label, key, content_key, error: no image
bytes, so the driver's memory does not grow with the input), one block per batch, and `map_batches`
sends each batch to an actor (`Explainer`) that loads the model once, checks that it is the
driver's (the same fingerprint), keeps it, and reads the batch's files itself. One GPU per actor and
as many actors as the cluster has GPUs; on CPUs only, one actor per two CPUs, each with as many
torch threads as the CPUs it holds; every actor asks for no more than one node has (`plan`). The
rows come back batch by batch, as they finish, and the caller writes each batch as a Parquet part
(`dataset.write_part`), so a killed run loses only the batches in flight.

Without an address, a local Ray is started (and shut down afterwards); a Ray that this process has
already started is used as it is. With one (`auto` or `HEAD:6379` on a node of the cluster, e.g. in
`ray job submit`; `ray://HEAD:10001` from elsewhere, which needs `ray[client]` too), the job runs on
that cluster: its workers need the same Python packages as here (this package is shipped to them),
the model's weights at the same path (or a tag they can download), and the input files and the
output folder, where the actors write the pictures (`OUT/maps`, what `pictures` asks for, with the
local engine's writer: `writer.py`) and, with --concepts, the activations they keep in the maps' own
forward (`OUT/concepts/activations`, `kept.Keeper`: the driver extracts the concepts from them at the
end), must be on storage shared by the driver and the workers (the rows themselves come back to the
driver). Ray is imported here only; it is optional
(`pip install -r requirements-ray.txt`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

from .. import errors
from .._pool import usable_cpus
from .inputs import Source
from .kept import Keeper
from .records import explain_records
from .settings import Settings
from .store import schema
from ..errors import InvalidOptionError, JobFailed, XAIError
from ..models import ModelHandle, load_model

#: The columns a record becomes in Ray Data.
RECORD_COLUMNS = ("path", "file", "true_label", "key", "content_key", "error")
#: Environment variables the actors get from the driver: where the weights and the models file are.
SHARED_ENV = ("TORCH_HOME", "XAI_MODELS", "XAI_OFFLINE", "XDG_CACHE_HOME")
#: The last line of a remote traceback that ends in one of our errors.
_REMOTE_ERROR = re.compile(r"xai_core\.errors\.(\w+): ([^\n]+)")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - ray[data], not only ray
    except ImportError:
        raise InvalidOptionError("Ray is not installed; pip install -r requirements-ray.txt.") from None
    return ray


class Explainer:
    """A Ray Data actor: one model per worker, loaded once (and refused unless its fingerprint is
    the driver's); each call explains one batch of records with `explain_records` and returns its
    rows as an Arrow table (the schema of results.parquet)."""

    def __init__(self, load_args: dict, fingerprint: str, device: str, threads: int, settings: Settings,
                 out_dir: str, pictures: str = "all", against_args: Optional[dict] = None,
                 keep: Optional[Keeper] = None):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.handle = _loaded(load_args, fingerprint, device)
        # a run against a model B: it is loaded and checked as model A is (its fingerprint is the settings')
        self.against = (_loaded(against_args, settings.against_fingerprint, device)
                        if settings.compares and against_args is not None else None)
        self.settings = settings
        self.out_dir = out_dir
        self.pictures = pictures
        self.keep = keep

    def __call__(self, batch):
        import pyarrow as pa

        records = [{"source": Source(r["path"], r["file"], r["true_label"]), "data": None, "key": r["key"],
                    "content_key": r["content_key"], "error": r["error"]} for r in batch.to_pylist()]
        rows = explain_records(self.handle, records, self.settings, self.out_dir, self.pictures, self.against,
                               self.keep)
        return pa.Table.from_pylist(rows, schema=schema(self.settings))


def _loaded(load_args: dict, fingerprint: str, device: str) -> ModelHandle:
    """The model `load_args` load on `device`, refused unless its fingerprint is `fingerprint` (the driver's)."""
    handle = load_model(**load_args, device=device)
    if handle.fingerprint != fingerprint:
        raise InvalidOptionError(
            f"The Ray workers loaded another {load_args['name']} than this process (model fingerprint "
            f"{handle.fingerprint[:12]}, not {fingerprint[:12]}): give them the same weights file, labels "
            "and packages.")
    return handle


def model_args(handle: ModelHandle) -> dict:
    """`load_model` keywords that load `handle`'s model again in another process (a Ray actor): its
    `load_args` (its name, its weights tag or file, labels given, its input size). Raises
    `InvalidOptionError` for a randomly initialised model, which another process cannot reproduce."""
    if handle.load_args.get("weights", "") is None:
        raise InvalidOptionError(f"{handle.name} has random weights, which another process cannot load; "
                                 "give it a weights file or a tag.")
    if not handle.load_args:
        raise InvalidOptionError(f"{handle.name} was not made by load_model, so another process cannot load it; "
                                 "load it with xai_core.load_model.")
    return {k: v for k, v in handle.load_args.items() if v is not None}


def _records_table(records: Sequence[dict]):
    """The records as Arrow columns: paths and keys only, the actors read the files."""
    import pyarrow as pa

    types = pa.schema([(c, pa.string()) for c in RECORD_COLUMNS])
    return pa.Table.from_pylist([{"path": r["source"].path, "file": r["source"].file,
                                  "true_label": r["source"].true_label, "key": r["key"],
                                  "content_key": r.get("content_key"), "error": r["error"]} for r in records],
                                schema=types)


def plan(nodes: Sequence[Mapping[str, float]], local_device: Optional[str] = None) -> dict:
    """How many actors and what each asks for, from each node's resources (`ray.nodes()`' alive
    nodes' "Resources", e.g. [{"CPU": 16}, {"CPU": 8, "GPU": 1}]): {"device", "concurrency",
    "num_gpus", "num_cpus", "threads"}. Sized per node, so that every actor fits on a node: with GPUs
    (unless `local_device` is "cpu": a local Ray for a model the user put on the CPU), one actor per
    GPU, each with the CPUs the scarcest GPU node has per GPU; on CPUs only, one actor per two CPUs
    of each node (per CPU where a node has only one)."""
    gpu_nodes = [n for n in nodes if int(n.get("GPU", 0)) >= 1]
    if gpu_nodes and local_device != "cpu":
        per_actor = min(int(n.get("CPU", 0)) // int(n["GPU"]) for n in gpu_nodes)
        return {"device": "cuda", "concurrency": sum(int(n["GPU"]) for n in gpu_nodes), "num_gpus": 1,
                "num_cpus": per_actor, "threads": max(1, per_actor)}
    cpus = [int(n.get("CPU", 0)) for n in nodes if int(n.get("CPU", 0)) >= 1] or [1]
    per_actor = 2 if min(cpus) >= 2 else 1
    return {"device": "cpu", "concurrency": max(1, sum(c // per_actor for c in cpus)), "num_gpus": 0,
            "num_cpus": per_actor, "threads": per_actor}


def _nodes(ray) -> list[dict]:
    """Each alive node's resources."""
    return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive", True)]


def _connect(ray, address: Optional[str]) -> bool:
    """Connect to `address` or start a local Ray; True when this call started it (and must shut it
    down). A Ray this process already runs is reused."""
    if ray.is_initialized():
        return False
    quiet = logging.getLogger("ray")
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)  # e.g. the note that a local Ray uses token authentication
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(num_cpus=usable_cpus(), include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, logging_level=logging.ERROR)
    except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        if "ray[client]" in str(err):
            raise InvalidOptionError(f"A ray:// address needs Ray Client: pip install 'ray[client]' of the same "
                                     f"version as Ray ({ray.__version__}), or run the command on a node of the "
                                     "cluster with --address auto.") from None
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise InvalidOptionError(f"Cannot start or reach {where} ({type(err).__name__}); "
                                 "check the address and that the cluster is running.") from None
    finally:
        quiet.setLevel(level)
    return True


def _user_error(err: BaseException) -> XAIError:
    """One sentence for an exception from the Ray job, as `JobFailed`: the `XAIError`'s inside it
    (e.g. an actor that cannot load the model: Ray passes it on as text in an `ActorDiedError`), else
    what failed."""
    seen, stack = set(), [err]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, XAIError):
            return JobFailed(str(current))
        found = _REMOTE_ERROR.findall(str(current))
        if found and isinstance(getattr(errors, found[-1][0], None), type) \
                and issubclass(getattr(errors, found[-1][0]), XAIError):
            return JobFailed(found[-1][1].strip())
        stack += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return JobFailed(f"The Ray job failed ({type(err).__name__}); the batches finished so far are kept, "
                     "see the Ray logs and rerun the same command to go on.")


@contextlib.contextmanager
def _quiet_console():
    """Ray's and Ray Data's console logging off (their notes and tracebacks are not for our users;
    Ray Data still writes its log file in the session folder), restored afterwards."""
    handlers = [h for name in ("ray", "ray.data") for h in logging.getLogger(name).handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels):
            handler.setLevel(level)


def run_ray(handle: ModelHandle, records: Sequence[dict], settings: Settings, out_dir: str, batch_size: int,
            address: Optional[str], *, pictures: str = "all",
            against: Optional[ModelHandle] = None, keep: Optional[Keeper] = None) -> Iterator[list[dict]]:
    """Explain `records` (`dataset.read_record`'s dicts) with `explain_records` in Ray actors, in
    batches of `batch_size`, the actors writing what `pictures` asks for; yields each batch's rows (dicts, as `explain_records` returns them) as it
    finishes, in no particular order. `address`: None for a local Ray, else a cluster's address
    (`out_dir` must then be on storage the workers share, see the module's docstring). Raises
    `InvalidOptionError` (one sentence) when Ray is missing, the model cannot be loaded in another
    process (random weights) or the cluster cannot be reached, before any work, and `JobFailed` (one
    sentence) when the job fails once it runs (e.g. an actor cannot load the model). `against`:
    model B of a run against a model B, loaded in every actor too (its `model_args`, checked by
    its fingerprint), so each refuses a model B it cannot load again the way it refuses model A.
    `keep` (`kept.Keeper`, --concepts): each actor writes the activations of the batches it explains,
    kept in their own forward, to the results folder (each batch its own file), as the local engine does."""
    load_args = model_args(handle)
    against_args = model_args(against) if against is not None else None
    ray = _import_ray()
    records = list(records)
    if not records:
        return iter(())
    started = _connect(ray, address)
    return _batches(ray, started, handle, load_args, records, settings, out_dir, batch_size, address, pictures,
                    against_args, keep)


def _batches(ray, started, handle, load_args, records, settings, out_dir, batch_size, address, pictures,
             against_args=None, keep=None):
    context = ray.data.DataContext.get_current()
    shown = context.enable_progress_bars, context.print_on_execution_start
    try:
        context.enable_progress_bars = False  # the caller shows its own progress
        context.print_on_execution_start = False
        local_device = None if address else handle.device.type
        how = plan(_nodes(ray), local_device)
        package = Path(__file__).resolve().parents[1]  # xai_core
        env = {name: os.environ[name] for name in SHARED_ENV if os.environ.get(name)}
        if address:  # the workers run this checkout's code, shipped with the job
            runtime_env = {"py_modules": [str(package)], "env_vars": env}
        else:
            path = os.pathsep.join(filter(None, [str(package.parent), os.environ.get("PYTHONPATH")]))
            runtime_env = {"env_vars": {**env, "PYTHONPATH": path}}
        table = _records_table(records)
        size = max(1, int(batch_size))
        blocks = [table.slice(i, size) for i in range(0, table.num_rows, size)]  # one block per batch
        # A local actor that dies (out of memory) would die again: no restarts (no noisy note about
        # restarting with constructor arguments in the object store); the finished batches are kept
        # and a rerun goes on. On a cluster, where nodes come and go, Ray Data's default restarts.
        # (Ray 2.60 has no named parameter for it yet and warns about the keyword; pinned.)
        restarts = {} if address else {"max_restarts": 0}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_arrow(blocks).map_batches(
                Explainer, batch_size=size, batch_format="pyarrow", zero_copy_batch=True,
                fn_constructor_kwargs={"load_args": load_args, "fingerprint": handle.fingerprint,
                                       "device": how["device"], "threads": how["threads"], "settings": settings,
                                       "out_dir": str(out_dir), "pictures": pictures,
                                       "against_args": against_args, "keep": keep},
                compute=ray.data.ActorPoolStrategy(size=min(how["concurrency"], len(blocks))),
                num_gpus=how["num_gpus"], num_cpus=how["num_cpus"], runtime_env=runtime_env, **restarts)
        try:
            with _quiet_console():
                for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0):
                    if batch.num_rows:
                        yield batch.to_pylist()
        except XAIError:
            raise
        except Exception as err:  # noqa: BLE001 - a failed actor or task: one sentence, never a traceback
            raise _user_error(err) from err
    finally:
        context.enable_progress_bars, context.print_on_execution_start = shown
        if started:
            ray.shutdown()
