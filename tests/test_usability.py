"""What a new user hits in the first minutes (issue 8): clear messages, no silent successes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from fakescope.cli import build_parser, main
from fakescope.data import load_images
from fakescope.errors import FakescopeError
from fakescope.fileio import ensure_writable_dir, write_text
from fakescope.model_dir import model_config, save_model
from fakescope.models import ARCHS, build_model
from fakescope.training.config import PRESETS
from tests.conftest import ROOT, make_image_tree


def test_a_closed_pipe_ends_quietly():
    """`fakescope models | head`: the reader is gone before the rows are written; no traceback."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # nobody will read
    proc = subprocess.run(
        [sys.executable, "-m", "fakescope", "models"], stdout=w, stderr=subprocess.PIPE, text=True
    )
    os.close(w)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr, proc.stderr
    assert "BrokenPipe" not in proc.stderr, proc.stderr


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
    # training decodes through the cache (evaluate streams files and needs none)
    argv = ["train", "--data", str(data), "--preset", "cpu", "--arch", "resnet10t", "--epochs"]
    argv += ["1", "--batch-size", "4", "--device", "cpu", "-q", "--out"]
    assert main([*argv, str(tmp_path / "run1")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: not caching") == 1 and "is a file, not a folder" in err
    assert json.loads((tmp_path / "run1" / "config.json").read_text())["arch"] == "resnet10t"
    assert main([*argv, str(tmp_path / "run2")]) == 0  # same process: no second warning
    assert "warning" not in capsys.readouterr().err
    ds = load_images([data], cache_dir=blocker, progress=False, workers=1)  # --cache-dir too
    assert len(ds) == 8


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def test_every_option_of_every_subcommand_has_help_and_examples():
    """Walks the parser, so a subcommand added later is held to the same standard."""
    parser = build_parser()
    subs = _subparsers(parser)
    assert {"train", "evaluate", "predict", "models", "tune", "explain"} <= set(subs)
    for name, sp in [("fakescope", parser), *subs.items()]:
        for action in sp._actions:
            label = action.option_strings or [action.dest]
            assert action.help and action.help != argparse.SUPPRESS, (name, label)
        if sp is not parser:
            assert sp.epilog and sp.epilog.startswith("examples:\n  fakescope "), name
            assert "examples:" in sp.format_help().rsplit("\n\n", 1)[-1], name
    choices = {a.dest: a.choices for a in subs["train"]._actions}
    assert list(choices["arch"]) == list(ARCHS) and list(choices["preset"]) == list(PRESETS)
    assert list({a.dest: a.choices for a in subs["tune"]._actions}["preset"]) == list(PRESETS)
    assert "{auto,cpu,cuda,cuda:N}" in subs["predict"].format_help()


def test_tune_help_and_readme_name_the_searched_space():
    from fakescope.training.tune import BATCH_SIZES, LR_RANGE, OPTIMIZERS

    text = " ".join(_subparsers(build_parser())["tune"].format_help().split())
    readme = " ".join((ROOT / "docs" / "training.md").read_text().split())  # moved from README
    for words in (text, readme):
        assert f"learning rate ({LR_RANGE[0]:g} to {LR_RANGE[1]:g}, log scale)" in words
        assert f"batch size ({', '.join(map(str, BATCH_SIZES))})" in words
        assert f"optimizer ({', '.join(OPTIMIZERS)})" in words


@pytest.mark.parametrize(
    ("argv", "option", "message"),
    [
        (["predict", "x.jpg", "--batch-size", "0"], "--batch-size", ">= 1"),
        (["predict", "x.jpg", "--batch-size", "-3"], "--batch-size", ">= 1"),
        (["predict", "x.jpg", "--batch-size", "many"], "--batch-size", "whole number"),
        (["predict", "x.jpg", "--device", "gpu"], "--device", "auto, cpu, cuda, cuda:N"),
        (["train", "--epochs", "0"], "--epochs", ">= 1"),
        (["train", "--batch-size", "1.5"], "--batch-size", "whole number"),
        (["train", "--lr", "0"], "--lr", "> 0"),
        (["train", "--lr", "nan"], "--lr", "finite"),
        (["train", "--patience", "-1"], "--patience", ">= 0"),
        (["train", "--seed", "-1"], "--seed", ">= 0"),
        (["train", "--data", "d", "--subset", "0"], "--subset", "fraction"),
        (["train", "--data", "d", "--subset", "2.5"], "--subset", "whole number"),
        (["train", "--arch", "resnet9000"], "--arch", "invalid choice"),
        (["evaluate", "--data", "d", "--out", "o", "--threshold", "1.5"], "--threshold", "0 and 1"),
        (["tune", "--data", "d", "--out", "o", "--trials", "0"], "--trials", ">= 1"),
        (["tune", "--data", "d", "--out", "o", "--preset", "turbo"], "--preset", "invalid choice"),
        (["explain", "--out", "o", "--per-class", "-1"], "--per-class", ">= 0"),
        (["explain", "--out", "o", "--deletion-sample", "-5"], "--deletion-sample", ">= 0"),
        (["explain", "--out", "o", "--method", "magic"], "--method", "invalid choice"),
    ],
)
def test_numeric_and_choice_options_are_validated(argv, option, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {option}" in err and message in err, err
    assert "Traceback" not in err


def test_a_data_source_given_twice_is_used_once(tmp_path):
    data = make_image_tree(tmp_path / "d", {"real": 3, "fake": 3})
    once = load_images([data], use_cache=False, progress=False, workers=1)
    twice = load_images([data, f"{data}/.", str(data)], use_cache=False, progress=False, workers=1)
    assert len(twice) == len(once) == 6 and twice.names == once.names
