"""Hostile input through every entry point that takes images; full disks; atomic writes."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from fakescope.cli import main
from fakescope.data import load_images
from fakescope.fileio import write_bytes
from fakescope.model_dir import model_config, save_model
from fakescope.models import build_model
from tests.conftest import make_image_tree
from tests.hostile import make_corpus


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny")
    save_model(run, build_model("resnet10t"), model_config({"arch": "resnet10t", "image_size": 32}))
    return run


@pytest.fixture(scope="module")
def hostile_set(tmp_path_factory) -> tuple[Path, dict[str, bool]]:
    """A labelled set whose real/ folder is the hostile corpus."""
    root = tmp_path_factory.mktemp("hostile")
    expected = make_corpus(root / "real")
    make_image_tree(root, {"fake": 5})
    return root, expected


def test_data_loading_reports_every_bad_file_and_keeps_every_good_one(hostile_set):
    root, expected = hostile_set
    ds = load_images([str(root)], use_cache=False, progress=False, workers=1)
    assert ds.counts() == {"real": sum(expected.values()), "fake": 5}
    failed = {Path(name).relative_to(root / "real").as_posix() for name, _ in ds.report["failed"]}
    assert failed == {n for n, ok in expected.items() if not ok}
    assert all("\n" not in msg and msg for _, msg in ds.report["failed"])


def test_evaluate_on_hostile_set(hostile_set, tiny_run, tmp_path, capsys):
    root, expected = hostile_set
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(root),
                "--model",
                str(tiny_run),
                "--out",
                str(tmp_path / "ev"),
                "--no-cache",
                "-q",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["n"] == sum(expected.values()) + 5
    assert m["skipped"]["undecodable"] == len(expected) - sum(expected.values())
    err = capsys.readouterr().err
    assert "could not be decoded" in err and "bomb.png" in err and "Traceback" not in err


def test_explain_on_hostile_corpus(hostile_set, tiny_run, tmp_path, capsys):
    pytest.importorskip("pytorch_grad_cam")
    root, expected = hostile_set
    code = main(
        ["explain", str(root / "real"), "--model", str(tiny_run), "--out", str(tmp_path / "ex")]
    )
    _, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert len(list((tmp_path / "ex").glob("*.png"))) == sum(expected.values())
    bad_lines = [
        line
        for line in err.splitlines()
        if ": " in line and "written" not in line and not line.startswith("heatmaps of ")
    ]
    assert len(bad_lines) == len(expected) - sum(expected.values())


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch, capsys):
    data = make_image_tree(tmp_path / "d", {"real": 8, "fake": 8})

    def no_space(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--arch",
            "resnet10t",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
            "--no-cache",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(Exception, match="I/O error"):
        write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind


@pytest.mark.parametrize("junk", ["truncated", "empty-and-text"])
def test_evaluate_refuses_a_class_with_no_readable_image(junk, tiny_run, tmp_path, capsys):
    """Issue 18.5: a class none of whose files decode is an error (exit 2, one line), not
    precision 0 with exit 0."""
    root = make_image_tree(tmp_path / "lab", {"real": 4})
    fake = root / "fake"
    fake.mkdir()
    if junk == "truncated":
        good = (root / "real" / "0000.png").read_bytes()
        (fake / "cut.png").write_bytes(good[: len(good) // 3])
    else:
        (fake / "empty.jpg").write_bytes(b"")
        (fake / "notes.jpg").write_text("not a picture, only renamed\n")
    argv = ["evaluate", "--data", str(root), "--model", str(tiny_run), "--out", str(tmp_path / "e")]
    assert main([*argv, "--no-cache", "-q"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "none of the" in lines[0] and "fake files" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "e" / "metrics.json").exists()
