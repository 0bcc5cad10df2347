"""What a dataset job survives (issue 18): a kill loses at most two batches, the one being computed
and the one being written (each batch's part is written as soon as its pictures are on disk, while
the next batch is computed), running out of memory retries a batch at half size down to one image,
and odd inputs (symbolic links, a link loop) get one sentence, never a traceback."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import torch
from PIL import Image

import xai_core
from conftest import IMAGES, ROOT
from xai_core import cli, dataset
from xai_core.dataset import job, records

PHOTOS = sorted(IMAGES.iterdir())


def _inputs(root: Path, count: int) -> Path:
    root.mkdir()
    for i in range(count):
        shutil.copy(PHOTOS[i % len(PHOTOS)], root / f"{i:02d}_{PHOTOS[i % len(PHOTOS)].name}")
    return root


def test_a_kill_after_batch_two_keeps_batches_one_and_two(tmp_path):
    """The process is killed (SIGKILL) while batch 3 is computed, once batch 2's pictures have had
    time to reach the disk: both finished batches' rows are on disk, and a rerun does only the rest."""
    root, out = _inputs(tmp_path / "in", 6), tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        import xai_core
        from xai_core.dataset import job
        real, calls = job.compute_batch, []
        def spy(handle, batch, settings):
            calls.append(1)
            if len(calls) == 3:  # batch 3 in flight
                deadline = time.time() + 20
                while time.time() < deadline and not list(Path({str(out)!r}, "maps").glob("*_gradcam.jpg"))[3:]:
                    time.sleep(0.05)  # batch 2's pictures on disk
                time.sleep(1.0)
                os.kill(os.getpid(), signal.SIGKILL)
            return real(handle, batch, settings)
        job.compute_batch = spy
        handle = xai_core.load_model("efficientnet_lite0", device="cpu")
        xai_core.dataset.run(handle, {str(root)!r}, {str(out)!r}, ["gradcam"], batch_size=2)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ, XAI_OFFLINE="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    kept = [row["path"] for part in (out / "parts").glob("part-*.parquet") for row in pq.read_table(part).to_pylist()]
    assert sorted(kept) == sorted(p.name for p in root.iterdir())[:4]
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    again = dataset.run(handle, str(root), str(out), ["gradcam"], batch_size=2)
    assert (again.skipped, again.explained) == (4, 6)


def test_a_kill_while_one_batch_is_written_and_the_next_computed_loses_those_two_only(tmp_path):
    """The worst case of the local engine: a SIGKILL from outside while batch 3 is being written
    (its pictures on disk, its part not yet) and batch 4 is computed. The parts hold exactly
    batches 1 and 2, every part reads, and a rerun explains the two lost batches and the last one."""
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    for i in range(10):  # 5 batches of 2, no two files alike (a copy would be copied, not explained)
        Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((64 + i, 64)).save(root / f"{i:02d}.png")
    script = textwrap.dedent(f"""
        import threading, time
        import xai_core
        from xai_core.dataset import job
        real_store, real_compute, stores, computes = job.store_pictures, job.compute_batch, [], []
        written = threading.Event()
        def store(*args, **kwargs):
            stores.append(1)
            result = real_store(*args, **kwargs)
            if len(stores) == 3:  # batch 3's pictures are on disk; its part comes after
                written.set()
                time.sleep(600)
            return result
        def compute(handle, batch, settings):
            computes.append(1)
            if len(computes) == 4:  # batch 4 in flight, batch 3 being written
                written.wait(120)
                print("batch 3 written, batch 4 computed", flush=True)
                time.sleep(600)
            return real_compute(handle, batch, settings)
        job.store_pictures, job.compute_batch = store, compute
        handle = xai_core.load_model("efficientnet_lite0", device="cpu")
        xai_core.dataset.run(handle, {str(root)!r}, {str(out)!r}, ["gradcam"], batch_size=2)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ, XAI_OFFLINE="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(300, proc.kill)  # never wait for ever on a driver that went wrong
    watchdog.start()
    try:
        ready = proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        proc.kill()
    assert ready.strip() == "batch 3 written, batch 4 computed" and proc.returncode == -9, err
    names = sorted(p.name for p in root.iterdir())
    assert len(list((out / "maps").glob("*_gradcam.jpg"))) == 6  # batch 3's pictures were written
    kept = [row["path"] for part in (out / "parts").glob("part-*.parquet") for row in pq.read_table(part).to_pylist()]
    assert sorted(kept) == names[:4]  # batches 1 and 2: the loss is batches 3 and 4
    seen = []
    real = job.compute_batch
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    with mock.patch.object(job, "compute_batch", lambda h, batch, s: seen.append(len(batch)) or real(h, batch, s)):
        again = dataset.run(handle, str(root), str(out), ["gradcam"], batch_size=2)
    assert (again.skipped, again.explained, seen) == (4, 10, [2, 2, 2])
    assert sorted(r["path"] for r in pq.read_table(out / "results.parquet").to_pylist()) == names


def test_out_of_memory_retries_the_batch_at_half_size(lite, tmp_path, monkeypatch):
    """A batch of 4 that does not fit is split, halves of 2 fit: every file is explained."""
    real, sizes = records.explain_batch, []

    def tight(handle, images, *args, **kwargs):
        sizes.append(len(images))
        if len(images) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(handle, images, *args, **kwargs)

    monkeypatch.setattr(records, "explain_batch", tight)
    result = dataset.run(lite, str(_inputs(tmp_path / "in", 4)), str(tmp_path / "out"), ["gradcam"], batch_size=4)
    assert sizes == [4, 2, 2] and (result.explained, result.failed) == (4, 0)


def test_an_image_that_never_fits_gets_an_error_row_and_the_run_goes_on(lite, tmp_path, monkeypatch, capsys):
    real = records.explain_batch
    huge = {"01_"}

    def tight(handle, images, *args, **kwargs):
        if any(getattr(image, "info", {}).get("huge") for image in images) or len(images) > 1:
            raise MemoryError()
        return real(handle, images, *args, **kwargs)

    def mark(record):  # the second file is the one that never fits
        image = real_decode(record)
        if not isinstance(image, str) and record["source"].path.startswith(tuple(huge)):
            image.info["huge"] = True
        return image

    real_decode = records._decode
    monkeypatch.setattr(records, "explain_batch", tight)
    monkeypatch.setattr(records, "_decode", mark)
    root = _inputs(tmp_path / "in", 3)
    status = cli.main(["batch", "--input", str(root), "--output", str(tmp_path / "out"), "--method", "gradcam",
                       "--model", "efficientnet_lite0", "--batch-size", "3"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()}
    failed = [p for p, r in rows.items() if r["error"]]
    assert len(failed) == 1 and failed[0].startswith("01_") and "ran out of memory" in rows[failed[0]]["error"]
    assert all(r["label"] for p, r in rows.items() if p not in failed)


def test_symbolic_links_and_loops_get_one_sentence(lite, tmp_path, capsys):
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "in"
    elsewhere.mkdir()
    root.mkdir()
    shutil.copy(PHOTOS[0], elsewhere / "real.png")
    (root / "linked.png").symlink_to(elsewhere / "real.png")
    shutil.copy(PHOTOS[1], root / "plain.png")
    base, sources = dataset.list_inputs(str(root / "*.png"))  # a glob over a linked file
    assert [s.path for s in sources] == ["linked.png", "plain.png"]
    result = dataset.run(lite, str(root / "*.png"), str(tmp_path / "out"), ["gradcam"])
    assert result.explained == 2
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "a").symlink_to(loop / "b")
    (loop / "b").symlink_to(loop / "a")
    status = cli.main(["batch", "--input", str(loop / "a" / "*.png"), "--output", str(tmp_path / "o2"),
                       "--model", "efficientnet_lite0"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_glob_does_not_follow_a_symbolic_link_loop(tmp_path):
    """`DIR/**/*.jpg` over 10 files and a link back up (`ln -s .. loop`) lists each file once, as
    the folder input does: `**` never enters a linked folder."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i in range(10):
        shutil.copy(PHOTOS[0], root / ("sub" if i % 2 else ".") / f"{i:02d}.jpg")
    (root / "sub" / "loop").symlink_to("..")
    base, sources = dataset.list_inputs(str(root / "**" / "*.jpg"))
    assert len(sources) == 10 and base == root
    assert [s.path for s in sources] == [s.path for s in dataset.list_inputs(str(root))[1]]


def test_store_job_and_readme_say_the_same_loss_on_a_kill():
    """What the test above measures, said alike where people read it: store.py's layout, job.py's
    local engine and README ("loses at most two batches"; store.py said "the batch in flight")."""
    said = {}
    for path in ("xai_core/dataset/store.py", "xai_core/dataset/job.py", "README.md"):
        text = " ".join((ROOT / path).read_text(encoding="utf-8").split())
        said[path] = set(re.findall(r"loses at most ([a-z ]+?batch(?:es)?)\b", text))
    assert said == {path: {"two batches"} for path in said}
