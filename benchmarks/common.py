"""What every benchmark prints first: the device it measured, in words."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def hardware(device: torch.device) -> str:
    """GPU name, or the CPU's model name and core count (platform.processor() is often empty)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {torch.get_num_threads()} threads"
