"""Every CLI command end to end on small real CIFAKE data; resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fakescope.cli import main
from tests.conftest import CIFAKE_TEST, CIFAKE_TRAIN, make_image_tree, need_shared

METRIC_KEYS = {
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "confusion_matrix",
    "n",
}


@pytest.mark.slow
def test_readme_train_then_evaluate_on_shared_archives(tmp_path, capsys):
    """The README's new-user commands, exactly (subset 1000, one epoch, CPU)."""
    need_shared()
    run, ev = tmp_path / "run", tmp_path / "eval"
    assert (
        main(
            [
                "train",
                "--preset",
                "reference",
                "--data",
                str(CIFAKE_TRAIN),
                "--subset",
                "1000",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    for f in (
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "history.csv",
        "training_curve.png",
        "metrics.json",
    ):
        assert (run / f).is_file(), f
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["training"]["batch_size"] == 16 and cfg["training"]["lr"] == 5e-4
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(CIFAKE_TEST),
                "--subset",
                "1000",
                "--model",
                str(run),
                "--out",
                str(ev),
            ]
        )
        == 0
    )
    m = json.loads((ev / "metrics.json").read_text())
    assert set(m) >= METRIC_KEYS and m["n"] == 1000
    lines = (ev / "predictions.csv").read_text().splitlines()
    assert lines[0] == "path,true_label,prob_fake,label,model" and len(lines) == 1001
    for png in ("confusion_matrix.png", "roc_curve.png", "score_histogram.png"):
        assert (ev / png).stat().st_size > 1000
    out = capsys.readouterr().out
    assert "accuracy" in out and "TN=" in out


def test_train_reference_protocol_and_test_data(cifake_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(cifake_dir),
                "--split",
                "all",
                "--protocol",
                "reference",
                "--arch",
                "resnet10t",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--device",
                "cpu",
                "--out",
                str(run),
                "-q",
            ]
        )
        == 0
    )
    m = json.loads((run / "metrics.json").read_text())
    assert m["test"]["n"] == 160 and m["val"]["n"] == 128  # 800 pooled: 80/20 then 80/20
    run2 = tmp_path / "run2"
    assert (
        main(
            [
                "train",
                "--data",
                str(cifake_dir),
                "--test-data",
                str(cifake_dir),
                "--arch",
                "resnet10t",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(run2),
                "-q",
            ]
        )
        == 0
    )
    assert json.loads((run2 / "metrics.json").read_text())["test"]["n"] == 200


def test_user_errors_are_one_line(tmp_path, capsys):
    cases = [
        ["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")],
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--preset", "turbo"],
        ["evaluate", "--data", str(tmp_path), "--model", str(tmp_path), "--out", str(tmp_path)],
        ["train", "--resume", str(tmp_path)],
    ]
    for argv in cases:
        try:
            code = main(argv)
        except SystemExit as e:  # usage errors (--preset turbo) stop in argparse
            code = e.code
        assert code == 2, argv
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in err, err


def test_unwritable_output_is_a_clear_error(cifake_dir, tmp_path, capsys):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out = blocker / "run"  # a folder below a file can never be created, even by root
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        out = ro / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(cifake_dir),
                "--arch",
                "resnet10t",
                "--epochs",
                "1",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert ("is a file, not a folder" if os.geteuid() == 0 else "not writable") in err


def test_models_lists_names_first(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and lines[0].split()[0] == "auto" and "(default)" in lines[0]
    names = [ln.split()[0] for ln in lines if not ln.startswith(" ")]
    assert names == ["auto", "cifake-resnet10s", "photo-effnet-lite2", "photo-fusion"]


def test_tune_writes_trials_and_a_config_train_accepts(cifake_dir, tmp_path, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "tune"
    assert (
        main(
            [
                "tune",
                "--data",
                str(cifake_dir),
                "--subset",
                "200",
                "--trials",
                "2",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("trial,state,val_loss")
    best = json.loads((out / "best_config.json").read_text())
    assert best["batch_size"] in (16, 32, 64, 128, 256) and 1e-4 <= best["lr"] <= 1e-2
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(out / "best_config.json"),
                "--data",
                str(cifake_dir),
                "--subset",
                "200",
                "--arch",
                "resnet10t",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                str(run),
                "-q",
            ]
        )
        == 0
    )
    assert json.loads((run / "config.json").read_text())["training"]["lr"] == best["lr"]


def test_corrupt_files_are_excluded_from_training(tmp_path, capsys):
    data = make_image_tree(tmp_path / "d", {"real": 20, "fake": 20})
    (data / "fake" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert (
        main(
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
                "-q",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "1 images could not be decoded" in err and "broken.png" in err


def _train_cmd(data: Path, out: Path, epochs: int = 5) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fakescope",
        "train",
        "--data",
        str(data),
        "--arch",
        "resnet10t",
        "--preset",
        "cpu",
        "--amp",
        "off",
        "--epochs",
        str(epochs),
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--out",
        str(out),
        "-q",
    ]


def _signal_after_first_checkpoint(
    data: Path, run: Path, env: dict, sig: signal.Signals, epochs: int = 5, **popen_kw
) -> subprocess.Popen:
    """Start a training run and send `sig` a moment into its second epoch."""
    proc = subprocess.Popen(_train_cmd(data, run, epochs), env=env, **popen_kw)
    deadline = time.time() + 300
    while not (run / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    proc.send_signal(sig)
    return proc


def _resume(run: Path, env: dict) -> None:
    cmd = [sys.executable, "-m", "fakescope", "train", "--resume", str(run), "-q"]
    subprocess.run(cmd, check=True, env=env, timeout=600)


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(cifake_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_train_cmd(cifake_dir, full), check=True, env=env, timeout=600)

    proc = _signal_after_first_checkpoint(cifake_dir, cut, env, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (cut / "model.safetensors").exists()  # it really was cut short
    _resume(cut, env)

    a, b = load_file(str(full / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((cut / "metrics.json").read_text())
    assert ma["val"] == mb["val"] and ma["epochs"] == mb["epochs"] == 5
    ha = (full / "history.csv").read_text().splitlines()
    hb = (cut / "history.csv").read_text().splitlines()
    strip = lambda rows: [r.rsplit(",", 2)[0] for r in rows]  # drop seconds, lr  # noqa: E731
    assert strip(ha) == strip(hb)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resumes(cifake_dir, tmp_path):
    """SIGINT mid-run: exit 130 with a one-line hint and no traceback; the last checkpoint is
    intact and `--resume` finishes the run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps
    # an ignored SIGINT: restore the default in the child, so that the test does not depend on
    # how the test run itself was started (Ctrl-C at a terminal always has the default).
    proc = _signal_after_first_checkpoint(
        cifake_dir,
        run,
        env,
        signal.SIGINT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no half-written files
    _resume(run, env)
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 5
