"""The ONNX Runtime backend: a model folder's `model.onnx` on the CPU, without PyTorch.

The graph (`fakescope.export`) takes the same uint8 N×H×W×3 arrays as the torch runner, with the
conversion and normalisation inside it, so this runner only feeds arrays and reads logits.

Session options (chosen by `benchmarks/cpu_infer.py` on the 2-core CPU of BENCHMARKS.md):

- CPU execution provider only (the `onnxruntime` wheel; no GPU provider is assumed);
- graph optimisation level `ORT_ENABLE_ALL` (constant folding, Conv+BatchNorm+ReLU fusion,
  QuantizeLinear/DequantizeLinear pairs fused into int8 kernels, layout transforms for the
  CPU's blocked kernels): for the int8 graph `basic` was 5x slower than `all`, for fp32 1.4x;
- `intra_op_num_threads` = the CPU cores this process may use (`os.sched_getaffinity`), at most
  `MAX_THREADS`; `inter_op_num_threads` = 1 with sequential execution (a CNN is one chain of
  operators: parallel branches have nothing to run);
- no spin-waiting of idle intra-op threads (`session.intra_op.allow_spinning = 0`): spinning
  burns the CPU that the Detector's decoding threads (and other jobs) need; on the loaded
  2-core machine two spinning threads gave 0.79x the int8 throughput of two that sleep;
- `FAKESCOPE_ORT_THREADS` overrides the thread count (e.g. 1 per process when several scoring
  processes share a machine).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fakescope.errors import FakescopeError
from fakescope.model_dir import CONFIG, VARIANTS, WEIGHTS, sha256_file

MAX_THREADS = 8


def default_threads() -> int:
    env = os.environ.get("FAKESCOPE_ORT_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise FakescopeError(f"FAKESCOPE_ORT_THREADS={env!r} is not a whole number") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


def session_options(threads: int | None = None, optimization: str = "all", spinning: bool = False):
    """The documented `SessionOptions` (see the module docstring); `spinning` only for
    measuring the alternative."""
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[optimization]
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: no optimiser chatter on stderr
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


def ort_session(path: Path, opts):
    """An ONNX Runtime CPU session for `path`; a file ORT cannot load is a `FakescopeError`."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own types for bad files
        raise FakescopeError(f"cannot load {path} with onnxruntime: {e}") from None


def load_onnx(folder: Path, config: dict, device: str, backend: str = "onnx") -> OnnxRunner:
    """The runner for one of a folder's ONNX graphs, checked against its `config.json`: the
    file's SHA-256, and the weights it was made from (a retrained model's old graph is
    refused)."""
    if device not in ("auto", "cpu"):
        raise FakescopeError(
            f"the ONNX backend runs on the CPU; for --device {device} use --backend torch"
        )
    file, key = VARIANTS[backend]
    path = Path(folder) / file
    if not path.is_file():
        how = "--int8 --calibration-data TRAIN_DATA " if backend == "onnx-int8" else ""
        raise FakescopeError(
            f"{folder} has no {file}: make it with fakescope export --format onnx {how}"
            f"--model {folder} (needs the torch extra), or use --backend torch"
        )
    expected = config.get(f"{key}_sha256")
    if expected is None:
        raise FakescopeError(f"{CONFIG} in {folder} does not record {file}: export it again")
    if sha256_file(path) != expected:
        raise FakescopeError(f"{path}: SHA-256 does not match {CONFIG} (corrupt or replaced)")
    made_from = (config.get(key) or {}).get("from_weights_sha256")
    if config.get("weights_sha256") and made_from != config["weights_sha256"]:
        raise FakescopeError(f"{path} was exported from other weights than {WEIGHTS}: export again")
    return OnnxRunner(path)


class OnnxRunner:
    """Runs an exported fakescope graph with ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(
        self,
        path: str | os.PathLike,
        threads: int | None = None,
        optimization: str = "all",
        batch_size: int = 64,
    ):
        try:
            import onnxruntime  # noqa: F401 - checked here for a clear message
        except ImportError:
            raise FakescopeError(
                "the ONNX backend needs onnxruntime: pip install onnxruntime (or --backend torch)"
            ) from None
        self.path = Path(path)
        self.session = ort_session(self.path, session_options(threads, optimization))
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(inputs[0].shape) != 4:
            raise FakescopeError(
                f"{self.path} is not a fakescope graph (one uint8 N×H×W×3 input expected)"
            )
        self.input = inputs[0].name
        self.input_shape = tuple(inputs[0].shape)  # ('batch', H, W, 3)
        self.device = "cpu"
        # 64 arrays per call, as for the torch runner on the CPU: small batches stay in cache.
        self.batch_size = batch_size

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.uint8)
        if x.shape[1:] != self.input_shape[1:]:
            raise FakescopeError(
                f"{self.path} takes N×{self.input_shape[1]}×{self.input_shape[2]}×3 arrays, "
                f"got {x.shape}"
            )
        (logits,) = self.session.run(None, {self.input: x})
        return np.asarray(logits, dtype=np.float64).reshape(len(x))
