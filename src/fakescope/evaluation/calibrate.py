"""`fakescope calibrate`: fit a model's calibration and threshold on held-out labelled data and
write a calibrated copy of the model folder.

1. Raw logits for every image through `Detector.iter_logits` (the model's own pre-processing).
2. Calibration: temperature scaling, Platt scaling or isotonic regression, or `auto`: the one
   with the lowest 5-fold cross-validated NLL on the given data (`calibration.choose_method`).
   The chosen method is then refitted on all of the data.
3. Threshold: the smallest calibrated prob_fake whose false-positive rate on the real images of
   the data is <= the target (`calibration.threshold_for_fpr`).
4. Optional uncertain band of width W centred on the threshold (`calibration.uncertain_band`).

The copy holds `model.safetensors` (byte for byte, so `weights_sha256` stays valid), the
source's ONNX graphs if it has them, and
`config.json` with `calibration`, `threshold`, `uncertain` and a `calibration_report`; beside
them `report.md` and `reliability.png`. The data must not be the data you report test numbers
on: the threshold is chosen on it.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fakescope.calibration import (
    METHODS,
    apply_calibration,
    choose_method,
    fit_calibration,
    threshold_for_fpr,
    uncertain_band,
    verdict,
)
from fakescope.data import ClassNames, list_labelled
from fakescope.detector import Detector
from fakescope.errors import FakescopeError
from fakescope.fileio import atomic_path, ensure_writable_dir, write_json, write_text
from fakescope.metrics import compute_metrics
from fakescope.model_dir import CONFIG, WEIGHTS, resolve_model_dir, sha256_file

MIN_PER_CLASS = 10
SUMMARY_KEYS = (
    "accuracy",
    "false_positive_rate",
    "detection_rate",
    "roc_auc",
    "ece",
    "brier",
    "nll",
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion k/n (how far the FPR on new reals may be)."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def collect_logits(det: Detector, files, progress: bool) -> tuple[np.ndarray, np.ndarray, list]:
    """Raw logits and labels of every decodable image; (name, error) for the rest."""
    order: list[int] = []

    def images():
        for i, data in files.iter_bytes():
            order.append(i)
            yield data

    logits, keep, failed = [], [], []
    bar = tqdm(total=len(files), desc="scoring", unit="img", disable=not progress, file=sys.stderr)
    for pos, (z, err) in enumerate(det.iter_logits(images())):
        i = order[pos]
        bar.update(1)
        if z is None:
            failed.append((files.name(i), err))
        else:
            logits.append(z)
            keep.append(i)
    bar.close()
    return np.asarray(logits, float), files.labels[np.asarray(keep, int)], failed


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: m.get(k) for k in SUMMARY_KEYS}


def run_calibrate(
    model: str | None,
    paths: list[str],
    out: Path,
    *,
    split: str | None = None,
    subset: float | None = None,
    seed: int = 0,
    classes: ClassNames = ClassNames(),
    target_fpr: float = 0.05,
    band_width: float | None = None,
    method: str = "auto",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Fit, choose the threshold, write the calibrated model folder; returns its config."""
    if not 0.0 <= target_fpr < 1.0:
        raise FakescopeError(f"--target-fpr {target_fpr} is not in [0, 1)")
    if band_width is not None and not 0.0 <= band_width < 1.0:
        raise FakescopeError(f"--uncertain-band {band_width} is not in [0, 1)")
    if method != "auto" and method not in METHODS:
        raise FakescopeError(f"--method {method!r}: choose auto, {', '.join(METHODS)}")
    src, _ = resolve_model_dir(model)
    det = Detector.load(model, device=device, metadata=False)
    own = det.kind.own_files(src)  # a router refuses here, before any work
    if src.resolve() == Path(out).resolve():
        raise FakescopeError("--out must be a new folder, not the model's own folder")
    ensure_writable_dir(out)
    files = list_labelled(
        paths, split=split, purpose="eval", subset=subset, seed=seed, classes=classes
    )
    log(f"calibrating {det.name} on {len(files)} images ({', '.join(map(str, paths))})")
    z, y, failed = collect_logits(det, files, progress)
    counts = np.bincount(y, minlength=2) if len(y) else np.zeros(2, int)
    if counts.min() < MIN_PER_CLASS:
        raise FakescopeError(
            f"calibration needs at least {MIN_PER_CLASS} scored images of each class "
            f"(got {counts[0]} real, {counts[1]} fake)"
        )

    candidates = METHODS if method == "auto" else (method,)
    best, cv_nll, oof = choose_method(z, y, candidates, seed=seed)
    cal = fit_calibration(best, z, y)
    before_cal = det.config.get("calibration")
    p_before = apply_calibration(z, before_cal)
    p_after = apply_calibration(z, cal)
    threshold = threshold_for_fpr(p_after[y == 0], target_fpr)
    band = uncertain_band(threshold, band_width)
    labels = [verdict(float(p), threshold, band) for p in p_after]
    before = compute_metrics(y, p_before, det.threshold)
    after = compute_metrics(y, p_after, threshold, labels=labels)
    cv = compute_metrics(y, oof[best], threshold)
    fp = after["all_at_threshold"]["confusion_matrix"][0][1]

    report = {
        "method": best,
        "method_requested": method,
        "cv_nll": cv_nll,
        "cv_folds": int(min(5, counts.min())),
        "target_fpr": target_fpr,
        "false_positive_rate": after["all_at_threshold"]["false_positive_rate"],
        "false_positive_rate_ci95": wilson(fp, int(counts[0])),
        "detection_rate": after["all_at_threshold"]["detection_rate"],
        "uncertain_band_width": band_width or 0.0,
        "uncertain": after["uncertain"],
        "uncertain_by_class": after["uncertain_by_class"],
        "before": {**_summary(before), "threshold": det.threshold, "calibration": before_cal},
        "after": {**_summary(after), "threshold": threshold},
        "after_cross_validated": {k: cv[k] for k in ("ece", "brier", "nll")},
        "data": [str(p) for p in paths],
        "split": split,
        "subset": subset,
        "seed": seed,
        "n": int(counts.sum()),
        "images": {"real": int(counts[0]), "fake": int(counts[1])},
        "failed": len(failed),
        "source_model": det.name,
    }
    config = det.kind.portable_config(src)
    config.update(calibration=cal, threshold=threshold, uncertain=band, calibration_report=report)
    _write_model(src, Path(out), config, own)
    write_text(Path(out) / "report.md", report_markdown(report))
    from fakescope.plots import reliability_diagram

    reliability_diagram(
        y,
        {"before": p_before, f"after ({best})": p_after, "after, cross-validated": oof[best]},
        Path(out) / "reliability.png",
    )
    return config


def _write_model(src: Path, out: Path, config: dict[str, Any], files: list[str]) -> None:
    """The model's own files (`Kind.own_files`) copied byte for byte first, config last (a
    reader never sees a config without its files); copied weights are checked against the
    config's SHA-256."""
    for name in files:
        with atomic_path(out / name) as tmp:
            shutil.copyfile(src / name, tmp)
    expected = config.get("weights_sha256")
    if WEIGHTS in files and expected and sha256_file(out / WEIGHTS) != expected:
        raise FakescopeError(f"{out / WEIGHTS}: copy does not match weights_sha256")
    write_json(out / CONFIG, config)


def _subset(v: float | None) -> str:
    return "none" if v is None else format(v, "g")


def _f(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def report_markdown(r: dict[str, Any]) -> str:
    b, a, cv = r["before"], r["after"], r["after_cross_validated"]
    rows = [
        "| | before | after | after, 5-fold cross-validated |",
        "|---|---|---|---|",
        f"| threshold (prob_fake) | {b['threshold']:.6g} | {a['threshold']:.6g} | |",
    ]
    for key in ("ece", "brier", "nll"):
        rows.append(
            f"| {key.upper() if key != 'brier' else 'Brier'} | {_f(b[key])} | "
            f"{_f(a[key])} | {_f(cv[key])} |"
        )
    for key in ("accuracy", "false_positive_rate", "detection_rate", "roc_auc"):
        rows.append(f"| {key} | {_f(b[key])} | {_f(a[key])} | |")
    ci = r["false_positive_rate_ci95"]
    cvs = ", ".join(f"{m} {v:.4f}" for m, v in r["cv_nll"].items())
    unc = r["uncertain_by_class"]
    text = [
        f"# Calibration of `{r['source_model']}`",
        "",
        f"Data: {', '.join(r['data'])} (split {r['split'] or 'default'}, subset "
        f"{_subset(r['subset'])}): {r['images']['real']} real + {r['images']['fake']} fake "
        f"images scored ({r['failed']} unreadable).",
        "",
        f"Method: **{r['method']}** (requested: {r['method_requested']}); cross-validated NLL "
        f"({r['cv_folds']}-fold): {cvs}.",
        "",
        f"Threshold {a['threshold']:.6g} on calibrated prob_fake for a target false-positive "
        f"rate of {r['target_fpr']:.2%} on real images: measured {r['false_positive_rate']:.2%} "
        f"here (95% interval for new images like these: {ci[0]:.2%}-{ci[1]:.2%}), detecting "
        f"{r['detection_rate']:.2%} of fakes.",
        "",
        f"Uncertain band width {r['uncertain_band_width']:g}: {r['uncertain']} images "
        f"({unc['real']} real, {unc['fake']} fake) get `uncertain`; the 'after' accuracy, FPR "
        "and detection rate count the decided images only.",
        "",
        *rows,
        "",
        "`prob_fake` of the calibrated model is the calibrated probability that an image is "
        "AI-generated, for images like these. 'before' is the model as it was, at its own "
        "threshold. ECE: 15 equal-width bins. The in-sample 'after' numbers are optimistic; the "
        "cross-validated column scores each image with a calibration fitted without it.",
        "",
        "![reliability](reliability.png)",
    ]
    return "\n".join(text) + "\n"
