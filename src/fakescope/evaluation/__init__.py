"""Measurements through the Detector on labelled data: `evaluate` (metrics, per-image scores,
plots), `perturb` + `robustness` (the perturbation grid), `calibrate` (threshold and calibration
fitted on held-out data, written as a calibrated model copy) and `audit` (duplicates, leakage and
shortcut cues in the data itself). The modules import each other directly; this package
re-exports nothing."""
