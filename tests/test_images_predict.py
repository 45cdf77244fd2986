"""The one pre-processing rule, the Detector API, and `fakescope predict` on hostile input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.cli import main
from fakescope.detector import ROW_FIELDS, Detector
from fakescope.errors import FakescopeError, ImageError
from fakescope.images import to_model_input
from tests.hostile import bomb_png, exif_rotated_jpeg, invalid_files, make_corpus, valid_files


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
    assert tuple(row) == ROW_FIELDS  # provenance fields included (metadata is read by default)
    assert row["provenance"] == "" and row["verdict_source"] == "pixels"
    assert row["model"] == tiny_model.name  # a run folder is named by its folder name
    assert 0 <= row["prob_fake"] <= 1 and row["label"] in ("real", "fake")
    img = Image.open(p)
    rows = det.predict_batch([str(p), img, str(tmp_path / "missing.png")])
    assert rows[0]["prob_fake"] == rows[1]["prob_fake"] == row["prob_fake"]
    assert rows[2]["error"] and rows[2]["prob_fake"] is None
    # the path API and the array API agree (one pre-processing path)
    x = det.preprocess(str(p))
    assert x.shape == (1, 32, 32, 3)
    assert det.score_arrays(x)[0] == pytest.approx(row["prob_fake"], abs=1e-6)


def test_detector_accepts_arrays_and_raises_image_error(tiny_model, tmp_path):
    det = Detector.load(str(tiny_model), device="cpu")
    rgb = np.asarray(Image.open(io.BytesIO(valid_files()["plain.png"])).convert("RGB"))
    ref = det.predict(Image.fromarray(rgb))["prob_fake"]
    assert det.predict(rgb)["prob_fake"] == ref  # H×W×3 uint8
    assert det.predict(rgb.astype(np.float32) / 255)["prob_fake"] == pytest.approx(ref, abs=1e-6)
    grey = rgb.mean(-1).astype(np.uint8)
    assert det.predict(grey)["prob_fake"] == det.predict(Image.fromarray(grey))["prob_fake"]
    with pytest.raises(ImageError, match="no such file"):
        det.predict(str(tmp_path / "nonexistent.jpg"))
    with pytest.raises(ImageError, match="not an image"):
        det.predict(np.zeros((4, 4, 7), np.uint8))
    with pytest.raises(ImageError):
        det.predict(12345)
    text = repr(det)
    assert "threshold=0.5" in text and "resized to 32×32" in text and "device='cpu'" in text


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
    code, out, err = _predict(
        [str(tmp_path / "img0.png"), str(tmp_path / "nope.png"), "--model", str(tiny_model)],
        capsys,
    )
    assert code == 1 and "no such file" in out
    code, _, err = _predict([str(tmp_path), "--model", str(tmp_path / "nomodel")], capsys)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err


# Runs `python -m fakescope ...` and, at exit, writes its own peak RSS (VmHWM, kB) to a file.
# VmHWM belongs to the process image after exec; getrusage's ru_maxrss would also count the
# pages of the forking parent (pytest, over 1.5 GB late in the suite), which survive exec.
_PEAK_WRAPPER = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(peak)
sys.argv[0] = "fakescope"
runpy.run_module("fakescope", run_name="__main__")
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_predict_memory_bounded_in_subprocess(tiny_model, tmp_path):
    """Peak RSS of one `fakescope predict` over the hostile corpus, bomb included."""
    expected = make_corpus(tmp_path / "c")
    peak_file = tmp_path / "peak_kb"
    cmd = [sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), "predict", "-q"]
    cmd += [str(tmp_path / "c"), "--model", str(tiny_model), "--format", "jsonl"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stdout.splitlines()) == len(expected)
    peak_mb = int(peak_file.read_text()) / 1024
    # importing torch alone is ~650 MB here; decoding the bomb would need 30 GB
    assert peak_mb < 1200, peak_mb
