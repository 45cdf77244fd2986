"""From a model's logit to a calibrated `prob_fake` and a verdict (numpy only: every backend).

A model folder's `config.json` may carry:

- `calibration`: how a logit becomes a probability. `null` (plain sigmoid), or
  `{"method": "temperature", "temperature": T}` (sigmoid(logit / T)),
  `{"method": "platt", "a": a, "b": b}` (sigmoid(a * logit + b)), or
  `{"method": "isotonic", "x": [...logits...], "y": [...probs...]}` (piecewise-linear, monotone).
- `threshold`: the decision threshold on the calibrated `prob_fake` (`fake` when >= threshold).
- `uncertain`: `null`, or `[low, high]` with low <= threshold <= high: a score in [low, high) is
  labelled `uncertain` instead of a hard verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LABELS = ("real", "fake", "uncertain")


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def apply_calibration(logits: np.ndarray, cal: dict[str, Any] | None) -> np.ndarray:
    """Calibrated prob_fake for raw logits."""
    z = np.asarray(logits, dtype=np.float64)
    if not cal:
        return sigmoid(z)
    method = cal.get("method")
    if method == "temperature":
        return sigmoid(z / float(cal["temperature"]))
    if method == "platt":
        return sigmoid(float(cal["a"]) * z + float(cal["b"]))
    if method == "isotonic":
        return np.interp(z, np.asarray(cal["x"], float), np.asarray(cal["y"], float))
    raise ValueError(f"unknown calibration method {method!r}")


def verdict(prob: float, threshold: float, band: list[float] | tuple[float, float] | None) -> str:
    """`real`, `fake`, or `uncertain` when `prob` falls inside the band [low, high)."""
    if band is not None:
        low, high = float(band[0]), float(band[1])
        if low <= prob < high:
            return "uncertain"
    return "fake" if prob >= threshold else "real"
