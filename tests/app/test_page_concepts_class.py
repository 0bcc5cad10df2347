"""AppTest of the DFF page's "Across a class" mode (issue 30): uploaded photos and a results folder's
class, the importance chart with its intervals, the atlas's crops, each concept's map over a chosen
image, the fidelity curves, and the API's sentence for too few images."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np

import xai_core
from _apptest import array, chart, errors, heatmap_names, new_app, page, run
from _augment import IMAGES, augmented


def _across(monkeypatch):
    app = page(run(new_app(monkeypatch)), "dff")
    app.segmented_control(key="w:concepts.mode").set_value("Across a class")
    return run(app)


def _images(app) -> int:
    return len(app.main.image)


def test_uploaded_photos_give_concepts_with_intervals_an_atlas_maps_and_fidelity(monkeypatch) -> None:
    app = _across(monkeypatch)
    assert any(t.value == "Concepts across a class" for t in app.title)
    assert any("Upload photos of one class" in i.value for i in app.info)
    cats = augmented("cat.png", 6)
    app.file_uploader(key="concepts.uploads").set_value([(n, d, "image/png") for n, d in cats])
    run(app)
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    top = xai_core.predict(handle, cats[0][1], top_k=1)[0][1]
    target = app.selectbox(key="w:concepts.target")
    assert handle.categories[target.value] == top  # the most common top-1 class of the uploads
    assert not app.get("plotly_chart")  # nothing runs before the button
    app.button(key="concepts.run").click()
    run(app)
    assert not errors(app)
    bars = chart(app, "concepts_importance")
    (trace,) = bars["data"][:1]
    names = list(trace["y"])
    assert len(names) == 5 and all(n.startswith("#") and " · " in n for n in names)
    means = array(trace["x"])
    assert np.all(np.diff(means) <= 1e-12)  # most important first
    assert len(array(trace["error_x"]["array"])) == 5 and np.all(array(trace["error_x"]["array"]) >= 0)
    captions = " ".join(c.value for c in app.caption)
    assert "exact (linear head)" in captions and "residual" in captions and "6 images" in captions
    curves = chart(app, "concepts_fidelity")
    assert [t["name"].split(":")[0] for t in curves["data"]] == ["by importance", "random order"]
    assert all("AUC" in t["name"] and "[" in t["name"] for t in curves["data"])
    assert len(array(curves["data"][0]["y"])) == 6  # 0 .. 5 concepts removed
    assert _images(app) >= 5 * 2  # the atlas: each concept's crops
    maps = chart(app, "concepts_maps")
    assert len(heatmap_names(maps)) == 5
    first = [array(t["z"]) for t in maps["data"] if t["type"] == "heatmap"]
    app.selectbox(key="w:concepts.image").set_value(3)
    run(app)
    again = [array(t["z"]) for t in chart(app, "concepts_maps")["data"] if t["type"] == "heatmap"]
    assert len(again) == 5 and any(not np.array_equal(a, b) for a, b in zip(first, again))
    # a rerun (another image's map) reuses the run: the button is not offered again
    assert not [b for b in app.button if b.key == "concepts.run"]


def test_too_few_photos_for_the_concepts_is_one_sentence(monkeypatch) -> None:
    app = _across(monkeypatch)
    app.file_uploader(key="concepts.uploads").set_value([(n, d, "image/png") for n, d in augmented("cat.png", 3)])
    run(app)
    app.button(key="concepts.run").click()
    run(app)
    assert errors(app) == ["5 concepts need at least 5 images; got 3."]
    assert not app.get("plotly_chart")


def test_a_results_folders_class_and_a_shared_second_class(monkeypatch, tmp_path, lite) -> None:
    photos = tmp_path / "photos"
    for folder, name, count in (("cat", "cat.png", 6), ("coffee", "coffee.png", 4)):
        (photos / folder).mkdir(parents=True)
        for file, data in augmented(name, count):
            (photos / folder / file).write_bytes(data)
    (photos / "rocket").mkdir()
    shutil.copy(IMAGES / "rocket.jpg", photos / "rocket" / "rocket.jpg")
    xai_core.dataset.run(lite, str(photos), str(tmp_path / "results" / "pets"), ["gradcam"], pictures="all")
    monkeypatch.setenv("XAI_RESULTS_ROOT", str(tmp_path / "results"))
    app = _across(monkeypatch)
    app.segmented_control(key="w:concepts.source").set_value("Results folder")
    run(app)
    tops = {f: xai_core.predict(lite, f.read_bytes(), top_k=1)[0] for f in sorted(photos.rglob("*.*"))}
    counts = Counter(label for _, label, _ in tops.values())
    assert app.selectbox(key="w:concepts.class").value == counts.most_common(1)[0][0]  # most photos first
    espresso = xai_core.predict(lite, (photos / "coffee" / "coffee_0.png").read_bytes(), top_k=1)[0]
    app.selectbox(key="w:concepts.class").set_value(espresso[1])
    app.slider(key="w:concepts.n").set_value(3)
    run(app)
    assert app.selectbox(key="w:concepts.target").value == espresso[0]  # the chosen class is the target
    app.button(key="concepts.run").click()
    run(app)
    assert not errors(app)
    assert len(chart(app, "concepts_importance")["data"][0]["y"]) == 3
    assert f"{counts[espresso[1]]} images" in " ".join(c.value for c in app.caption)
    assert len(app.main.image) >= 3 * 2
    # by the folders' names (true classes): the cat folder has the most photos
    app.selectbox(key="w:concepts.kind").set_value("true class (folder)")
    run(app)
    assert app.selectbox(key="w:concepts.class").value == "cat"
    # shared concepts: the espresso photos and those of the cat copies' most common class
    cat = Counter(tops[f][:2] for f in sorted((photos / "cat").iterdir())).most_common(1)[0][0]
    app.selectbox(key="w:concepts.kind").set_value("predicted class")
    run(app)
    app.selectbox(key="w:concepts.class").set_value(espresso[1])
    app.selectbox(key="w:concepts.second").set_value(cat[0])
    run(app)
    app.button(key="concepts.run").click()
    run(app)
    assert not errors(app)
    bars = chart(app, "concepts_importance")
    assert sorted(t["name"] for t in bars["data"]) == sorted([espresso[1], cat[1]])  # one bar per class
    assert f"{counts[espresso[1]] + counts[cat[1]]} images" in " ".join(c.value for c in app.caption)
