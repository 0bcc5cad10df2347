"""The job's settings (part of every row's key), the columns of its rows, and what a run did."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Optional, Sequence

from ..faithfulness import HIGHER_IS_BETTER, RANDOM, ROAD_PERCENTILES

#: The scores of `--eval`, each with whether higher is better (for win rates against the random map).
EVAL_SCORES = {score: HIGHER_IS_BETTER[score] for score in ("deletion_auc", "insertion_auc", "road_combined")}
#: How the error of a readable file that could not be explained starts (retried by a rerun).
NOT_EXPLAINED = "Not explained:"


@dataclass(frozen=True)
class Settings:
    """What makes the maps; `digest` (part of every row's key) covers all but the model's name, a
    display string: the model is identified by its fingerprint (`ModelHandle.fingerprint`: weights,
    architecture, preprocessing and labels)."""

    model: str
    fingerprint: str
    methods: tuple[str, ...]
    target: Optional[int]  # a class index (labels can repeat: ImageNet has two 'crane's)
    layers: tuple[str, ...]
    evaluate: bool = False
    steps: int = 20
    road_percentiles: tuple[int, ...] = ROAD_PERCENTILES

    def digest(self) -> str:
        """16 hex digits of a hash of the settings, the model's name left out."""
        content = {k: v for k, v in dataclasses.asdict(self).items() if k != "model"}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobResult:
    """What `run` did: the files in the results (explained, refused: an error row, failed: readable
    but not explained), those skipped (done before), those whose results were copied from a file
    with the same content, and the pictures of rows that are gone that were removed."""

    explained: int
    refused: int
    skipped: int
    failed: int
    output: str
    seconds: float
    copied: int = 0
    pruned: int = 0

    def line(self) -> str:
        """The last line the CLI prints (a rerun with nothing to do says so)."""
        pruned = f"; removed {self.pruned} pictures of files no longer in the input" if self.pruned else ""
        files = self.explained + self.refused + self.failed
        if files and self.skipped >= files:
            return (f"Nothing to do: all {files} files were done before with these settings ({self.explained} "
                    f"explained, {self.refused + self.failed} not){pruned}; results in {self.output}.")
        done = f"Explained {self.explained} file{'s' * (self.explained != 1)}"
        refused = f"refused {self.refused} (see the error column of results.parquet)"
        skipped = f"; {self.skipped} already done were skipped" if self.skipped else ""
        copied = (f"; {self.copied} with the same content as another file reused its results" if self.copied
                  else "")
        failed = f"; {self.failed} readable file{'s' * (self.failed != 1)} failed" if self.failed else ""
        return f"{done}, {refused}{skipped}{copied}{failed}{pruned}; results in {self.output}."


def columns(methods: Sequence[str], evaluate: bool) -> list[str]:
    """The columns of results.parquet, in order."""
    cols = ["path", "key", "content_key", "error", "label", "probability", "top5_labels", "top5_probabilities", "target",
            "target_label", "true_label"]
    cols += ["seconds"] + [f"{m}_seconds" for m in methods]
    if evaluate:
        cols += [f"{m}_{score}" for m in list(methods) + [RANDOM] for score in EVAL_SCORES]
    return cols


__all__ = ["EVAL_SCORES", "NOT_EXPLAINED", "JobResult", "Settings", "columns"]
