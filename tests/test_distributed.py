"""Data-parallel training: rank shards, torchrun with 2 CPU processes (gloo), resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from fakescope.cli import main
from fakescope.errors import FakescopeError
from fakescope.training import loop as training
from fakescope.training.config import TrainConfig
from fakescope.training.distributed import Dist
from tests.conftest import ROOT, make_image_tree


class Recorder(nn.Module):
    """One weight; remembers every input batch it sees."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.mean((1, 2, 3)) * self.w


def _inputs(d: Dist, n: int, cfg: TrainConfig) -> list[torch.Tensor]:
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (n, 8, 8, 3), dtype=np.uint8))
    y = torch.arange(n, dtype=torch.float32) % 2
    model = Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(3)
    training.train_one_epoch(model, opt, None, x, y, gen, cfg, torch.device("cpu"), False, "", 0, d)
    return model.seen


def test_rank_shards_make_up_the_single_process_batches():
    """With the same seed, rank 0's and rank 1's inputs (images *and* their flips and shifts)
    put together are exactly the batches one process trains on."""
    cfg = TrainConfig(flip=True, translate=2, batch_size=8, amp="off")
    single = _inputs(Dist(), 24, cfg)
    r0, r1 = _inputs(Dist(2, 0, 0), 24, cfg), _inputs(Dist(2, 1, 1), 24, cfg)
    assert len(single) == len(r0) == len(r1) == 3
    for s, a, b in zip(single, r0, r1, strict=True):
        assert a.shape[0] == b.shape[0] == 4
        assert torch.equal(torch.cat([a, b]), s)
    # an odd count: the permutation's last image is dropped so both ranks get as many
    r0, r1 = _inputs(Dist(2, 0, 0), 21, cfg), _inputs(Dist(2, 1, 1), 21, cfg)
    assert [len(a) for a in r0] == [len(b) for b in r1] == [4, 4, 2]


def test_crop_recipe_draws_a_distinct_stream_per_rank():
    """The crop recipe's numpy stream is seeded by (seed, epoch, rank): two ranks given the
    same images crop them differently (with one shared stream they would repeat each other)."""
    cfg = TrainConfig(crop=16, image_size=32, batch_size=8, amp="off", translate=0, flip=False)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    x = np.stack([img] * 16)  # every image the same: only the random stream tells them apart
    y = torch.arange(16, dtype=torch.float32) % 2

    def seen(d: Dist) -> list[torch.Tensor]:
        model = Recorder()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        gen = torch.Generator().manual_seed(3)
        training.train_one_epoch(
            model, opt, None, x, y, gen, cfg, torch.device("cpu"), False, "", 0, d
        )
        return model.seen

    r0, r1, r0_again = seen(Dist(2, 0, 0)), seen(Dist(2, 1, 1)), seen(Dist(2, 0, 0))
    assert [a.shape for a in r0] == [(4, 3, 16, 16)] * 2
    assert all(torch.equal(a, b) for a, b in zip(r0, r0_again, strict=True))  # seeded
    assert not any(torch.equal(a, b) for a, b in zip(r0, r1, strict=True))


def test_batch_size_must_divide_among_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "current", lambda: Dist(2, 0, 0))
    cfg = TrainConfig(arch="resnet10t", epochs=1, batch_size=5, device="cpu")
    x = np.zeros((8, 32, 32, 3), np.uint8)
    with pytest.raises(FakescopeError, match="multiple of the 2 processes"):
        training.fit(cfg, x, np.arange(8) % 2, x, np.arange(8) % 2, tmp_path, progress=False)


def test_resume_refuses_another_schedule_length(tmp_path):
    cfg = TrainConfig(arch="resnet10t", epochs=2, batch_size=4, device="cpu", amp="off")
    x = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    y = np.arange(8) % 2
    training.fit(cfg, x, y, x, y, tmp_path, progress=False, log=lambda _: None)
    model = training.build_model("resnet10t")
    opt = training.make_optimizer(model, cfg)
    gen = torch.Generator()
    ckpt = tmp_path / training.CHECKPOINT
    training.load_checkpoint(ckpt, model, opt, None, gen, steps=2)  # as trained: fine
    with pytest.raises(FakescopeError, match="number of processes"):
        training.load_checkpoint(ckpt, model, opt, None, gen, steps=3)


# ---- torchrun end to end ---------------------------------------------------------------------

ARGS = [
    "--arch",
    "resnet10t",
    "--preset",
    "reference",
    "--lr",
    "2e-3",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--patience",
    "0",
    "--device",
    "cpu",
    "-q",
]
RUN_FILES = {
    "config.json",
    "model.safetensors",
    "checkpoint.safetensors",
    "data.json",
    "history.csv",
    "training_curve.png",
    "metrics.json",
}


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "fakescope", "train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _epoch_of(ckpt: Path) -> int:
    with safe_open(str(ckpt), "pt") as f:
        return json.loads(f.metadata()["fakescope"])["state"]["epoch"]


def _snapshot_first_checkpoint(run: Path, into: Path, stop: threading.Event) -> None:
    """What a kill after the first epoch leaves behind: copy the run folder's checkpoint the
    moment it appears (it is replaced atomically, so any copy is a whole checkpoint)."""
    ckpt = run / training.CHECKPOINT
    while not stop.is_set():
        if ckpt.exists() and (run / "data.json").exists():
            into.mkdir()
            shutil.copy(run / "data.json", into / "data.json")
            shutil.copy(ckpt, into / training.CHECKPOINT)
            return
        time.sleep(0.02)


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_and_resume(tmp_path):
    """`torchrun --nproc-per-node 2 -m fakescope train` on gloo: one complete run folder written
    by rank 0, log lines once, a run resumed from its epoch-1 checkpoint ends bit-identical to
    the uninterrupted run, and the result matches one process with the same global batch up to
    batch-order effects (see below)."""
    data = make_image_tree(tmp_path / "data", {"train/real": 60, "train/fake": 60})
    ddp, cut, one = tmp_path / "ddp", tmp_path / "cut", tmp_path / "one"
    stop = threading.Event()
    watcher = threading.Thread(target=_snapshot_first_checkpoint, args=(ddp, cut, stop))
    watcher.start()
    try:
        r = _torchrun(["--data", str(data), "--out", str(ddp), *ARGS])
    finally:
        stop.set()
        watcher.join()
    assert r.returncode == 0, r.stderr[-3000:]

    # rank 0 alone writes and speaks: a complete run folder, every line once
    assert {p.name for p in ddp.iterdir()} == RUN_FILES
    assert r.stdout.count("[val]") == 1 and r.stdout.count("run folder") == 1
    for e in (1, 2, 3):
        assert sum(line.startswith(f"epoch   {e} ") for line in r.stderr.splitlines()) == 1
    assert r.stderr.count("data-parallel over 2 processes: 8 images each") == 1
    assert len(_history(ddp)) == 3

    # every rank resumes from the same checkpoint and ends where the uninterrupted run ended
    assert _epoch_of(cut / training.CHECKPOINT) < 3
    r2 = _torchrun(["--resume", str(cut), "-q"])
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stderr.count("resumed from") == 1
    a, b = load_file(str(ddp / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _history(cut, ("seconds",)) == _history(ddp, ("seconds",))

    # One process, same global batch of 16: the same images in every step with the same flips
    # (test above), so only batch norm's statistics (over 8 images per rank instead of 16) and
    # the order of floating-point sums differ. Measured: losses within 1.5%. A wrong gradient
    # or loss reduction (a rank's share counted twice, or not at all) is off by tens of percent;
    # ranks that fall out of sync stop the run (check_in_sync).
    assert main(["train", "--data", str(data), "--out", str(one), *ARGS]) == 0
    for d, s in zip(_history(ddp), _history(one), strict=True):
        for k in ("train_loss", "val_loss"):
            assert abs(d[k] - s[k]) < 0.05 * s[k], (k, d, s)
        assert abs(d["train_acc"] - s["train_acc"]) <= 0.1, (d, s)


def _history(run: Path, drop: tuple[str, ...] = ("seconds", "lr")) -> list[dict]:
    lines = (run / "history.csv").read_text().splitlines()
    keys = lines[0].split(",")
    rows = [dict(zip(keys, map(float, line.split(",")), strict=True)) for line in lines[1:]]
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]
