"""`eval --box` / `eval --mask`: the localisation table and its JSON, equal to `xai_core.localise` on
the same explanation; a mask of another size is scaled with a note; bad ground truth is one
`error:` line with status 2. Run in-process (`cli.main`), with the cheapest faithfulness settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import xai_core
from xai_core import cli
from xai_core.cli.localise_command import CENTRE_SENTENCE

from conftest import IMAGES

CAT = IMAGES / "cat.png"  # 451x300
FACE = (130, 60, 350, 290)  # the cat's face, in the photo's pixels
METHODS = ["gradcam", "gradcam++", "layercam"]
EVAL = ["eval", "--img", str(CAT), "--model", "efficientnet_lite0", "--method", ",".join(METHODS),
        "--no-sanity", "--steps", "2"]
NAMES = [*METHODS, "random", "centre"]


@pytest.fixture(scope="module")
def explanation():
    handle = xai_core.load_model("efficientnet_lite0")
    return xai_core.explain(handle, CAT, METHODS)


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main([*EVAL, *args])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _expected_cells(result: xai_core.Localisation, name: str) -> list[str]:
    s = result.scores[name]
    pointing = "-" if np.isnan(s.pointing) else ("hit" if s.pointing else "miss")
    return [pointing] + ["-" if np.isnan(v) else f"{v:.3f}" for v in (s.energy, s.rank, s.iou)]


def _table_rows(out: str) -> dict[str, list[str]]:
    """{map: its four cells} from the localisation table printed by `eval`."""
    lines = out.split("does the map point at the object?")[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("map "))
    rows = {}
    for line in lines[start + 1:]:
        if line.startswith("better:"):
            break
        cells = line.replace(" (baseline)", "").split()
        rows[cells[0]] = cells[1:]
    return rows


def test_json_has_the_scores_of_localise_on_the_same_explanation(capsys, explanation):
    code, out, err = _run(capsys, "--json", "--box", ",".join(map(str, FACE)))
    assert code == 0, err
    summary = json.loads(out)
    local = summary["localisation"]
    expected = xai_core.localise(explanation, box=FACE)
    assert list(local["scores"]) == NAMES
    assert local["baselines"] == ["random", "centre"]
    for name in NAMES:
        want = expected.scores[name]
        got = local["scores"][name]
        for key in ("pointing", "energy", "rank", "iou"):
            assert got[key] == pytest.approx(getattr(want, key), abs=1e-9), (name, key)
    assert local["object_pixels"] == int(expected.mask.sum()) > 0
    assert local["radius"] == pytest.approx(expected.radius)
    assert local["ground_truth"] == {"box": [list(map(float, FACE))]}
    assert local["notes"] == [] and local["outside"] is False
    assert "scores" in summary and "deletion_auc" in summary["scores"]["gradcam"]  # the faithfulness scores stay


def test_table_lists_every_map_and_both_baselines_with_localise_values(capsys, explanation):
    # two boxes in one --box (';') and a repeated --box: their union; two of them clipped to the image
    code, out, err = _run(capsys, "--box", "130,60,350,290;-20,250,60,320", "--box", "400,0,460,40")
    assert code == 0, err
    expected = xai_core.localise(explanation, box=[FACE, (-20, 250, 60, 320), (400, 0, 460, 40)])
    rows = _table_rows(out)
    assert list(rows) == NAMES
    for name in NAMES:
        assert rows[name] == _expected_cells(expected, name), name
    assert CENTRE_SENTENCE in out.splitlines()
    assert "sit near the centre" in CENTRE_SENTENCE  # the sentence
    assert sum("was clipped to the image" in line and line.startswith("note: ") for line in out.splitlines()) == 2
    assert "deletion" in out.split("does the map point")[0]  # the faithfulness table comes first


def test_mask_of_another_size_is_scaled_with_a_note(capsys, explanation, tmp_path):
    mask = np.zeros((75, 113), dtype=np.uint8)  # a quarter of the photo's size, the face marked
    mask[15:72, 32:88] = 255
    Image.fromarray(mask).save(tmp_path / "face.png")
    code, out, err = _run(capsys, "--mask", str(tmp_path / "face.png"))
    assert code == 0, err
    expected = xai_core.localise(explanation, mask=tmp_path / "face.png")
    rows = _table_rows(out)
    assert list(rows) == NAMES
    assert all(rows[name] == _expected_cells(expected, name) for name in NAMES)
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert any("face.png is 113x75 pixels and the image 451x300; it was scaled" in n for n in notes), notes


def test_an_object_outside_the_crop_is_said_and_scored_nowhere(capsys):
    code, out, err = _run(capsys, "--box", "0,0,30,300")  # the crop keeps columns 80/384*451 px onwards
    assert code == 0, err
    rows = _table_rows(out)
    assert all(cells == ["-"] * 4 for cells in rows.values()), rows
    assert any("outside the model's crop" in line for line in out.splitlines() if line.startswith("note: "))


@pytest.mark.parametrize("args", [
    ["--box", "1,2,3"],  # malformed: three numbers
    ["--box", "a,b,c,d"],
    ["--box", "10,10,50,nan"],
    ["--box", "50,10,50,80"],  # empty: x1 == x0
    ["--box", "10,80,50,20"],  # empty: y1 < y0
    ["--box", ";"],
    ["--box", "10,10,50,50", "--mask", "m.png"],  # both
    ["--box", "600,400,700,500"],  # wholly outside the 451x300 photo
])
def test_bad_boxes_are_one_error_line(args, capsys):
    code, out, err = _run(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip() and "[" not in line]  # progress bars aside
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "does the map point" not in out


@pytest.mark.parametrize("content", [b"not an image", None])
def test_an_unreadable_mask_is_one_error_line_before_the_model_loads(content, capsys, tmp_path, monkeypatch):
    path = tmp_path / "mask.png"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setattr("xai_core.cli.commands.load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    code, out, err = _run(capsys, "--mask", str(path))
    assert code == 2, err
    assert err.strip().splitlines() == ["error: The mask mask.png is not an image we can read; save it as a PNG."]
