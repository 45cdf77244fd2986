"""Binary metrics with FAKE = 1 as the positive class (scikit-learn does the arithmetic).

Besides the classification metrics: how far `prob_fake` can be read as a probability.

- ECE (expected calibration error): the scores are cut into 15 equal-width bins on [0, 1]
  ([0, 1/15), ..., [14/15, 1]); ECE = sum over bins of (share of images in the bin) x |fraction
  of fakes in the bin - mean prob_fake in the bin|. It is the reliability of `prob_fake` itself
  (the positive class), not of the "confidence" max(p, 1 - p).
- Brier score: mean of (prob_fake - y)^2.
- NLL: mean negative log-likelihood in nats, with prob_fake clipped to [1e-7, 1 - 1e-7], so one
  confidently wrong image costs at most 16.1 nats instead of infinity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

ECE_BINS = 15
NLL_EPS = 1e-7


def reliability(
    y_true: np.ndarray, prob_fake: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: (count, mean prob_fake, fraction fake); empty bins give NaN means."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob_fake, dtype=float)
    idx = np.digitize(p, np.linspace(0, 1, bins + 1)[1:-1])  # p = 1.0 falls in the last bin
    count = np.bincount(idx, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=bins) / count
        frac = np.bincount(idx, weights=y, minlength=bins) / count
    return count, mean_p, frac


def ece(y_true: np.ndarray, prob_fake: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over `bins` equal-width bins (see the module docstring)."""
    count, mean_p, frac = reliability(y_true, prob_fake, bins)
    full = count > 0
    if not full.any():
        return float("nan")
    return float(np.sum(count[full] / count.sum() * np.abs(frac[full] - mean_p[full])))


def brier(y_true: np.ndarray, prob_fake: np.ndarray) -> float:
    y, p = np.asarray(y_true, float), np.asarray(prob_fake, float)
    return float(np.mean((p - y) ** 2))


def nll(y_true: np.ndarray, prob_fake: np.ndarray) -> float:
    y = np.asarray(y_true, float)
    p = np.clip(np.asarray(prob_fake, float), NLL_EPS, 1 - NLL_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _rates(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Hard-verdict metrics of `pred` (0/1) against `y`; rates are None without that class."""
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    (tn, fp), (fn, tp) = cm.tolist()
    return {
        "accuracy": float((tn + tp) / len(y)) if len(y) else None,
        "false_positive_rate": float(fp / (tn + fp)) if tn + fp else None,
        "detection_rate": float(tp / (tp + fn)) if tp + fn else None,
        "confusion_matrix": cm.tolist(),
    }


def compute_metrics(
    y_true: np.ndarray,
    prob_fake: np.ndarray,
    threshold: float = 0.5,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """accuracy, precision, recall, f1, roc_auc, average_precision, confusion_matrix, n, and
    false_positive_rate (share of real images called fake), detection_rate (share of fakes
    called fake, = recall), ece, brier, nll.

    The confusion matrix is [[TN, FP], [FN, TP]] (rows: true real, true fake). AUC and AP are
    None when only one class is present (they are undefined there, not 0 or 1).

    `labels`: the verdict strings (`real`, `fake`, `uncertain`). When given, the hard-verdict
    metrics (accuracy ... confusion_matrix, false_positive_rate, detection_rate) count only the
    decided images; `uncertain` (with `uncertain_by_class` and `n_decided`) counts the others,
    and `all_at_threshold` gives the hard verdicts of every image at the threshold, as if there
    were no uncertain band. Threshold-free metrics (AUC, AP, ECE, Brier, NLL) use every image.
    """
    y_true = np.asarray(y_true).astype(int)
    prob_fake = np.asarray(prob_fake, dtype=float)
    at_threshold = (prob_fake >= threshold).astype(int)
    if labels is None:
        decided, y_pred = np.ones(len(y_true), bool), at_threshold
    else:
        lab = np.asarray(list(labels), dtype=object)
        if len(lab) != len(y_true):
            raise ValueError("labels and y_true differ in length")
        decided, y_pred = lab != "uncertain", (lab == "fake").astype(int)
    yd, pd = y_true[decided], y_pred[decided]
    both = len(np.unique(y_true)) == 2
    some = len(yd) > 0
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(yd, pd)) if some else None,
        "precision": float(skm.precision_score(yd, pd, zero_division=0)) if some else None,
        "recall": float(skm.recall_score(yd, pd, zero_division=0)) if some else None,
        "f1": float(skm.f1_score(yd, pd, zero_division=0)) if some else None,
        "roc_auc": float(skm.roc_auc_score(y_true, prob_fake)) if both else None,
        "average_precision": (
            float(skm.average_precision_score(y_true, prob_fake)) if both else None
        ),
        "confusion_matrix": skm.confusion_matrix(yd, pd, labels=[0, 1]).tolist(),
        "n": int(len(y_true)),
        "threshold": threshold,
    }
    rates = _rates(yd, pd)
    out["false_positive_rate"] = rates["false_positive_rate"]
    out["detection_rate"] = rates["detection_rate"]
    if len(y_true):
        out["ece"] = ece(y_true, prob_fake)
        out["brier"] = brier(y_true, prob_fake)
        out["nll"] = nll(y_true, prob_fake)
    if labels is not None:
        unsure = ~decided
        out["n_decided"] = int(decided.sum())
        out["uncertain"] = int(unsure.sum())
        out["uncertain_rate"] = float(unsure.mean()) if len(unsure) else 0.0
        out["uncertain_by_class"] = {
            "real": int((unsure & (y_true == 0)).sum()),
            "fake": int((unsure & (y_true == 1)).sum()),
        }
        out["all_at_threshold"] = _rates(y_true, at_threshold)
    return out


ALWAYS = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision")
TABLE_ROWS = (
    "n",
    "n_decided",
    "uncertain",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "false_positive_rate",
    "detection_rate",
    "ece",
    "brier",
    "nll",
)


def format_table(m: dict[str, Any]) -> str:
    """The metrics as an aligned two-column table for the terminal."""
    rows = []
    for key in TABLE_ROWS:
        if key not in m and key not in ALWAYS:
            continue  # newer rows: only when computed (old metrics.json files lack them)
        v = m.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            text = "n/a"
        elif isinstance(v, float):
            text = f"{v:.4f}"
        else:
            text = str(v)
        rows.append(f"{key:<19} {text:>10}")
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    rows.append(f"{'confusion':<19} TN={tn} FP={fp} FN={fn} TP={tp}")
    return "\n".join(rows)
