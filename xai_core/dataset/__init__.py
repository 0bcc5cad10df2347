"""Dataset mode: explain a folder, a glob or a list of images into a results folder, resumably, on
this process (the local engine) or on Ray actors (`ray_engine.py`). Open `job.py` first (`run`);
`records.py` explains one batch, `store.py` writes the results folder, `writer.py` its pictures,
`summary.py` its statistics; `lock.py` keeps it to one writer, `check.py` says what a rerun trusts;
`original.py` reads a row's photo again; `grid.py`, the grid pointing game; `localised.py` and
`localisation_summary.py`, ground truth (`ground_truth=`); `against.py` and `against_summary.py`, a model B (`against=`)."""

from . import ray_engine
from .grid import GridGame, grid_pointing_game
from .grid_report import write_grid_results
from .inputs import IMAGE_SUFFIXES, Source, list_inputs
from .job import run
from .localisation_summary import CENTRE_NOTE
from .ray_engine import model_args, run_ray
from .original import original_file
from .records import compute_records, explain_records, read_record, record_bytes
from .settings import EVAL_SCORES, LOCALISATION_SCORES, NOT_EXPLAINED, PICTURES, JobResult, Settings, columns
from .store import finish, read_rows, schema, write_part
from .summary import bootstrap_ci, check_summary, summarize
from .writer import check_pictures, pictures_written, read_map, read_picture, save_pictures

__all__ = ["CENTRE_NOTE", "EVAL_SCORES", "IMAGE_SUFFIXES", "LOCALISATION_SCORES", "NOT_EXPLAINED", "PICTURES", "GridGame", "JobResult", "Settings", "Source",
           "bootstrap_ci", "check_pictures", "check_summary", "columns", "compute_records", "explain_records", "finish",
           "grid_pointing_game",
           "list_inputs", "model_args", "original_file", "pictures_written", "ray_engine", "read_map", "read_picture",
           "read_record", "read_rows", "record_bytes", "run", "run_ray", "save_pictures", "schema", "summarize",
           "write_grid_results", "write_part"]
