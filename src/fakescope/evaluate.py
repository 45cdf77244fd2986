"""Evaluate a model on a labelled collection: metrics.json, predictions.csv and plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fakescope.data import ClassNames, describe, load_images
from fakescope.detector import Detector
from fakescope.fileio import ensure_writable_dir, write_json, write_text
from fakescope.metrics import compute_metrics
from fakescope.plots import evaluation_plots
from fakescope.runs import log


def evaluate(
    det: Detector,
    paths: list[str],
    out: Path,
    *,
    split: str | None = None,
    subset: float | None = None,
    seed: int = 0,
    classes: ClassNames = ClassNames(),
    threshold: float | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every image in `paths` with `det`; write metrics, per-image scores and plots."""
    ensure_writable_dir(out)
    ds = load_images(
        paths,
        size=det.input_size,
        split=split,
        purpose="eval",
        subset=subset,
        seed=seed,
        classes=classes,
        cache_dir=cache_dir,
        use_cache=use_cache,
        progress=progress,
    )
    log(f"evaluation data: {describe(ds)}")
    prob = det.score_arrays(ds.x)
    threshold = det.threshold if threshold is None else threshold
    metrics = compute_metrics(ds.y, prob, threshold)
    metrics["model"] = det.name
    metrics["data"] = [str(p) for p in paths]
    metrics["skipped"] = {
        "non_image": ds.report.get("non_image", 0),
        "undecodable": len(ds.report.get("failed", [])),
    }
    write_json(out / "metrics.json", metrics)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "label", "prob_fake"])
    for name, label, p in zip(ds.names, ds.y, prob, strict=True):
        w.writerow([name, "fake" if label else "real", f"{p:.6f}"])
    write_text(out / "predictions.csv", buf.getvalue())
    evaluation_plots(ds.y, prob, metrics["confusion_matrix"], out)
    return metrics
