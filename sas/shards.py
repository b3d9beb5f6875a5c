"""Which share of a job's work items this process does, when many processes or jobs share one pool.

    shard = Shard.current(shard=0, num_shards=4)       # job 0 of 4, times the torch.distributed rank / world
    mine = [item for i, item in enumerate(items) if shard.owns(i)]
    barrier()                                          # a no-op outside torch.distributed

Two engines split the work, and they multiply: independent jobs (`pool.shard=i pool.num_shards=M`, e.g. a
Hydra / submitit sweep over pool.shard) and the ranks of one torch.distributed job (torchrun, `srun` under
SLURM, Lightning's launchers). Job i of M at rank r of W is this process's shard i * W + r of M * W (the
config's pool.shard / pool.num_shards, times the ranks). A shard is a residue class of the item index (a stripe of
the items), so the split needs no coordination and any split gives the same items.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Shard", "rank_world", "barrier", "init_from_env"]


def rank_world() -> tuple[int, int]:
    """(rank, world size) of the initialised torch.distributed group, else (0, 1)."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def init_from_env() -> bool:
    """Join the process group a launcher describes (torchrun / srun set RANK / WORLD_SIZE / MASTER_ADDR):
    NCCL on CUDA, gloo on CPUs. True when this process is one of several."""
    import torch
    import torch.distributed as dist
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return True


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not (isinstance(self.index, int) and isinstance(self.count, int) and 0 <= self.index < self.count):
            raise ValueError(f"pool.shard must be in 0..pool.num_shards-1, got shard {self.index} of {self.count}")

    @classmethod
    def current(cls, shard: int = 0, num_shards: int = 1) -> "Shard":
        cls(shard, num_shards)                                   # checks the job's own numbers first
        rank, world = rank_world()
        return cls(shard * world + rank, num_shards * world)

    def owns(self, i: int) -> bool:
        return i % self.count == self.index

    @property
    def whole(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count}"
