"""Backends run a model's network: uint8 N×H×W×3 batches in, one raw logit per image out.

Everything before (decoding, the input rule, tiling) and after (aggregation, calibration, the
verdict) is shared code in `fakescope.detector`; a backend only runs the network, so PyTorch and
any other runtime see exactly the same inputs.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Runner(Protocol):
    """A loaded network. `__call__` maps uint8 N×H×W×3 to float64 logits (N,)."""

    name: str  # backend name, e.g. "torch"
    batch_size: int  # a good batch size for this backend and device

    def __call__(self, x: np.ndarray) -> np.ndarray: ...
