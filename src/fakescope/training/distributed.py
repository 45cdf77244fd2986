"""Data-parallel training across processes started by `torchrun` (one process per GPU, or CPU
processes talking over gloo).

`torchrun --nproc-per-node N -m fakescope train ...` starts N copies of the command with
WORLD_SIZE / RANK / LOCAL_RANK (and MASTER_ADDR / MASTER_PORT) in their environment. Each copy
joins the process group (`process_group`), trains its shard of every batch inside
DistributedDataParallel, and only rank 0 logs and writes files (the torchvision references'
`save_on_master` pattern). Without those variables, or with WORLD_SIZE=1, nothing here does
anything and training is the plain single-process loop.

The rules (also in the README):

- `batch_size` is the **global** batch: each of the W ranks takes a contiguous 1/W of every
  batch, so a run takes the same steps with the same learning rate and schedule on any number of
  processes; `batch_size` must be a multiple of W. To use more GPUs for a larger batch, raise
  `--batch-size` and scale `--lr` yourself (linear rule: lr × new/old batch) — nothing is
  rescaled silently.
- Every rank draws the same seeded permutation per epoch; with W > 1 its last `N mod W` entries
  are dropped (at most W - 1 images an epoch, different ones each epoch) so every rank gets the
  same number of images — DistributedSampler's drop_last, applied once to the global order.
- Flip / shift augmentation draws its random numbers for the whole global batch on every rank
  and each rank uses its slice: rank shards together see exactly the single-process batch. The
  crop recipe's per-image numpy stream is seeded by (seed, epoch, rank) instead.
- What still differs from one process: batch norm normalises over each rank's shard
  (batch_size / W images), and floating-point sums are taken in another order.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from fakescope.errors import FakescopeError

# Generous: rank 0 alone decodes the data (filling the cache) and scores the final test set
# while the others wait at a collective; a crashed rank is ended by torchrun long before this.
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (world 1, rank 0 when not distributed)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def env_rank() -> int:
    """This process's rank from torchrun's environment (0 outside torchrun); usable before the
    process group exists, e.g. to keep log lines to rank 0."""
    return int(os.environ.get("RANK", "0") or 0)


def current() -> Dist:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        local = int(os.environ.get("LOCAL_RANK", "0") or 0)
        return Dist(dist.get_world_size(), dist.get_rank(), local)
    return Dist()


@contextlib.contextmanager
def process_group(device: str) -> Iterator[Dist]:
    """Join torchrun's process group for the duration of a training run: NCCL with one GPU per
    local rank on CUDA, gloo on the CPU. A no-op without torchrun (or with one process)."""
    import torch
    import torch.distributed as dist

    from fakescope.models import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or dist.is_initialized():
        yield current()
        return
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    dev = resolve_device(device)
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise FakescopeError(
                f"local rank {local} has no GPU: this node has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc-per-node)"
            )
        torch.cuda.set_device(local)
    if dev.type == "cuda":
        gpu = torch.device("cuda", local)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=gpu)
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    if dist.get_rank() != 0:
        # Only rank 0 speaks: the other ranks' stdout (the CLI's summary) goes nowhere, as in
        # torchvision's setup_for_distributed; their errors still reach stderr.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of this process
    try:
        yield current()
    finally:
        dist.destroy_process_group()


def device_for(device, d: Dist):
    """The device this rank trains on: its own GPU (cuda:LOCAL_RANK) under torchrun."""
    import torch

    if d.active and device.type == "cuda":
        return torch.device("cuda", d.local_rank)
    return device


@contextlib.contextmanager
def local_main_first(d: Dist) -> Iterator[None]:
    """Local rank 0 of each node runs the block first (decoding the data into the node's cache),
    then the other ranks run it (reading that cache)."""
    import torch.distributed as dist

    kw = {"device_ids": [d.local_rank]} if d.active and dist.get_backend() == "nccl" else {}
    if d.active and d.local_rank != 0:
        dist.barrier(**kw)
    yield
    if d.active and d.local_rank == 0:
        dist.barrier(**kw)


def all_reduce_sum(values: list[float], device) -> list[float]:
    """Sums of each value over all ranks (the values themselves when not distributed)."""
    if not current().active:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_object(obj, d: Dist):
    """Rank 0's `obj` on every rank (pickled over the process group: internal data only)."""
    if not d.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(module, d: Dist) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics): each rank updated its
    own from its shard during the epoch; DDP would copy rank 0's at the next forward anyway, and
    rank 0's are the ones its checkpoint saves."""
    if not d.active:
        return
    import torch.distributed as dist

    for b in module.buffers():
        dist.broadcast(b, src=0)


def check_in_sync(module, d: Dist, device) -> None:
    """Raise on every rank if the ranks' weights differ. DDP keeps them bit-identical (the same
    averaged gradients through the same optimizer); a difference means a broken setup, and rank
    0 would otherwise save a model the other ranks did not train."""
    if not d.active:
        return
    import torch
    import torch.distributed as dist

    total = sum(p.detach().double().sum() for p in module.parameters())
    lo = torch.stack([total]).to(device)
    hi = lo.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if lo.item() != hi.item():
        raise FakescopeError("the training processes' weights differ (ranks out of sync)")
