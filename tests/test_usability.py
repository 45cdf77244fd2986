"""What a new user hits in the first minutes (issue 8): clear messages, no silent successes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fakescope.cli import main
from fakescope.data import load_images
from fakescope.detector import model_config, save_model
from fakescope.errors import FakescopeError
from fakescope.fileio import ensure_writable_dir, write_text
from fakescope.models import build_model
from tests.conftest import make_image_tree


def test_out_on_an_existing_file_says_so(tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("x")
    with pytest.raises(FakescopeError, match=r"report.txt is a file, not a folder$"):
        ensure_writable_dir(f)
    with pytest.raises(FakescopeError, match=r"cannot create folder .*: .*report.txt is a file"):
        ensure_writable_dir(f / "sub" / "run")
    with pytest.raises(FakescopeError, match=r"is a folder, not a file"):
        write_text(tmp_path, "x")
    assert ensure_writable_dir(tmp_path / "a" / "b").is_dir()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A randomly initialised tiny model as a run folder (no training needed)."""
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny")
    save_model(run, build_model("resnet10t"), model_config({"arch": "resnet10t", "image_size": 32}))
    return run


def test_unwritable_cache_warns_once_and_carries_on(tiny_run, tmp_path, monkeypatch, capsys):
    data = make_image_tree(tmp_path / "d", {"real": 4, "fake": 4})
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")  # unwritable even for root
    monkeypatch.setenv("FAKESCOPE_CACHE", str(blocker / "cache"))
    argv = ["evaluate", "--data", str(data), "--model", str(tiny_run), "-q", "--out"]
    assert main([*argv, str(tmp_path / "ev1")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: not caching") == 1 and "is a file, not a folder" in err
    assert json.loads((tmp_path / "ev1" / "metrics.json").read_text())["n"] == 8
    assert main([*argv, str(tmp_path / "ev2")]) == 0  # same process: no second warning
    assert "warning" not in capsys.readouterr().err
    ds = load_images([data], cache_dir=blocker, progress=False, workers=1)  # --cache-dir too
    assert len(ds) == 8
