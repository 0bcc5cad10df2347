"""The grid pointing game (issue 28): the grid builder (distinct classes, seeded, each cell the right
image), the scores on hand-made maps, the baselines at 0.25, a run on the sample photos with the
bundled model, and the `grid` command's results folder."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F

import xai_core
from xai_core import cli
from xai_core.dataset.grid import CELLS, GridMaps, build_grid, grid_pointing_game, make_grids
from xai_core.dataset.grid_scores import baseline_maps, cell_bounds, cell_scores, summarize_grid
from xai_core.localisation import CENTRE, centre_prior
from xai_core.errors import InvalidOptionError, NotEnoughClassesError
from xai_core.faithfulness import RANDOM
from xai_core.models.preprocessing import normalise

from conftest import IMAGES

#: Every sample photo's top-1 probability with the bundled model is at least this (0.13 is the
#: lowest: the astronaut's "bobsled"), and their 6 top-1 classes differ; at 0.5 only the espresso's does.
LOW = 0.1


def test_make_grids_gives_distinct_classes_seeded_and_no_repeats():
    grids = make_grids(6, 20, seed=0)
    assert len(grids) == 20
    assert all(len(set(g)) == CELLS and all(0 <= i < 6 for i in g) for g in grids)
    assert len(set(grids)) == 20  # no grid repeats while others remain possible
    assert make_grids(6, 20, seed=0) == grids
    assert make_grids(6, 20, seed=1) != grids
    every = make_grids(4, 30, seed=0)  # 24 orderings of 4 classes: all of them, then repeats
    assert len(set(every[:24])) == 24 and len(every) == 30
    with pytest.raises(InvalidOptionError):
        make_grids(3, 1)


def test_build_grid_puts_each_picture_in_its_cell():
    shape = (7, 9)  # odd sides: the bottom and right cells are a pixel larger
    bounds = cell_bounds(shape)
    assert sum((b - t) * (r - l) for t, b, l, r in bounds) == 63
    pictures = [{(b - t, r - l): np.full((b - t, r - l, 3), 10 * (c + 1), np.uint8)} for c, (t, b, l, r)
                in enumerate(bounds)]
    grid = build_grid(pictures, shape)
    for c, (t, b, l, r) in enumerate(bounds):
        assert (grid[t:b, l:r] == 10 * (c + 1)).all()


def test_scores_of_hand_made_maps():
    cam = np.zeros((224, 224), np.float32)
    cam[112:, :112] = 0.5  # all the mass in cell 2 (bottom left)
    cam[150, 40] = 1.0
    assert cell_scores(cam, 2) == (1.0, True)
    assert all(cell_scores(cam, c) == (0.0, False) for c in (0, 1, 3))
    uniform = np.ones((224, 224), np.float32)
    assert [cell_scores(uniform, c)[0] for c in range(4)] == [0.25] * 4
    assert cell_scores(np.zeros((8, 8)), 0) == (0.0, False)  # a map with no mass points nowhere
    negative = np.full((8, 8), -1.0)
    negative[0, 7] = 2.0  # only the positive part counts, the maximum is in cell 1
    assert cell_scores(negative, 1) == (1.0, True)


def test_baselines_score_a_quarter_per_grid():
    """The centre prior holds a quarter of its mass in each cell; each baseline's four cells sum to
    one, so over whole grids every baseline's mean mass is 0.25."""
    for method, cam in baseline_maps((224, 224)).items():
        masses = [cell_scores(cam, c)[0] for c in range(4)]
        assert sum(masses) == pytest.approx(1.0, abs=1e-9), method
    assert [cell_scores(centre_prior((224, 224)), c)[0] for c in range(4)] == pytest.approx([0.25] * 4, abs=1e-9)
    assert centre_prior((224, 224)).max() == 1.0


def test_summary_means_hits_and_win_rates():
    rows = [{"grid": 0, "cell": c, "method": m, "mass": mass, "hit": mass > 0.3}
            for c in range(4) for m, mass in (("gradcam", 0.7 if c < 3 else 0.1), (RANDOM, 0.25), (CENTRE, 0.25))]
    summary = summarize_grid(rows, ["gradcam", RANDOM, CENTRE])
    assert summary["gradcam"]["mass"]["mean"] == pytest.approx(0.55)
    assert (summary["gradcam"]["hit"]["k"], summary["gradcam"]["hit"]["n"]) == (3, 4)
    assert (summary["gradcam"]["win_random"]["k"], summary["gradcam"]["win_centre"]["k"]) == (3, 3)
    assert "win_random" not in summary[RANDOM] and summary[RANDOM]["win_centre"]["k"] == 0  # ties are no win


@pytest.fixture(scope="module")
def played(lite):
    seen: list[GridMaps] = []
    game = grid_pointing_game(lite, str(IMAGES), "gradcam", grids=3, min_confidence=LOW, seed=0, on_grid=seen.append)
    return game, seen


def test_grid_game_on_the_sample_photos(lite, played):
    game, seen = played
    assert len(game.cells) == 3 and [g.grid for g in seen] == [0, 1, 2]
    assert all(len({c.index for c in cells}) == CELLS for cells in game.cells)
    assert game.summary["confident_classes"] == 6 and game.summary["photos"] == 6
    assert len(game.scores) == 3 * CELLS * 3  # gradcam, random, centre
    summary = game.summary["methods"]
    assert summary[RANDOM]["mass"]["mean"] == pytest.approx(0.25, abs=1e-6)
    assert summary[CENTRE]["mass"]["mean"] == pytest.approx(0.25, abs=1e-6)
    assert summary["gradcam"]["mass"]["n"] == 12 and summary["gradcam"]["win_random"]["n"] == 12
    json.dumps(game.summary, allow_nan=False)


def test_each_cell_holds_its_photo_downscaled(lite, played):
    """A cell's pixels are its photo's preprocessed picture (the model's resize and crop) resized to
    half the side with the model's interpolation, antialiased."""
    game, seen = played
    for grid in seen:
        for (top, bottom, left, right), cell in zip(cell_bounds(grid.picture.shape[:2]), grid.cells):
            picture = torch.from_numpy(lite.display_image(xai_core.load_image(IMAGES / cell.path))).permute(2, 0, 1)
            small = F.resize(picture, [bottom - top, right - left], interpolation=lite.transforms.interpolation,
                             antialias=True).permute(1, 2, 0).numpy()
            assert np.array_equal(grid.picture[top:bottom, left:right], small), cell.path


def test_the_model_sees_the_grid_as_it_is(lite, played):
    """Explaining the grid as a ready input: the explanation's picture is the grid itself (no second
    resize or crop), and its map is the one scored."""
    game, seen = played
    grid = seen[0]
    x = normalise(lite.transforms, torch.from_numpy(grid.picture[None]).permute(0, 3, 1, 2))
    (result,) = xai_core.explain_batch(lite, x, "gradcam", targets=[grid.cells[1].index])
    assert np.array_equal(result.image, grid.picture)
    np.testing.assert_allclose(result.maps["gradcam"], grid.maps[1]["gradcam"], atol=1e-5)
    mass = next(s.mass for s in game.scores if (s.grid, s.cell, s.method) == (0, 1, "gradcam"))
    assert cell_scores(grid.maps[1]["gradcam"], 1)[0] == mass


def test_too_few_confident_classes_is_one_sentence(lite):
    with pytest.raises(NotEnoughClassesError, match=r"^Only 1 class reaches a probability of 0.5 in the 6 readable "
                       r"photos, .* lower --min-confidence \(min_confidence\) or add photos\.$"):
        grid_pointing_game(lite, str(IMAGES), "gradcam", grids=1)
    for bad in ({"grids": 0}, {"min_confidence": 1.5}, {"seed": -1}):
        with pytest.raises(InvalidOptionError):
            grid_pointing_game(lite, str(IMAGES), "gradcam", **bad)


def test_grid_command_writes_its_results_folder(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for f in IMAGES.iterdir():
        shutil.copy(f, photos / ("<i>" + f.name if f.name == "cat.png" else f.name))
    (photos / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    args = ["grid", "--input", str(photos), "--output", str(out), "--method", "gradcam,layercam", "--grids", "2",
            "--min-confidence", str(LOW), "--model", "efficientnet_lite0"]
    assert cli.main(args) == 0
    printed = capsys.readouterr()
    assert "Grad-CAM" in printed.out and "random map (baseline)" in printed.out and "[" in printed.out
    assert "broken.jpg was left out" in printed.err
    assert sorted(p.name for p in (out / "grids").glob("*.png")) == ["grid_000.png", "grid_001.png"]
    assert len(list((out / "grids").glob("*.jpg"))) == 2 * CELLS * 2
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * CELLS * 4
    assert list(rows[0]) == ["grid", "cell", "class", "class_index", "probability", "path", "method", "mass", "hit"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"gradcam", "layercam", RANDOM, CENTRE} and summary["unreadable"] == 1
    page = (out / "index.html").read_text()
    assert "<i>" not in page  # the file name "<i>cat.png" is text, never markup
    assert "&lt;i&gt;cat.png" in page or all(c["path"] != "<i>cat.png" for c in rows[:2 * CELLS * 4:4])
    assert "grids/grid_000_c0_gradcam.jpg" in page and "centre prior" in page


def test_a_results_folder_inside_the_photos_is_left_out(tmp_path, capsys):
    """A rerun into a results folder under the photos' folder does not take its grids for photos."""
    for f in IMAGES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    args = ["grid", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--grids", "1", "--min-confidence",
            str(LOW), "--model", "efficientnet_lite0"]
    assert cli.main(args) == 0 and cli.main(args) == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["photos"] == 6
    capsys.readouterr()


def test_grid_command_errors_are_one_line(tmp_path, capsys):
    base = ["grid", "--input", str(IMAGES), "--output", str(tmp_path / "out"), "--model", "efficientnet_lite0"]
    assert cli.main(base) == 2  # only the espresso reaches 0.5
    err = capsys.readouterr().err.strip().splitlines()  # the photos' progress bar, then one error line
    assert [line for line in err if "error" in line] == err[-1:] and "Traceback" not in "".join(err)
    assert err[-1].startswith("error: Only 1 class reaches") and "--min-confidence" in err[-1]
    assert cli.main([*base, "--grids", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The number of grids")
