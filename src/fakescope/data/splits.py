"""Seeded, stratified subsets and the two split protocols.

- `official`: train on the given training data with a stratified `val_fraction` held out for
  early stopping; the test set is a separate source (CIFAKE's own test split).
- `reference`: what the reference system did: pool everything, 80/20 train/test, then 80/20
  train/validation.

scikit-learn is imported inside the functions that split: importing the data layer (to list an
archive for `scan`, say) must work on the light install, which has no scikit-learn.
"""

from __future__ import annotations

import numpy as np

from fakescope.errors import FakescopeError

PROTOCOLS = ("official", "reference")


def stratified_subset(labels: np.ndarray, subset: float, seed: int) -> np.ndarray:
    """Indices of a stratified sample: `subset` > 1 is a count, ≤ 1 a fraction; sorted."""
    n = len(labels)
    if subset <= 0:
        raise FakescopeError(f"--subset must be positive, got {subset}")
    count = int(round(subset * n)) if subset <= 1 else int(subset)
    if count >= n:
        return np.arange(n)
    if count < 2:
        raise FakescopeError(f"--subset {subset} leaves fewer than 2 images")
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(n), train_size=count, stratify=labels, random_state=seed)
    return np.sort(keep)


def split_two(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split into (1 - fraction, fraction) index arrays, both sorted."""
    from sklearn.model_selection import train_test_split

    a, b = train_test_split(
        np.arange(len(labels)), test_size=fraction, stratify=labels, random_state=seed
    )
    return np.sort(a), np.sort(b)


def make_splits(
    labels: np.ndarray, protocol: str, val_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Index arrays per split: {'train', 'val'} (+ 'test' for the reference protocol)."""
    if protocol == "official":
        train, val = split_two(labels, val_fraction, seed)
        return {"train": train, "val": val}
    if protocol == "reference":
        rest, test = split_two(labels, 0.2, seed)
        tr, va = split_two(labels[rest], val_fraction, seed)
        return {"train": rest[tr], "val": rest[va], "test": test}
    raise FakescopeError(f"unknown protocol {protocol!r} (choose {', '.join(PROTOCOLS)})")
