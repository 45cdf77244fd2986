"""`fakescope inspect`: evidence, pixel score with its model, combined verdict; hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fakescope.cli import main
from fakescope.detector import Detector
from fakescope.model_dir import model_config, save_model
from fakescope.models import build_model
from tests import provenance_files as pf
from tests.hostile import make_corpus, valid_files


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny")
    save_model(run, build_model("resnet10t"), model_config({"arch": "resnet10t", "image_size": 32}))
    return run


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]]]:
    """Files -> (expected provenance, verdict_source)."""
    root = tmp_path_factory.mktemp("inspect")
    files = {
        "a1111.png": (pf.a1111_png(), "png-parameters:stable-diffusion", "metadata"),
        "comfyui.png": (pf.comfyui_png(), "png-prompt:comfyui; png-workflow:comfyui", "metadata"),
        "iptc.jpg": (pf.xmp_jpeg(), "iptc:ai-generated", "metadata"),
        "software.jpg": (pf.generator_software_jpeg(), "exif-software:midjourney", "metadata"),
        "camera.jpg": (pf.camera_jpeg(), "exif:camera", "pixels"),
        "plain.png": (valid_files()["plain.png"], "", "pixels"),
    }
    try:
        import c2pa  # noqa: F401

        ca = pf.make_test_ca()
        signed = pf.c2pa_signed(ca, valid_files()["photo.jpg"], "image/jpeg")
        who = "Example Generator Inc"
        files["c2pa.jpg"] = (signed, f"c2pa:ai-generated ({who}, untrusted)", "metadata")
        files["c2pa_tampered.jpg"] = (
            pf.tamper(signed),
            f"c2pa:ai-generated ({who}, invalid)",
            "pixels",
        )
    except ImportError:
        pass
    for name, (data, *_) in files.items():
        (root / name).write_bytes(data)
    return root, {name: tuple(rest) for name, (_, *rest) in files.items()}


def _inspect(args, capsys) -> tuple[int, str, str]:
    code = main(["inspect", "-q", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_json(tiny_model, folder, capsys, monkeypatch):
    monkeypatch.delenv("FAKESCOPE_C2PA_TRUST_ANCHORS", raising=False)
    root, expected = folder
    code, out, err = _inspect([str(root), "--model", str(tiny_model), "--format", "json"], capsys)
    assert code == 0, err
    rows = {Path(r["path"]).name: r for r in json.loads(out)}
    assert set(rows) == set(expected)
    det = Detector.load(str(tiny_model), device="cpu")
    pixel = {Path(r["path"]).name: r for r in det.predict_batch(sorted(map(str, root.iterdir())))}
    for name, (provenance, source) in expected.items():
        r = rows[name]
        assert (r["provenance"], r["verdict_source"]) == (provenance, source), r
        assert r["prob_fake"] == pixel[name]["prob_fake"]  # the pixel score, never overwritten
        assert r["model"] == det.name and r["error"] == ""
        if source == "metadata":
            assert r["label"] == "fake" and r["decided_by"]
        else:
            assert r["label"] == pixel[name]["label"] and r["decided_by"] == ""
        assert (
            len(r["evidence"]) == len(provenance.split("; ")) if provenance else not r["evidence"]
        )
    assert f"{len(expected)} inspected, 0 not scored" in err


def test_inspect_table(tiny_model, folder, capsys):
    root, _ = folder
    args = [str(root / "a1111.png"), str(root / "camera.jpg"), str(root / "plain.png")]
    code, out, _ = _inspect([*args, "--model", str(tiny_model)], capsys)
    assert code == 0
    blocks = {b.splitlines()[0]: b for b in out.strip().split("\n\n")}
    a1111 = blocks[args[0]]
    assert "png-text  ai-generated  asserted" in a1111 and "AUTOMATIC1111" in a1111
    assert f"(model {tiny_model.name})" in a1111  # a folder by its name
    assert "verdict   fake, decided by metadata: png-parameters:stable-diffusion" in a1111
    camera = blocks[args[1]]
    assert "exif  camera" in camera and "weak" in camera and "Canon EOS 5D Mark IV" in camera
    assert "decided by pixels" in camera
    assert "evidence  none" in blocks[args[2]] and "decided by pixels" in blocks[args[2]]


def test_inspect_hostile_corpus(tiny_model, tmp_path, capsys):
    expected = make_corpus(tmp_path / "corpus")
    missing = str(tmp_path / "missing.png")
    code, out, err = _inspect(
        [str(tmp_path / "corpus"), missing, "--model", str(tiny_model), "--format", "json"], capsys
    )
    assert code == 1 and "Traceback" not in err
    rows = json.loads(out)
    by_name = {str(Path(r["path"]).relative_to(tmp_path)): r for r in rows}
    assert set(by_name) == {f"corpus/{n}" for n in expected} | {"missing.png"}
    assert by_name["missing.png"]["error"] == "no such file"
    for name, valid in expected.items():
        r = by_name[f"corpus/{name}"]
        assert bool(r["error"]) != valid, (name, r)
        assert r["verdict_source"] == ("pixels" if valid else "")
        assert r["provenance"] == ""
    assert f"{len(expected) + 1} inspected, {sum(not v for v in expected.values()) + 1}" in err


def test_inspect_user_errors(tmp_path, capsys):
    code, _, err = _inspect([str(tmp_path), "--model", str(tmp_path / "nope")], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
