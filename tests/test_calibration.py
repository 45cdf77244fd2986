"""Calibration fitting, the threshold for a target false-positive rate, the uncertain band, the
calibration metrics, and `fakescope calibrate` writing a usable calibrated model folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from fakescope.calibration import (
    apply_calibration,
    choose_method,
    fit_calibration,
    fit_isotonic,
    fit_platt,
    fit_temperature,
    sigmoid,
    threshold_for_fpr,
    uncertain_band,
    verdict,
)
from fakescope.cli import main
from fakescope.metrics import brier, compute_metrics, ece, format_table, nll
from tests.conftest import make_image_tree


def overconfident(n: int = 4000, scale: float = 3.0, seed: int = 0):
    """True logits t, labels drawn from sigmoid(t), and a model that reports scale * t."""
    rng = np.random.default_rng(seed)
    t = rng.normal(0, 2, n)
    y = (rng.random(n) < sigmoid(t)).astype(int)
    return scale * t, y


def test_temperature_scaling_recovers_the_temperature_and_lowers_nll():
    z, y = overconfident()
    cal = fit_temperature(z, y)
    assert cal["method"] == "temperature" and cal["temperature"] == pytest.approx(3.0, rel=0.1)
    before, after = sigmoid(z), apply_calibration(z, cal)
    assert nll(y, after) < nll(y, before) - 0.05
    assert ece(y, after) < ece(y, before) and brier(y, after) < brier(y, before)


def test_platt_recovers_slope_and_offset():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, 6000)
    y = (rng.random(6000) < sigmoid(0.5 * z - 1.0)).astype(int)
    cal = fit_platt(z, y)
    assert cal["a"] == pytest.approx(0.5, abs=0.08) and cal["b"] == pytest.approx(-1.0, abs=0.15)


def test_isotonic_breakpoints_reproduce_sklearn():
    z, y = overconfident(1000)
    cal = fit_isotonic(z, y)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(z, y)
    probe = np.linspace(z.min() - 3, z.max() + 3, 500)
    assert np.allclose(apply_calibration(probe, cal), iso.predict(probe))
    assert np.all(np.diff(cal["x"]) >= 0) and np.all(np.diff(cal["y"]) >= 0)
    json.dumps(cal)  # stored in config.json


def test_auto_picks_by_cross_validated_nll():
    z, y = overconfident()
    best, scores, oof = choose_method(z, y)
    assert set(scores) == {"temperature", "platt", "isotonic"}
    assert scores[best] == min(scores.values()) and best in ("temperature", "platt")
    assert nll(y, oof[best]) == pytest.approx(scores[best])
    # a step-shaped truth no sigmoid can follow: isotonic wins
    rng = np.random.default_rng(2)
    z = rng.uniform(-4, 4, 4000)
    p = np.where(np.abs(z) < 1, 0.9, 0.1)
    y = (rng.random(4000) < p).astype(int)
    assert choose_method(z, y)[0] == "isotonic"
    with pytest.raises(ValueError):
        fit_calibration("histogram", z, y)


@pytest.mark.parametrize("target", [0.0, 0.01, 0.05, 0.1, 0.5])
def test_threshold_meets_the_target_fpr_and_is_the_smallest(target):
    rng = np.random.default_rng(3)
    real = rng.beta(2, 5, 1000)
    real[:50] = 0.3  # ties
    t = threshold_for_fpr(real, target)
    assert np.mean(real >= t) <= target
    below = np.nextafter(t, -np.inf)
    assert np.mean(real >= below) > target  # any smaller threshold breaks the target


def test_threshold_edge_cases():
    assert threshold_for_fpr(np.array([0.2, 0.4]), 1.0) == 0.0
    assert threshold_for_fpr(np.array([0.2, 0.4]), 0.0) > 0.4
    with pytest.raises(ValueError):
        threshold_for_fpr(np.array([]), 0.05)


def test_uncertain_band_and_verdicts():
    band = uncertain_band(0.7, 0.2)
    assert band == pytest.approx([0.6, 0.8])
    assert [verdict(p, 0.7, band) for p in (0.59, 0.6, 0.7, 0.79, 0.8)] == [
        "real",
        "uncertain",
        "uncertain",
        "uncertain",
        "fake",
    ]
    assert uncertain_band(0.95, 0.2) == pytest.approx([0.85, 1.0])
    assert uncertain_band(0.5, 0) is None and uncertain_band(0.5, None) is None
    with pytest.raises(ValueError):
        uncertain_band(0.5, 1.5)


def test_ece_brier_nll_hand_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.9, 0.5])
    # bins: {0.1, 0.1} -> |0 - 0.1|; {0.5} -> |1 - 0.5|; {0.9} -> |1 - 0.9|
    assert ece(y, p) == pytest.approx(0.5 * 0.1 + 0.25 * 0.5 + 0.25 * 0.1)
    assert brier(y, p) == pytest.approx((0.01 + 0.01 + 0.01 + 0.25) / 4)
    assert nll(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.9, 0.5])))
    assert np.isfinite(nll(np.array([1]), np.array([0.0])))  # clipped, not infinite


def test_metrics_with_uncertain_verdicts():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.55, 0.7, 0.45, 0.8, 0.9])
    band = [0.4, 0.6]
    labels = [verdict(v, 0.5, band) for v in p]
    m = compute_metrics(y, p, 0.5, labels=labels)
    assert m["uncertain"] == 2 and m["uncertain_by_class"] == {"real": 1, "fake": 1}
    assert m["n"] == 6 and m["n_decided"] == 4
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]  # decided only
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["false_positive_rate"] == pytest.approx(0.5) and m["detection_rate"] == 1.0
    assert m["all_at_threshold"]["confusion_matrix"] == [[1, 2], [1, 2]]
    assert m["all_at_threshold"]["accuracy"] == pytest.approx(0.5)
    table = format_table(m)
    for row in ("uncertain", "false_positive_rate", "detection_rate", "ece", "brier", "nll"):
        assert row in table
    plain = compute_metrics(y, p, 0.5)
    assert "uncertain" not in plain and plain["false_positive_rate"] == pytest.approx(2 / 3)
    assert plain["detection_rate"] == pytest.approx(plain["recall"])


def test_calibrate_writes_a_calibrated_model_copy(tmp_path, capsys):
    from fakescope.detector import Detector
    from fakescope.model_dir import sha256_file

    data = make_image_tree(tmp_path / "data", {"real": 30, "fake": 30}, size=40)
    out = tmp_path / "calibrated"
    argv = ["calibrate", "--data", str(data), "--out", str(out), "--device", "cpu", "-q"]
    argv += ["--model", "cifake-resnet10s"]
    assert main([*argv, "--target-fpr", "0.1", "--uncertain-band", "0.1"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    shipped = Detector.load("cifake-resnet10s", device="cpu")
    assert cfg["weights_sha256"] == sha256_file(out / "model.safetensors")
    assert cfg["weights_sha256"] == shipped.config["weights_sha256"]  # weights untouched
    assert cfg["calibration"]["method"] in ("temperature", "platt", "isotonic")
    rep = cfg["calibration_report"]
    assert rep["images"] == {"real": 30, "fake": 30} and rep["target_fpr"] == 0.1
    assert cfg["uncertain"] == pytest.approx([cfg["threshold"] - 0.05, cfg["threshold"] + 0.05])
    for f in ("report.md", "reliability.png"):
        assert (out / f).stat().st_size > 0
    # the numbers hold when recomputed from the copy: same logits, calibration, threshold
    det = Detector.load(str(out), device="cpu")
    files = sorted((data / "real").iterdir())
    z = np.array([v for v, _ in det.iter_logits(files)])
    p = apply_calibration(z, cfg["calibration"])
    assert np.mean(p >= cfg["threshold"]) <= 0.1
    assert rep["false_positive_rate"] == pytest.approx(np.mean(p >= cfg["threshold"]))
    # and the Detector's rows are the calibrated probabilities and verdicts
    rows = det.predict_batch(files)
    assert [r["prob_fake"] for r in rows] == pytest.approx(p, abs=1e-6)
    band = cfg["uncertain"]
    assert [r["label"] for r in rows] == [verdict(v, cfg["threshold"], band) for v in p]
    # evaluate with the calibrated copy counts the same uncertain verdicts, apart
    ev = tmp_path / "eval"
    assert main(["evaluate", "--data", str(data), "--model", str(out), "--out", str(ev), "-q"]) == 0
    m = json.loads((ev / "metrics.json").read_text())
    assert m["uncertain"] == rep["uncertain"] and m["n_decided"] == 60 - rep["uncertain"]
    assert m["ece"] == pytest.approx(rep["after"]["ece"], abs=1e-4)
    # refuses to overwrite the model it calibrates, and bad options are one error line
    assert main(["calibrate", "--data", str(data), "--model", str(out), "--out", str(out)]) == 2
    assert main([*argv, "--uncertain-band", "1"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # checked when the command line is parsed
        main([*argv, "--target-fpr", "1.5"])
    assert exc.value.code == 2 and "between 0 and 1" in capsys.readouterr().err
