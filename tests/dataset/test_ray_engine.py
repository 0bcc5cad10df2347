"""The dataset job's Ray engine (`--engine ray`): on a local Ray over 13 files (12 photos and a
corrupt one) it writes the same rows as the local engine, resumes, and says in one sentence what it
cannot do. One Ray session is shared by the module (Ray starts slowly on 2 cores)."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

import xai_core
from _hf import save_tiny_vit
from _deps import need
from conftest import IMAGES
from xai_core import cli, dataset
from xai_core.dataset import ray_engine
from xai_core.errors import InvalidOptionError

ray = need("ray", reason="Ray is optional: pip install -r requirements-ray.txt (CI installs it)")

BATCH = 4
# Ray Data's own context sets deprecated options of its own while it runs.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray, used by `run_ray` as it is (run_ray starts and stops only a Ray of its own)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def handle():
    return xai_core.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """An ImageFolder tree: the 6 bundled photos, their mirrored and resized copies, a corrupt file."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "photos").mkdir()
    (root / "mirrored").mkdir()
    for photo in sorted(IMAGES.iterdir()):
        shutil.copy2(photo, root / "photos" / photo.name)
        with Image.open(photo) as pil:
            pil = ImageOps.mirror(pil.convert("RGB"))
            pil.resize((pil.width * 3 // 4, pil.height * 3 // 4)).save(root / "mirrored" / f"{photo.stem}.png")
    (root / "mirrored" / "broken.jpg").write_bytes(b"not a picture at all")
    return root


def _rows(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "results.parquet").to_pylist()
    return [{k: v for k, v in row.items() if k != "seconds" and not k.endswith("_seconds")} for row in rows]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def runs(ray_session, handle, images, tmp_path_factory):
    out = tmp_path_factory.mktemp("outputs")
    local = dataset.run(handle, str(images), str(out / "local"), ["gradcam"], batch_size=BATCH, engine="local")
    on_ray = dataset.run(handle, str(images), str(out / "ray"), ["gradcam"], batch_size=BATCH, engine="ray")
    return out, local, on_ray


def test_ray_writes_the_local_engines_rows(runs):
    out, local, on_ray = runs
    assert (local.explained, local.refused, local.failed) == (12, 1, 0)
    assert (on_ray.explained, on_ray.refused, on_ray.failed, on_ray.skipped) == (12, 1, 0, 0)
    expected, got = _rows(out / "local"), _rows(out / "ray")
    assert [r["path"] for r in got] == [r["path"] for r in expected] and len(got) == 13
    for want, row in zip(expected, got):
        assert want.keys() == row.keys()
        assert all(_same(want[c], row[c]) for c in want), (want, row)
    broken = next(r for r in got if r["path"] == "mirrored/broken.jpg")
    assert broken["error"] and broken["label"] is None and broken["true_label"] == "mirrored"
    assert all(r["error"] is None and r["label"] for r in got if r is not broken)
    assert sorted(p.name for p in (out / "ray" / "maps").iterdir()) == \
        sorted(p.name for p in (out / "local" / "maps").iterdir())
    assert len(list((out / "ray" / "parts").glob("part-*.parquet"))) == 4  # written batch by batch
    assert (out / "ray" / "summary.json").exists() and (out / "ray" / "index.html").exists()


def test_a_rerun_on_ray_skips_everything(runs, handle, images):
    out, _, _ = runs
    parts, rows = sorted((out / "ray" / "parts").iterdir()), _rows(out / "ray")
    again = dataset.run(handle, str(images), str(out / "ray"), ["gradcam"], batch_size=BATCH, engine="ray")
    assert (again.explained, again.refused, again.skipped) == (12, 1, 13)
    assert sorted((out / "ray" / "parts").iterdir()) == parts
    assert _rows(out / "ray") == rows


def test_random_weights_are_refused_in_one_sentence(ray_session, images, tmp_path):
    random = xai_core.load_model("efficientnet_lite0", weights=None, device="cpu")
    with pytest.raises(InvalidOptionError) as err:
        dataset.run(random, str(images), str(tmp_path / "out"), ["gradcam"], engine="ray")
    message = str(err.value)
    assert "random weights" in message and "\n" not in message and message.endswith(".")
    assert not list((tmp_path / "out" / "parts").glob("part-*"))


def test_missing_ray_is_one_sentence(monkeypatch, handle):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(InvalidOptionError, match=r"^Ray is not installed; pip install -r requirements-ray\.txt\.$"):
        ray_engine.run_ray(handle, [], None, "unused", BATCH, None)


def test_actors_follow_the_cluster():
    assert ray_engine.plan([{"CPU": 2.0}]) == {"device": "cpu", "concurrency": 1, "num_gpus": 0, "num_cpus": 2,
                                              "threads": 2}
    assert ray_engine.plan([{"CPU": 16.0}])["concurrency"] == 8
    gpus = ray_engine.plan([{"CPU": 16.0, "GPU": 4.0}])
    assert (gpus["device"], gpus["concurrency"], gpus["num_gpus"], gpus["threads"]) == ("cuda", 4, 1, 4)
    assert ray_engine.plan([{"CPU": 16.0, "GPU": 4.0}], local_device="cpu")["device"] == "cpu"


def _fits(request: dict, nodes: list[dict]) -> bool:
    return any(request["num_cpus"] <= n.get("CPU", 0) and request["num_gpus"] <= n.get("GPU", 0) for n in nodes)


@pytest.mark.parametrize("nodes", [
    [{"CPU": 16.0}, {"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}],  # a CPU-only head, two GPU workers
    [{"CPU": 4.0, "GPU": 2.0}, {"CPU": 32.0, "GPU": 1.0}],
    [{"CPU": 16.0}, {"CPU": 1.0}, {"CPU": 3.0}],
], ids=["cpu-head-and-gpu-workers", "uneven-gpu-nodes", "uneven-cpu-nodes"])
def test_every_actor_fits_on_a_node_of_a_mixed_cluster(nodes):
    """Actors are sized per node, not from cluster-wide totals (16 + 8 + 8 CPUs over 2 GPUs would ask
    each actor for 16 CPUs and a GPU, which no node has: the job would wait forever)."""
    how = ray_engine.plan(nodes)
    assert _fits(how, nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    assert how["concurrency"] == (gpus if gpus else sum(int(n["CPU"]) // how["num_cpus"] for n in nodes))
    if gpus:  # as many actors fit at once as there are GPUs
        slots = sum(min(int(n.get("GPU", 0)), int(n.get("CPU", 0)) // max(how["num_cpus"], 1)) for n in nodes)
        assert slots >= how["concurrency"]


def _labels(tmp_path: Path, labels: list[str]) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(labels) + "\n")
    return path


@pytest.fixture(scope="module")
def few_images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("few")
    for photo in sorted(IMAGES.iterdir())[:3]:
        shutil.copy2(photo, root / photo.name)
    return root


def _same_rows(out: Path, local: Path) -> None:
    expected, got = _rows(local), _rows(out)
    assert [r["path"] for r in got] == [r["path"] for r in expected] and got
    for want, row in zip(expected, got):
        assert all(_same(want[c], row[c]) for c in want), (want, row)


def test_ray_loads_a_tagged_torchvision_model_with_imagenet_labels(ray_session, few_images, tmp_path, monkeypatch):
    """`torchvision:resnet18` with the DEFAULT tag (a random state dict under the hub cache's name):
    the actors load the same weights, the tag's own preprocessing and its labels, which a labels
    list could not carry ('Cardigan' the dog and 'cardigan' the sweater are one label to `read_labels`)."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    member = torchvision.models.ResNet18_Weights.DEFAULT
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    import torch
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), cache / Path(member.url).name)
    handle = xai_core.load_model("torchvision:resnet18", weights="DEFAULT", device="cpu", input_size=64)
    assert [c.lower() for c in handle.categories].count("cardigan") == 2
    assert ray_engine.model_args(handle) == {"name": "torchvision:resnet18", "weights": "DEFAULT", "input_size": 64}
    local = dataset.run(handle, str(few_images), str(tmp_path / "local"), ["gradcam"], batch_size=2)
    on_ray = dataset.run(handle, str(few_images), str(tmp_path / "ray"), ["gradcam"], batch_size=2, engine="ray")
    assert (local.explained, on_ray.explained, on_ray.failed) == (3, 3, 0)
    _same_rows(tmp_path / "ray", tmp_path / "local")


def test_ray_loads_a_checkpoint_with_its_labels(ray_session, few_images, tmp_path):
    import torch
    torch.manual_seed(1)
    labels = ["cat", "coffee", "rocket"]
    module = xai_core.load_model("timm:resnet18", weights=None, device="cpu", labels=labels).module
    torch.save(module.state_dict(), tmp_path / "pets.pt")
    handle = xai_core.load_model("timm:resnet18", weights=str(tmp_path / "pets.pt"), labels=_labels(tmp_path, labels),
                                 device="cpu", input_size=64)
    assert ray_engine.model_args(handle) == {"name": "timm:resnet18", "weights": str(tmp_path / "pets.pt"),
                                             "labels": labels, "input_size": 64}
    dataset.run(handle, str(few_images), str(tmp_path / "local"), ["gradcam"], batch_size=2)
    on_ray = dataset.run(handle, str(few_images), str(tmp_path / "ray"), ["gradcam"], batch_size=2, engine="ray")
    assert on_ray.explained == 3
    _same_rows(tmp_path / "ray", tmp_path / "local")
    assert {r["label"] for r in _rows(tmp_path / "ray")} <= set(labels)


def test_a_failed_ray_job_exits_1_with_one_sentence(ray_session, few_images, tmp_path, monkeypatch, capsys):
    """The actors cannot load the weights file (it is gone once the job runs): `JobFailed`, one
    sentence, and the CLI exits with 1 (2 is for bad options)."""
    import torch
    torch.manual_seed(2)
    module = xai_core.load_model("torchvision:resnet18", weights=None, device="cpu", labels=["a", "b"]).module
    weights = tmp_path / "gone.pt"
    torch.save(module.state_dict(), weights)
    handle = xai_core.load_model("torchvision:resnet18", weights=str(weights), labels=["a", "b"], device="cpu",
                                 input_size=64)
    weights.unlink()
    with pytest.raises(xai_core.JobFailed) as err:
        dataset.run(handle, str(few_images), str(tmp_path / "o"), ["gradcam"], batch_size=2, engine="ray")
    assert "gone.pt" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(dataset, "run", lambda *a, **k: (_ for _ in ()).throw(xai_core.JobFailed(str(err.value))))
    status = cli.main(["batch", "--input", str(few_images), "--output", str(tmp_path / "o2"), "--engine", "ray",
                       "--model", "efficientnet_lite0"])
    printed = capsys.readouterr().err
    assert status == 1 and printed.startswith("error: ") and "gone.pt" in printed and "Traceback" not in printed


def test_the_driver_holds_no_image_bytes(images):
    """The records handed to Ray carry paths and keys only (the actors read the files), so the
    driver's memory does not grow with the input (before, every file's bytes sat in one table)."""
    records = [dataset.read_record(s, "0" * 16) for s in dataset.list_inputs(str(images))[1]]
    table = ray_engine._records_table(records)
    assert table.column_names == list(ray_engine.RECORD_COLUMNS) and "data" not in table.column_names
    assert table.num_rows == 13 and table.nbytes < 400 * table.num_rows
    assert sum(path.stat().st_size for path in images.rglob("*") if path.is_file()) > 100 * table.nbytes


def test_the_actors_write_what_pictures_asks_for(ray_session, handle, images, tmp_path):
    """--pictures maps on Ray: the actors write each picture and the raw maps, no overlays, and the
    rows say where the raw maps are, as the local engine does."""
    result = dataset.run(handle, str(images / "photos"), str(tmp_path / "out"), ["gradcam"], batch_size=BATCH,
                         engine="ray", pictures="maps")
    assert result.explained == 6 and "no overlays (--pictures maps)" in result.line()
    rows = dataset.read_rows(tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out" / "maps").iterdir())
    assert all(r["pictures"] == "maps" and f"{r['maps_file']}.gradcam.npy" in names for r in rows)
    assert len([n for n in names if n.endswith(".jpg")]) == 6 and not [n for n in names if "_gradcam" in n]
    assert dataset.read_picture(tmp_path / "out", rows[0], "gradcam") is not None  # drawn from the raw map


def test_ray_loads_a_hugging_face_folder_and_runs_the_attention_methods(ray_session, few_images, tmp_path):
    """`hf:FOLDER` on Ray: the actors load the same Hugging Face ViT from its absolute folder (the
    driver checks their fingerprint) and give the rows the local engine gives, LeGrad and rollout
    included."""
    folder = save_tiny_vit(tmp_path / "tiny-vit", classes=5, seed=2, initializer_range=0.2)
    handle = xai_core.load_model(f"hf:{folder}", device="cpu")
    assert ray_engine.model_args(handle)["name"] == f"hf:{folder}"
    methods = ["gradcam", "legrad", "rollout"]
    dataset.run(handle, str(few_images), str(tmp_path / "local"), methods, batch_size=2)
    on_ray = dataset.run(handle, str(few_images), str(tmp_path / "ray"), methods, batch_size=2, engine="ray")
    assert (on_ray.explained, on_ray.failed) == (3, 0)
    _same_rows(tmp_path / "ray", tmp_path / "local")


def test_ray_scores_ground_truth_as_the_local_engine_does(ray_session, handle, tmp_path):
    """With --ground-truth the actors read the ground truth themselves: the same localisation
    columns and targets (a box's label naming a class) as the local engine."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("cat.png", "coffee.png", "rocket.jpg"):
        shutil.copy(IMAGES / name, photos / name)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"cat.png,100,50,350,280\ncoffee.png,150,100,450,350,{handle.categories[281]}\n")
    runs = {engine: dataset.run(handle, str(photos), str(tmp_path / engine), ["gradcam"], batch_size=2,
                                engine=engine, ground_truth=str(boxes)) for engine in ("local", "ray")}
    expected, got = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert "gradcam_pointing" in got[0] and [r["target"] for r in got][1] == 281
    for want, row in zip(expected, got):
        assert want.keys() == row.keys() and all(_same(want[c], row[c]) for c in want), (want, row)
    assert runs["ray"].ground_truth == runs["local"].ground_truth != ""
