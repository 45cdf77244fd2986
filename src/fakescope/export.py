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

from fakescope.errors import FakescopeError, missing_extra
from fakescope.model_dir import CONFIG, WEIGHTS, read_config, resolve_model_dir, sha256_file

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
    int8: bool = False,
    calibration_data: list[str] | None = None,
    calibration_n: int = 2048,
    calibration_method: str = "minmax",
) -> dict[str, Any]:
    """Export a shipped model or run folder to `out`; returns what was written.

    fp32 (default): the network as it is, checked against PyTorch (max |logit difference| <
    `TOLERANCE` on random inputs). `int8=True`: that graph quantised (`quantize_int8`) with
    activation ranges from `calibration_n` training images of `calibration_data`. By default
    the file goes into the model's folder (`model.onnx` / `model.int8.onnx`), where its record
    and SHA-256 are written into `config.json` for the `onnx` / `onnx-int8` backends."""
    from fakescope.model_dir import VARIANTS

    if exporter not in EXPORTERS:
        raise FakescopeError(f"unknown exporter {exporter!r} ({' or '.join(EXPORTERS)})")
    if int8 and not calibration_data:
        raise FakescopeError(
            "--int8 needs --calibration-data: training images (never the test set) to "
            "measure activation ranges on"
        )
    try:
        import onnx  # noqa: F401 - checked here so a missing package fails before the work
        import torch
    except ImportError as e:
        raise missing_extra(e.name or "onnx", "onnx") from None
    from fakescope.detector import Detector
    from fakescope.fileio import atomic_path, write_json
    from fakescope.kinds.load import describe

    folder, shipped = resolve_model_dir(model)
    config = read_config(folder)
    describe(model).network()  # a refusal for kinds without a network of their own
    file, key = VARIANTS["onnx-int8" if int8 else "onnx"]
    out = Path(out) if out is not None else folder / file
    into_folder = out.resolve() == (folder / file).resolve()
    if shipped and out.resolve().parent == folder.resolve():
        raise FakescopeError(
            f"{folder.name} is shipped inside the installed fakescope package; its "
            f"{out.name} and {CONFIG} are part of it and are not overwritten: give --out FILE "
            "outside the package"
        )
    det = Detector.load(model, device="cpu", backend="torch")
    size = int(det.input_size)
    wrapper = _uint8_wrapper(det.model.float().cpu())
    record: dict[str, Any] = {
        "file": out.name,
        "opset": opset,
        "exporter": f"torch.onnx.export ({exporter}), torch {torch.__version__}",
        "input": f"{INPUT}: uint8 N×{size}×{size}×3 RGB (N dynamic), as the torch runner gets",
        "output": f"{OUTPUT}: float32 (N,) raw logits before calibration",
        "from_weights_sha256": config.get("weights_sha256") or sha256_file(folder / WEIGHTS),
    }
    with atomic_path(out) as tmp:
        fp32 = tmp.with_name(tmp.name + ".fp32.onnx") if int8 else tmp
        try:
            _torch_export(wrapper, size, fp32, opset, exporter)
            worst = _check(fp32, wrapper, size)
            if not worst < TOLERANCE:
                raise FakescopeError(
                    f"the exported graph differs from PyTorch by {worst:.2e} in logit "
                    f"(> {TOLERANCE}); not written"
                )
            record["max_abs_logit_diff_vs_torch"] = float(f"{worst:.3g}")
            if int8:
                calib = calibration_arrays(det, calibration_data, calibration_n)
                quantize_int8(fp32, tmp, calib, calibration_method)
                record.pop("max_abs_logit_diff_vs_torch")
                record["quantization"] = {
                    "method": "onnxruntime quantize_static: QDQ, per-channel symmetric int8 "
                    "weights, uint8 activations",
                    "calibration": calibration_method,
                    "calibration_images": calibration_n,
                    "calibration_arrays": len(calib),
                    "calibration_data": [Path(p).name for p in calibration_data],
                    **_agreement(fp32, tmp, calib),
                }
        finally:
            if int8:
                fp32.unlink(missing_ok=True)
        _add_metadata(tmp, record, config)
    sha = sha256_file(out)
    if into_folder:
        config = read_config(folder)  # re-read: write back exactly what is there, plus ours
        config[key] = record
        config[f"{key}_sha256"] = sha
        write_json(folder / CONFIG, config)
    return {**record, "path": str(out), "sha256": sha, "recorded_in_config": into_folder}


def calibration_arrays(det, paths: list[str], n: int, per_image: int = 4) -> np.ndarray:
    """Model inputs for `n` training images (stratified, seeded) of a labelled collection,
    through the Detector's own pre-processing; at most `per_image` tiles of each (spread over
    the image) for tiled models."""
    from fakescope.data import list_labelled

    files = list_labelled(paths, purpose="train", subset=n, seed=0)
    out = []
    for _, raw in files.iter_bytes():
        try:
            x = det.preprocess(raw)
        except FakescopeError:
            continue
        pick = np.linspace(0, len(x) - 1, min(per_image, len(x))).round().astype(int)
        out.append(x[np.unique(pick)])
    if not out:
        raise FakescopeError("no calibration image could be read")
    return np.concatenate(out)


def _agreement(fp32: Path, int8: Path, x: np.ndarray) -> dict[str, float]:
    """How far the int8 graph's prob_fake moves from the fp32 graph's on the calibration
    arrays (a sanity check; accuracy on test data is measured by benchmarks/cpu_infer.py)."""
    from fakescope.backends.onnx_runner import OnnxRunner
    from fakescope.calibration import sigmoid

    a, b = OnnxRunner(fp32), OnnxRunner(int8)
    za = np.concatenate([a(x[i : i + 256]) for i in range(0, len(x), 256)])
    zb = np.concatenate([b(x[i : i + 256]) for i in range(0, len(x), 256)])
    agree = float(((za > 0) == (zb > 0)).mean())
    if agree < 0.95:
        raise FakescopeError(
            f"the int8 graph agrees with fp32 on only {agree:.1%} of the calibration images; "
            "not written (try --calibration-method percentile or more --calibration-n)"
        )
    return {
        "verdict_agreement_with_fp32": round(agree, 5),
        "max_abs_prob_diff_vs_fp32": round(float(np.abs(sigmoid(za) - sigmoid(zb)).max()), 5),
    }


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
            {k: v for k, v in config.items() if not k.startswith("onnx")}
        ),
    }
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    m.doc_string = "fakescope detector network: uint8 N×H×W×3 RGB in, one raw logit per image out"
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


QUANT_METHODS = ("minmax", "percentile", "entropy")


def quantize_int8(
    src: str | Path, dst: str | Path, calibration: np.ndarray, method: str = "minmax"
) -> None:
    """Static int8 quantisation of an exported graph (ONNX Runtime's `quantize_static`):
    QDQ format, per-channel symmetric int8 weights, uint8 activations (the combination the
    CPU's VNNI int8 kernels run fastest), activation ranges calibrated on `calibration`
    (uint8 N×H×W×3 arrays built by `Detector.preprocess` from training images, never test
    images)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise FakescopeError(f"unknown calibration method {method!r} ({', '.join(methods)})")

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.it = (
                {INPUT: np.ascontiguousarray(calibration[i : i + 64])}
                for i in range(0, len(calibration), 64)
            )

        def get_next(self):
            return next(self.it, None)

    dst = Path(dst)
    pre = dst.with_name(dst.name + ".pre.onnx")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre),
                str(dst),
                Batches(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
            )
    finally:
        pre.unlink(missing_ok=True)
