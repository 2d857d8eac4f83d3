"""Training past one process with PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

``torchrun --nproc_per_node K -m wmenv train MODEL ...`` (or ``wmenv train --nproc K ...``, which
starts ``torch.distributed.run`` itself) runs K copies of the same command. Each copy calls
:func:`init_distributed` (gloo on CPU, NCCL on CUDA), wraps the model's loss in
``DistributedDataParallel`` (gradients are averaged across ranks) and trains on its slice of the
same global batch: every rank draws the global batch ``[B, T]`` from identically seeded replays and
keeps rows ``rank::K``, so K processes follow the one-process loss curve (up to float reduction
order). Rank 0 alone writes checkpoints, logs and progress bars; checkpoints hold no rank-specific
state, so a run resumes at any world size.

Collection under DDP: each rank steps its own real envs with the same seeds and the same (synced)
policy, so the replays stay identical; this is data-parallel learning, not parallel collection
(parallel collection is a Collector option). Nothing here is a cluster layer of wmenv's own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from tensordict import TensorDictBase

__all__ = ["DistContext", "init_distributed", "LossModule"]


class DistContext:
    """Rank and world size of this process (``world == 1``: plain single-process training)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0) -> None:
        self.rank, self.world, self.local_rank = rank, world, local_rank

    @property
    def active(self) -> bool:
        """Whether more than one process trains."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints and logs."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.active:
            dist.barrier()

    def mean(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Average scalar tensors over the ranks (one collective for all of them)."""
        if not self.active or not values:
            return dict(values)
        keys = sorted(values)
        stacked = torch.stack([values[k].detach().float().reshape(()).cpu() for k in keys])
        dist.all_reduce(stacked)
        stacked /= self.world
        return {k: stacked[i] for i, k in enumerate(keys)}


def init_distributed(device: str | torch.device = "cpu") -> DistContext:
    """Join the process group ``torchrun`` set up (``WORLD_SIZE``/``RANK``/``LOCAL_RANK``), once.

    gloo on CPU, NCCL when ``device`` is CUDA. Outside ``torchrun`` this returns a one-process context.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build; run one process")
    cuda = torch.device(device).type == "cuda" or str(device) == "auto" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    return DistContext(dist.get_rank(), dist.get_world_size(), local)


class LossModule(torch.nn.Module):
    """``forward(batch) = model.loss(batch)`` as a plain dict, so ``DistributedDataParallel`` (which hooks
    ``forward``) can wrap any model that follows the loss contract."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: TensorDictBase) -> Any:
        out = self.model.loss(batch)
        if isinstance(out, TensorDictBase):
            return {("/".join(k) if isinstance(k, tuple) else k): v for k, v in out.items(True, True)}
        return out
