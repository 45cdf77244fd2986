"""Hyperparameter search with Optuna (extra `tune`): learning rate, batch size, optimizer.

The reference chose batch 16 and lr 5e-4 by tuning. Each trial is a short real training run on a
stratified subset, scored by validation loss; a median pruner stops trials that fall behind after
their first epoch. The output `best_config.json` is a training config that `train --config` takes.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path
from typing import Any

from fakescope.choices import BATCH_SIZES, LR_RANGE, OPTIMIZERS
from fakescope.errors import missing_extra
from fakescope.fileio import ensure_writable_dir, write_json, write_text
from fakescope.training.config import resolve_config
from fakescope.training.loop import fit
from fakescope.training.runs import DataArgs, load_train_data, log

# The search space (also shown by `fakescope tune --help`).


def tune(
    data: DataArgs,
    out: Path,
    *,
    trials: int = 20,
    epochs: int = 3,
    subset: float | None = 5000,
    preset: str = "reference",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run `trials` Optuna trials; write trials.csv and best_config.json into `out`."""
    try:
        import optuna
    except ImportError:
        raise missing_extra("optuna", "tune") from None
    ensure_writable_dir(out)
    base = resolve_config(
        preset,
        overrides={
            "epochs": epochs,
            "device": device,
            "seed": seed,
            "patience": 0,
            "subset": subset,
        },
    )
    train, val, _, _ = load_train_data(base, data, progress)  # tune on train/val only
    log(f"tuning on {len(train)} train / {len(val)} validation images, {trials} trials")

    def objective(trial: optuna.Trial) -> float:
        params = {
            "lr": trial.suggest_float("lr", *LR_RANGE, log=True),
            "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
            "optimizer": trial.suggest_categorical("optimizer", list(OPTIMIZERS)),
        }
        cfg = resolve_config(preset, overrides={**base.to_dict(), **params})

        def report(epoch: int, row: dict[str, float], model) -> None:
            trial.report(row["val_loss"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        with tempfile.TemporaryDirectory(dir=out) as run_dir:
            _, state = fit(
                cfg,
                train.x,
                train.y,
                val.x,
                val.y,
                Path(run_dir),
                progress=False,
                log=lambda _: None,
                on_epoch=report,
            )
        best = min(r["val_loss"] for r in state.history)
        trial.set_user_attr("val_acc", max(r["val_acc"] for r in state.history))
        return best if math.isfinite(best) else float("inf")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    study.optimize(objective, n_trials=trials, show_progress_bar=progress)

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "state", "val_loss", "val_acc", "lr", "batch_size", "optimizer"])
    for t in study.trials:
        w.writerow(
            [
                t.number,
                t.state.name,
                t.value,
                t.user_attrs.get("val_acc"),
                t.params.get("lr"),
                t.params.get("batch_size"),
                t.params.get("optimizer"),
            ]
        )
    write_text(out / "trials.csv", buf.getvalue())
    best_cfg = resolve_config(preset, overrides={**study.best_params, "seed": seed})
    write_json(out / "best_config.json", best_cfg.to_dict())
    return {**study.best_params, "val_loss": study.best_value}
