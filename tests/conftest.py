"""Shared fixtures: small real CIFAKE samples from ../shared/data, a private cache folder."""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAKESCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CIFAKE_TRAIN = SHARED / "cifake" / "cifake-train.tar.xz"
CIFAKE_TEST = SHARED / "cifake" / "cifake-test.tar.xz"


def need_shared() -> None:
    if not CIFAKE_TEST.exists() or not CIFAKE_TRAIN.exists():
        pytest.skip(f"needs the CIFAKE archives in {SHARED / 'cifake'} (not present here)")


def _installed_clip_encoder() -> str | None:
    """The CLIP encoder `fakescope setup clip` installed (before the cache is made private)."""
    from fakescope import clip

    path = clip.find_encoder()
    return str(path) if path else None


CLIP_ENCODER = _installed_clip_encoder()


def need_clip() -> None:
    if CLIP_ENCODER is None:
        pytest.skip("needs the CLIP encoder (fakescope setup clip; CI installs it)")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's ~/.cache; one cache per test session. The CLIP encoder stays
    reachable (read-only, by $FAKESCOPE_CLIP_ENCODER) so the default model is the one users
    get."""
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    if CLIP_ENCODER:
        monkeypatch.setenv("FAKESCOPE_CLIP_ENCODER", CLIP_ENCODER)


def _sample_members(archive: Path, per_class: int, seed: int) -> dict[str, bytes]:
    """`per_class` random files of each class from a CIFAKE archive (one sequential pass)."""
    with tarfile.open(archive) as tf:
        names = [m.name for m in tf if m.isfile()]
    rng = random.Random(seed)
    chosen: set[str] = set()
    for cls in ("REAL", "FAKE"):
        pool = sorted(n for n in names if f"/{cls}/" in n)
        chosen.update(rng.sample(pool, per_class))
    out = {}
    with tarfile.open(archive) as tf:
        for m in tf:
            if m.name in chosen:
                out[m.name] = tf.extractfile(m).read()
    return out


@pytest.fixture(scope="session")
def cifake_files() -> dict[str, bytes]:
    """600 train + 200 test real CIFAKE files, Kaggle layout names -> JPEG bytes."""
    need_shared()
    files = _sample_members(CIFAKE_TRAIN, 300, seed=1)
    files.update(_sample_members(CIFAKE_TEST, 100, seed=2))
    return files


@pytest.fixture(scope="session")
def cifake_dir(cifake_files, tmp_path_factory) -> Path:
    """The sample unpacked as a Kaggle tree: ROOT/train|test/REAL|FAKE/*.jpg."""
    root = tmp_path_factory.mktemp("cifake")
    for name, data in cifake_files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture(scope="session")
def cifake_tar(cifake_files, tmp_path_factory) -> Path:
    """The same sample as a .tar.xz archive (as the shared files come)."""
    path = tmp_path_factory.mktemp("arch") / "sample.tar.xz"
    with tarfile.open(path, "w:xz") as tf:
        for name, data in sorted(cifake_files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def make_image_tree(root: Path, layout: dict[str, int], size: int = 32, seed: int = 0) -> Path:
    """Synthetic labelled tree: {'sub/dir': count}; 'fake'-named folders get bright images so a
    model can tell them apart."""
    rng = np.random.default_rng(seed)
    for folder, count in layout.items():
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        bright = any(k in folder.lower() for k in ("fake", "ai", "generated"))
        for i in range(count):
            base = 160 if bright else 60
            a = rng.integers(base - 40, base + 40, (size, size, 3), dtype=np.uint8)
            Image.fromarray(a).save(d / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised tiny thumbnail model saved as a run folder (no training needed)."""
    import torch

    from fakescope.model_dir import model_config, save_model
    from fakescope.models import build_model

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny")
    cfg = {"arch": "resnet10t", "image_size": 32, "tta": "flip"}
    save_model(run, build_model("resnet10t"), model_config(cfg))
    return run
