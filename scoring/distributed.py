"""Sharding across processes launched by ``torchrun`` (gloo on CPU, NCCL on GPU).

Each rank takes a contiguous shard of the rows, streams it through its own accumulator starting
at the shard's global row (so splits follow global indices), and the float64 sufficient
statistics are summed with ``all_reduce``. Only rank 0 prints and writes.

    torchrun --nproc_per_node 2 "$(which isgame)" score SOURCE --json out.json
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessGroup:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's contiguous rows [start, stop) of n."""
        return self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size


SINGLE = ProcessGroup(rank=0, world_size=1)


def current_group() -> ProcessGroup:
    """The torchrun group if launched by torchrun (WORLD_SIZE > 1), initialised on first use; else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        # Without an orderly teardown a gloo rank can abort at interpreter exit ("terminate called ...").
        atexit.register(_shut_down)
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())


def _shut_down() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
