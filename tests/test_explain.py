"""Grad-CAM: shape and range, target = prediction, planted evidence, deletion, concurrency."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_grad_cam")

from fakescope.cli import main  # noqa: E402
from fakescope.detector import Detector  # noqa: E402
from fakescope.errors import FakescopeError  # noqa: E402
from fakescope.explain import cam_batch, target_layer  # noqa: E402
from fakescope.model_dir import model_config
from fakescope.models import build_model  # noqa: E402
from fakescope.training.config import TrainConfig  # noqa: E402
from fakescope.training.loop import fit  # noqa: E402


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images; fakes carry a bright 8×8 patch in the top-left corner, nothing else."""
    rng = np.random.default_rng(seed)
    x = rng.integers(60, 140, (n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    x[y == 1, 2:10, 2:10] = 250
    return x, y


@pytest.fixture(scope="module")
def planted_detector(tmp_path_factory) -> Detector:
    x, y = _planted(512, 0)
    cfg = TrainConfig(
        arch="resnet10t",
        epochs=4,
        batch_size=32,
        lr=2e-3,
        patience=0,
        flip=False,
        device="cpu",
        amp="off",
    )
    model, _ = fit(
        cfg,
        x[:448],
        y[:448],
        x[448:],
        y[448:],
        tmp_path_factory.mktemp("p"),
        progress=False,
        log=lambda _: None,
    )
    return Detector(model, model_config(cfg.to_dict()), torch.device("cpu"))


def test_planted_evidence_lights_up_the_patch(planted_detector):
    x, y = _planted(64, 1)
    prob = planted_detector.score_arrays(x)
    assert ((prob >= 0.5) == y).mean() > 0.95  # the model learned the patch
    fakes = x[y == 1]
    heat = cam_batch(planted_detector.model, fakes, np.ones(len(fakes), int), 32)
    assert heat.shape == (32, 32, 32) and heat.min() >= 0 and heat.max() <= 1
    patch = heat[:, :12, :12].mean()
    elsewhere = heat[:, 16:, 16:].mean()
    assert patch > 2 * elsewhere, (patch, elsewhere)
    assert heat.reshape(len(heat), -1).std(1).min() > 0.01  # not constant


def test_target_follows_prediction_and_api(planted_detector, tmp_path):
    from PIL import Image

    x, y = _planted(2, 2)  # x[0] real, x[1] fake
    for i, expected in ((0, "real"), (1, "fake")):
        p = tmp_path / f"{i}.png"
        Image.fromarray(x[i]).save(p)
        ex = planted_detector.explain(str(p))
        assert ex.label == expected
        assert ex.heatmap.shape == (32, 32) and 0 <= ex.heatmap.min() <= ex.heatmap.max() <= 1
        pred = int(expected == "fake")
        same = cam_batch(planted_detector.model, x[i : i + 1], np.array([pred]), 32)[0]
        other = cam_batch(planted_detector.model, x[i : i + 1], np.array([1 - pred]), 32)[0]
        assert np.allclose(ex.heatmap, same, atol=1e-5)
        assert not np.allclose(ex.heatmap, other, atol=1e-3)
        assert ex.overlay.size == (256, 256) and ex.panel().size[0] > 500


def test_concurrent_explains_match_sequential(planted_detector):
    x, _ = _planted(8, 3)
    imgs = list(x)
    from PIL import Image

    sequential = [planted_detector.explain(Image.fromarray(a)).heatmap for a in imgs]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = planted_detector.explain(Image.fromarray(imgs[i])).heatmap

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(imgs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, h in enumerate(sequential):
        assert np.allclose(results[i], h, atol=1e-5)


def test_tile_map_finds_planted_evidence_in_a_photo(planted_detector):
    """A tiled model built on the planted network: bright 8×8 patches only in the right half
    of a noise photo. The tile map must be hot on the right, cold on the left."""
    tiled = Detector(
        planted_detector.model,
        {
            **planted_detector.config,
            "input": {"rule": "tiles", "tile": 32, "budget": 48, "aggregate": "topk"},
        },
        torch.device("cpu"),
    )
    rng = np.random.default_rng(4)
    photo = rng.integers(60, 140, (128, 256, 3), dtype=np.uint8)
    # the map's tiles start every 16 px here (half-overlapping 32-px tiles): a patch every
    # 16 px puts one where the planted model looks in every tile of the right half
    for y in range(0, 128, 16):
        for x in range(128, 256, 16):
            photo[y + 2 : y + 10, x + 2 : x + 10] = 250
    ex = tiled.explain(photo)
    assert ex.label == "fake" and ex.method == "tile-scores"
    left, right = ex.heatmap[:, :96].mean(), ex.heatmap[:, 160:].mean()
    assert right > 0.8 and left < 0.3, (left, right)


def test_layer_choice_avoids_1x1_maps():
    model = build_model("resnet18").eval()  # ImageNet stem: layer4 is 1×1 at 32×32
    _, name, size = target_layer(model, 32)
    assert name == "layer2" and size == 4
    _, name, size = target_layer(build_model("resnet10s").eval(), 32)
    assert name == "layer4" and size == 4
    with pytest.raises(FakescopeError, match="constant"):
        target_layer(model, 8)


@pytest.mark.slow
def test_deletion_top_heat_hurts_more_than_random(cifake_files):
    """On real CIFAKE test images and the shipped model: greying the hottest 10% of pixels
    lowers the explained score (logit of the predicted class) more than greying as many random
    pixels (blobs at the CAM's resolution; see `deletion_drops` for why not scattered pixels),
    and more than greying the coldest 10%."""
    from fakescope.explain import deletion_drops
    from fakescope.images import to_model_input

    det = Detector.load("cifake-resnet10s", device="cpu")
    names = sorted(n for n in cifake_files if n.startswith("test/"))
    x = np.stack([to_model_input(cifake_files[n], 32) for n in names])
    pred = (det.score_arrays(x) >= det.threshold).astype(int)
    heat = cam_batch(det.model, x, pred, 32)
    drops = {k: float(v.mean()) for k, v in deletion_drops(det.score_arrays, x, pred, heat).items()}
    assert drops["top"] > drops["random"] and drops["top"] > drops["cold"], drops


def test_deletion_drops_on_a_planted_model(planted_detector):
    """Where the evidence is one known patch, deleting the CAM's hottest pixels removes it."""
    from fakescope.explain import deletion_drops

    det = planted_detector
    x, y = _planted(32, 5)
    drops = deletion_drops(det.score_arrays, x, y, cam_batch(det.model, x, y, 32))
    top, rand = drops["top"][y == 1].mean(), drops["random"][y == 1].mean()
    cold = drops["cold"][y == 1].mean()
    # Deleting the hottest 10% removes far more evidence than random CAM-shaped blobs or the
    # coldest 10%. (An absolute bar, e.g. 1 logit, depended on where the 4×4 CAM's bilinear
    # blob happens to cover the 8×8 patch, which varied with the CPU's kernels and threads.)
    assert top > 2 * rand and top > 2 * cold and top > 0.5, (top, rand, cold)


def test_explain_cli_images_and_dataset(planted_detector, tmp_path, capsys, monkeypatch):
    from PIL import Image

    x, y = _planted(40, 4)
    for i in range(40):
        d = tmp_path / "data" / ("fake" if y[i] else "real")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(d / f"{i}.png")
    (tmp_path / "data" / "real" / "bad.png").write_bytes(b"nope")
    monkeypatch.setattr(Detector, "load", classmethod(lambda cls, *a, **k: planted_detector))
    assert main(["explain", str(tmp_path / "data"), "--out", str(tmp_path / "o1")]) == 1
    pngs = list((tmp_path / "o1").glob("*.png"))
    assert len(pngs) == 40 and (tmp_path / "o1" / "index.html").read_text().count("<img") == 40
    assert (
        main(
            [
                "explain",
                "--data",
                str(tmp_path / "data"),
                "--per-class",
                "3",
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 0
    )
    report = (tmp_path / "o2" / "report.md").read_text()
    assert (
        "central_share" in report
        and sum(report.count(f"**{v}**") for v in ("holds", "does not hold", "inconclusive")) == 4
    )
    assert "| group | n | top | random | cold |" in report  # the deletion check
    assert len(list((tmp_path / "o2" / "true_positive").glob("*.png"))) == 3
    assert (tmp_path / "o2" / "mean_fake.png").exists()


def test_report_verdicts_follow_the_confidence_interval():
    from fakescope.cli.explain import _verdicts

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 500)
    noise = rng.normal(0, 0.05, 1000)
    stats = {
        "central_share": 0.3 + noise + np.where(y == 0, 0.05, 0.0),  # real higher: holds
        "area_half_max": 0.5 + noise + np.where(y == 0, -0.05, 0.0),  # real lower: does not
        "entropy": 0.9 + np.tile(noise[:500], 2),  # identical classes: inconclusive
        "detail_ratio": 1.0 + noise + np.where(y == 1, -0.05, 0.0),  # fake smoother: holds
    }
    verdicts = [v for _, v, _ in _verdicts(stats, y)]
    assert verdicts == ["holds", "does not hold", "inconclusive", "holds"]
