"""A training run end to end: data -> splits -> fit -> run folder.

Run folder: `config.json` (model + resolved training config + metrics), `model.safetensors`,
`checkpoint.safetensors` (for --resume), `data.json` (where the data came from), `history.csv`,
`training_curve.png`, `metrics.json` (validation, and test when a test set is known).

Under `torchrun` every process runs `train_run`; rank 0 alone logs and writes the run folder,
and it decodes the data first so the other ranks on its node read the cache
(`fakescope.training.distributed`).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.data import (
    ClassNames,
    ImageSet,
    LabelledFiles,
    describe,
    list_labelled,
    load_images,
    make_splits,
)
from fakescope.data.splits import split_two
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.fileio import ensure_writable_dir, write_bytes, write_json, write_text
from fakescope.metrics import compute_metrics
from fakescope.model_dir import model_config, save_model
from fakescope.models import resolve_device
from fakescope.training.config import TrainConfig
from fakescope.training.distributed import (
    Dist,
    broadcast_object,
    env_rank,
    local_main_first,
    process_group,
)
from fakescope.training.loop import fit


@dataclass
class DataArgs:
    """Where training data comes from; saved as data.json so --resume needs nothing else."""

    paths: list[str]
    split: str | None = None
    test_paths: list[str] = field(default_factory=list)
    real_names: list[str] = field(default_factory=lambda: list(ClassNames().real))
    fake_names: list[str] = field(default_factory=lambda: list(ClassNames().fake))
    cache_dir: str | None = None
    use_cache: bool = True
    # One source name per path (`--data NAME=PATH`; default: the file's stem): the unit that
    # `balance` samples by and that data.json records. Paths with one name form one source.
    sources: list[str] = field(default_factory=list)

    def source_of(self, names: list[str]) -> np.ndarray:
        """The source name of each decoded image (by the path its display name starts with)."""
        named = self.sources or [source_name(p) for p in self.paths]
        keys = sorted(zip(self.paths, named, strict=True), key=lambda t: -len(t[0]))
        out = []
        for n in names:
            out.append(next((s for p, s in keys if n.startswith(p)), "?"))
        return np.array(out)

    @property
    def classes(self) -> ClassNames:
        return ClassNames(tuple(self.real_names), tuple(self.fake_names))


def source_name(path: str) -> str:
    """A path's default source name: its file name without archive suffixes."""
    name = Path(path).name
    for suffix in (".gz", ".xz", ".bz2", ".tar", ".zip", ".parquet"):
        name = name.removesuffix(suffix)
    return name


def log(msg: str) -> None:
    """A progress line on stderr (from rank 0 only under torchrun)."""
    if env_rank() == 0:
        print(msg, file=sys.stderr, flush=True)


def load_train_data(
    cfg: TrainConfig, data: DataArgs, progress: bool = True
) -> tuple[ImageSet, ImageSet, ImageSet | None, ImageSet | None]:
    """(train, val, test or None, held-out or None) by the configured protocol."""
    split = "all" if cfg.protocol == "reference" else data.split
    rule = "crop" if cfg.crop else "resize"
    ds = load_images(
        data.paths,
        size=cfg.image_size,
        rule=rule,
        split=split,
        purpose="train",
        subset=cfg.subset,
        seed=cfg.seed,
        classes=data.classes,
        cache_dir=data.cache_dir,
        use_cache=data.use_cache,
        progress=progress,
    )
    log(f"training data: {describe(ds)}")
    idx = make_splits(ds.y, cfg.protocol, cfg.val_fraction, cfg.seed)
    test = ds.take(idx["test"]) if "test" in idx else None
    if test is None and data.test_paths:
        test = load_images(
            data.test_paths,
            size=cfg.image_size,
            rule=rule,
            split=None,
            purpose="eval",
            classes=data.classes,
            cache_dir=data.cache_dir,
            use_cache=data.use_cache,
            progress=progress,
        )
        log(f"test data: {describe(test)}")
    train, heldout = idx["train"], None
    if cfg.heldout_fraction:
        # a fraction of *all* the data, taken from the training part (stratified, seeded)
        frac = cfg.heldout_fraction / (1 - cfg.val_fraction)
        keep, held = split_two(ds.y[train], frac, cfg.seed + 1)
        train, heldout = train[keep], ds.take(train[held])
    return ds.take(train), ds.take(idx["val"]), test, heldout


def export_heldout(data: DataArgs, split: str | None, names: list[str], out: Path) -> int:
    """Copy the held-out files, byte for byte, into `out/real|fake/` (a labelled folder that
    `fakescope calibrate --data` reads like any other). Returns the number of files written."""
    wanted = set(names)
    files = list_labelled(data.paths, split=split, purpose="train", classes=data.classes)
    keep = [i for i in range(len(files)) if files.name(i) in wanted]
    sub = LabelledFiles(files.sources, [files.entries[i] for i in keep], files.labels[keep], {})
    n = 0
    for i, raw in sub.iter_bytes():
        e = sub.entries[i]
        cls = "fake" if sub.labels[i] else "real"
        write_bytes(out / cls / f"{i:05d}_{Path(e.name).name}", raw)
        n += 1
    return n


def score_images(det: Detector, x: np.ndarray) -> np.ndarray:
    """prob_fake for decoded uint8 images through the Detector's own input rule (thumbnail
    models score the arrays directly; tiled models tile each image)."""
    if det.fixed_input_size():
        return det.score_arrays(x)
    return np.array([r["prob_fake"] for r in det.iter_predict(iter(x), batch_size=64)])


def history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    if history:
        w = csv.DictWriter(buf, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return buf.getvalue()


def train_run(
    cfg: TrainConfig,
    data: DataArgs,
    out: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch=None,
) -> dict[str, Any]:
    """Train into run folder `out`; returns the metrics written to metrics.json (on every rank
    under torchrun)."""
    if env_rank() == 0:
        ensure_writable_dir(out)
    resolve_device(cfg.device)  # fail on a bad --device before decoding anything
    with process_group(cfg.device) as d:
        return _train_run(cfg, data, out, d, resume, progress and d.main, on_epoch)


def _train_run(
    cfg: TrainConfig, data: DataArgs, out: Path, d: Dist, resume: bool, progress: bool, on_epoch
) -> dict[str, Any]:
    if d.main and not resume:
        write_json(out / "data.json", asdict(data))
    with local_main_first(d):
        train, val, test, heldout = load_train_data(cfg, data, progress)
    log(
        f"split ({cfg.protocol}): train {len(train)}, val {len(val)}"
        + (f", test {len(test)}" if test is not None else "")
        + (f", held out for calibration {len(heldout)}" if heldout is not None else "")
    )
    if heldout is not None and not resume and d.main:
        split = "all" if cfg.protocol == "reference" else data.split
        n = export_heldout(data, split, heldout.names, out / "heldout")
        log(
            f"held-out files copied to {out / 'heldout'} ({n}); calibrate with: fakescope "
            f"calibrate --data {out / 'heldout'} --model {out}"
        )
    sources = data.source_of(train.names)
    if cfg.balance is not None:
        cells = {}
        for s, t in zip(sources, train.y, strict=True):
            cells[(s, int(t))] = cells.get((s, int(t)), 0) + 1
        log(
            f"sampling by source (balance {cfg.balance}): "
            + ", ".join(f"{s}/{'fake' if t else 'real'} {n}" for (s, t), n in sorted(cells.items()))
        )
    model, state = fit(
        cfg,
        train.x,
        train.y,
        val.x,
        val.y,
        out,
        resume=resume,
        progress=progress,
        log=log,
        on_epoch=on_epoch,
        sources=sources,
    )
    if not d.main:
        return broadcast_object(None, d)

    # Final metrics go through the same Detector that users get (one scoring path).
    det = Detector(model, model_config(cfg.to_dict()), resolve_device(cfg.device))
    metrics: dict[str, Any] = {
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        "stopped_early": state.stopped_early,
        "train_seconds": round(state.train_seconds, 2),
        "split": {
            "train": len(train),
            "val": len(val),
            **({"heldout": len(heldout)} if heldout is not None else {}),
        },
        "val": compute_metrics(val.y, score_images(det, val.x)),
    }
    if test is not None:
        metrics["test"] = compute_metrics(test.y, score_images(det, test.x))
    save_model(out, model, model_config(cfg.to_dict(), metrics))
    write_json(out / "metrics.json", metrics)
    write_text(out / "history.csv", history_csv(state.history))
    from fakescope.plots import training_curve

    training_curve(state.history, out / "training_curve.png")
    return broadcast_object(metrics, d)


def resume_args(run_dir: Path) -> tuple[TrainConfig, DataArgs]:
    """Config and data of an interrupted run, from its checkpoint and data.json."""
    from fakescope.training.loop import checkpoint_config

    cfg = TrainConfig(**checkpoint_config(run_dir))
    try:
        data = DataArgs(**json.loads((run_dir / "data.json").read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as e:
        raise FakescopeError(f"cannot read {run_dir / 'data.json'}: {e}") from None
    return cfg, data
