"""From a model's logit to a calibrated `prob_fake` and a verdict (numpy only: every backend).

Applying a calibration needs numpy alone; fitting one (`fit_calibration`, `choose_method`) imports
scipy / scikit-learn lazily, so a backend that only scores never loads them.

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


# ---- fitting (used by `fakescope calibrate`; scipy / scikit-learn imported lazily) ---------

METHODS = ("temperature", "platt", "isotonic")


def _logistic_nll(margin: np.ndarray, sign: np.ndarray) -> float:
    """Mean -log sigmoid(sign * margin), exact for any margin (no clipping while fitting)."""
    return float(np.mean(np.logaddexp(0.0, -sign * margin)))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """One temperature T > 0 minimising the NLL of sigmoid(logit / T) (Guo et al. 2017). It keeps
    the ranking (AUC) and only softens or sharpens the scores; a 1-D bounded search on log T."""
    from scipy.optimize import minimize_scalar

    z, sign = np.asarray(logits, float), 2.0 * np.asarray(y, float) - 1.0
    res = minimize_scalar(
        lambda log_t: _logistic_nll(z / np.exp(log_t), sign),
        bounds=(np.log(1e-2), np.log(1e2)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return {"method": "temperature", "temperature": float(np.exp(res.x))}


def fit_platt(logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """sigmoid(a * logit + b) by maximum likelihood (Platt 1999, without his target smoothing:
    the held-out sets here are thousands of images, where it changes nothing measurable)."""
    from scipy.optimize import minimize

    z, sign = np.asarray(logits, float), 2.0 * np.asarray(y, float) - 1.0
    res = minimize(lambda ab: _logistic_nll(ab[0] * z + ab[1], sign), x0=[1.0, 0.0], method="BFGS")
    return {"method": "platt", "a": float(res.x[0]), "b": float(res.x[1])}


def fit_isotonic(logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """scikit-learn's IsotonicRegression on the logits, stored as its breakpoints (x = logits,
    y = probabilities); `apply_calibration` interpolates linearly between them and clips outside,
    exactly as IsotonicRegression(out_of_bounds="clip").predict does."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(np.asarray(logits, float), np.asarray(y, float))
    return {
        "method": "isotonic",
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
    }


FITTERS = {"temperature": fit_temperature, "platt": fit_platt, "isotonic": fit_isotonic}


def fit_calibration(method: str, logits: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The `calibration` config entry for `method` fitted on (logits, y)."""
    if method not in FITTERS:
        raise ValueError(f"unknown calibration method {method!r} (choose from {METHODS})")
    return FITTERS[method](logits, y)


def choose_method(
    logits: np.ndarray,
    y: np.ndarray,
    methods: tuple[str, ...] = METHODS,
    folds: int = 5,
    seed: int = 0,
) -> tuple[str, dict[str, float], dict[str, np.ndarray]]:
    """Pick the method with the lowest cross-validated NLL: stratified `folds`-fold, each fold's
    probabilities from a fit on the other folds. Ties go to the simpler method (the order of
    `methods`). Returns (best, mean held-out NLL per method, out-of-fold prob_fake per method)."""
    from sklearn.model_selection import StratifiedKFold

    from fakescope.metrics import nll

    z, y = np.asarray(logits, float), np.asarray(y, int)
    k = int(min(folds, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError("cross-validation needs at least 2 images of each class")
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    oof = {m: np.zeros(len(z)) for m in methods}
    for train, test in split.split(z, y):
        for m in methods:
            oof[m][test] = apply_calibration(z[test], fit_calibration(m, z[train], y[train]))
    scores = {m: nll(y, oof[m]) for m in methods}
    best = min(methods, key=lambda m: (scores[m], methods.index(m)))
    return best, scores, oof


def threshold_for_fpr(real_probs: np.ndarray, target: float) -> float:
    """The smallest threshold t whose false-positive rate on these real images, the share with
    prob_fake >= t, is <= `target`.

    With the scores sorted from high to low, s[0] >= s[1] >= ..., at most k = floor(target * n)
    reals may be at or above t, so t is the next float above s[k] (ties at s[k] all fall below).
    A target >= 1 gives 0.0 (everything is fake)."""
    p = np.sort(np.asarray(real_probs, float))[::-1]
    if len(p) == 0:
        raise ValueError("no real images to set a threshold on")
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target false-positive rate {target} is not in [0, 1]")
    k = int(np.floor(target * len(p) + 1e-9))
    if k >= len(p):
        return 0.0
    return float(np.nextafter(p[k], np.inf))


def uncertain_band(threshold: float, width: float | None) -> list[float] | None:
    """The `uncertain` config entry for a band of total `width` on calibrated prob_fake centred
    on the threshold: [t - width/2, t + width/2] clipped to [0, 1] (None for no band).

    Verdicts: prob_fake in [low, high) is `uncertain`, >= high `fake`, < low `real`. The band only
    withdraws verdicts around the threshold, so among decided images the false-positive rate can
    only fall below the one the threshold was chosen for."""
    if not width:
        return None
    if not 0.0 < width < 1.0:
        raise ValueError(f"uncertain band width {width} is not in (0, 1)")
    return [max(0.0, threshold - width / 2), min(1.0, threshold + width / 2)]
