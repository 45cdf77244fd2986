"""Data layer: label mapping for every source form, splits, cache, bad files."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fakescope.data import FAKE, REAL, ClassNames, load_images, make_splits, stratified_subset
from fakescope.data import dataset as dataset_mod
from fakescope.errors import FakescopeError
from tests.conftest import make_image_tree


def _load(paths, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("workers", 1)
    return load_images([str(p) for p in paths], **kw)


def _labels_by_folder(ds):
    return {
        Path(n.split("::")[-1]).parent.name: int(y) for n, y in zip(ds.names, ds.y, strict=True)
    }


def test_alphabetical_order_trap(tmp_path):
    # FAKE sorts before REAL: a positional mapping would make FAKE = 0.
    make_image_tree(tmp_path, {"FAKE": 3, "REAL": 4})
    ds = _load([tmp_path], use_cache=False)
    assert _labels_by_folder(ds) == {"FAKE": FAKE, "REAL": REAL}
    assert FAKE == 1 and REAL == 0
    assert ds.counts() == {"real": 4, "fake": 3}


@pytest.mark.parametrize("fake_name", ["fake", "AI", "ai_generated", "Generated"])
def test_two_folder_layout_case_insensitive(tmp_path, fake_name):
    make_image_tree(tmp_path, {"Real": 2, fake_name: 3})
    ds = _load([tmp_path], use_cache=False)
    assert ds.counts() == {"real": 2, "fake": 3}


def test_name_overrides(tmp_path):
    make_image_tree(tmp_path, {"camera": 2, "diffusion": 3})
    with pytest.raises(FakescopeError, match="no REAL images"):
        _load([tmp_path], use_cache=False)
    ds = _load([tmp_path], use_cache=False, classes=ClassNames(("camera",), ("diffusion",)))
    assert _labels_by_folder(ds) == {"camera": REAL, "diffusion": FAKE}


def test_missing_class_is_an_error_before_decoding(tmp_path, monkeypatch):
    make_image_tree(tmp_path, {"real": 3})
    monkeypatch.setattr(dataset_mod, "_decode", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(FakescopeError, match="no FAKE images"):
        _load([tmp_path], use_cache=False)


def test_class_with_no_decodable_image_is_an_error(tmp_path):
    """A class whose every file is corrupt is as empty as a missing one: no one-class training."""
    make_image_tree(tmp_path, {"real": 3})
    (tmp_path / "fake").mkdir()
    for i in range(2):
        (tmp_path / "fake" / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(FakescopeError, match="none of the 2 FAKE files could be decoded"):
        _load([tmp_path], use_cache=False)


def _archive_variants(src: Path, out: Path) -> list[Path]:
    files = sorted(p for p in src.rglob("*") if p.is_file())
    paths = []
    z = out / "archive.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in files:
            zf.write(p, p.relative_to(src).as_posix())
    paths.append(z)
    for ext, mode in ((".tar", "w"), (".tar.gz", "w:gz"), (".tar.xz", "w:xz")):
        t = out / f"archive{ext}"
        with tarfile.open(t, mode) as tf:
            for p in files:
                tf.add(p, p.relative_to(src).as_posix())
        paths.append(t)
    return paths


def test_archives_equal_folder(tmp_path):
    src = make_image_tree(
        tmp_path / "src", {"train/REAL": 3, "train/FAKE": 4, "test/REAL": 2, "test/FAKE": 2}
    )
    ref = _load([src], split="train", use_cache=False)
    for arch in _archive_variants(src, tmp_path):
        ds = _load([arch], split="train", use_cache=False)
        assert np.array_equal(ds.x, ref.x) and np.array_equal(ds.y, ref.y), arch.name
        assert ds.counts() == {"real": 3, "fake": 4}


def test_real_cifake_archive_equals_unpacked_folder(cifake_dir, cifake_tar):
    a = _load([cifake_dir], split="train", use_cache=False)
    b = _load([cifake_tar], split="train", use_cache=False)
    assert len(a) == 600 and a.x.shape == (600, 32, 32, 3)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert a.counts() == {"real": 300, "fake": 300}
    # labels follow the folder names in the Kaggle layout
    assert all((("/REAL/" in n) == (y == REAL)) for n, y in zip(a.names, a.y, strict=True))


def test_split_selection(tmp_path):
    src = make_image_tree(
        tmp_path, {"train/REAL": 3, "train/FAKE": 3, "test/REAL": 1, "test/FAKE": 2}
    )
    assert len(_load([src], use_cache=False)) == 6  # auto: train for training
    assert len(_load([src], purpose="eval", use_cache=False)) == 3  # auto: test for eval
    assert len(_load([src], split="all", use_cache=False)) == 9
    with pytest.raises(FakescopeError, match="no split 'valid'"):
        _load([src], split="valid", use_cache=False)


def test_several_sources_pooled(tmp_path):
    a = make_image_tree(tmp_path / "a", {"train/real": 2})
    b = make_image_tree(tmp_path / "b", {"train/fake": 3})
    ds = _load([a, b], use_cache=False)
    assert ds.counts() == {"real": 2, "fake": 3}


def test_non_image_and_corrupt_files(tmp_path):
    make_image_tree(tmp_path, {"real": 3, "fake": 3})
    (tmp_path / "real" / ".gitkeep").write_bytes(b"")
    (tmp_path / "fake" / "README.txt").write_text("hello")
    (tmp_path / "fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (tmp_path / "notes.md").write_text("outside classes")
    ds = _load([tmp_path], use_cache=False)
    assert ds.counts() == {"real": 3, "fake": 3}
    assert ds.report["non_image"] == 3
    failed = ds.report["failed"]
    assert len(failed) == 1 and failed[0][0].endswith("broken.jpg")


def _parquet(path: Path, rows, label_type, names=("REAL", "FAKE")):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    images = [{"bytes": b, "path": f"{i}.png"} for i, (b, _) in enumerate(rows)]
    labels = [lab for _, lab in rows]
    table = pa.table({"image": images, "label": pa.array(labels, label_type)})
    if names is not None:
        meta = {
            "info": {
                "features": {
                    "image": {"_type": "Image"},
                    "label": {"names": list(names), "_type": "ClassLabel"},
                }
            }
        }
        table = table.replace_schema_metadata({b"huggingface": json.dumps(meta).encode()})
    pq.write_table(table, path)
    return path


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_parquet_int_labels_mapped_by_name(tmp_path):
    pa = pytest.importorskip("pyarrow")
    # ClassLabel names in FAKE, REAL order: index 0 means FAKE here.
    rows = [(_png(200), 0), (_png(10), 1), (_png(20), 1)]
    p = _parquet(tmp_path / "d.parquet", rows, pa.int64(), names=("FAKE", "REAL"))
    ds = _load([p], use_cache=False)
    assert ds.y.tolist() == [FAKE, REAL, REAL]
    assert ds.x[0, 0, 0, 0] == 200


def test_parquet_string_labels_and_unnamed_ints(tmp_path):
    pa = pytest.importorskip("pyarrow")
    rows = [(_png(1), "real"), (_png(2), "fake")]
    ds = _load([_parquet(tmp_path / "s.parquet", rows, pa.string(), names=None)], use_cache=False)
    assert ds.y.tolist() == [REAL, FAKE]
    bad = _parquet(tmp_path / "u.parquet", [(_png(1), 0), (_png(2), 1)], pa.int64(), names=None)
    with pytest.raises(FakescopeError, match="never by position"):
        _load([bad], use_cache=False)


def test_cache_reuse_and_invalidation(tmp_path, monkeypatch):
    src = make_image_tree(tmp_path / "d", {"real": 3, "fake": 3})
    cache = tmp_path / "cache"
    first = _load([src], cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    real_decode = dataset_mod._decode
    monkeypatch.setattr(dataset_mod, "_decode", lambda *a, **k: pytest.fail("not cached"))
    second = _load([src], cache_dir=cache)
    assert np.array_equal(first.x, second.x) and second.names == first.names
    # change one file: the key changes, the set is decoded again
    monkeypatch.setattr(dataset_mod, "_decode", real_decode)
    shutil.copy(src / "fake" / "0000.png", src / "real" / "0000.png")
    third = _load([src], cache_dir=cache)
    assert not np.array_equal(third.x, first.x)
    assert len(list(cache.glob("*.npz"))) == 2


def test_subset_stratified_and_before_decoding(tmp_path):
    make_image_tree(tmp_path, {"real": 20, "fake": 20})
    ds = _load([tmp_path], use_cache=False, subset=10)
    assert ds.counts() == {"real": 5, "fake": 5}
    assert len(_load([tmp_path], use_cache=False, subset=0.5)) == 20


def test_splits_stratified_disjoint_reproducible():
    y = np.array([0] * 600 + [1] * 400)
    for protocol in ("official", "reference"):
        s1 = make_splits(y, protocol, 0.2, seed=3)
        s2 = make_splits(y, protocol, 0.2, seed=3)
        s3 = make_splits(y, protocol, 0.2, seed=4)
        assert all(np.array_equal(s1[k], s2[k]) for k in s1)
        assert not np.array_equal(s1["val"], s3["val"])
        parts = list(s1.values())
        union = np.concatenate(parts)
        assert len(union) == len(set(union.tolist())) == len(y)  # disjoint and complete
        for idx in parts:
            assert abs(y[idx].mean() - 0.4) < 0.01  # stratified
    ref = make_splits(y, "reference", 0.2, seed=0)
    assert len(ref["test"]) == 200 and len(ref["val"]) == 160 and len(ref["train"]) == 640
    sub = stratified_subset(y, 100, seed=0)
    assert len(sub) == 100 and y[sub].sum() == 40
