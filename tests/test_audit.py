"""The data audit finds planted duplicates, near-duplicates and shortcuts, and CIFAKE's leak."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.cli import main
from fakescope.data import list_labelled
from fakescope.evaluation.audit import (
    categorical_auc,
    jpeg_quality,
    leaked_indices,
    near_pairs,
    popcount64,
    run_audit,
)
from tests.conftest import CIFAKE_TEST, CIFAKE_TRAIN, need_shared


def textured(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Random blobs: every image has its own structure (and its own perceptual hash)."""
    w, h = size
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    a = np.asarray(img, np.int16) + rng.integers(-8, 9, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def build_tree(root: Path, fake_size=(48, 48), n=24, seed=0) -> Path:
    """train|test / real|fake JPEGs with planted defects:
    - train/fake/dup_*: 2 extra byte copies of train/fake/000
    - test/fake/000..002: byte copies of train/fake/010..012 (leak)
    - train/real/both: a byte copy of train/fake/020 (same bytes in both classes)
    - test/real/near: train/real/005 re-encoded at quality 85 (near-duplicate, other bytes)
    """
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for cls in ("real", "fake"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                size = fake_size if cls == "fake" else (48, 48)
                textured(rng, size).save(d / f"{i:03d}.jpg", quality=90)
    tf, tr = root / "train" / "fake", root / "train" / "real"
    for k in range(2):
        shutil.copy(tf / "000.jpg", tf / f"dup_{k}.jpg")
    for k in range(3):
        shutil.copy(tf / f"{10 + k:03d}.jpg", root / "test" / "fake" / f"{k:03d}.jpg")
    shutil.copy(tf / "020.jpg", tr / "both.jpg")
    Image.open(tr / "005.jpg").save(root / "test" / "real" / "near.jpg", quality=85)
    return root


def test_audit_finds_planted_duplicates_near_duplicates_and_no_false_shortcut(tmp_path):
    rep = run_audit([build_tree(tmp_path / "d")], workers=1)
    ex = rep["exact"]
    assert ex["within"] == {"test/fake": 0, "test/real": 0, "train/fake": 2, "train/real": 0}
    across = {(a["files_in"], a["also_in"]): a["files"] for a in ex["across"]}
    assert across[("test/fake", "train/fake")] == 3
    assert across[("train/real", "train/fake")] == 1 and ex["both_classes"] == 1
    near = rep["near"]
    cells = {tuple(r["cells"]): r for r in near["by_cells"]}
    assert cells[("test/real", "train/real")]["pairs"] == 1
    assert near["pairs"] == 1, near["examples"]  # byte copies are not counted again
    assert {
        near["examples"][0]["a"].rsplit("/", 1)[1],
        near["examples"][0]["b"].rsplit("/", 1)[1],
    } == {
        "near.jpg",
        "005.jpg",
    }
    assert rep["warnings"] == [], rep["warnings"]  # same size, format, quality, colours


def test_audit_warns_about_a_size_shortcut(tmp_path, capsys):
    root = build_tree(tmp_path / "d", fake_size=(64, 64))
    (root / "train" / "real" / "both.jpg").unlink()  # a 64-px fake copied among the reals
    out = tmp_path / "audit"
    assert main(["audit", "--data", str(root), "--out", str(out), "--workers", "1", "-q"]) == 0
    text = capsys.readouterr().out
    assert "image size alone gives AUC 1.00: a model can learn the size instead of the content" in (
        text
    )
    rep = json.loads((out / "audit.json").read_text())
    auc = {c["cue"]: c["auc"] for c in rep["cues"]}
    assert auc["size"] == 1.0 and auc["pixels"] == 1.0
    # one real file (near.jpg) has quality 85: a hint, far from a shortcut
    assert auc["format"] == 0.5 and auc["jpeg_quality"] < 0.6 and auc["mean_r"] < 0.8
    assert (out / "report.md").read_text() == text


def test_jpeg_quality_estimate():
    img = Image.new("RGB", (32, 32), (10, 200, 30))
    for q in (1, 30, 60, 75, 95, 100):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        assert jpeg_quality(Image.open(buf)) == q
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    assert jpeg_quality(Image.open(buf)) is None


def test_near_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 3000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    flips = [np.uint64(1) << np.uint64(b) for b in rng.integers(0, 64, 40)]
    for k in range(200):  # plant close copies at distances 1..6
        src = h[rng.integers(0, 3000)]
        for f in flips[: 1 + k % 6]:
            src ^= f
        h = np.append(h, src)
    got = {(int(i), int(j)) for i, j, _ in near_pairs(h, 4)}
    d = popcount64(h[:, None] ^ h[None, :]).reshape(len(h), len(h))
    ii, jj = np.nonzero(np.triu(d <= 4, k=1))
    assert got == set(zip(ii.tolist(), jj.tolist(), strict=True)) and len(got) > 50


def test_categorical_auc_is_not_fooled_by_rare_or_constant_values():
    y = np.repeat([0, 1], 500)
    assert categorical_auc(y, ["JPEG"] * 1000) == pytest.approx(0.5)
    unique = [f"{i}x{i}" for i in range(1000)]  # every value seen once: no information
    assert categorical_auc(y, unique) == pytest.approx(0.5)
    assert categorical_auc(y, ["PNG" if t else "JPEG" for t in y]) == 1.0


def test_leaked_indices(tmp_path):
    root = build_tree(tmp_path / "d")
    test = list_labelled([root], split="test")
    leaked = {
        test.name(i).rsplit("/", 2)[-2] + "/" + test.name(i).rsplit("/", 1)[1]
        for i in leaked_indices(test, [root])
    }
    assert leaked == {"fake/000.jpg", "fake/001.jpg", "fake/002.jpg"}


@pytest.mark.slow
def test_cifake_leak_and_duplicates():
    """The figures of data/README.md, by SHA-256 of all 120,000 files (no decoding)."""
    need_shared()
    rep = run_audit([CIFAKE_TRAIN, CIFAKE_TEST], exact_only=True)
    ex = rep["exact"]
    assert ex["within"] == {"test/fake": 38, "test/real": 0, "train/fake": 920, "train/real": 0}
    across = {(a["files_in"], a["also_in"]): a["files"] for a in ex["across"]}
    assert across[("test/fake", "train/fake")] == 378 and len(across) == 2
    assert ex["both_classes"] == 0


def test_evaluate_dedupe_against_leaves_out_leaked_test_files(tmp_path, capsys):
    root = build_tree(tmp_path / "d")
    out = tmp_path / "eval"
    argv = ["evaluate", "--data", str(root), "--split", "test", "--out", str(out), "-q"]
    assert main([*argv, "--device", "cpu", "--dedupe-against", str(root)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["deduplicated"]["removed"] == 3 and m["deduplicated"]["with_leaked"]["n"] == 49
    assert m["n"] == 46
    assert "left out 3 test files" in capsys.readouterr().out
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0] == "path,true_label,prob_fake,label,model,leaked" and len(lines) == 50
    assert sum(line.endswith(",yes") for line in lines) == 3
