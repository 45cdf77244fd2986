"""The shipped models: load, verify their checksums, route, and are accurate on real images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fakescope import model_dir as detector_mod
from fakescope.cli import main
from fakescope.data import load_images
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.metrics import compute_metrics
from fakescope.model_dir import DEFAULT_MODEL, available_models
from tests.conftest import CIFAKE_TEST, CLIP_ENCODER, SHARED, need_shared

CIFAKE, TILES, FUSION = "cifake-resnet10s", "photo-effnet-lite2", "photo-fusion"
# the photo route: the fusion, or its tile model alone where the CLIP encoder is not installed
PHOTO = FUSION if CLIP_ENCODER else TILES
AUC_BAR_A, AUC_BAR_S = 0.85, 0.93  # the fusion's card: 0.921 and 0.981 on the whole splits


def test_default_model_routes_thumbnails_and_photos():
    """The default serves both worlds: CIFAKE-sized thumbnails keep the CIFAKE model, photos get
    the native-resolution model (the rule and its numbers: weights/auto/MODEL_CARD.md)."""
    assert available_models()[0] == DEFAULT_MODEL == "auto"
    det = Detector.load(device="cpu")
    assert [m for m, _ in det.routes] == [64, None]
    assert det.member_for((32, 32)).name == CIFAKE and det.member_for((64, 40)).name == CIFAKE
    assert det.member_for((65, 65)).name == PHOTO and det.member_for((4000, 3000)).name == PHOTO
    rows = det.predict_batch([np.zeros((32, 32, 3), np.uint8), np.zeros((300, 200, 3), np.uint8)])
    assert [r["model"] for r in rows] == [CIFAKE, PHOTO]


def test_shipped_models_are_small_safetensors_with_measured_cards():
    for name in available_models():
        folder = detector_mod.WEIGHTS_DIR / name
        card = (folder / "MODEL_CARD.md").read_text()
        cfg = detector_mod.read_config(folder)
        if "route" in cfg:
            assert "cifake-resnet10s" in card and "photo-fusion" in card
            continue
        if "fusion" in cfg:  # no network of its own: a head, a combiner, measured per source
            assert (folder / "clip_head.safetensors").stat().st_size < 64 * 1024
            assert "Leave one source out" in card and card.count("ROC-AUC") >= 1
            assert {"sd35_validation", "ganfaces_validation"} <= set(cfg["metrics"])
            continue
        assert (folder / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
        assert "accuracy" in card and "ROC-AUC" in card
        det = Detector.load(name, device="cpu")
        assert det.config["labels"] == ["real", "fake"] and det.config["metrics"]
    assert Detector.load(CIFAKE).input_size == 32
    assert Detector.load(TILES).rule == "tiles"


@pytest.mark.slow
def test_shipped_model_accuracy_on_2000_cifake_test_images():
    need_shared()
    ds = load_images([str(CIFAKE_TEST)], purpose="eval", subset=2000, seed=0, progress=False)
    assert ds.counts() == {"real": 1000, "fake": 1000}
    det = Detector.load(CIFAKE, device="cpu")
    m = compute_metrics(ds.y, det.score_arrays(ds.x))
    assert m["accuracy"] >= 0.97, m


PHOTO_VAL = {  # a stratified sample of each shared validation split, and its ROC-AUC bar
    "aivsreal256": ("aivsreal256/aivsreal256-validation.tar", 200, AUC_BAR_A),
    "sdv1coco": ("sdv1coco/sdv1coco-crops256-validation.tar", 100, AUC_BAR_S),
}


@pytest.mark.slow
@pytest.mark.parametrize("key", list(PHOTO_VAL))
def test_photo_model_separates_real_and_generated_photos(key):
    """The released photo model on validation photos it never saw, through the same path as
    `fakescope predict` (tiles at native scale, calibrated): the bars sit a little under the
    measured full-split ROC-AUC of its card (a 200-image sample varies by about ±0.03)."""
    from sklearn.metrics import roc_auc_score

    from fakescope.data import list_labelled

    rel, n, bar = PHOTO_VAL[key]
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"needs {path} (shared data not present here)")
    files = list_labelled([path], subset=n, seed=0)
    items = list(files.iter_bytes())
    det = Detector.load(PHOTO, device="cpu", metadata=False)
    rows = det.predict_batch([raw for _, raw in items])
    assert all(r["error"] == "" and r["model"] == PHOTO for r in rows)
    y = [files.labels[i] for i, _ in items]
    auc = roc_auc_score(y, [r["prob_fake"] for r in rows])
    assert auc >= bar, auc


def test_predict_with_default_model_prints_a_verdict(cifake_files, tmp_path, capsys):
    name = next(n for n in sorted(cifake_files) if "/FAKE/" in n and n.startswith("test/"))
    img = tmp_path / "some_image.jpg"
    img.write_bytes(cifake_files[name])
    assert main(["predict", str(img)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[1] in ("real", "fake") and out[1].endswith("some_image.jpg")


def test_tampered_shipped_weights_are_refused(tmp_path, monkeypatch):
    copy = tmp_path / "weights"
    shutil.copytree(detector_mod.WEIGHTS_DIR, copy)
    w = copy / CIFAKE / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    monkeypatch.setattr(detector_mod, "WEIGHTS_DIR", copy)
    with pytest.raises(FakescopeError, match="SHA-256 does not match"):
        Detector.load(CIFAKE, backend="torch")
    with pytest.raises(FakescopeError, match="SHA-256 does not match"):
        Detector.load(DEFAULT_MODEL, backend="torch")  # a routing model checks every member


def _web_split(name: str) -> list[tuple[str, bytes]]:
    """The validation files of a whole-image tar of ../shared/data (name, bytes)."""
    import tarfile

    path = SHARED / name
    if not path.exists():
        pytest.skip(f"needs {path} (shared data not present here)")
    with tarfile.open(path) as tar:
        return [
            (m.name, tar.extractfile(m).read())  # type: ignore[union-attr]
            for m in sorted(tar.getmembers(), key=lambda m: m.name)
            if m.isfile() and m.name.startswith("validation/")
        ]


@pytest.mark.slow
def test_polished_photos_stay_real_and_artworks_are_not_called_fake():
    """Issue 33 through `fakescope predict`'s path: the hard reals' whole web-size validation
    photos (polished photography the earlier release called fake 15% of the time) stay within
    the 5% promise, with a margin for a 91-image split, and artworks are marked out of scope,
    at most one called fake (the fusion's artwork rule; the tile model alone has no artwork
    rule, so without the CLIP encoder only the photos are checked)."""
    files = _web_split("hardreals/hardreals-web.tar")
    det = Detector.load(PHOTO, device="cpu", metadata=False)
    rows = det.predict_batch([raw for _, raw in files])
    art = [n.split("/")[-1].startswith("art-") for n, _ in files]
    photos = [r for r, a in zip(rows, art, strict=True) if not a]
    arts = [r for r, a in zip(rows, art, strict=True) if a]
    assert len(photos) >= 80 and len(arts) >= 5
    called_fake = sum(r["label"] == "fake" for r in photos) / len(photos)
    assert called_fake <= 0.08, called_fake
    if PHOTO == FUSION:  # release 5 measured 9 of 10 out of scope, 1 called fake
        assert sum(r["label"] == "fake" for r in arts) <= 1, [r["prob_fake"] for r in arts]
        assert sum(r["note"].startswith("out of scope: looks like an artwork") for r in arts) >= 7
