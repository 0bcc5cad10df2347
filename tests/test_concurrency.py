"""One shared model, many threads: exactly the serial maps, and no hook left behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import ImageOps

import xai_core
from conftest import IMAGES, no_hooks_left

METHODS = ["gradcam", "hirescam", "layercam", "eigencam", "ablationcam", "fastscorecam", "fullgrad", "finercam"]


def _images():
    photos = [xai_core.load_image(p) for p in sorted(IMAGES.iterdir())][:4]
    return photos + [ImageOps.mirror(p) for p in photos]  # 8 distinct images


def test_eight_threads_get_the_serial_maps(random_resnet):
    images = _images()
    run = lambda img: xai_core.explain(random_resnet, img, METHODS, layer="layer3", batch_size=64,  # noqa: E731
                                       options={"fastscorecam": {"top_k": 16}})
    serial = [run(img) for img in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(run, images))
    for s, p in zip(serial, parallel):
        assert s.target == p.target
        for method in METHODS:
            np.testing.assert_allclose(p.maps[method], s.maps[method], atol=1e-5, err_msg=method)
    assert no_hooks_left(random_resnet.module)


def test_predict_and_factorize_in_parallel_with_explain(lite):
    images = _images()
    serial_top = [xai_core.predict(lite, img, top_k=3) for img in images]
    serial_dff = [xai_core.factorize(lite, img, n_components=3).heatmaps for img in images]
    jobs = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for img in images:
            jobs.append((pool.submit(xai_core.predict, lite, img, 3),
                         pool.submit(xai_core.factorize, lite, img, 3),
                         pool.submit(xai_core.explain, lite, img, ["gradcam", "layercam"])))
        for (top, dff, _), want_top, want_dff in zip(jobs, serial_top, serial_dff):
            assert [p.index for p in top.result()] == [p.index for p in want_top]
            np.testing.assert_allclose(dff.result().heatmaps, want_dff, atol=1e-5)
    assert no_hooks_left(lite.module)
