"""Fit a model: BCE-with-logits, GPU-side augmentation, early stopping, resumable checkpoints.

Images stay uint8 N×H×W×3 on the training device; each batch is gathered, augmented (flip,
translate) and scaled there, so the same loop serves the batch-16 reference recipe and the
large-batch fast recipe, on a CPU or a GPU.

Checkpoint (`checkpoint.safetensors`, rewritten atomically after every epoch): model, best model,
optimizer tensors and RNG states as tensors; epoch, history, early-stopping state, scheduler and
the rest of the optimizer state as JSON in the safetensors metadata. One file, so a kill can never
leave a checkpoint whose parts disagree, and nothing is unpickled on resume.

Under `torchrun` the same loop runs data-parallel (DistributedDataParallel; the rules are in
`fakescope.training.distributed`): every rank draws the same permutation and takes its slice of each
global batch, epoch loss / accuracy and validation are summed over ranks, rank 0's row decides
early stopping for all, and only rank 0 logs and writes the checkpoint. With one process every
step is the single-process loop, bit for bit.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from fakescope.errors import FakescopeError
from fakescope.fileio import atomic_path
from fakescope.models import (
    autocast,
    batched_logits,
    build_model,
    resolve_device,
    to_input,
)
from fakescope.training.config import TrainConfig
from fakescope.training.distributed import (
    Dist,
    all_reduce_sum,
    broadcast_buffers,
    broadcast_object,
    check_in_sync,
    current,
    device_for,
)

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    epoch: int = 0  # epochs completed
    best_val_loss: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


@dataclass
class Draws:
    """An epoch's augmentation randomness, drawn at once from the CPU generator (so a seeded run
    is the same on any device) and moved to the device in one copy: per-batch draws would make
    every step wait for the GPU (a pageable copy synchronises), which the batch-16 reference,
    bound by kernel launches, cannot afford."""

    flip: torch.Tensor | None  # bool, one per image
    shift: torch.Tensor | None  # int, (dy, dx) per image in [0, 2 * translate]

    @classmethod
    def draw(cls, n: int, gen: torch.Generator, cfg: TrainConfig, device) -> Draws:
        flip = (torch.rand(n, generator=gen) < 0.5).to(device) if cfg.flip else None
        t = cfg.translate
        shift = torch.randint(0, 2 * t + 1, (n, 2), generator=gen).to(device) if t > 0 else None
        return cls(flip, shift)

    def take(self, rows) -> Draws:
        return Draws(
            None if self.flip is None else self.flip[rows],
            None if self.shift is None else self.shift[rows],
        )


def augment(x: torch.Tensor, draws: Draws, cfg: TrainConfig) -> torch.Tensor:
    """Flips and reflect-padded shifts for a float N×3×H×W batch, as `draws` (that batch's
    rows) say: no host round trip inside the step."""
    n, _, h, w = x.shape
    if draws.flip is not None:
        x = torch.where(draws.flip.view(n, 1, 1, 1), x.flip(3), x)
    t = cfg.translate
    if draws.shift is not None:
        shift = draws.shift
        padded = nn.functional.pad(x, (t, t, t, t), mode="reflect")
        rows = (torch.arange(h, device=x.device).view(1, h) + shift[:, :1]).view(n, h, 1)
        cols = (torch.arange(w, device=x.device).view(1, w) + shift[:, 1:]).view(n, 1, w)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # one gather
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=True,
            weight_decay=cfg.weight_decay,
        )
    raise FakescopeError(f"unknown optimizer {cfg.optimizer!r} (adam, adamw or sgd)")


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.schedule == "onecycle":
        total = cfg.epochs * steps_per_epoch
        if total < 2:
            return None  # one step: nothing to schedule
        # both phases at least a step long (a tiny run would divide by zero inside torch)
        pct = min(max(cfg.warmup, 1.5 / total), 1 - 0.5 / total)
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=total, pct_start=pct
        )
    if cfg.schedule == "constant":
        return None
    raise FakescopeError(f"unknown schedule {cfg.schedule!r} (constant or onecycle)")


def crop_batch(
    x: np.ndarray, idx: torch.Tensor, rng: np.random.Generator, cfg, labels=None
) -> torch.Tensor:
    """Native-resolution recipe: each image through the shortcut-free pipeline to one crop
    (`labels` for the reals-only resampling step)."""
    from fakescope.training.augment import AugmentConfig, augment_batch

    aug = AugmentConfig(**(cfg.augment or {}))
    return torch.from_numpy(augment_batch(x[idx.numpy()], cfg.crop, rng, aug, labels))


def epoch_order(
    n: int, gen: torch.Generator, d: Dist, weights: torch.Tensor | None = None, size: int = 0
) -> torch.Tensor:
    """The epoch's seeded permutation (the same on every rank), its tail cut to a multiple of
    the world size so every rank gets as many images (a no-op for one process). With sampling
    `weights` (one per image), `size` (default n) draws with replacement instead: balanced
    sources see their small sets more often without copying them."""
    if weights is None:
        order = torch.randperm(n, generator=gen)
    else:
        order = torch.multinomial(weights, size or n, replacement=True, generator=gen)
    return order[: len(order) - len(order) % d.world]


def source_weights(sources: np.ndarray, labels: np.ndarray, balance: float) -> torch.Tensor:
    """Per-image sampling weights: classes equally likely; within a class, a (source, class)
    cell of n images gets a share proportional to n**balance (0: every source alike)."""
    w = np.zeros(len(labels), np.float64)
    for label in np.unique(labels):
        cells = [(s, (sources == s) & (labels == label)) for s in np.unique(sources)]
        cells = [(s, m) for s, m in cells if m.any()]
        shares = np.array([m.sum() ** balance for _, m in cells], np.float64)
        shares /= shares.sum()
        for (_, m), share in zip(cells, shares, strict=True):
            w[m] = share / m.sum()
    return torch.from_numpy(w / w.sum())


def rank_part(n: int, d: Dist) -> slice:
    """This rank's contiguous share of a global batch of `n` (a multiple of the world size)."""
    per = n // d.world
    return slice(d.rank * per, (d.rank + 1) * per)


def steps_per_epoch(n: int, cfg: TrainConfig, d: Dist, sampled: bool = False) -> int:
    if sampled and cfg.epoch_size:
        n = cfg.epoch_size
    return (n - n % d.world + cfg.batch_size - 1) // cfg.batch_size


def train_one_epoch(
    model,
    opt,
    sched,
    x,
    y: torch.Tensor,
    gen,
    cfg,
    device,
    progress: bool,
    desc: str,
    epoch=0,
    d: Dist | None = None,
    after_step=None,
    weights: torch.Tensor | None = None,
) -> dict[str, float]:
    """One pass over the training set in a seeded random order; returns mean loss and accuracy.
    `x` is uint8 N×H×W×3: a tensor on the device (thumbnail recipe) or a numpy array on the CPU
    (crop recipe, augmented per image with a numpy RNG seeded by (seed, epoch), and by rank under
    DDP: resumable). Under DDP each rank trains on its part of every global batch and the
    returned loss and accuracy are over all ranks. `after_step` runs after every optimizer
    step (the weight average). `weights`: sample the epoch by source (`source_weights`)."""
    d = d or Dist()
    model.train()
    rng = np.random.default_rng([cfg.seed, epoch, d.rank] if d.active else [cfg.seed, epoch])
    order = epoch_order(len(y), gen, d, weights, cfg.epoch_size)
    n_total = len(order)
    n_batches = (n_total + cfg.batch_size - 1) // cfg.batch_size
    if not cfg.crop:  # the epoch's order and augmentation on the device, one copy each
        draws = Draws.draw(n_total, gen, cfg, device)
        order = order.to(device)
    seen = 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    bar = tqdm(
        range(n_batches),
        desc=desc,
        unit="batch",
        disable=not progress,
        file=sys.stderr,
        leave=False,
    )
    for b in bar:
        rows = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
        batch = order[rows]
        part = rank_part(len(batch), d)
        idx = batch[part]
        if cfg.crop:
            yb_cpu = y[idx.to(y.device)].cpu().numpy()
            xb = to_input(crop_batch(x, idx, rng, cfg, yb_cpu).to(device), cfg.channels_last)
            idx = idx.to(device)
        else:
            xb = augment(to_input(x[idx], False), draws.take(rows).take(part), cfg)
        yb = y[idx]
        target = yb * (1 - cfg.label_smoothing) + cfg.label_smoothing / 2
        with autocast(device, cfg.amp):
            logits = model(xb).float()
        loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if after_step is not None:
            after_step()
        loss_sum += loss.detach() * len(idx)
        correct += ((logits.detach() > 0) == (yb > 0.5)).sum()
        seen += len(idx)
        if progress and (b % 20 == 0 or b == n_batches - 1):
            bar.set_postfix(
                loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}"
            )
    loss_total, correct_total = all_reduce_sum([loss_sum.item(), correct.item()], device)
    return {"train_loss": loss_total / n_total, "train_acc": correct_total / n_total}


def validate(model, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, device) -> dict[str, float]:
    """Validation loss (no TTA: the early-stopping signal) and accuracy at threshold 0.5; for
    the crop recipe on each image's centre crop (a cheap proxy; final metrics tile whole images
    through the Detector). Under DDP each rank scores a contiguous shard; sums are reduced."""
    if cfg.crop:
        top = (x.shape[1] - cfg.crop) // 2
        x = np.ascontiguousarray(x[:, top : top + cfg.crop, top : top + cfg.crop])
    d = current()
    if d.active:
        return _validate_shard(model, x, y, cfg, device, d)
    logits = batched_logits(
        model, x, device, cfg.eval_batch_size, "none", cfg.amp, cfg.channels_last
    )
    target = torch.as_tensor(y, dtype=torch.float32)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target).item()
    acc = ((logits > 0).long() == torch.as_tensor(y)).float().mean().item()
    return {"val_loss": loss, "val_acc": acc}


def _validate_shard(model, x: np.ndarray, y: np.ndarray, cfg, device, d: Dist) -> dict:
    lo, hi = len(x) * d.rank // d.world, len(x) * (d.rank + 1) // d.world
    logits = batched_logits(
        model, x[lo:hi], device, cfg.eval_batch_size, "none", cfg.amp, cfg.channels_last
    )
    target = torch.as_tensor(y[lo:hi])
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits, target.float(), reduction="sum"
    ).item()
    correct = ((logits > 0).long() == target).sum().item()
    loss_sum, correct_sum = all_reduce_sum([loss, correct], device)
    return {"val_loss": loss_sum / len(x), "val_acc": correct_sum / len(x)}


# ---- checkpoints --------------------------------------------------------------------------


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    path: Path,
    model,
    best: dict,
    opt,
    sched,
    gen,
    state: TrainState,
    cfg: TrainConfig,
    steps: int | None = None,
    ema: nn.Module | None = None,
) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tensors.update({f"model.{k}": v for k, v in _cpu_state(model).items()})
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in _cpu_state(ema).items()})
    tensors.update({f"best.{k}": v for k, v in best.items()})
    opt_sd = opt.state_dict()
    opt_meta: dict[str, dict[str, Any]] = {}
    for pid, pstate in opt_sd["state"].items():
        for k, v in pstate.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                opt_meta.setdefault(str(pid), {})[k] = v
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.gen"] = gen.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {
        "state": state.__dict__,
        "optim_groups": opt_sd["param_groups"],
        "optim_other": opt_meta,
        "scheduler": sched.state_dict() if sched is not None else None,
        "config": cfg.to_dict(),
        "steps_per_epoch": steps,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"fakescope": json.dumps(meta)})


def load_checkpoint(
    path: Path, model, opt, sched, gen, steps: int | None = None, ema: nn.Module | None = None
) -> tuple[TrainState, dict]:
    """Restore a checkpoint into model, optimizer, scheduler and generator. `steps`: this run's
    steps per epoch, which must be the checkpoint's (a schedule cannot change length midway;
    under torchrun it depends on the number of processes)."""
    try:
        from safetensors import safe_open

        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["fakescope"])
    except Exception as e:  # noqa: BLE001 - any failure to parse is one clear message
        raise FakescopeError(f"cannot read checkpoint {path}: {e}") from None
    saved = meta.get("steps_per_epoch")
    if steps is not None and saved is not None and saved != steps:
        raise FakescopeError(
            f"{path} was trained with {saved} steps per epoch, this run would take {steps}: "
            "resume with the number of processes it was started with"
        )
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = v
    for pid, other in meta["optim_other"].items():
        opt_state.setdefault(int(pid), {}).update(other)
    opt.load_state_dict({"state": opt_state, "param_groups": meta["optim_groups"]})
    if sched is not None and meta["scheduler"] is not None:
        sched.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.gen"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return TrainState(**meta["state"]), best


def checkpoint_config(run_dir: Path) -> dict[str, Any]:
    """The training config stored in a run's checkpoint (for --resume)."""
    from safetensors import safe_open

    path = run_dir / CHECKPOINT
    if not path.exists():
        raise FakescopeError(f"nothing to resume: {path} does not exist")
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads(f.metadata()["fakescope"])["config"]
    except Exception as e:  # noqa: BLE001
        raise FakescopeError(f"cannot read checkpoint {path}: {e}") from None


# ---- the loop -----------------------------------------------------------------------------


class FullBatchCompiled(nn.Module):
    """`torch.compile` for full batches; the smaller last batch of an epoch runs eagerly (the
    same weights, the same math). Recompiling for a second shape costs another compile pause,
    another set of CUDA graphs, and crashed inductor on the CPU here (torch 2.14.1)."""

    def __init__(self, net: nn.Module, batch: int, mode: str):
        super().__init__()
        self.net, self.batch = net, batch
        compiled = torch.compile(net, mode=None if mode == "default" else mode)
        object.__setattr__(self, "compiled", compiled)  # not a submodule: no duplicate weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.compiled if len(x) == self.batch else self.net)(x)


def make_ema(model: nn.Module, cfg: TrainConfig):
    """The weight average (torch's AveragedModel, BatchNorm statistics averaged too) or None."""
    if not cfg.ema:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)


def _check_run(cfg: TrainConfig, device: torch.device, d: Dist) -> None:
    """Refuse a run that cannot work, before any model is built."""
    if cfg.batch_size % d.world:
        raise FakescopeError(
            f"batch size {cfg.batch_size} (the global batch) must be a multiple of the "
            f"{d.world} processes"
        )
    if cfg.compile != "off" and device.type != "cuda":
        raise FakescopeError(
            "--compile is for CUDA devices (it removes the GPU's per-kernel launch cost); "
            "torch's CPU compiler crashed on training steps here, so the CPU trains eagerly"
        )


def _load_start_weights(model: nn.Module, cfg: TrainConfig, log) -> None:
    """A new run's starting weights: a pretrained backbone (--pretrained), then a whole
    fakescope model of the same architecture (--init)."""
    if cfg.pretrained:
        from fakescope.models import load_backbone_file, pretrained_backbone_file

        path = (
            pretrained_backbone_file(cfg.arch) if cfg.pretrained == "imagenet" else cfg.pretrained
        )
        if not hasattr(model.net, "load_backbone"):
            raise FakescopeError(f"architecture {cfg.arch!r} takes no pretrained backbone")
        model.net.load_backbone(load_backbone_file(path))
        log(f"backbone weights: {path}")
    if cfg.init:
        from fakescope.model_dir import WEIGHTS, read_config, resolve_model_dir
        from fakescope.models import load_classifier

        path, _ = resolve_model_dir(cfg.init)
        init_cfg = read_config(path)
        if init_cfg.get("arch") != cfg.arch:
            raise FakescopeError(
                f"--init {cfg.init} is a {init_cfg.get('arch')!r} model, not {cfg.arch!r}"
            )
        model.load_state_dict(load_classifier(path / WEIGHTS, init_cfg).state_dict())
        log(f"initial weights: {path}")


def draw_seed(cfg: TrainConfig) -> int:
    """The seed of the epoch draws, augmentation and dropout. A fine-tune (`--init`) keeps
    `--seed` so that its split (and held-out slice) stays its starting run's, but with that seed
    alone it would replay, epoch by epoch, the very draws and augmentations that run trained on;
    mixing in the starting weights' hash gives it fresh ones, reproducibly."""
    if not cfg.init:
        return cfg.seed
    from fakescope.model_dir import WEIGHTS, resolve_model_dir, sha256_file

    path, _ = resolve_model_dir(cfg.init)
    digest = sha256_file(path / WEIGHTS)
    return (cfg.seed + int(digest[:15], 16)) % 2**63


def _record_val_loss(state: TrainState, val_loss: float, patience: int) -> bool:
    """Early-stopping bookkeeping after an epoch (`state.epoch` is the epoch just done): True
    when its validation loss is the best so far (its weights are then kept)."""
    if val_loss < state.best_val_loss:
        state.best_val_loss, state.best_epoch, state.bad_epochs = val_loss, state.epoch, 0
        return True
    state.bad_epochs += 1
    if patience and state.bad_epochs >= patience:
        state.stopped_early = True
    return False


def fit(
    cfg: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    log=print,
    on_epoch=None,
    sources: np.ndarray | None = None,
) -> tuple[nn.Module, TrainState]:
    """Train, checkpointing every epoch into `run_dir`; returns the model with the weights the
    run ends on (the best validation loss when early stopping is on, else the last epoch).
    Inside a torchrun process group this is one rank of a data-parallel run (see the module
    docstring); only rank 0 logs and writes."""
    d = current()
    device = device_for(resolve_device(cfg.device), d)
    _check_run(cfg, device, d)
    if not d.main:
        log, progress = (lambda _msg: None), False
    seed = draw_seed(cfg)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = build_model(cfg.arch)
    if not resume:
        _load_start_weights(model, cfg, log)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # uint8 stays uint8: 4× less memory than float; crops are cut on the CPU
    x = x_train if cfg.crop else torch.from_numpy(x_train).to(device)
    y = torch.from_numpy(y_train.astype(np.float32)).to(device)
    weights = None
    if cfg.balance is not None and sources is not None and cfg.crop:
        weights = source_weights(np.asarray(sources), y_train, cfg.balance)
    steps = steps_per_epoch(len(y_train), cfg, d, sampled=weights is not None)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps)
    ema = make_ema(model, cfg)
    scored = model if ema is None else ema.module  # the weights validated and kept
    state, best = TrainState(), _cpu_state(scored)
    ckpt = run_dir / CHECKPOINT
    if resume:
        state, best = load_checkpoint(ckpt, model, opt, sched, gen, steps, ema)
        log(f"resumed from {ckpt} after epoch {state.epoch}")
    net = model
    if d.active:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)
        log(f"data-parallel over {d.world} processes: {cfg.batch_size // d.world} images each")
    if cfg.compile != "off":
        net = FullBatchCompiled(net, cfg.batch_size // d.world, cfg.compile)
    after_step = None if ema is None else (lambda: ema.update_parameters(model))

    while state.epoch < cfg.epochs and not state.stopped_early:
        t0 = time.perf_counter()
        desc = f"epoch {state.epoch + 1}/{cfg.epochs}"
        row = train_one_epoch(
            net,
            opt,
            sched,
            x,
            y,
            gen,
            cfg,
            device,
            progress,
            desc,
            state.epoch,
            d,
            after_step,
            weights,
        )
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        broadcast_buffers(model, d)
        if ema is not None:
            broadcast_buffers(ema.module, d)
        row.update(validate(scored, x_val, y_val, cfg, device))
        state.epoch += 1
        state.train_seconds += seconds
        row = {"epoch": state.epoch, **row, "seconds": seconds, "lr": opt.param_groups[0]["lr"]}
        row = broadcast_object(row, d)  # rank 0's row decides early stopping for every rank
        state.history.append(row)
        if _record_val_loss(state, row["val_loss"], cfg.patience):
            best = _cpu_state(scored)
        log(
            f"epoch {state.epoch:3d}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
            f"  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  {seconds:.1f}s"
        )
        if d.main:
            save_checkpoint(ckpt, model, best, opt, sched, gen, state, cfg, steps, ema)
        if on_epoch is not None:
            on_epoch(state.epoch, row, scored)  # pruning, benchmarks; may raise to stop

    check_in_sync(model, d, device)
    if ema is not None:
        model.load_state_dict(ema.module.state_dict())  # the average is the result
    if cfg.patience:
        model.load_state_dict(best)  # early stopping restores the best weights
        if state.stopped_early:
            log(
                f"early stopping: no improvement for {cfg.patience} epochs; "
                f"restored epoch {state.best_epoch}"
            )
    return model, state
