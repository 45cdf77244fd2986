"""Binary metrics with FAKE = 1 as the positive class (scikit-learn does the arithmetic)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn import metrics as skm


def compute_metrics(
    y_true: np.ndarray, prob_fake: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """accuracy, precision, recall, f1, roc_auc, average_precision, confusion_matrix, n.

    The confusion matrix is [[TN, FP], [FN, TP]] (rows: true real, true fake). AUC and AP are
    None when only one class is present (they are undefined there, not 0 or 1)."""
    y_true = np.asarray(y_true).astype(int)
    prob_fake = np.asarray(prob_fake, dtype=float)
    y_pred = (prob_fake >= threshold).astype(int)
    both = len(np.unique(y_true)) == 2
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y_true, prob_fake)) if both else None,
        "average_precision": (
            float(skm.average_precision_score(y_true, prob_fake)) if both else None
        ),
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
        "n": int(len(y_true)),
        "threshold": threshold,
    }
    return out


def format_table(m: dict[str, Any]) -> str:
    """The metrics as an aligned two-column table for the terminal."""
    rows = []
    for key in ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision"):
        v = m.get(key)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            text = "n/a"
        elif isinstance(v, float):
            text = f"{v:.4f}"
        else:
            text = str(v)
        rows.append(f"{key:<18} {text:>10}")
    (tn, fp), (fn, tp) = m["confusion_matrix"]
    rows.append(f"{'confusion':<18} TN={tn} FP={fp} FN={fn} TP={tp}")
    return "\n".join(rows)
