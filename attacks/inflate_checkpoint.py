"""Resumable inflate attacks: the whole loop state as safetensors, written atomically, one file per rank.

Raw tensors only (safetensors never runs code); the trace and a fingerprint of the settings and the
starting images travel as JSON metadata, so a checkpoint written by another attack is refused.
Under torchrun each rank writes its own shard's file, ``NAME.rank{r}-of-{w}.SUFFIX``, and every
rank must find its file, or none may.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from isgame.scoring.errors import InvalidInputError, parameter
from isgame.scoring.runtime.distributed import current_group, sum_over_ranks


def attack_fingerprint(settings: tuple, start_images: torch.Tensor, *, first: int, total: int) -> str:
    """Every setting that changes the trajectory, the rows this rank attacks, and a hash of their start."""
    digest = hashlib.sha256(start_images.contiguous().numpy().tobytes()).hexdigest()
    where = f"|rows={first}:{first + start_images.shape[0]}" if total != start_images.shape[0] else ""
    return f"{settings}|n={total}{where}|start={digest}"


class InflateCheckpoint:
    """This rank's checkpoint file of one attack, identified by its ``fingerprint``."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.requested = Path(path)
        self.fingerprint = fingerprint
        group = current_group()
        self.path = self.requested if group.world_size == 1 else self.requested.with_name(
            f"{self.requested.stem}.rank{group.rank}-of-{group.world_size}{self.requested.suffix}")

    def exists_on_every_rank(self) -> bool:
        """Whether to resume: every rank found its file (True), none did (False); anything else is an error."""
        found = self.path.exists()
        (ranks_with_file,) = sum_over_ranks(int(found))
        world_size = current_group().world_size
        if 0 < ranks_with_file < world_size:
            raise InvalidInputError(
                f"only {int(ranks_with_file)} of {world_size} ranks found their {self.requested.name} shard; "
                f"resume with the same torchrun --nproc_per_node, or delete the {self.requested.stem}.rank* files")
        if not found:
            # A checkpoint written with another process count would otherwise be ignored without a word.
            layouts = [path.name for path in (self.requested, *self.requested.parent.glob(
                f"{self.requested.stem}.rank*-of-*{self.requested.suffix}")) if path.exists()]
            if layouts:
                raise InvalidInputError(
                    f"{layouts[0]} was written with another number of processes than this run's {world_size}; "
                    f"resume with the same torchrun --nproc_per_node (or none), or use another {parameter('checkpoint')} path")
        return found

    def check_ranks_agree_on_step(self, step: int) -> None:
        total, total_sq = sum_over_ranks(step, step * step)
        if total * total != current_group().world_size * total_sq:  # equal steps on every rank iff the variance is 0
            raise InvalidInputError(
                f"the ranks' {self.requested.stem}.rank* checkpoints are from different steps (interrupted between "
                "writes); delete them and rerun")

    def save(self, tensors: dict[str, torch.Tensor], trace: list[dict]) -> None:
        """Write ``tensors`` and the trace rows atomically."""
        from safetensors.torch import save

        from isgame.scoring.runtime.atomic_io import write_bytes_atomic

        metadata = {"fingerprint": self.fingerprint, "trace": json.dumps(trace)}
        write_bytes_atomic(self.path, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))

    def load(self) -> dict:
        """The saved tensors, and the trace rows under ``"trace"``; refuses another attack's file."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                state = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError) as error:
            raise InvalidInputError(
                f"{self.path} is not an inflate checkpoint ({error}); delete it or drop {parameter('resume')}") from None
        if metadata.get("fingerprint") != self.fingerprint:
            raise InvalidInputError(
                f"{self.path} was written by another attack (settings, n, seed or noise differ); "
                f"use the same options to resume, or another {parameter('checkpoint')} path")
        state["trace"] = json.loads(metadata["trace"])
        return state
