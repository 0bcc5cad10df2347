"""The activations `batch --concepts` keeps (OUT/concepts/activations) never go stale: a row explained
again (--refresh, a changed file) has one set, from the forward that made its maps, and those of
rows explained again without --concepts, of files gone, and what a killed run left half written are
removed at the end of the next run, so the folder does not grow with reruns."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from _tabby import tabby_folder
from xai_core import dataset, versions
from xai_core.dataset.kept import ACTIVATIONS

OPTIONS = dict(pictures="none", concepts=2)


def _kept(out) -> list[tuple]:
    """(key, run) of every activation kept in `out` (blanked ones left out)."""
    found = []
    for meta in sorted((out / ACTIVATIONS).glob("*.json")):
        entry = json.loads(meta.read_text())
        found += [(key, entry.get("run")) for key in entry["keys"] if key]
    return found


def _row_keys(out) -> set:
    return {row["key"] for row in dataset.read_rows(out)}


@pytest.fixture
def done(lite, tmp_path):
    """8 tabby photos explained with --concepts 2 in batches of 4."""
    root, out = tabby_folder(tmp_path / "in", count=8, others=0), tmp_path / "out"
    assert dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, **OPTIONS).explained == 8
    assert len(_kept(out)) == 8
    return root, out


def _block(out) -> dict:
    return json.loads((out / "summary.json").read_text())["concepts"]


def test_a_refresh_keeps_one_set_of_activations_per_row_the_new_one(lite, done, monkeypatch):
    """Explained again in batches of 3 (other batch files): the 2 old files are removed, not kept beside."""
    root, out = done
    monkeypatch.setattr(versions, "RESULTS_VERSION", versions.RESULTS_VERSION + 1)
    again = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=3, refresh=True, **OPTIONS)
    assert again.refreshed == 8
    kept = _kept(out)
    assert sorted(key for key, _ in kept) == sorted(_row_keys(out)) and len({run for _, run in kept}) == 1
    assert len(list((out / ACTIVATIONS).glob("*.npy"))) == len(list((out / ACTIVATIONS).glob("*.json"))) == 3
    block = _block(out)
    assert block["missing"] == 0 and next(c for c in block["classes"] if c["kind"] == "true")["images"] == 8


def test_a_changed_or_removed_file_leaves_no_activations_behind(lite, done):
    root, out = done
    before = dict(_kept(out))
    Image.open(root / "tabby" / "00.jpg").rotate(7).save(root / "tabby" / "00.jpg")  # changed
    Image.open(root / "tabby" / "01.jpg").rotate(9).save(root / "tabby" / "08.jpg")  # a new file
    for name in ("04.jpg", "05.jpg", "06.jpg", "07.jpg"):  # the whole second batch is gone
        (root / "tabby" / name).unlink()
    again = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, **OPTIONS)
    assert (again.explained_now, again.skipped) == (2, 3)
    current = {row["key"] for row in dataset.read_rows(out)
               if (root / row["path"]).is_file() and row["key"] in {k for k, _ in _kept(out)}}
    assert sorted(key for key, _ in _kept(out)) == sorted(current) and len(current) == 5
    assert len(set(before) & {k for k, _ in _kept(out)}) == 3  # the three unchanged files keep theirs
    assert len(list((out / ACTIVATIONS).glob("*.npy"))) == 2  # the old first batch (3 left) and the new one


def test_rows_refreshed_without_concepts_lose_their_old_activations(lite, done, monkeypatch):
    root, out = done
    monkeypatch.setattr(versions, "RESULTS_VERSION", versions.RESULTS_VERSION + 1)
    dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, pictures="none", refresh=True)
    assert _kept(out) == [] and list((out / ACTIVATIONS).iterdir()) == []
    dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, **OPTIONS)
    assert _block(out)["missing"] == 8  # their maps come from a forward that kept nothing: said, never mixed


def test_what_a_killed_run_left_is_removed_by_the_next(lite, done):
    root, out = done
    folder = out / ACTIVATIONS
    (folder / "0123456789abcdef01234567.npy").write_bytes(b"a batch whose .json was never written")
    (folder / ".0123456789abcdef01234567.json.1-abcdef012345.tmp").write_bytes(b"half")
    (folder / "fedcba9876543210fedcba98.json").write_text("{not json")
    names = sorted(p.name for p in folder.iterdir())
    again = dataset.run(lite, str(root), str(out), ["gradcam"], batch_size=4, **OPTIONS)
    assert again.skipped == 8 and _block(out)["missing"] == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(names) - {
        "0123456789abcdef01234567.npy", ".0123456789abcdef01234567.json.1-abcdef012345.tmp",
        "fedcba9876543210fedcba98.json"})
