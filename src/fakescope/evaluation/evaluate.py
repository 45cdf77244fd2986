"""Evaluate a model on a labelled collection: metrics.json, predictions.csv and plots.

Every file goes through `Detector` as it is (any size, any format), exactly as `predict` would
score it; nothing is pre-decoded to a fixed size here, so a native-resolution model sees each
photo at its own scale and a thumbnail model gets its own rule.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.data import FAKE, REAL, ClassNames, list_labelled
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.fileio import ensure_writable_dir, write_json, write_text
from fakescope.metrics import compute_metrics
from fakescope.plots import evaluation_plots
from fakescope.training.runs import log


def score_labelled(
    det: Detector, files, batch_size: int = 256, progress: bool = True
) -> tuple[list[int], list[dict[str, Any]]]:
    """(entry indices, rows) for every file of a `LabelledFiles`, streamed through `det`."""
    from tqdm import tqdm

    order: list[int] = []

    def images():
        for i, data in files.iter_bytes():
            order.append(i)
            yield data

    rows = []
    bar = tqdm(total=len(files), desc="scoring", unit="img", disable=not progress, file=sys.stderr)
    for row in det.iter_predict(images(), batch_size=batch_size):
        rows.append(row)
        bar.update(1)
    bar.close()
    return order[: len(rows)], rows


def _every_class_decoded(files, order: list[int], rows: list[dict[str, Any]]) -> None:
    """A class none of whose files decode is an error, as in training (`load_images`): its
    metrics (precision 0, no detection rate) would describe nothing but the broken files."""
    for label, name in ((REAL, "real"), (FAKE, "fake")):
        mine = [
            (order[k], r["error"]) for k, r in enumerate(rows) if files.labels[order[k]] == label
        ]
        if mine and all(err for _, err in mine):
            eg = ", ".join(f"{files.name(i)}: {err}" for i, err in mine[:2])
            raise FakescopeError(
                f"none of the {len(mine)} {name} files could be decoded (e.g. {eg})"
            )


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
    dedupe_against: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every image in `paths` with `det`; write metrics, per-image scores and plots.

    `dedupe_against`: training data; test files byte-identical to one of its files (leaked
    into training) are left out of the metrics and marked in predictions.csv."""
    ensure_writable_dir(out)
    files = list_labelled(
        paths, split=split, purpose="eval", subset=subset, seed=seed, classes=classes
    )
    leaked: set[int] = set()
    if dedupe_against:
        from fakescope.evaluation.audit import leaked_indices

        leaked = set(leaked_indices(files, dedupe_against, classes=classes))
        log(f"{len(leaked)} test files are byte-identical to training files: left out")
    log(f"evaluation data: {len(files)} images; input: {det.describe_input()}")
    order, rows = score_labelled(det, files, progress=progress)
    ok = [k for k, r in enumerate(rows) if not r["error"]]
    failed = [(files.name(order[k]), rows[k]["error"]) for k, r in enumerate(rows) if r["error"]]
    if failed:
        log(f"{len(failed)} images could not be decoded and were excluded:")
        for name, err in failed[:20]:
            log(f"  {name}: {err}")
        if len(failed) > 20:
            log(f"  ... and {len(failed) - 20} more")
    _every_class_decoded(files, order, rows)
    given, threshold = threshold, det.threshold if threshold is None else threshold

    def measure(ks: list[int]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        y = files.labels[[order[k] for k in ks]]
        prob = np.array([rows[k]["prob_fake"] for k in ks], dtype=np.float64)
        # the model's own verdicts (uncertain counted apart); a --threshold override is hard
        labels = [rows[k]["label"] for k in ks] if given is None else None
        return y, prob, compute_metrics(y, prob, threshold, labels=labels)

    everything = ok
    ok = [k for k in ok if order[k] not in leaked]
    y, prob, metrics = measure(ok)
    if dedupe_against:
        m_all = measure(everything)[2]
        metrics["deduplicated"] = {
            "against": [str(p) for p in dedupe_against],
            "removed": len(everything) - len(ok),
            "with_leaked": {
                k: m_all[k]
                for k in ("n", "accuracy", "roc_auc", "false_positive_rate", "detection_rate")
            },
        }
    metrics["model"] = det.name
    metrics["input"] = det.describe_input()
    models_used = sorted({rows[k]["model"] for k in ok})
    if len(models_used) > 1 or (models_used and models_used[0] != det.name):
        metrics["scored_by"] = {m: sum(rows[k]["model"] == m for k in ok) for m in models_used}
    metrics["data"] = [str(p) for p in paths]
    metrics["skipped"] = {
        "non_image": files.report.get("non_image", 0),
        "undecodable": len(failed),
    }
    write_json(out / "metrics.json", metrics)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["path", "true_label", "prob_fake", "label", "model"] + (["leaked"] * bool(dedupe_against))
    )
    for k in everything:
        r = rows[k]
        true = "fake" if files.labels[order[k]] else "real"
        label = r["label"] if given is None else ("fake" if r["prob_fake"] >= given else "real")
        extra = ["yes" if order[k] in leaked else "no"] if dedupe_against else []
        w.writerow([files.name(order[k]), true, f"{r['prob_fake']:.6f}", label, r["model"], *extra])
    write_text(out / "predictions.csv", buf.getvalue())
    evaluation_plots(y, prob, metrics["confusion_matrix"], out)
    return metrics
