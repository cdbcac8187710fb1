"""Which process does what: the rank, world size and device of a process started by `torchrun` or
`accelerate launch`, and each rank's deterministic share of the inputs.

Both launchers export `RANK`, `WORLD_SIZE`, `LOCAL_RANK` (and `MASTER_ADDR`/`MASTER_PORT`); a plain
`python -m spectrogram_transformers ...` is rank 0 of 1. A process group (gloo, which runs on CPUs and carries
Python objects for GPU jobs too) is started only for what needs one: agreeing at the start of a run and gathering
predictions in `evaluate`. Outputs and progress travel through files beside OUT, so a slow rank never holds a
collective open for hours.
"""

from __future__ import annotations

import heapq
import os
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch

from .inputs import ArchiveInput

__all__ = ["DistributedContext", "RankShare", "assign_shares"]

# an archive run can keep one rank busy for days before the next collective (evaluate's gather)
_COLLECTIVE_TIMEOUT = timedelta(days=7)


@dataclass
class DistributedContext:
    """Rank, world size and local rank of this process (from the launcher's environment)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> DistributedContext:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device_for(self, requested: str | torch.device) -> torch.device:
        """`--device cuda` (no index) under several processes means this process's GPU, `cuda:LOCAL_RANK`."""
        device = torch.device(requested)
        if self.distributed and device.type != "cpu" and device.index is None:
            return torch.device(device.type, self.local_rank)
        return device

    def init_process_group(self) -> bool:
        """Start the gloo process group of this launch (once); False when there is only one process."""
        if not self.distributed:
            return False
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo", rank=self.rank, world_size=self.world_size, timeout=_COLLECTIVE_TIMEOUT)
        return True

    def all_gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order (just `[value]` in a single process)."""
        if not self.init_process_group():
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        if self.init_process_group():
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


@dataclass
class RankShare:
    """One rank's share: the positions of its inputs still to do (int64, ascending) and the totals of the whole
    run (every rank), for the progress bar. `total_bytes` is None when the sizes are not all known."""

    positions: array
    total_inputs: int
    total_bytes: int | None
    already_done: int


def assign_shares(
    inputs: Iterable[ArchiveInput], rank: int, world_size: int, done: set[int] | frozenset = frozenset()
) -> RankShare:
    """Deal the inputs to `world_size` ranks, deterministically, and keep `rank`'s that are not in `done` (resume
    keys).

    Files are dealt largest first, each to the rank with the fewest bytes so far (ties: the listing order, then the
    lowest rank), so ranks finish together whatever the order of the listing: a 10-minute file listed last no
    longer lands on top of a full share (dealt in listing order, 8 files of 1 s to 2 min kept one of two ranks busy
    for 75 % of the audio). Inputs of unknown size (dataset rows, missing files) go round-robin. Every rank computes
    the same deal from the same listing, so no process has to send the others their shares; done inputs are dealt
    too, so the deal does not depend on the state of OUT (after a crash every rank had done about the same share of
    its bytes, so the rest stays balanced). The deal holds 17 bytes per input while it runs (position, size, done).
    """
    positions, sizes, finished = array("q"), array("q"), bytearray()
    for item in inputs:
        positions.append(item.position)
        sizes.append(-1 if item.size is None else item.size)
        finished.append(bool(done) and item.resume_key in done)
    size_of = np.frombuffer(sizes, dtype=np.int64) if sizes else np.zeros(0, dtype=np.int64)
    is_done = np.frombuffer(finished, dtype=np.uint8).astype(bool) if finished else np.zeros(0, dtype=bool)
    owner = np.zeros(len(size_of), dtype=np.int64)
    unsized = np.flatnonzero(size_of < 0)
    owner[unsized] = np.arange(len(unsized)) % world_size
    if world_size > 1:
        sized = np.flatnonzero(size_of >= 0)
        largest_first = sized[np.argsort(-size_of[sized], kind="stable")]
        loads = [(0, r) for r in range(world_size)]  # a heap of (bytes so far, rank)
        for index in largest_first.tolist():
            load, least = heapq.heappop(loads)
            owner[index] = least
            heapq.heappush(loads, (load + int(size_of[index]), least))
    todo = ~is_done
    sizes_known = not len(unsized)
    mine = np.frombuffer(positions, dtype=np.int64)[(owner == rank) & todo] if positions else np.zeros(0, np.int64)
    return RankShare(
        array("q", mine.tobytes()),
        int(todo.sum()),
        int(size_of[todo].sum()) if sizes_known else None,
        int(is_done.sum()),
    )
