"""`fakescope robustness`: every variant scored through the Detector, metrics per perturbation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakescope.cli import main
from fakescope.data import list_labelled
from fakescope.detector import Detector
from fakescope.evaluation.perturb import select
from fakescope.evaluation.robustness import score_variants, summarise
from tests.conftest import make_image_tree


@pytest.fixture(scope="module")
def det():
    return Detector.load(device="cpu")


@pytest.fixture
def tree(tmp_path):
    root = make_image_tree(tmp_path / "data", {"real": 6, "fake": 6}, size=40)
    (root / "real" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_variants_go_through_the_detector_and_clean_is_the_file(det, tree):
    files = list_labelled([tree])
    perts = select("jpeg-q30,hflip,down-0.5x")
    prob, code, failed, verr = score_variants(det, files, perts, seed=0, batch_size=5)
    assert prob.shape == (4, 13) and verr == {}
    assert len(failed) == 1 and failed[0][0].endswith("broken.png")
    ok = code[0] >= 0
    assert ok.sum() == 12 and np.isnan(prob[:, ~ok]).all()
    idx = np.flatnonzero(ok)  # clean = the raw file through the Detector
    rows = det.predict_batch([(tree / files.entries[i].name).read_bytes() for i in idx])
    assert prob[0, idx] == pytest.approx([r["prob_fake"] for r in rows], abs=1e-6)
    # the perturbed variant is scored exactly as predict scores that perturbed image
    from fakescope.evaluation.perturb import decode_rgb

    i = int(np.flatnonzero(ok)[0])
    img = perts[0](decode_rgb((tree / files.entries[i].name).read_bytes()), 0, i)
    assert prob[1, i] == pytest.approx(det.predict(img)["prob_fake"], abs=1e-6)
    res = summarise(files.labels, prob, code, perts, det.threshold)
    assert [r["name"] for r in res] == ["clean", "jpeg-q30", "hflip", "down-0.5x"]
    assert res[0]["flip_rate"] == 0.0 and all(r["n"] == 12 for r in res)
    flips = np.mean(code[1, ok] != code[0, ok])
    assert res[1]["flip_rate"] == pytest.approx(flips)


def test_seeded_and_reproducible(det, tree):
    files = list_labelled([tree])
    perts = select("noise-10,jitter")
    a = score_variants(det, files, perts, seed=1)[0]
    b = score_variants(det, files, perts, seed=1)[0]
    c = score_variants(det, files, perts, seed=2)[0]
    assert np.array_equal(a, b, equal_nan=True) and not np.array_equal(a, c, equal_nan=True)


def test_cli_writes_json_report_and_plots(tree, tmp_path, capsys):
    out = tmp_path / "rb"
    argv = ["robustness", "--data", str(tree), "--out", str(out), "--device", "cpu", "-q"]
    assert main([*argv, "--perturbations", "jpeg,hflip"]) == 0
    rep = json.loads((out / "robustness.json").read_text())
    names = [r["name"] for r in rep["results"]]
    assert names == ["clean", "jpeg-q95", "jpeg-q75", "jpeg-q50", "jpeg-q30", "hflip"]
    assert rep["images"] == {"real": 7, "fake": 6} and len(rep["failed"]) == 1
    for r in rep["results"]:
        for key in ("accuracy", "roc_auc", "false_positive_rate", "detection_rate", "flip_rate"):
            assert r[key] is None or 0.0 <= r[key] <= 1.0
    assert (out / "robustness_jpeg.png").stat().st_size > 0
    assert (out / "robustness_hflip.png").stat().st_size > 0
    assert "| jpeg-q30 |" in (out / "report.md").read_text()
    assert "| jpeg-q30 |" in capsys.readouterr().out
    assert main([*argv, "--perturbations", "jpg"]) == 2
    assert "unknown perturbation" in capsys.readouterr().err
