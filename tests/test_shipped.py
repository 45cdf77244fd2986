"""The shipped CIFAKE model: loads, verifies its checksum, and is accurate on real test images."""

from __future__ import annotations

import shutil

import pytest

from fakescope import detector as detector_mod
from fakescope.cli import main
from fakescope.data import load_images
from fakescope.detector import DEFAULT_MODEL, Detector, available_models
from fakescope.errors import FakescopeError
from fakescope.metrics import compute_metrics
from tests.conftest import CIFAKE_TEST, need_shared


def test_default_model_is_shipped_small_and_safetensors():
    assert available_models()[0] == DEFAULT_MODEL
    folder = detector_mod.WEIGHTS_DIR / DEFAULT_MODEL
    assert (folder / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
    assert (folder / "MODEL_CARD.md").read_text().count("accuracy") >= 2
    det = Detector.load(device="cpu")
    assert det.input_size == 32 and det.config["labels"] == ["real", "fake"]


@pytest.mark.slow
def test_shipped_model_accuracy_on_2000_cifake_test_images():
    need_shared()
    ds = load_images([str(CIFAKE_TEST)], purpose="eval", subset=2000, seed=0, progress=False)
    assert ds.counts() == {"real": 1000, "fake": 1000}
    det = Detector.load(device="cpu")
    m = compute_metrics(ds.y, det.score_arrays(ds.x))
    assert m["accuracy"] >= 0.97, m


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
    w = copy / DEFAULT_MODEL / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    monkeypatch.setattr(detector_mod, "WEIGHTS_DIR", copy)
    with pytest.raises(FakescopeError, match="SHA-256 does not match"):
        Detector.load(DEFAULT_MODEL, backend="torch")
