"""Dataset mode: explain a folder, a glob or a list of images into a results folder, resumably.
Open `job.py` first (`run`).

    OUT/results.parquet   one row per input file (columns: `columns`)
    OUT/parts/            the rows, one Parquet file per batch as it finishes (a killed run loses
                          at most the batch in flight; a rerun skips every file already there)
    OUT/maps/             per image: KEY.jpg (the picture the maps belong to), KEY_METHOD.png
                          (each map over it) and KEY.npz (the raw maps, float16 [H, W] each)
    OUT/summary.json      per method: score means with 95% bootstrap intervals, win rates against
                          the random map, accuracy (with true labels); see `summarize`
    OUT/index.html        the browsable report (`xai_core.report.html_reports`)

A row's `key` is the file's content hash and the job's settings: rerunning the same command finds
every file's key in `parts/` and skips it; a changed file or other settings run again. The local engine
runs the batches in this process (`run`); the Ray engine (`ray_engine.py`) runs `explain_records`
in Ray actors and writes the same rows.
"""

from . import ray_engine
from .inputs import IMAGE_SUFFIXES, Source, list_inputs
from .job import run
from .ray_engine import model_args, run_ray
from .records import compute_records, explain_records, read_record, record_bytes, save_pictures
from .settings import EVAL_SCORES, NOT_EXPLAINED, JobResult, Settings, columns
from .store import finish, read_rows, schema, write_part
from .summary import bootstrap_ci, summarize

__all__ = ["EVAL_SCORES", "IMAGE_SUFFIXES", "NOT_EXPLAINED", "JobResult", "Settings", "Source", "bootstrap_ci",
           "columns", "compute_records", "explain_records", "finish", "list_inputs", "model_args", "ray_engine",
           "read_record", "read_rows", "record_bytes", "run", "run_ray", "save_pictures", "schema", "summarize",
           "write_part"]
