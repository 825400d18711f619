"""Sharding across processes launched by ``torchrun`` (gloo on CPU, NCCL on GPU).

Each rank takes a contiguous shard of the rows, streams it through its own accumulator starting
at the shard's global row (so splits follow global indices), and the float64 sufficient
statistics are summed with ``all_reduce``. Per-row outputs that later steps need whole (logits and
features for the dialects, the matrix's metrics, attacked images) are concatenated in rank order
with :func:`all_gather_rows`, so every rank continues with the single-process tensors. Only rank 0
prints and writes.

    torchrun --nproc_per_node 2 "$(which isgame)" score SOURCE --json out.json

Every collective goes through this module: NCCL only moves CUDA tensors, so under NCCL the CPU
statistics travel through the rank's GPU and come back.
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
        return self.shard_of(self.rank, n)

    def shard_of(self, rank: int, n: int) -> tuple[int, int]:
        """Rank ``rank``'s contiguous rows [start, stop) of n; shards differ in size by at most one row."""
        return rank * n // self.world_size, (rank + 1) * n // self.world_size


SINGLE = ProcessGroup(rank=0, world_size=1)


def current_group() -> ProcessGroup:
    """The torchrun group if launched by torchrun (WORLD_SIZE > 1), initialised on first use; else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            # One GPU per rank: torchrun sets LOCAL_RANK; NCCL needs the device chosen before its first call.
            torch.cuda.set_device(local_device())
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        # Without an orderly teardown a gloo rank can abort at interpreter exit ("terminate called ...").
        atexit.register(_shut_down)
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size())


_failed = False


def mark_failed() -> None:
    """This rank is leaving on an error: skip the exit barrier, which the other ranks (stuck in a collective
    or already gone) would never reach. torchrun then stops the others."""
    global _failed
    _failed = True


def _shut_down() -> None:
    import torch.distributed as dist

    if dist.is_initialized() and not _failed:
        dist.barrier()
        dist.destroy_process_group()


def local_device():
    """This process's device under ``--device auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _communication_device():
    import torch
    import torch.distributed as dist

    return local_device() if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum_(tensor):
    """Sum ``tensor`` over every rank, in place; returns it. A no-op in a single process."""
    import torch.distributed as dist

    if current_group().world_size == 1:
        return tensor
    carrier = tensor.to(_communication_device())
    dist.all_reduce(carrier, op=dist.ReduceOp.SUM)
    if carrier is not tensor:
        tensor.copy_(carrier)
    return tensor


def sum_over_ranks(*values: float | int) -> tuple[float, ...]:
    """Each value summed over every rank (float64); the values themselves in a single process."""
    import torch

    totals = all_reduce_sum_(torch.tensor(values, dtype=torch.float64))
    return tuple(totals.tolist())


def all_gather_rows(local, total: int):
    """Concatenate every rank's shard of rows (``ProcessGroup.shard`` of ``total``) in rank order.

    ``local`` is this rank's (stop - start, ...) tensor; returns the (total, ...) tensor on every rank,
    on ``local``'s device. Gradients do not flow through. In a single process, ``local`` itself.
    """
    import torch
    import torch.distributed as dist

    group = current_group()
    if group.world_size == 1:
        return local
    start, stop = group.shard(total)
    if local.shape[0] != stop - start:
        raise ValueError(f"rank {group.rank} holds {local.shape[0]} rows, its shard of {total} has {stop - start}")
    # all_gather needs equal shapes: pad every shard to the largest, then trim. Masks travel as uint8 (gloo has no bool).
    largest = -(-total // group.world_size)
    device = _communication_device()
    carrier = torch.uint8 if local.dtype == torch.bool else local.dtype
    padded = torch.zeros((largest, *local.shape[1:]), dtype=carrier, device=device)
    padded[: local.shape[0]] = local.detach()
    pieces = [torch.empty_like(padded) for _ in range(group.world_size)]
    dist.all_gather(pieces, padded)
    sizes = [stop - start for start, stop in (group.shard_of(rank, total) for rank in range(group.world_size))]
    return torch.cat([piece[:size] for piece, size in zip(pieces, sizes)]).to(device=local.device, dtype=local.dtype)
