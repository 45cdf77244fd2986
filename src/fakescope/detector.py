"""`Detector`: the one way from an image to a score.

The CLI (predict, evaluate, explain), the Python API and every later entry point call this class;
pre-processing is `fakescope.images.to_model_input`, the same function that built the training
arrays. A model is a folder with `config.json` + `model.safetensors` (a run folder or a shipped
model under `fakescope/weights/`); nothing else is ever read from a model path.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fakescope.data.sources import LABEL_NAMES
from fakescope.errors import FakescopeError, ImageError
from fakescope.fileio import atomic_path, write_json
from fakescope.images import ImageSource, to_model_input
from fakescope.models import Classifier, batched_logits, build_model, resolve_device

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "cifake-resnet10s"
CONFIG, WEIGHTS = "config.json", "model.safetensors"
FORMAT = "fakescope-model/1"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def available_models() -> list[str]:
    """Shipped model names, the default first."""
    names = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / CONFIG).is_file())
    return sorted(names, key=lambda n: n != DEFAULT_MODEL)


def save_model(
    run_dir: Path, model: Classifier, config: dict[str, Any], half: bool = False
) -> None:
    """Write weights (safetensors) then config.json carrying the weights' SHA-256."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    config = {**config, "format": FORMAT, "weights_sha256": sha256_file(run_dir / WEIGHTS)}
    write_json(run_dir / CONFIG, config)


def model_config(
    train_cfg: dict[str, Any], metrics: dict[str, Any] | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """The self-describing model config written beside the weights."""
    from fakescope.models import MEAN, STD

    return {
        "arch": train_cfg["arch"],
        "input_size": train_cfg["image_size"],
        "mean": list(MEAN),
        "std": list(STD),
        "labels": list(LABEL_NAMES),
        "threshold": threshold,
        "tta": train_cfg.get("tta", "none"),
        "preprocessing": "fakescope.images.to_model_input: first frame, EXIF orientation, "
        "RGB (alpha on white, high bit depth scaled), centre square crop, "
        "Lanczos resize to input_size; pixels / 255; normalised in the model",
        "training": train_cfg,
        "metrics": metrics or {},
    }


def _resolve_model_dir(model: str | os.PathLike | None) -> tuple[Path, bool]:
    if model is None:
        model = DEFAULT_MODEL
    shipped = WEIGHTS_DIR / str(model)
    if isinstance(model, str) and "/" not in model and (shipped / CONFIG).is_file():
        return shipped, True
    path = Path(model)
    if path.is_file() and path.name in (CONFIG, WEIGHTS):
        path = path.parent
    if not (path / CONFIG).is_file():
        names = ", ".join(available_models()) or "none"
        raise FakescopeError(
            f"no model at {model!s}: give a shipped model name ({names}) or a run folder "
            f"with {CONFIG} and {WEIGHTS}"
        )
    return path, False


class Detector:
    """Load a model once; score images, arrays or whole batches; explain a verdict."""

    def __init__(
        self, model: Classifier, config: dict[str, Any], device: torch.device, name: str = ""
    ):
        self.model, self.config, self.device, self.name = model.eval(), config, device, name
        self.input_size = int(config["input_size"])
        self.threshold = float(config.get("threshold", 0.5))
        self.tta = config.get("tta", "none")
        # 512 on a GPU; 64 on the CPU, where small batches stay in cache (1.75-2.09x the
        # throughput of 512 on the 2-core CPU of BENCHMARKS.md, identical scores)
        self.batch_size = 512 if device.type == "cuda" else 64

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, device: str = "auto") -> Detector:
        """A shipped model by name (default: the CIFAKE model) or a run folder."""
        path, shipped = _resolve_model_dir(model)
        try:
            config = json.loads((path / CONFIG).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise FakescopeError(f"cannot read {path / CONFIG}: {e}") from None
        wfile = path / WEIGHTS
        if not wfile.is_file():
            raise FakescopeError(f"missing weights file {wfile}")
        expected = config.get("weights_sha256")
        if (shipped or expected) and sha256_file(wfile) != expected:
            raise FakescopeError(
                f"{wfile}: SHA-256 does not match {CONFIG} (corrupt or replaced weights file)"
            )
        try:
            state = load_file(str(wfile))
        except Exception as e:  # noqa: BLE001 - safetensors raises several types
            raise FakescopeError(f"{wfile} is not a readable safetensors file: {e}") from None
        net = build_model(config.get("arch", "?"), config.get("mean"), config.get("std"))
        expected_shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        got_shapes = {k: tuple(v.shape) for k, v in state.items()}
        if expected_shapes != got_shapes:
            missing = sorted(set(expected_shapes) - set(got_shapes))[:3]
            extra = sorted(set(got_shapes) - set(expected_shapes))[:3]
            wrong = [
                k
                for k in expected_shapes.keys() & got_shapes.keys()
                if expected_shapes[k] != got_shapes[k]
            ][:3]
            raise FakescopeError(
                f"{wfile} does not fit architecture {config.get('arch')!r}: "
                f"missing {missing}, unexpected {extra}, wrong shape {wrong}"
            )
        net.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
        dev = resolve_device(device)
        return cls(net.to(dev), config, dev, name=path.name if shipped else str(path))

    # ---- scoring ------------------------------------------------------------------------

    def preprocess(self, image: ImageSource) -> np.ndarray:
        """Any image -> input_size × input_size × 3 uint8 (the training pre-processing)."""
        return to_model_input(image, self.input_size)

    def logits_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Raw model logits (before calibration) for pre-processed uint8 N×H×W×3 arrays."""
        batch_size = batch_size or self.batch_size
        amp = "auto" if self.device.type == "cuda" else "off"
        logits = batched_logits(self.model, x, self.device, batch_size, self.tta, amp)
        return logits.numpy().astype(np.float64)

    def score_arrays(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """prob_fake for pre-processed uint8 N×H×W×3 arrays (batches of `self.batch_size`)."""
        return 1.0 / (1.0 + np.exp(-self.logits_arrays(x, batch_size)))

    def iter_logits(
        self, images: Iterable[ImageSource], batch_size: int = 256
    ) -> Iterator[tuple[float | None, str]]:
        """(raw logit before calibration, "") or (None, error) per image, in order; for fitting
        calibration and for measurements that need the model's own score."""
        for row in self.iter_predict(images, batch_size):
            if row["error"]:
                yield None, row["error"]
            else:
                p = min(max(row["prob_fake"], 1e-12), 1 - 1e-12)
                yield float(np.log(p / (1 - p))), ""

    def _row(self, path: str, prob: float | None, error: str = "") -> dict[str, Any]:
        if prob is None:
            return {"path": path, "prob_fake": None, "label": None, "error": error}
        label = LABEL_NAMES[int(prob >= self.threshold)]
        return {"path": path, "prob_fake": round(float(prob), 6), "label": label, "error": ""}

    def predict(self, image: ImageSource) -> dict[str, Any]:
        """{path, prob_fake, label, error} for one image; raises ImageError if unreadable."""
        x = self.preprocess(image)[None]
        return self._row(_name_of(image), float(self.score_arrays(x)[0]))

    def iter_predict(
        self, images: Iterable[ImageSource], batch_size: int = 256, workers: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stream rows for any number of images: decoded in threads a batch at a time (memory
        bounded), scored in batches; an unreadable image yields a row with `error` set."""
        workers = workers or os.cpu_count() or 1

        def prep(img: ImageSource) -> np.ndarray | str:
            try:
                return self.preprocess(img)
            except ImageError as e:
                return str(e)
            except OSError as e:
                return f"cannot read file: {e.strerror or e}"

        with ThreadPoolExecutor(max_workers=workers) as pool:
            batch: list[ImageSource] = []
            for img in images:
                batch.append(img)
                if len(batch) == batch_size:
                    yield from self._score_batch(batch, list(pool.map(prep, batch)))
                    batch = []
            if batch:
                yield from self._score_batch(batch, list(pool.map(prep, batch)))

    def _score_batch(self, images, arrays) -> Iterator[dict[str, Any]]:
        good = [i for i, a in enumerate(arrays) if not isinstance(a, str)]
        probs = self.score_arrays(np.stack([arrays[i] for i in good])) if good else []
        prob_of = dict(zip(good, probs, strict=True))
        for i, img in enumerate(images):
            if i in prob_of:
                yield self._row(_name_of(img), prob_of[i])
            else:
                yield self._row(_name_of(img), None, arrays[i])

    def explain(self, image: ImageSource, method: str = "gradcam"):
        """Grad-CAM for the predicted class -> `Explanation` (heatmap at input size in [0, 1],
        `.overlay`, `.panel()`). Needs the `explain` extra."""
        from fakescope.explain import Explanation, cam_batch

        x = self.preprocess(image)[None]
        prob = float(self.score_arrays(x)[0])
        pred = int(prob >= self.threshold)
        heat = cam_batch(self.model, x, np.array([pred]), self.input_size, method)[0]
        return Explanation(x[0], heat, prob, LABEL_NAMES[pred], method)

    def predict_batch(
        self, images: Iterable[ImageSource], batch_size: int = 256
    ) -> list[dict[str, Any]]:
        """Rows for paths or PIL images; bad images get an `error` instead of raising."""
        return list(self.iter_predict(images, batch_size))


def _name_of(image: ImageSource) -> str:
    if isinstance(image, str | os.PathLike):
        return str(image)
    return getattr(image, "filename", "") or "<image>"
