"""`batch --ground-truth`: the line counting the files without ground truth and the ground truth
without a file (named), printed before the last line; ground truth that cannot be read is one
sentence and exit status 2."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import IMAGES
from xai_core import cli


def _photos(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("cat.png", "coffee.png", "rocket.jpg"):
        shutil.copy(IMAGES / name, root / name)
    return root


def test_the_batch_command_prints_the_counts(lite, tmp_path, capsys):
    root = _photos(tmp_path / "in")
    truth = tmp_path / "boxes.csv"
    truth.write_text("path,x0,y0,x1,y1\ncat.png,100,50,350,280\ncoffee.png,150,100,450,350\ngone/missing.jpg,1,1,9,9\n")
    status = cli.main(["batch", "--input", str(root), "--output", str(tmp_path / "out"), "--method", "gradcam",
                       "--model", "efficientnet_lite0", "--ground-truth", str(truth)])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert status == 0 and lines[-1].startswith("Explained 3 files")
    assert lines[-2].startswith("Ground truth: 2 of 3") and "gone/missing.jpg" in lines[-2] and "rocket.jpg" in lines[-2]
    bad = tmp_path / "bad.csv"
    bad.write_text("cat.png,1,2,three,4\n")
    assert cli.main(["batch", "--input", str(root), "--output", str(tmp_path / "o2"), "--method", "gradcam",
                     "--model", "efficientnet_lite0", "--ground-truth", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv line 1" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
