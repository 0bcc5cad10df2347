"""The job's settings (part of every row's key), the columns of its rows, and what a run did."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Optional, Sequence

from .. import versions
from ..faithfulness import HIGHER_IS_BETTER, RANDOM, ROAD_PERCENTILES
from ..localisation import CENTRE

#: The localisation scores of `--ground-truth` (higher is better for each), a column `{map}_{score}`
#: per method and per baseline (the random map, the centre prior); see `localisation.Scores`.
LOCALISATION_SCORES = ("pointing", "energy", "rank", "iou")

#: The scores of `--eval`, each with whether higher is better (for win rates against the random map).
EVAL_SCORES = {score: HIGHER_IS_BETTER[score] for score in ("deletion_auc", "insertion_auc", "road_combined")}
#: How the error of a readable file that could not be explained starts (retried by a rerun).
NOT_EXPLAINED = "Not explained:"
#: What a job writes besides the table (`run`'s `pictures=`, the CLI's --pictures), the most first:
#: all (the picture, its overlays and the raw maps), maps (the picture and the raw maps), none.
PICTURES = ("all", "maps", "none")
_WRITTEN = {"maps": "the pictures and raw maps, no overlays (--pictures maps)",
            "none": "no pictures, the table only (--pictures none)"}


@dataclass(frozen=True)
class Settings:
    """What makes the maps; `digest` (part of every row's key) covers all but the model's name, a
    display string: the model is identified by its fingerprint (`ModelHandle.fingerprint`: weights,
    architecture, preprocessing and labels). The code's results version (`versions.RESULTS_VERSION`)
    is not in the digest but in each row (`results_version`): a row of another version keeps its
    key, so a rerun finds it, says so and keeps it unless asked to refresh it (`run`'s `refresh`)."""

    model: str
    fingerprint: str
    methods: tuple[str, ...]
    target: Optional[int]  # a class index (labels can repeat: ImageNet has two 'crane's)
    layers: tuple[str, ...]
    evaluate: bool = False
    steps: int = 20
    road_percentiles: tuple[int, ...] = ROAD_PERCENTILES
    #: the ground truth's path (for people: left out of the digest) and its content's digest
    #: (`localisation.ground_truth_digest`: in the digest, so changed ground truth is scored again)
    ground_truth: Optional[str] = None
    ground_truth_digest: Optional[str] = None
    #: model B (`run`'s `against=`): its name (for people: left out of the digest, like model A's)
    #: and its fingerprint (in the digest, so another model B is explained again; `against.py`)
    against: Optional[str] = None
    against_fingerprint: Optional[str] = None
    #: model B's target layers (`run`'s `against_layer=`, the CLI's --against-layer) and its default
    #: ones: the layers are in the digest only where they are not the default (so a run without
    #: --against-layer keeps the digest it had before the option existed), the default never
    against_layers: tuple[str, ...] = ()
    against_default_layers: tuple[str, ...] = ()

    @property
    def localises(self) -> bool:
        """Whether the rows hold localisation scores (a run with ground truth)."""
        return self.ground_truth_digest is not None

    @property
    def compares(self) -> bool:
        """Whether the rows compare model A with a model B (a run with `against=`)."""
        return self.against_fingerprint is not None

    def digest(self) -> str:
        """16 hex digits of a hash of the settings, the models' names and the ground truth's path
        left out (a run without ground truth or model B keeps the digest it had before they existed;
        one with model B at its default layers too). With model B and evaluation the rows hold model
        B's scores (`settings.columns`), so the digest says so: rows written before model B's maps
        were scored, which lack those columns, are explained again rather than kept with them empty."""
        content = {k: v for k, v in dataclasses.asdict(self).items()
                   if k not in ("model", "ground_truth", "against", "against_layers", "against_default_layers")
                   and not (k in ("ground_truth_digest", "against_fingerprint") and v is None)}
        if self.against_layers and self.against_layers != self.against_default_layers:
            content["against_layers"] = list(self.against_layers)
        if self.compares and self.evaluate:
            content["b_scores"] = True
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobResult:
    """What `run` did. The files in the results folder now: `explained`, `refused` (an error row) and
    `failed` (readable but not explained; always retried, so each was tried by this run). What this
    run did: `explained_now` and `refused_now`, the files it explained or refused itself (new,
    changed, or done again: `redone`, `refreshed`, damaged), `copied`, those that got the results of
    a file with the same content (a copy, a renamed or moved file), `skipped`, those done before,
    and `pruned`, the pictures of rows that are gone that it removed."""

    explained: int
    refused: int
    skipped: int
    failed: int
    output: str
    seconds: float
    copied: int = 0
    pruned: int = 0
    pictures: str = "all"
    redone: int = 0  # done before with fewer pictures than asked for: explained again to write them
    richer: int = 0  # skipped, with more pictures than asked for (kept)
    notes: tuple[str, ...] = ()  # what the run found amiss in the folder, a sentence each (`check.notes`)
    #: ((results version, rows) ...): the explained rows kept from another results version (None:
    #: written before versions were recorded); `refreshed`: rows of another version explained again
    older: tuple[tuple[Optional[int], int], ...] = ()
    refreshed: int = 0
    explained_now: int = 0
    refused_now: int = 0
    #: with ground truth: one line counting and naming the files without ground truth and the
    #: ground truth without a file, and the objects left out (`dataset.localisation_line`)
    ground_truth: str = ""

    def line(self) -> str:
        """The last line the CLI prints: what this run did ("Explained N files" counts the files it
        explained itself, then those it refused, skipped, copied and failed), and where the
        results of every file are; a rerun with nothing to do says so ("Nothing to do: ...")."""
        pruned = f"; removed {self.pruned} pictures of files no longer in the input" if self.pruned else ""
        richer = (f"; {self.richer} skipped file{'s' * (self.richer != 1)} kept the pictures written before (more "
                  f"than --pictures {self.pictures})" if self.richer else "")
        files = self.explained + self.refused + self.failed
        if files and not (self.explained_now or self.refused_now or self.failed or self.copied):
            return (f"Nothing to do: all {files} files were done before with these settings ({self.explained} "
                    f"explained, {self.refused + self.failed} not){self._versions()}{richer}{pruned}; results in "
                    f"{self.output}.")
        done = f"Explained {self.explained_now} file{'s' * (self.explained_now != 1)}"
        refused = (f", refused {self.refused_now} (see the error column of results.parquet)" if self.refused_now
                   else "")
        skipped = f"; {self.skipped} already done were skipped" if self.skipped else ""
        copied = (f"; {self.copied} renamed or copied file{'s' * (self.copied != 1)} reused the results of the same "
                  "content" if self.copied else "")
        failed = f"; {self.failed} readable file{'s' * (self.failed != 1)} failed" if self.failed else ""
        redone = (f"; {self.redone} done before with fewer pictures than --pictures {self.pictures} "
                  f"{'were' if self.redone != 1 else 'was'} explained again to write them"
                  if self.redone else "")
        written = f"; {_WRITTEN[self.pictures]}" if self.pictures in _WRITTEN else ""
        where = f"results in {self.output}"
        if self.skipped or self.copied:  # the run did not make every row: say what the folder holds
            others = f", {self.refused + self.failed} not" if self.refused + self.failed else ""
            where = f"results of all {files} files ({self.explained} explained{others}) in {self.output}"
        return f"{done}{refused}{skipped}{redone}{self._versions()}{richer}{copied}{failed}{written}{pruned}; {where}."

    def _versions(self) -> str:
        """The clause about rows of another results version: kept, or explained again (--refresh)."""
        refreshed = (f"; {self.refreshed} of another results version {'were' if self.refreshed != 1 else 'was'} "
                     f"explained again (--refresh)" if self.refreshed else "")
        if not self.older:
            return refreshed
        count = sum(n for _, n in self.older)
        which = " and ".join(f"{n} of results version {v}" if v is not None else
                             f"{n} from before results versions were recorded" for v, n in self.older)
        return (f"{refreshed}; {count} row{'s' * (count != 1)} kept from another results version ({which}; this "
                f"xai_core writes version {versions.RESULTS_VERSION}, whose maps or scores may differ): rerun with "
                "--refresh to explain them again")


def columns(methods: Sequence[str], evaluate: bool, localises: bool = False, compares: bool = False) -> list[str]:
    """The columns of results.parquet, in order: `pictures` says what was written for the row (see
    `PICTURES`), `maps_file` and `maps_index` where its raw maps are (`writer.py`), `results_version`
    the version of xai_core's results that computed it (`versions.RESULTS_VERSION`; null in rows
    written before versions were recorded). With `localises` (ground truth): `ground_truth` (what
    became of the row's ground truth: "scored", "outside" the crop, "empty" (no object), "unusable"
    (it could not be read; the note says why); null without ground truth), `ground_truth_note` (what was done to it:
    a scaled mask...), `ground_truth_outline` (the object's outline on the picture, which the galleries
    draw over the maps: `localisation.outline_text`) and `{map}_{score}` for each method, "random" and
    "centre" and each of `LOCALISATION_SCORES` (null where undefined). With `compares` (a model B, `against.py`): `correct` and
    `b_correct` (whether each model's top-1 names the true label; null where the folder is not one of
    that model's classes), model B's top-1 `b_label` and `b_probability`, the class it explains
    (`b_target_label`, the same label as `target_label`) and its probability, `b_note` (why model B
    has no maps for the row, else null), `b_maps_file` and `b_maps_index` (its raw maps), and per
    method `{m}_spearman` and `{m}_top_iou` (`compare.spearman`, `compare.top_iou`; null where undefined);
    with `evaluate` too, per method model B's scores of its own maps `b_{m}_{score}` (`EVAL_SCORES`,
    scored with model B; null where model B has no map: see `b_note`)."""
    cols = ["path", "key", "content_key", "error", "label", "probability", "top5_labels", "top5_probabilities", "target",
            "target_label", "true_label", "pictures", "maps_file", "maps_index", "results_version"]
    cols += ["seconds"] + [f"{m}_seconds" for m in methods]
    if evaluate:
        cols += [f"{m}_{score}" for m in list(methods) + [RANDOM] for score in EVAL_SCORES]
    if localises:
        cols += ["ground_truth", "ground_truth_note", "ground_truth_outline"]
        cols += [f"{m}_{score}" for m in list(methods) + [RANDOM, CENTRE] for score in LOCALISATION_SCORES]
    if compares:
        cols += ["correct", "b_label", "b_probability", "b_target_label", "b_target_probability", "b_correct",
                 "b_note", "b_maps_file", "b_maps_index"]
        cols += [f"{m}_{score}" for m in methods for score in ("spearman", "top_iou")]
        if evaluate:
            cols += [f"b_{m}_{score}" for m in methods for score in EVAL_SCORES]
    return cols


__all__ = ["EVAL_SCORES", "LOCALISATION_SCORES", "NOT_EXPLAINED", "PICTURES", "JobResult", "Settings", "columns"]
