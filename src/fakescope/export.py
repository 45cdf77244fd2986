"""`fakescope export --format onnx`: a model folder's network as one self-contained ONNX file.

The graph takes exactly what every backend's runner takes (`fakescope.backends`): the uint8
N×H×W×3 RGB arrays that `Detector` builds with the shared pre-processing code, and returns one raw
logit per row. The input conversion (uint8 -> float, / 255, NHWC -> NCHW) and the normalisation
are *inside* the graph, so ONNX Runtime needs no pre-processing of its own and cannot drift from
the PyTorch path. The batch dimension is dynamic; H and W are fixed at the model's input size
(thumbnail models) or tile size (tiled models): `Detector` always cuts tiles of exactly that size,
and tiling, aggregation and calibration stay in the shared numpy code.

Written into a model folder as `model.onnx`, the file's SHA-256, opset and the weights it was
made from are recorded in the folder's `config.json` (`onnx_sha256`, `onnx`), and the loader
refuses a file that does not match, or that was exported from other weights. The opset and the
whole model config are also stored in the file's own metadata (`metadata_props`).

Exporter: the dynamo-based `torch.onnx.export(dynamo=True)` (needs `onnxscript`; the default in
current PyTorch), or the older TorchScript exporter (`--exporter torchscript`); both give the same
logits to ~1e-6 on the shipped model (`tests/test_onnx.py`).
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.detector import (
    CONFIG,
    ONNX_FILE,
    WEIGHTS,
    read_config,
    resolve_model_dir,
    sha256_file,
)
from fakescope.errors import FakescopeError, missing_extra

OPSET = 18  # the dynamo exporter's native opset; onnxruntime >= 1.14 runs it
EXPORTERS = ("dynamo", "torchscript")
INPUT, OUTPUT = "image", "logit"
TOLERANCE = 1e-4  # max |logit difference| between the exported graph and PyTorch


def _uint8_wrapper(classifier):
    """The Classifier behind the same conversion as `fakescope.models.to_input`."""
    from torch import nn

    class UInt8Input(nn.Module):
        """uint8 N×H×W×3 -> float N×3×H×W in [0, 1] -> Classifier -> logits (N,)."""

        def __init__(self, model: nn.Module):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x.permute(0, 3, 1, 2).float() / 255)

    return UInt8Input(classifier).eval()


def _torch_export(wrapper, size: int, out: Path, opset: int, exporter: str) -> None:
    import torch

    example = (torch.zeros(2, size, size, 3, dtype=torch.uint8),)
    kwargs: dict[str, Any] = dict(
        input_names=[INPUT], output_names=[OUTPUT], opset_version=opset, external_data=False
    )
    if exporter == "dynamo":
        kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=1)}}
    else:
        kwargs["dynamic_axes"] = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    # The exporters print progress on stdout and warn about internals: keep stdout for data.
    with (
        contextlib.redirect_stdout(sys.stderr),
        warnings.catch_warnings(),
        torch.inference_mode(False),
    ):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapper, example, str(out), dynamo=exporter == "dynamo", **kwargs)
        except ImportError as e:  # the dynamo exporter needs onnxscript
            raise missing_extra(e.name or "onnxscript", "onnx") from None


def _check(path: Path, wrapper, size: int, seed: int = 0) -> float:
    """Max |logit difference| between ONNX Runtime and PyTorch on random uint8 inputs at
    batch sizes 1 and 5 (which also proves the batch dimension is dynamic)."""
    import torch

    from fakescope.backends.onnx_runner import OnnxRunner

    runner = OnnxRunner(path)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n in (1, 5):
        x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        with torch.inference_mode():
            ref = wrapper(torch.from_numpy(x)).double().numpy()
        worst = max(worst, float(np.abs(runner(x) - ref).max()))
    return worst


def export_onnx(
    model: str | Path | None,
    out: str | Path | None = None,
    opset: int = OPSET,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export a shipped model or run folder to `out` (default: `model.onnx` in its folder).

    Returns the record written into the folder's config (`onnx`), with `path` and `sha256`.
    Writing into the model's own folder as `model.onnx` records the file in its `config.json`."""
    if exporter not in EXPORTERS:
        raise FakescopeError(f"unknown exporter {exporter!r} ({' or '.join(EXPORTERS)})")
    try:
        import onnx  # noqa: F401 - checked here so a missing package fails before the work
        import torch
    except ImportError as e:
        raise missing_extra(e.name or "onnx", "onnx") from None
    from fakescope.detector import Detector
    from fakescope.fileio import atomic_path, write_json

    folder, _ = resolve_model_dir(model)
    config = read_config(folder)
    if "route" in config:
        members = ", ".join(str(r.get("model")) for r in config["route"])
        raise FakescopeError(
            f"{folder} is a routing model with no network of its own; export each of its "
            f"models instead ({members}): fakescope export --format onnx --model NAME"
        )
    out = Path(out) if out is not None else folder / ONNX_FILE
    into_folder = out.resolve() == (folder / ONNX_FILE).resolve()
    det = Detector.load(model, device="cpu", backend="torch")
    size = int(det.input_size)
    wrapper = _uint8_wrapper(det.model.float().cpu())
    record = {
        "file": ONNX_FILE if into_folder else out.name,
        "opset": opset,
        "exporter": f"torch.onnx.export ({exporter}), torch {torch.__version__}",
        "input": f"{INPUT}: uint8 N×{size}×{size}×3 RGB (N dynamic), as the torch runner gets",
        "output": f"{OUTPUT}: float32 (N,) raw logits before calibration",
        "from_weights_sha256": config.get("weights_sha256") or sha256_file(folder / WEIGHTS),
    }
    with atomic_path(out) as tmp:
        _torch_export(wrapper, size, tmp, opset, exporter)
        _add_metadata(tmp, record, config)
        worst = _check(tmp, wrapper, size)
        if not worst < TOLERANCE:
            raise FakescopeError(
                f"the exported graph differs from PyTorch by {worst:.2e} in logit "
                f"(> {TOLERANCE}); not written"
            )
    record["max_abs_logit_diff_vs_torch"] = float(f"{worst:.3g}")
    sha = sha256_file(out)
    if into_folder:
        config = read_config(folder)  # unchanged since; re-read to write back exactly
        config["onnx"] = record
        config["onnx_sha256"] = sha
        write_json(folder / CONFIG, config)
    return {**record, "path": str(out), "sha256": sha, "recorded_in_config": into_folder}


def _add_metadata(path: Path, record: dict[str, Any], config: dict[str, Any]) -> None:
    """Opset, input/output description and the model config inside the file itself; checked
    with `onnx.checker` and saved back as one file (no external data)."""
    import onnx

    m = onnx.load(str(path))
    meta = {
        "fakescope_format": "fakescope-onnx/1",
        "opset": str(record["opset"]),
        "input": record["input"],
        "output": record["output"],
        "from_weights_sha256": record["from_weights_sha256"],
        "fakescope_config": json.dumps(
            {k: v for k, v in config.items() if k not in ("onnx", "onnx_sha256")}
        ),
    }
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    m.doc_string = "fakescope detector network: uint8 N×H×W×3 RGB in, one raw logit per image out"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
