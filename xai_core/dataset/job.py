"""`run`: the dataset job. Lists the inputs, skips the files a previous run with the same settings
did (with at least the pictures asked for), explains the rest batch by batch with the local engine
(this process) or the Ray engine, writes each batch's pictures and then its rows as a part, and
finishes the results folder (see the package docstring)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from .. import versions
from .._names import split_names
from ..errors import InvalidOptionError
from ..explain import images_per_batch
from ..localisation import ground_truth_digest
from ..methods import ATTENTION, check_applies, get_method
from ..models import ModelHandle
from .against import against_layers, check_against
from .check import notes, trusted_rows
from .inputs import list_inputs
from .kept import Keeper, checked_concepts, concepts_step, prune_kept
from .localisation_summary import localisation_line, unmatched_truths
from .localised import ground_truths, truth_of, with_truth
from .lock import UNLOCKED, hold_folder
from .ray_engine import run_ray
from .records import compute_batch, copy_row, read_record
from .settings import NOT_EXPLAINED, PICTURES, JobResult, Settings
from .store import finish, write_part
from .writer import check_pictures, covers, pictures_written, store_pictures


def run(
    handle: ModelHandle,
    input_spec: str,
    output: str,
    methods: Sequence[str],
    *,
    target=None,
    layer=None,
    evaluate: bool = False,
    steps: int = 20,
    batch_size: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    engine: str = "local",
    address: Optional[str] = None,
    pictures: str = "all",
    refresh: bool = False,
    ground_truth=None,
    against: Optional[ModelHandle] = None,
    against_layer=None,
    concepts: Optional[int] = None,
    concepts_seed: int = 0,
) -> JobResult:
    """Explain every file of `input_spec` (see `list_inputs`) into the folder `output`, skipping
    the files a previous run with the same settings already did. `pictures`: what is written
    besides the table (`PICTURES`: all, maps or none; see `writer.py`); a file done before with
    fewer pictures than asked for is explained again to write them, one done with more keeps
    them. A file done before by another results version (`versions.RESULTS_VERSION`) keeps its row,
    and the result says how many did, unless `refresh`: then it is explained again.
    `progress(done, total)` after each batch. Holds the folder's lock for the whole run
    (`lock.py`). Raises `InvalidOptionError` for bad settings (before any work),
    `ResultsInUseError` when another process writes the folder; a bad file is an error row, never an
    exception.

    `ground_truth`: a path (`localisation.read_ground_truth`: a CSV of boxes, a COCO JSON, a folder
    of masks or of Pascal VOC files) that adds the localisation scores of each map and of both
    baselines to the rows of the files it has (`localised.py`) and to summary.json
    (`localisation_summary`); a box's label that names one of the model's classes is that image's
    target. Its content is part of the settings, so changed ground truth is explained and scored
    again. Raises `InvalidGroundTruthError` (one sentence, before any work) when it cannot be read;
    files without ground truth and ground truth without a file are counted (`JobResult.ground_truth`),
    never an error.

    `against`: model B (a `load_model` handle): every file is compared with it too
    (`compare.compare_models_batch`; model A is explained once), each row gets model B's columns
    (`settings.columns`: its prediction, whether each model is right where folders are classes, each
    method's Spearman and top-20% IoU), maps/ model B's pictures beside A's (KEY_b...) and
    summary.json an "against" block (`against_summary`). Model B's fingerprint is part of the
    settings, so another model B explains every file again and the same one resumes. Raises
    `InvalidOptionError` for two models with no label in common and `UnknownNameError` for a
    `target` model B does not know, before any work. `against_layer`: model B's target layer(s) (a
    name or a comma list, as `layer`; default: its own default), part of the settings' digest where
    it is not the default; an unknown one raises `UnknownNameError` before any work. With
    `evaluate` model B's maps are scored with model B too (`b_{method}_{score}` columns, and the
    paired change B − A in the "against" block).

    `concepts`: K concepts per class at the end of the run (`concepts.dataset_concepts`, seeded by
    `concepts_seed`) from the activations kept in the maps' own forward by either engine (`kept.py`;
    on Ray, by the actors, in the results folder); kept activations no row will use (of rows explained
    again, of files gone) are removed at the end of every run. Raises `InvalidOptionError` (before any
    work) for a bad K or a model whose head is not global average pooling + linear."""
    started = time.perf_counter()
    pictures = check_pictures(pictures)
    methods = [get_method(m).id for m in split_names(methods, lower=True)]
    if not methods:
        raise InvalidOptionError("Choose at least one method.")
    check_applies(handle, [get_method(m).title for m in methods if get_method(m).kind == ATTENTION])
    if target is not None:
        target = handle.class_index(target)
    layers = tuple(split_names(layer)) or (handle.default_layer,)
    layers = tuple(handle.layer_name(n) for n in layers)
    if engine not in ("local", "ray"):
        raise InvalidOptionError(f"Unknown engine {engine!r}; use local or ray.")
    concepts = checked_concepts(handle, concepts)
    settings = Settings(handle.name, handle.fingerprint, tuple(methods), target, layers, bool(evaluate), int(steps))
    if against is not None:
        check_against(handle, against, target)
    layers_b, default_b = against_layers(against, against_layer)
    if against is not None:
        settings = dataclasses.replace(settings, against=against.name, against_fingerprint=against.fingerprint,
                                       against_layers=layers_b, against_default_layers=default_b)
    if ground_truth is not None:
        where = Path(ground_truth).expanduser().resolve()
        settings = dataclasses.replace(settings, ground_truth=str(where), ground_truth_digest=ground_truth_digest(where))
        ground_truths(settings)  # read now: ground truth that cannot be read is refused before any work
    size = images_per_batch(handle, batch_size)
    out = Path(output).expanduser().resolve()
    root, sources = list_inputs(input_spec, exclude=out)  # never our own maps
    try:
        (out / "parts").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidOptionError(f"The results folder cannot be made ({type(err).__name__}); give --output a "
                                 "writable folder path.") from None
    with hold_folder(out) as locked:  # one writer at a time: a second run stops here with one sentence
        result = _job(handle, settings, out, root, sources, size, pictures, engine, address, progress, started,
                      refresh, against, (concepts, int(concepts_seed)) if concepts else None)
    return result if locked else dataclasses.replace(result, notes=(UNLOCKED, *result.notes))


def _job(handle: ModelHandle, settings: Settings, out: Path, root: Path, sources: list, size: int, pictures: str,
         engine: str, address: Optional[str], progress: Optional[Callable[[int, int], None]],
         started: float, refresh: bool, against: Optional[ModelHandle] = None,
         concepts: Optional[tuple] = None) -> JobResult:
    """`run` once it holds the folder: what is stored is checked against the disk (`check.py`).
    `concepts`: (K, seed) or None."""
    digest = settings.digest()
    stored, damaged, aside = trusted_rows(out, settings.methods, digest)
    stored = [row for row in stored if not (row["error"] or "").startswith(NOT_EXPLAINED)]
    older = {row["key"] for row in stored if refresh and _older(row)}  # explained again
    stored = [row for row in stored if row["key"] not in older]
    done = {row["key"]: row for row in stored if covers(row, pictures)}
    fewer = {row["key"] for row in stored if row["key"] not in done}  # explained again, to write them
    # content key -> a finished row whose results (and pictures) serve every file with that content
    reusable = {row["content_key"]: row for row in done.values() if row.get("content_key")
                and (pictures_written(row) == "none" or (out / "maps" / f"{row['key']}.jpg").is_file())}
    todo, copies, keys, contents, present = [], [], {}, set(reusable), set()
    truths = ground_truths(settings)
    for source in sources:
        record = with_truth(read_record(source, digest), truth_of(truths, source.path))
        keys[source.path] = record["key"]
        present.add(record["content_key"])
        if record["key"] in done:
            continue
        if record["content_key"] in contents:
            copies.append(record)  # the same content as a file done before, or earlier in this run
        else:
            todo.append(record)
            if record["content_key"] is not None:
                contents.add(record["content_key"])
    total, finished = len(todo) + len(copies), 0
    if progress is not None:
        progress(0, total)
    redone = sum(record["key"] in fewer for record in todo + copies)
    refreshed = sum(record["key"] in older for record in todo + copies)
    asked = PICTURES.index(pictures)  # skipped files with more pictures than asked for keep them
    richer = sum(keys[s.path] in done and PICTURES.index(pictures_written(done[keys[s.path]])) < asked
                 for s in sources)
    keep = Keeper(out, handle.default_layer) if concepts else None  # the Ray actors keep them too
    if engine == "ray":
        batches = _written(out, settings, run_ray(handle, todo, settings, str(out), size, address, pictures=pictures,
                                                    against=against, keep=keep))
    else:
        batches = _local(handle, todo, settings, out, size, pictures, against, keep)
    explained_now = refused_now = 0  # the files this run explained or refused itself (not copied)
    for rows in batches:
        reusable.update({row["content_key"]: row for row in rows if row.get("content_key")})
        explained_now += sum(row["error"] is None for row in rows)
        refused_now += sum(row["error"] is not None and not row["error"].startswith(NOT_EXPLAINED) for row in rows)
        finished += len(rows)
        if progress is not None:
            progress(finished, total)
    if copies:
        write_part(out, [copy_row(str(out), record, reusable[record["content_key"]]) for record in copies], settings)
        if progress is not None:
            progress(total, total)
    # kept activations of rows explained again (--refresh, fewer pictures) or of files gone: never used, removed
    prune_kept(out, keys.values(), present - {None}, [record["key"] for record in todo], keep.run if keep else "")
    unmatched = unmatched_truths(truths, [s.path for s in sources]) if truths is not None else []
    extra = None
    if concepts:
        step = concepts_step()

        def extra(finished_rows: list) -> dict:
            return {"concepts": step(handle, out, finished_rows, str(root), *concepts)}
    rows, pruned = finish(out, sources, keys, settings, str(root), handle.categories, unmatched, extra)
    refused = [r for r in rows if r["error"] is not None]
    failed = sum(r["error"].startswith(NOT_EXPLAINED) for r in refused)
    again = sum(record["key"] in damaged for record in todo + copies)
    kept = Counter(r.get("results_version") for r in rows if _older(r))
    return JobResult(len(rows) - len(refused), len(refused) - failed, len(sources) - total, failed, str(out),
                     time.perf_counter() - started, len(copies), pruned, pictures, redone, richer,
                     notes(aside, again), tuple(sorted(kept.items(), key=lambda vn: (vn[0] is None, vn[0] or 0))),
                     refreshed, explained_now=explained_now, refused_now=refused_now,
                     ground_truth=localisation_line(rows, unmatched) if truths is not None else "")


def _older(row: dict) -> bool:
    """Whether `row` holds maps and scores of another results version than this xai_core's."""
    return row["error"] is None and row.get("results_version") != versions.RESULTS_VERSION


def _local(handle: ModelHandle, todo: list, settings: Settings, out: Path, size: int,
           pictures: str, against: Optional[ModelHandle] = None,
           keep: Optional[Keeper] = None) -> Iterator[list[dict]]:
    """The local engine: each batch's rows once its part is on disk. A background thread writes a
    batch's pictures (spread over the writer pool's threads, one per core: `writer.py`) and then, at
    once, its part (so a part never names a missing picture) while the next batch is computed; a
    batch waits for the previous one's writing before its own starts, so at most two batches are
    held and a kill loses at most two batches: the one being computed and the one being written
    (its pictures may be on disk, its part is not). The files copied from one of the same content
    (`copy_row`) are written as one part at the end; a rerun copies them again."""
    pending: Optional[Future] = None
    with ThreadPoolExecutor(max_workers=1) as writer:
        for i in range(0, len(todo), size):
            batch = todo[i:i + size]  # (without model B or concepts, the call as before: tests count these calls)
            rows, drawn = (compute_batch(handle, batch, settings) if against is None and keep is None else
                           compute_batch(handle, batch, settings, against, keep))
            if pending is not None:
                yield pending.result()
            pending = writer.submit(_store, out, rows, drawn, settings, pictures)
        if pending is not None:
            yield pending.result()


def _store(out: Path, rows: list[dict], drawn: list, settings: Settings, pictures: str) -> list[dict]:
    write_part(out, store_pictures(str(out), rows, drawn, pictures), settings)
    return rows


def _written(out: Path, settings: Settings, batches: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """The Ray engine's batches (their pictures already written by the actors), each written as a
    part as soon as it comes back."""
    for rows in batches:
        write_part(out, rows, settings)
        yield rows


__all__ = ["run"]
