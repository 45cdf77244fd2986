"""Provenance evidence from real files built here, the combination rule, and hostile metadata."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from fakescope import provenance
from fakescope.provenance import (
    CLAIMS,
    FIELDS_EXTRA,
    Evidence,
    EvidenceItem,
    combine,
    markers,
    match_free_text,
    match_tool,
    read_evidence,
    readers,
)
from tests import provenance_files as pf
from tests.hostile import invalid_files, valid_files

# (file builder, provenance summary, decides `fake`?)
CASES = {
    "a1111.png": (pf.a1111_png, "png-parameters:stable-diffusion", True),
    "a1111_itxt.png": (
        lambda: pf.a1111_png(pf.A1111 + " 猫"),
        "png-parameters:stable-diffusion",
        True,
    ),
    "comfyui.png": (pf.comfyui_png, "png-prompt:comfyui; png-workflow:comfyui", True),
    "after_idat.png": (pf.chunk_after_pixels_png, "png-parameters:stable-diffusion", True),
    "novelai.png": (pf.novelai_png, "png-software:novelai; png-source:stable-diffusion", True),
    "iptc.jpg": (pf.xmp_jpeg, "iptc:ai-generated", True),
    "iptc_composite.jpg": (
        lambda: pf.xmp_jpeg("compositeWithTrainedAlgorithmicMedia", "Adobe Photoshop 25.0"),
        "iptc:ai-composite; xmp:software",
        True,
    ),
    "iptc_capture.jpg": (lambda: pf.xmp_jpeg("digitalCapture"), "iptc:camera", False),
    "xmp_tool.jpg": (
        lambda: pf.xmp_jpeg("digitalCreation", "Adobe Firefly 3"),
        "iptc:software; xmp-creatortool:adobe-firefly",
        True,
    ),
    "software.jpg": (pf.generator_software_jpeg, "exif-software:midjourney", True),
    "a1111.jpg": (pf.a1111_jpeg, "exif-usercomment:stable-diffusion", True),
    "camera.jpg": (pf.camera_jpeg, "exif:camera", False),
    "editor.jpg": (lambda: pf.exif_jpeg(software="Adobe Photoshop 25.0"), "exif:software", False),
    "other_parameters.png": (lambda: pf.a1111_png("gamma=2.2 dither=on"), "", False),
    "plain.png": (lambda: valid_files()["plain.png"], "", False),
    "plain.jpg": (lambda: valid_files()["photo.jpg"], "", False),
}


@pytest.mark.parametrize("name", CASES)
def test_each_kind_of_file_gives_its_evidence(name, tmp_path):
    build, summary, decides = CASES[name]
    data = build()
    path = tmp_path / name
    path.write_bytes(data)
    for src in (str(path), path, data):
        ev = read_evidence(src)
        assert ev.summary() == summary, (name, ev.to_dict())
        assert (ev.decisive() is not None) == decides
    for item in ev.items:
        assert item.source in provenance.SOURCES and item.claim in CLAIMS
        assert item.strength in provenance.STRENGTHS and item.detail and "\n" not in item.detail


def test_camera_detail_and_strength():
    (item,) = read_evidence(pf.camera_jpeg()).items
    assert (item.source, item.claim, item.strength) == ("exif", "camera", "weak")
    for part in ("Canon EOS 5D Mark IV", "1/200 s", "f/8.0", "ISO 100", "Firmware"):
        assert part in item.detail


def test_pil_images_give_what_pillow_kept():
    ev = read_evidence(Image.open(io.BytesIO(pf.a1111_png())))
    assert ev.summary() == "png-parameters:stable-diffusion"
    assert read_evidence(Image.open(io.BytesIO(pf.camera_jpeg()))).summary() == "exif:camera"
    assert read_evidence(Image.open(io.BytesIO(pf.xmp_jpeg()))).summary() == "iptc:ai-generated"
    # an image still in the generating process's memory, as AUTOMATIC1111 holds it before saving
    img = pf.pixels()
    img.info["parameters"] = pf.A1111
    assert read_evidence(img).summary() == "png-parameters:stable-diffusion"
    assert read_evidence(pf.pixels()).summary() == ""


def test_marker_table_is_consistent():
    raw = json.loads((Path(provenance.__file__).parent / "provenance_markers.json").read_text())
    ids = [g["id"] for g in raw["generators"]]
    assert len(ids) == len(set(ids))
    assert {p["generator"] for p in raw["png_text"]} <= set(ids)
    assert {b["generator"] for b in raw["settings_blocks"]} <= set(ids)
    assert set(markers().source_types.values()) <= set(CLAIMS)
    assert markers().source_types["trainedAlgorithmicMedia"] == "ai-generated"


def test_generator_names_match_whole_words_in_tool_fields_only():
    assert match_tool("Midjourney v6.1") == ("midjourney", "ai-generated")
    assert match_tool("DALL·E 3") == ("dall-e", "ai-generated")
    assert match_tool("NovelAI") == ("novelai", "ai-generated")
    assert match_tool("Topaz Photo AI 3.0") == ("topaz", "ai-edited")
    for name in ("Adobe Photoshop 25.0", "GIMP 2.10", "Imagen Studio", "sdxlfoo", "Firmware 1.2"):
        assert match_tool(name) is None, name
    assert match_free_text("Steps: 30, Sampler: Euler a, CFG scale: 7")[0] == "stable-diffusion"
    assert match_free_text("Generated with Midjourney, upscaled")[0] == "midjourney"
    assert match_free_text("I prefer midjourney to my camera") is None
    assert match_free_text("a holiday photo") is None


ROW = {"path": "x.png", "prob_fake": 0.125, "label": "real", "error": "", "model": "m"}
AI = EvidenceItem(
    "iptc", "ai-generated", "asserted", "IPTC digital source type x", "iptc:ai-generated"
)


def test_combine_rule():
    assert FIELDS_EXTRA == ("provenance", "verdict_source")
    row = dict(ROW)
    out = combine(row, Evidence([AI]))
    assert row == ROW  # the input row is not changed
    assert out == {
        **ROW,
        "label": "fake",
        "provenance": "iptc:ai-generated",
        "verdict_source": "metadata",
    }
    assert combine(ROW, Evidence()) == {**ROW, "provenance": "", "verdict_source": "pixels"}
    fake_row = {**ROW, "prob_fake": 0.9, "label": "fake"}
    for claim, strength, decides in [
        ("ai-generated", "verified", True),
        ("ai-composite", "untrusted", True),
        ("ai-generated", "asserted", True),
        ("ai-generated", "invalid", False),  # a broken credential never decides
        ("ai-edited", "verified", False),
        ("camera", "verified", False),  # a capture credential or camera EXIF never overrides
        ("camera", "weak", False),
        ("unknown", "none", False),
    ]:
        ev = Evidence([EvidenceItem("c2pa", claim, strength, "d", f"c2pa:{claim}")])
        for r in (ROW, fake_row):
            out = combine(r, ev)
            assert out["prob_fake"] == r["prob_fake"]  # the pixel score, always
            assert out["verdict_source"] == ("metadata" if decides else "pixels")
            assert out["label"] == ("fake" if decides else r["label"])
    err = {"path": "x", "prob_fake": None, "label": None, "error": "not an image"}
    assert combine(err, Evidence([AI])) == {**err, "provenance": "", "verdict_source": ""}


def test_verified_beats_asserted_as_the_deciding_item():
    c2 = EvidenceItem("c2pa", "ai-generated", "verified", "d", "c2pa:ai-generated (X, verified)")
    ev = Evidence([AI, c2])
    assert ev.decisive() is c2
    assert ev.to_dict()["decided_by"] == c2.tag
    assert ev.summary() == "iptc:ai-generated; c2pa:ai-generated (X, verified)"


# ---- C2PA ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed() -> dict[str, bytes]:
    """C2PA-signed files (c2pa-python's Builder, a throw-away certificate chain) and tampered
    copies; the root CA's PEM under 'root.pem'."""
    pytest.importorskip("c2pa", reason="needs the provenance extra (c2pa-python)")
    ca = pf.make_test_ca()
    plain_jpg, plain_png = valid_files()["photo.jpg"], valid_files()["plain.png"]
    files = {
        "ai.jpg": pf.c2pa_signed(ca, plain_jpg, "image/jpeg"),
        "composite.png": pf.c2pa_signed(
            ca, plain_png, "image/png", "compositeWithTrainedAlgorithmicMedia"
        ),
        "capture.jpg": pf.c2pa_signed(ca, plain_jpg, "image/jpeg", "digitalCapture"),
        "root.pem": ca.root_pem.encode(),
        "other_root.pem": pf.make_test_ca().root_pem.encode(),
    }
    files["ai_tampered.jpg"] = pf.tamper(files["ai.jpg"])
    files["composite_tampered.png"] = pf.tamper(files["composite.png"])
    return files


SIGNER = "Example Generator Inc"


def test_c2pa_untrusted_signer(signed, monkeypatch):
    monkeypatch.delenv("FAKESCOPE_C2PA_TRUST_ANCHORS", raising=False)
    (item,) = read_evidence(signed["ai.jpg"]).items
    assert item.tag == f"c2pa:ai-generated ({SIGNER}, untrusted)"
    assert "claim generator Example Image Generator 1.0" in item.detail
    assert "trainedAlgorithmicMedia" in item.detail
    # an intact credential declaring AI counts like unsigned metadata: it decides
    assert combine(ROW, read_evidence(signed["ai.jpg"]))["verdict_source"] == "metadata"


def test_c2pa_verified_with_trust_anchors(signed, monkeypatch, tmp_path):
    (tmp_path / "root.pem").write_bytes(signed["root.pem"])
    monkeypatch.setenv("FAKESCOPE_C2PA_TRUST_ANCHORS", str(tmp_path / "root.pem"))
    ev = read_evidence(signed["ai.jpg"])
    assert ev.summary() == f"c2pa:ai-generated ({SIGNER}, verified)"
    assert combine(ROW, ev) == {
        **ROW,
        "label": "fake",
        "provenance": ev.summary(),
        "verdict_source": "metadata",
    }
    assert read_evidence(signed["composite.png"]).summary() == (
        f"c2pa:ai-composite ({SIGNER}, verified)"
    )
    cap = read_evidence(signed["capture.jpg"])
    assert cap.summary() == f"c2pa:camera ({SIGNER}, verified)"
    assert combine(ROW, cap)["verdict_source"] == "pixels"  # capture claims never decide
    # a different root: the same file is only untrusted
    (tmp_path / "other.pem").write_bytes(signed["other_root.pem"])
    monkeypatch.setenv("FAKESCOPE_C2PA_TRUST_ANCHORS", str(tmp_path / "other.pem"))
    assert read_evidence(signed["ai.jpg"]).items[0].strength == "untrusted"
    monkeypatch.setenv("FAKESCOPE_C2PA_TRUST_ANCHORS", str(tmp_path / "missing.pem"))
    (item,) = read_evidence(signed["ai.jpg"]).items
    assert item.strength == "untrusted" and "missing.pem unreadable" in item.detail


def test_c2pa_tampered_copies_fail_validation_and_never_decide(signed, monkeypatch, tmp_path):
    (tmp_path / "root.pem").write_bytes(signed["root.pem"])
    monkeypatch.setenv("FAKESCOPE_C2PA_TRUST_ANCHORS", str(tmp_path / "root.pem"))
    for name in ("ai_tampered.jpg", "composite_tampered.png"):
        (item,) = read_evidence(signed[name]).items
        assert item.strength == "invalid" and item.tag.endswith(", invalid)"), item
        assert "assertion.dataHash.mismatch" in item.detail
        out = combine(ROW, Evidence([item]))
        assert out["verdict_source"] == "pixels" and out["label"] == "real"


def test_c2pa_without_the_extra(signed, monkeypatch):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa -> ImportError
    ev = read_evidence(signed["ai.jpg"])
    (item,) = ev.items
    assert item.tag == "c2pa:unread" and "fakescope[provenance]" in item.detail
    assert not item.decides
    assert read_evidence(pf.xmp_jpeg()).summary() == "iptc:ai-generated"  # the rest still works


def test_c2pa_damaged_manifests_never_raise(signed):
    rng = random.Random(0)
    for name in ("ai.jpg", "composite.png"):
        data = signed[name]
        for i in range(60):
            b = bytearray(data)
            cut = rng.randrange(len(b))
            if i % 3 == 0:
                b = b[:cut]
            elif i % 3 == 1:
                b[cut] ^= 1 + rng.randrange(255)
            else:
                b[cut : cut + 64] = rng.randbytes(64)
            t = time.perf_counter()
            ev = read_evidence(bytes(b))
            assert time.perf_counter() - t < 2
            for item in ev.items:
                if item.source == "c2pa":
                    assert item.strength in ("invalid", "untrusted"), item


# ---- hostile metadata ----------------------------------------------------------------------------


def _with_chunk(png: bytes, kind: bytes, payload: bytes) -> bytes:
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + pf.png_chunk(kind, payload) + png[iend:]


def test_hostile_corpus_has_no_evidence_and_never_raises():
    for name, data in {**valid_files(), **invalid_files()}.items():
        assert read_evidence(data).summary() == "", name
    assert read_evidence("/no/such/file.png").items == []


def test_oversized_and_malicious_metadata_is_bounded(recwarn):
    base = valid_files()["plain.png"]
    bomb = zlib.compress(b"\0" * (256 << 20), 1)  # 256 MiB of zeros in ~1 MB
    many = base[:33] + pf.png_chunk(b"abCd", b"") * 150_000 + base[33:]
    cases = {
        "20 MB text chunk": (
            _with_chunk(
                base, b"tEXt", b"parameters\0Steps: 20, Sampler: Euler, " + b"x" * (20 << 20)
            ),
            "png-parameters:stable-diffusion",
        ),
        "zTXt zip bomb": (_with_chunk(base, b"zTXt", b"workflow\0\0" + bomb), ""),
        "iTXt XMP zip bomb": (
            _with_chunk(base, b"iTXt", b"XML:com.adobe.xmp\0\1\0\0\0" + bomb),
            "",
        ),
        "150k chunks": (many, ""),
        "chunk length past the end": (base[:33] + b"\xff\xff\xff\xf0tEXtabc", ""),
        "XMP spam": (
            base + b'Iptc4xmpExt:DigitalSourceType="trainedAlgorithmicMedia" ' * 200_000,
            "iptc:ai-generated",
        ),
        "random bytes naming c2pa": (random.Random(1).randbytes(20000) + b"c2pa" * 10, ""),
        "bad EXIF": (_with_chunk(base, b"eXIf", b"MM\x00*\x00\x00\x00\x08" + b"\xff" * 64), ""),
    }
    for name, (data, summary) in cases.items():
        t = time.perf_counter()
        ev = read_evidence(data)
        assert time.perf_counter() - t < 3, name
        if "c2pa" not in name:
            assert ev.summary() == summary, (name, ev.to_dict())
    assert not [w for w in recwarn if "EXIF" in str(w.message)]


def test_xmp_split_by_a_block_boundary_is_read_whole(monkeypatch):
    monkeypatch.setattr(readers, "SCAN_BLOCK", 1000)  # the reader's own constant
    packet = pf.xmp_packet("compositeWithTrainedAlgorithmicMedia")
    for offset in range(0, 1200, 7):
        data = b"\0" * offset + packet + b"\0" * 50
        assert read_evidence(data).summary() == "iptc:ai-composite", offset


def test_pillow_global_limits_untouched():
    before = (
        ImageFile.LOAD_TRUNCATED_IMAGES,
        PngImagePlugin.MAX_TEXT_CHUNK,
        Image.MAX_IMAGE_PIXELS,
    )
    for build, _, _ in CASES.values():
        read_evidence(build())
    after = (ImageFile.LOAD_TRUNCATED_IMAGES, PngImagePlugin.MAX_TEXT_CHUNK, Image.MAX_IMAGE_PIXELS)
    assert before == after


def test_no_torch_import():
    code = "import sys, fakescope.provenance; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=None).returncode == 0


def test_predict_rows_carry_provenance_and_the_combined_verdict(tmp_path, tiny_model, capsys):
    """predict (CLI and Python API) with metadata on: evidence per file, the rule applied,
    prob_fake kept as the pixel score; --no-metadata scores pixels only."""
    import csv as csvmod

    from fakescope.cli import main
    from fakescope.detector import Detector
    from tests import provenance_files as pf

    (tmp_path / "a1111.png").write_bytes(pf.a1111_png())
    (tmp_path / "camera.jpg").write_bytes(pf.camera_jpeg())
    (tmp_path / "plain.png").write_bytes(pf.encode(pf.pixels(), "PNG"))
    det = Detector.load(str(tiny_model))
    rows = {Path(r["path"]).name: r for r in det.predict_batch(sorted(tmp_path.iterdir()))}
    assert rows["a1111.png"]["verdict_source"] == "metadata"
    assert (
        rows["a1111.png"]["label"] == "fake"
        and "stable-diffusion" in rows["a1111.png"]["provenance"]
    )
    assert (
        rows["camera.jpg"]["verdict_source"] == "pixels"
        and "camera" in rows["camera.jpg"]["provenance"]
    )
    assert rows["plain.png"]["provenance"] == "" and rows["plain.png"]["verdict_source"] == "pixels"
    pixels_only = Detector.load(str(tiny_model), metadata=False).predict(tmp_path / "a1111.png")
    assert pixels_only["prob_fake"] == rows["a1111.png"]["prob_fake"]  # the pixel score, always
    assert pixels_only["provenance"] == "" and pixels_only["verdict_source"] == "pixels"

    out = tmp_path.parent / f"{tmp_path.name}-rows.csv"
    assert (
        main(
            [
                "predict",
                str(tmp_path),
                "--model",
                str(tiny_model),
                "--format",
                "csv",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    got = {Path(r["path"]).name: r for r in csvmod.DictReader(out.open())}
    assert got["a1111.png"]["verdict_source"] == "metadata"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "a1111.png"),
                "--model",
                str(tiny_model),
                "--no-metadata",
                "--format",
                "jsonl",
            ]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["verdict_source"] == "pixels" and line["provenance"] == ""


def test_hostile_corpus_through_predict_with_metadata(tmp_path, tiny_model):
    from fakescope.detector import Detector
    from tests.hostile import make_corpus

    expected = make_corpus(tmp_path / "corpus")
    det = Detector.load(str(tiny_model))
    files = sorted(p for p in (tmp_path / "corpus").iterdir() if p.is_file())
    rows = det.predict_batch(files)
    assert len(rows) == len(files)
    for p, r in zip(files, rows, strict=True):
        if expected.get(p.name):
            assert r["error"] == "" and r["verdict_source"] in ("pixels", "metadata"), p.name
        elif p.name in expected:
            assert r["error"] and r["provenance"] == "", p.name
