"""The one pre-processing rule, the Detector API, and `fakescope predict` on hostile input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.cli import main
from fakescope.detector import Detector, model_config, save_model
from fakescope.errors import FakescopeError, ImageError
from fakescope.images import to_model_input
from fakescope.models import build_model
from tests.hostile import bomb_png, exif_rotated_jpeg, invalid_files, make_corpus, valid_files


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised tiny model saved as a run folder (no training needed)."""
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny")
    cfg = {"arch": "resnet10t", "image_size": 32, "tta": "flip"}
    save_model(run, build_model("resnet10t"), model_config(cfg))
    return run


def test_every_valid_mode_becomes_rgb_uint8():
    for name, data in valid_files().items():
        x = to_model_input(data, 32)
        assert x.shape == (32, 32, 3) and x.dtype == np.uint8, name


def test_every_invalid_file_raises_one_clear_image_error():
    for name, data in invalid_files().items():
        with pytest.raises(ImageError) as e:
            to_model_input(data, 32)
        assert "\n" not in str(e.value) and str(e.value), name


def test_high_bit_depth_is_scaled_not_clipped():
    files = valid_files()
    assert np.all(to_model_input(files["gray16.png"], 8) == 128)  # 128*257 / 65535 * 255
    assert np.all(to_model_input(files["int32.tif"], 8) == 128)
    assert np.all(to_model_input(files["float32.tif"], 8) == 128)  # 0.5 * 255


def test_alpha_on_white_first_frame_exif_orientation():
    files = valid_files()
    assert np.all(to_model_input(files["rgba.png"], 8) == 255)  # transparent -> white
    gif = to_model_input(files["animated.gif"], 8)
    assert gif[..., 0].mean() > 200 and gif[..., 2].mean() < 50  # first (red) frame
    x = to_model_input(exif_rotated_jpeg(), 32).astype(int)
    # rotated 90°: the black/white split is now top/bottom, not left/right
    assert abs(x[:12].mean() - x[-12:].mean()) > 150
    assert abs(x[:, :12].mean() - x[:, -12:].mean()) < 30


def test_resize_rule_centre_crop_and_identity():
    a = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    assert np.array_equal(to_model_input(buf.getvalue(), 32), a)  # already 32×32: untouched
    wide = np.zeros((32, 96, 3), np.uint8)
    wide[:, 32:64] = 255  # only the centre square is white
    assert to_model_input(Image.fromarray(wide), 32).min() > 240


def test_bomb_refused_before_decoding():
    with pytest.raises(ImageError, match="decompression bomb"):
        to_model_input(bomb_png(), 32)


def test_detector_api(tiny_model, tmp_path):
    det = Detector.load(str(tiny_model), device="cpu")
    p = tmp_path / "a.png"
    p.write_bytes(valid_files()["plain.png"])
    row = det.predict(str(p))
    assert set(row) == {"path", "prob_fake", "label", "error"}
    assert 0 <= row["prob_fake"] <= 1 and row["label"] in ("real", "fake")
    img = Image.open(p)
    rows = det.predict_batch([str(p), img, str(tmp_path / "missing.png")])
    assert rows[0]["prob_fake"] == rows[1]["prob_fake"] == row["prob_fake"]
    assert rows[2]["error"] and rows[2]["prob_fake"] is None
    # the path API and the array API agree (one pre-processing path)
    x = det.preprocess(str(p))[None]
    assert det.score_arrays(x)[0] == pytest.approx(row["prob_fake"], abs=1e-6)


def test_detector_load_errors(tiny_model, tmp_path):
    with pytest.raises(FakescopeError, match="no model at"):
        Detector.load(str(tmp_path))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_model / "config.json").read_text())
    (bad / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(FakescopeError, match="SHA-256"):
        Detector.load(str(bad))
    cfg = json.loads((tiny_model / "config.json").read_text())
    cfg.pop("weights_sha256")
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FakescopeError, match="not a readable safetensors"):
        Detector.load(str(bad))
    cfg["arch"] = "resnet10s"  # weights of another architecture
    (bad / "config.json").write_text(json.dumps(cfg))
    (bad / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes())
    with pytest.raises(FakescopeError, match="does not fit architecture"):
        Detector.load(str(bad))


def _predict(args, capsys) -> tuple[int, str, str]:
    code = main(["predict", "-q", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_hostile_corpus_all_formats(tiny_model, tmp_path, capsys):
    expected = make_corpus(tmp_path / "corpus")
    code, out, err = _predict(
        [str(tmp_path / "corpus"), "--model", str(tiny_model), "--format", "csv"], capsys
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    by_name = {str(Path(r["path"]).relative_to(tmp_path / "corpus")): r for r in rows}
    assert set(by_name) == set(expected)  # nothing skipped, nothing extra
    for name, valid in expected.items():
        r = by_name[name]
        if valid:
            assert r["error"] == "" and 0 <= float(r["prob_fake"]) <= 1, (name, r)
        else:
            assert r["error"] and r["prob_fake"] == "" and "\n" not in r["error"], (name, r)
    assert code == 1 and "Traceback" not in err
    assert f"{sum(expected.values())} scored" in err.strip().splitlines()[-1]

    for fmt in ("json", "jsonl", "table"):
        code, out, _ = _predict(
            [str(tmp_path / "corpus"), "--model", str(tiny_model), "--format", fmt], capsys
        )
        if fmt == "json":
            assert len(json.loads(out)) == len(expected)
        elif fmt == "jsonl":
            assert len([json.loads(line) for line in out.splitlines()]) == len(expected)
        else:
            assert len(out.splitlines()) == len(expected) + 1


def test_predict_exit_status_output_file_and_globs(tiny_model, tmp_path, capsys):
    for i in range(3):
        (tmp_path / f"img{i}.png").write_bytes(valid_files()["plain.png"])
    out_file = tmp_path / "out.jsonl"
    code, out, err = _predict(
        [
            str(tmp_path / "img*.png"),
            "--model",
            str(tiny_model),
            "--format",
            "jsonl",
            "--output",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0 and out == "" and "3 scored" in err
    assert len(out_file.read_text().splitlines()) == 3
    code, out, err = _predict([str(tmp_path / "nope.png"), "--model", str(tiny_model)], capsys)
    assert code == 1 and "no such file" in out
    code, _, err = _predict([str(tmp_path), "--model", str(tmp_path / "nomodel")], capsys)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


def test_predict_memory_bounded_in_subprocess(tiny_model, tmp_path):
    """Peak RSS of one `fakescope predict` over the hostile corpus (bomb included). The child's
    own rusage comes from wait4: RUSAGE_CHILDREN would also count unrelated earlier children
    that happen to be reaped meanwhile."""
    make_corpus(tmp_path / "c")
    cmd = [sys.executable, "-m", "fakescope", "predict", "-q", str(tmp_path / "c")]
    cmd += ["--model", str(tiny_model), "--format", "jsonl"]
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = (tmp_path / "err").read_text()
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    peak_mb = usage.ru_maxrss / 1024
    # importing torch alone is ~650 MB here; decoding the bomb would need 30 GB
    assert peak_mb < 1500, peak_mb
