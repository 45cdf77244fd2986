"""Training on many sources: balanced sampling, source names, reals-only resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakescope.cli.train import _named_source
from fakescope.training.augment import AugmentConfig, augment_image
from fakescope.training.loop import Dist, epoch_order, source_weights
from fakescope.training.runs import DataArgs, source_name


def test_source_weights_balance_classes_and_sources():
    src = np.array(["a"] * 90 + ["b"] * 10 + ["a"] * 50 + ["c"] * 50)
    y = np.array([0] * 100 + [1] * 100)
    w = source_weights(src, y, 0.0).numpy()
    assert w.sum() == pytest.approx(1.0)
    assert w[y == 0].sum() == pytest.approx(0.5) and w[y == 1].sum() == pytest.approx(0.5)
    # balance 0: the 10 images of b weigh as much as the 90 of a
    assert w[(src == "b")].sum() == pytest.approx(w[(src == "a") & (y == 0)].sum())
    w1 = source_weights(src, y, 1.0).numpy()  # by size: every real image alike
    assert np.allclose(w1[y == 0], w1[0])
    wh = source_weights(src, y, 0.5).numpy()
    share_b = wh[src == "b"].sum() / 0.5
    assert share_b == pytest.approx(np.sqrt(10) / (np.sqrt(10) + np.sqrt(90)))


def test_weighted_epoch_order_draws_epoch_size_by_weight():
    w = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    order = epoch_order(4, torch.Generator().manual_seed(0), Dist(), w, size=100)
    assert len(order) == 100 and set(order.tolist()) <= {2, 3}
    plain = epoch_order(4, torch.Generator().manual_seed(0), Dist())
    assert sorted(plain.tolist()) == [0, 1, 2, 3]


def test_named_sources_and_default_names(tmp_path):
    assert _named_source("sd35=../x/multisource-sd35.tar") == ("sd35", "../x/multisource-sd35.tar")
    assert _named_source("../x/a=b.tar") == (None, "../x/a=b.tar")
    odd = tmp_path / "k=v.tar"
    odd.write_bytes(b"")
    assert _named_source(str(odd)) == (None, str(odd))  # an existing path is a path
    assert source_name("/d/multisource-sdxl.tar") == "multisource-sdxl"
    assert source_name("/d/cifake-train.tar.xz") == "cifake-train"
    data = DataArgs(["/d/a.tar", "/d/ab.tar"], sources=["one", "two"])
    got = data.source_of(["/d/ab.tar::x/real/1.jpg", "/d/a.tar::y/fake/2.jpg", "/e/z.jpg"])
    assert got.tolist() == ["two", "one", "?"]


def test_real_resampling_applies_to_reals_only():
    x = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    cfg = AugmentConfig(rescale_p=0, blur_p=0, noise_p=0, jpeg_p=0, flip=False, real_resample_p=1.0)
    crops_real = [augment_image(x, 96, np.random.default_rng(i), cfg, 0.0) for i in range(8)]
    crops_fake = [augment_image(x, 96, np.random.default_rng(i), cfg, 1.0) for i in range(8)]

    def is_plain_crop(c: np.ndarray) -> bool:  # a pixel-exact window of x
        return any(
            np.array_equal(c, x[t : t + 96, s : s + 96]) for t in range(161) for s in range(161)
        )

    assert all(c.shape == (96, 96, 3) for c in crops_real)
    assert all(is_plain_crop(c) for c in crops_fake[:2])
    assert not any(is_plain_crop(c) for c in crops_real[:2])


def test_resampled_tier_resizes_and_reencodes_with_a_cap():
    from PIL import Image

    from fakescope.evaluation.perturb import FAMILIES, PERTURBATIONS, select

    assert "resampled" in FAMILIES
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8))
    up = PERTURBATIONS["resampled-2x"](img)
    assert up.size == (160, 120) and up.format == "JPEG"
    assert PERTURBATIONS["resampled-0.5x"](img).size == (40, 30)
    big = Image.new("RGB", (3000, 2000), (90, 90, 90))
    assert max(PERTURBATIONS["resampled-4x"](big).size) == 4096  # the enlargement stops there
    assert [p.name for p in select("resampled")] == [
        "resampled-0.25x",
        "resampled-0.5x",
        "resampled-2x",
        "resampled-4x",
    ]


def test_restore_scale_halves_only_images_without_detail():
    from PIL import Image

    from fakescope.tiles import TileRule, detail, restore_scale

    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 25, (256, 256, 3)), 0, 255).astype(np.uint8)
    rule = TileRule(tile=96, detail_floor=0.08)
    big = np.asarray(Image.fromarray(photo).resize((2560, 2560), Image.Resampling.BICUBIC))
    assert detail(big) < 0.08 < detail(photo)
    out, factor = restore_scale(big, rule)
    assert factor >= 2 and out.shape[0] == 2560 // factor and detail(out) >= 0.08
    noisy = np.clip(rng.normal(128, 25, (1200, 900, 3)), 0, 255).astype(np.uint8)
    assert restore_scale(noisy, rule)[1] == 1  # detail at its own scale: untouched
    flat = np.full((300, 300, 3), 90, np.uint8)  # under four tiles a side: untouched
    assert restore_scale(flat, rule)[1] == 1
    assert restore_scale(big, TileRule(tile=96))[1] == 1  # off unless the model asks
