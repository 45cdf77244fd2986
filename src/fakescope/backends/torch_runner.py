"""The PyTorch backend: a `Classifier` on a device (extra `torch`)."""

from __future__ import annotations

import numpy as np
import torch

from fakescope.models import Classifier, batched_logits


class TorchRunner:
    """Runs a `fakescope.models.Classifier`; fp32 on the CPU, bf16 autocast on CUDA."""

    name = "torch"

    def __init__(self, model: Classifier, device: torch.device):
        self.model, self.device = model.eval(), device
        # 512 on a GPU; 64 on the CPU, where small batches stay in cache (1.75-2.09x the
        # throughput of 512 for the CIFAKE model on the 2-core CPU of BENCHMARKS.md)
        self.batch_size = 512 if device.type == "cuda" else 64

    def __call__(self, x: np.ndarray) -> np.ndarray:
        amp = "auto" if self.device.type == "cuda" else "off"
        logits = batched_logits(self.model, x, self.device, self.batch_size, "none", amp)
        return logits.numpy().astype(np.float64)
