"""Each perturbation of the robustness grid does what its name says, deterministically."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.evaluation.audit import jpeg_quality
from fakescope.evaluation.perturb import FAMILIES, PERTURBATIONS, decode_rgb, select


def photo(w: int = 100, h: int = 80, seed: int = 0) -> Image.Image:
    """A smooth gradient with texture: JPEG and blur have something to act on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


def test_grid_is_the_issue_grid():
    assert list(PERTURBATIONS) == [
        "jpeg-q95",
        "jpeg-q75",
        "jpeg-q50",
        "jpeg-q30",
        "webp-q75",
        "downup-0.75x",
        "downup-0.5x",
        "down-0.5x",
        "blur-0.5",
        "blur-1",
        "blur-2",
        "noise-2",
        "noise-5",
        "noise-10",
        "crop-90",
        "crop-75",
        "jitter",
        "hflip",
        "web",
        "hard",
        "resampled-0.25x",
        "resampled-0.5x",
        "resampled-2x",
        "resampled-4x",
    ]


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_sizes_mode_and_determinism(name):
    p, img = PERTURBATIONS[name], photo()
    a, b = p(img, seed=3, index=7), p(img, seed=3, index=7)
    assert a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b)), "same seed and index: same image"
    expected = {
        "down-0.5x": (50, 40),
        "crop-90": (90, 72),
        "crop-75": (75, 60),
        "resampled-0.25x": (25, 20),
        "resampled-0.5x": (50, 40),
        "resampled-2x": (200, 160),
        "resampled-4x": (400, 320),
    }.get(name, (100, 80))
    assert a.size == expected
    assert np.asarray(img).shape == (80, 100, 3)  # the input is never changed in place


@pytest.mark.parametrize("q", [95, 75, 50, 30])
def test_jpeg_quality_is_applied(q):
    out = PERTURBATIONS[f"jpeg-q{q}"](photo())
    assert out.format == "JPEG" and jpeg_quality(out) == q


def test_webp_is_webp_and_lossy():
    img = photo()
    out = PERTURBATIONS["webp-q75"](img)
    assert out.format == "WEBP"
    assert 0 < np.abs(np.asarray(out, float) - np.asarray(img, float)).mean() < 20


@pytest.mark.parametrize(
    "name,size,quality,expected",
    [
        ("web", (1000, 600), 60, (768, 461)),
        ("web", (100, 80), 60, (100, 80)),
        ("hard", (600, 1000), 40, (307, 512)),
        ("hard", (300, 200), 40, (300, 200)),
    ],
)
def test_web_and_hard_chains(name, size, quality, expected):
    out = PERTURBATIONS[name](photo(*size))
    assert out.size == expected and out.format == "JPEG" and jpeg_quality(out) == quality


def test_down_up_keeps_size_and_loses_detail():
    img = photo()
    small = np.asarray(PERTURBATIONS["downup-0.5x"](img), float)
    mild = np.asarray(PERTURBATIONS["downup-0.75x"](img), float)
    err = [np.abs(x - np.asarray(img, float)).mean() for x in (mild, small)]
    assert small.shape == (80, 100, 3) and 0 < err[0] < err[1]


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_blur_has_the_stated_sigma(sigma):
    """A one-pixel vertical line spreads into a Gaussian profile of standard deviation sigma."""
    a = np.zeros((21, 41, 3), np.uint8)
    a[:, 20] = 255
    out = np.asarray(PERTURBATIONS[f"blur-{sigma:g}"](Image.fromarray(a)), float)[10, :, 0]
    x = np.arange(41) - 20
    std = np.sqrt((out * x**2).sum() / out.sum())
    # sampled at integer pixels, a sigma-0.5 Gaussian measures ~0.46
    assert std == pytest.approx(sigma, rel=0.12)


@pytest.mark.parametrize("sigma", [2, 5, 10])
def test_noise_has_the_stated_sigma(sigma):
    flat = Image.new("RGB", (200, 200), (128, 128, 128))
    out = np.asarray(PERTURBATIONS[f"noise-{sigma}"](flat, seed=0, index=0), float) - 128
    assert out.std() == pytest.approx(sigma, rel=0.05) and abs(out.mean()) < 0.2


def test_random_perturbations_depend_on_seed_and_index():
    img = photo()
    for name in ("noise-5", "jitter"):
        p = PERTURBATIONS[name]
        base = np.asarray(p(img, seed=0, index=0))
        assert not np.array_equal(base, np.asarray(p(img, seed=1, index=0)))
        assert not np.array_equal(base, np.asarray(p(img, seed=0, index=1)))


def test_hflip_and_crop_are_exact():
    img = photo()
    a = np.asarray(img)
    assert np.array_equal(np.asarray(PERTURBATIONS["hflip"](img)), a[:, ::-1])
    assert np.array_equal(np.asarray(PERTURBATIONS["crop-75"](img)), a[10:70, 12:87])


def test_jitter_changes_colour_by_at_most_20_percent():
    img = Image.new("RGB", (10, 10), (100, 100, 100))
    out = np.asarray(PERTURBATIONS["jitter"](img, seed=0, index=0), float)
    assert 0 < abs(out.mean() - 100) <= 0.2 * 100 * 1.2 + 1


def test_select_by_name_and_family():
    assert [p.name for p in select("jpeg-q50,hflip")] == ["jpeg-q50", "hflip"]
    assert [p.name for p in select("blur")] == ["blur-0.5", "blur-1", "blur-2"]
    assert len(select(None)) == len(PERTURBATIONS) and "web" in FAMILIES
    with pytest.raises(FakescopeError, match="unknown perturbation 'jpg'"):
        select("jpg")


def test_decode_rgb_applies_orientation_and_alpha():
    a = np.zeros((10, 20, 4), np.uint8)
    a[..., 3] = 0  # fully transparent: white after compositing
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, format="PNG")
    img = decode_rgb(buf.getvalue())
    assert img.mode == "RGB" and img.size == (20, 10) and np.asarray(img).min() == 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    photo(40, 20).save(buf, format="JPEG", exif=exif)
    assert decode_rgb(buf.getvalue()).size == (20, 40)
