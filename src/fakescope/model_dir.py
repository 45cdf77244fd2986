"""Model folders: what a model is on disk, below both the `Detector` and the backends.

A model is a folder with `config.json` (`CONFIG`) + weights (`WEIGHTS`, safetensors) and maybe
exported ONNX graphs (`VARIANTS`, run by `fakescope.backends.onnx_runner`): a run folder, or a
shipped model under `fakescope/weights/` (`WEIGHTS_DIR`). This module knows the file names, lists
the shipped models, resolves a name or path to a folder, reads and
writes the config (`model_config` is the one a training run writes) and checks files by SHA-256.

It imports no torch (`save_model` imports safetensors when called) and nothing that scores.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fakescope.errors import FakescopeError
from fakescope.tiles import TileRule

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "auto"
CONFIG, WEIGHTS = "config.json", "model.safetensors"
ONNX_FILE = "model.onnx"
# ONNX backend name -> (graph file in the model folder, config key of its record); the file's
# SHA-256 is under the key + "_sha256". Fastest first: `auto` takes the first one a folder has.
VARIANTS = {
    "onnx-int8": ("model.int8.onnx", "onnx_int8"),
    "onnx": (ONNX_FILE, "onnx"),
}
FORMAT = "fakescope-model/1"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def variants_present(folder: Path) -> list[str]:
    """The ONNX backends whose graph file this model folder has, fastest first."""
    return [name for name, (file, _) in VARIANTS.items() if (Path(folder) / file).is_file()]


def available_models() -> list[str]:
    """Shipped model names, the default first."""
    names = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / CONFIG).is_file())
    return sorted(names, key=lambda n: n != DEFAULT_MODEL)


def save_model(run_dir: Path, model, config: dict[str, Any], half: bool = False) -> None:
    """Write weights (safetensors) then config.json carrying the weights' SHA-256."""
    from safetensors.torch import save_file

    from fakescope.fileio import atomic_path, write_json

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(run_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    config = {**config, "format": FORMAT, "weights_sha256": sha256_file(run_dir / WEIGHTS)}
    write_json(run_dir / CONFIG, config)


def input_of(train_cfg: dict[str, Any]) -> dict[str, Any]:
    """The input rule a training config implies: tiles when it trained on crops."""
    if train_cfg.get("crop"):
        tiles = {"tile": train_cfg["crop"], **(train_cfg.get("tiles") or {})}
        return {"rule": "tiles", **TileRule(**tiles).to_dict()}
    return {"rule": "resize", "size": train_cfg["image_size"]}


def model_config(
    train_cfg: dict[str, Any], metrics: dict[str, Any] | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """The self-describing model config written beside the weights."""
    from fakescope.models import normalisation

    mean, std = normalisation(train_cfg["arch"])
    inp = input_of(train_cfg)
    size = inp.get("size", inp.get("tile"))
    if inp["rule"] == "tiles":
        how = (
            f"{size}×{size} tiles at the image's own pixel scale (never resized; images smaller "
            f"than a tile are mirror-padded), at most {inp['budget']} spread over the image, "
            f"{inp['aggregate']} of tile logits"
        )
    else:
        how = f"centre square crop, Lanczos resize to {size}×{size}"
    return {
        "arch": train_cfg["arch"],
        "input_size": size,
        "input": inp,
        "mean": list(mean),
        "std": list(std),
        "labels": ["real", "fake"],
        "threshold": threshold,
        "calibration": None,
        "uncertain": None,
        "tta": train_cfg.get("tta", "none"),
        "preprocessing": "fakescope.images: first frame, EXIF orientation, RGB (alpha on white, "
        f"high bit depth scaled); {how}; pixels / 255; normalised in the model",
        "training": train_cfg,
        "metrics": metrics or {},
    }


def resolve_model_dir(model: str | os.PathLike | None) -> tuple[Path, bool]:
    """(folder, is_shipped) for a shipped model name or a folder / its config.json."""
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


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FakescopeError(f"cannot read {path / CONFIG}: {e}") from None
    if not isinstance(config, dict):
        raise FakescopeError(f"{path / CONFIG} is not a JSON object")
    return config
