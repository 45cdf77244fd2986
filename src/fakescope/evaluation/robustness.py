"""Robustness report: a model's metrics under the perturbation grid of
`fakescope.evaluation.perturb`.

Each labelled image is read from its raw bytes, scored as it is ("clean"), then decoded once to
upright RGB and perturbed in memory by every perturbation; every variant goes through
`Detector.iter_predict`, the same pre-processing path as a clean file. Images stream through one
at a time (at most `batch_size` variants are alive), so memory does not grow with the data set;
only one score and one verdict per (perturbation, image) are kept.

Per perturbation: accuracy, ROC-AUC, false-positive rate on real images and detection rate on
fakes at the model's threshold, the share of images whose verdict differs from the clean image's
(`flip_rate`), and the mean change of prob_fake per class (which way the perturbation pushes).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from fakescope.data import ClassNames, list_labelled
from fakescope.detector import Detector
from fakescope.errors import FakescopeError, ImageError
from fakescope.evaluation.perturb import Perturbation, decode_rgb, select
from fakescope.fileio import ensure_writable_dir, write_json, write_text
from fakescope.metrics import compute_metrics

VERDICTS = ("real", "fake", "uncertain")
CODE = {v: i for i, v in enumerate(VERDICTS)}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def score_variants(
    det: Detector,
    files,
    perts: list[Perturbation],
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]], dict[str, int]]:
    """prob_fake and verdict codes, shape (1 + len(perts), len(files)); row 0 is the clean file.
    NaN / -1 where a variant could not be scored. Also: files that failed to decode, and the
    number of variants that failed per perturbation."""
    k, n = 1 + len(perts), len(files)
    prob = np.full((k, n), np.nan, np.float32)
    code = np.full((k, n), -1, np.int8)
    failed: list[tuple[str, str]] = []
    variant_errors: dict[str, int] = {}
    keys: deque[tuple[int, int]] = deque()
    bar = tqdm(total=n, desc="robustness", unit="img", disable=not progress, file=sys.stderr)

    def variants() -> Iterator[bytes | Image.Image]:
        for i, data in files.iter_bytes():
            bar.update(1)
            try:
                base = decode_rgb(data)
            except ImageError as e:
                failed.append((files.name(i), str(e)))
                continue
            keys.append((i, 0))
            yield data  # clean: the file exactly as evaluate sees it
            for j, p in enumerate(perts, 1):
                try:
                    img = p(base, seed, i)
                except (OSError, ValueError) as e:  # e.g. WebP's 16383-px limit
                    variant_errors[p.name] = variant_errors.get(p.name, 0) + 1
                    log(f"{files.name(i)}: {p.name} failed: {e}")
                    continue
                keys.append((i, j))
                yield img

    for row in det.iter_predict(variants(), batch_size=batch_size):
        i, j = keys.popleft()
        if row.get("error"):
            if j == 0:
                failed.append((files.name(i), row["error"]))
            else:
                name = perts[j - 1].name
                variant_errors[name] = variant_errors.get(name, 0) + 1
            continue
        prob[j, i] = row["prob_fake"]
        code[j, i] = CODE.get(row.get("label"), -1)
    bar.close()
    clean_failed = code[0] < 0  # a file whose clean score failed is dropped from every row
    prob[:, clean_failed], code[:, clean_failed] = np.nan, -1
    return prob, code, failed, variant_errors


def summarise(
    y: np.ndarray,
    prob: np.ndarray,
    code: np.ndarray,
    perts: list[Perturbation],
    threshold: float,
    variant_errors: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One result dict per row of `prob` (clean first)."""
    results = []
    clean_ok = code[0] >= 0
    heads = [("clean", "clean", "clean")] + [(p.name, p.family, p.level) for p in perts]
    for j, (name, family, level) in enumerate(heads):
        ok = clean_ok & (code[j] >= 0)
        r: dict[str, Any] = {"name": name, "family": family, "level": level, "n": int(ok.sum())}
        r["errors"] = int((variant_errors or {}).get(name, 0))
        if ok.any():
            labels = [VERDICTS[c] for c in code[j, ok]]
            m = compute_metrics(y[ok], prob[j, ok].astype(float), threshold, labels=labels)
            for key in ("accuracy", "roc_auc", "false_positive_rate", "detection_rate"):
                r[key] = m[key]
            r["uncertain"] = m["uncertain"]
            r["flip_rate"] = float(np.mean(code[j, ok] != code[0, ok]))
            shift = prob[j, ok].astype(float) - prob[0, ok].astype(float)
            for cls, c in (("real", 0), ("fake", 1)):
                sel = y[ok] == c
                r[f"mean_shift_{cls}"] = float(shift[sel].mean()) if sel.any() else None
        results.append(r)
    return results


def run_robustness(
    det: Detector,
    paths: list[str],
    out: Path,
    *,
    split: str | None = None,
    subset: float | None = None,
    seed: int = 0,
    classes: ClassNames = ClassNames(),
    perturbations: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every image of `paths` clean and under each perturbation; write robustness.json,
    report.md and one plot per perturbation family into `out`."""
    perts = select(perturbations)
    ensure_writable_dir(out)
    files = list_labelled(
        paths, split=split, purpose="eval", subset=subset, seed=seed, classes=classes
    )
    n_real, n_fake = int((files.labels == 0).sum()), int((files.labels == 1).sum())
    log(
        f"robustness: {len(files)} images ({n_real} real, {n_fake} fake) x "
        f"{1 + len(perts)} variants, model {det.name}"
    )
    prob, code, failed, verr = score_variants(
        det, files, perts, seed=seed, batch_size=batch_size, progress=progress
    )
    if not (code[0] >= 0).any():
        raise FakescopeError(f"none of the {len(files)} images could be scored")
    results = summarise(files.labels, prob, code, perts, det.threshold, verr)
    report = {
        "model": det.name,
        "data": [str(p) for p in paths],
        "split": split,
        "subset": subset,
        "seed": seed,
        "threshold": det.threshold,
        "images": {"real": n_real, "fake": n_fake},
        "failed": [{"path": p, "error": e} for p, e in failed],
        "results": results,
    }
    write_json(out / "robustness.json", report)
    write_text(out / "report.md", report_markdown(report))
    from fakescope.plots import robustness_plots

    robustness_plots(results, out, title=det.name)
    return report


def _f(v: Any, digits: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def format_results(results: list[dict[str, Any]]) -> str:
    """The per-perturbation table for the terminal and report.md (Markdown)."""
    clean = results[0].get("accuracy")
    lines = [
        "| perturbation | level | n | accuracy | Δ accuracy | ROC-AUC | FPR (real) | "
        "detection (fake) | flips | uncertain | Δ prob real | Δ prob fake |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        acc = r.get("accuracy")
        delta = acc - clean if acc is not None and clean is not None else None
        lines.append(
            f"| {r['name']} | {r['level']} | {r['n']} | {_f(acc)} | "
            f"{'' if r['name'] == 'clean' else _f(delta)} | {_f(r.get('roc_auc'))} | "
            f"{_f(r.get('false_positive_rate'))} | {_f(r.get('detection_rate'))} | "
            f"{_f(r.get('flip_rate'))} | {r.get('uncertain', 0)} | "
            f"{_f(r.get('mean_shift_real'), 3)} | {_f(r.get('mean_shift_fake'), 3)} |"
        )
    return "\n".join(lines)


def _subset(v: float | None) -> str:
    return "none" if v is None else format(v, "g")


def report_markdown(rep: dict[str, Any]) -> str:
    imgs = rep["images"]
    failed = rep["failed"]
    parts = [
        f"# Robustness of `{rep['model']}`",
        "",
        f"Data: {', '.join(rep['data'])} (split {rep['split'] or 'default'}, "
        f"subset {_subset(rep['subset'])}): {imgs['real']} real + {imgs['fake']} fake images; "
        f"seed {rep['seed']}; threshold {rep['threshold']:.4g} on prob_fake.",
        "",
        "Every image is scored as its file (`clean`) and after each perturbation, made in memory "
        "from the decoded image and scored through the same `Detector` path. FPR: share of real "
        "images called fake; detection: share of fakes called fake (both at the threshold, among "
        "decided images); flips: share of images whose verdict differs from the clean one; "
        "Δ prob: mean change of prob_fake against the clean image, per true class.",
        "",
        format_results(rep["results"]),
        "",
        "Plots: `robustness_<family>.png` (each metric against severity, clean first).",
    ]
    if failed:
        parts += ["", f"{len(failed)} files could not be decoded and were left out:"]
        parts += [f"- {f['path']}: {f['error']}" for f in failed[:20]]
    return "\n".join(parts) + "\n"
