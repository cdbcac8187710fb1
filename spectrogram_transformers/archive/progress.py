"""One progress bar for all ranks, on rank 0: inputs done / total, hours of audio per hour, ETA, and the summary.

Every rank writes its counts to `OUT.parts/rank-NNNNN.progress.json` every couple of seconds (atomically) and a
`rank-NNNNN.done.json` at its end; rank 0 adds them up for the bar and waits for every done marker before it
merges. Files on the shared output folder instead of collectives: a rank that is hours behind keeps nothing
open, and a multi-node run already needs OUT on a file system every node sees.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Counts", "ProgressReporter", "format_duration"]

_WRITE_EVERY_S = 2.0
_POLL_S = 0.5


@dataclass
class Counts:
    """What one rank (or all of them) did in this run."""

    inputs: int = 0  # rows written plus unreadable inputs
    errors: int = 0
    audio_s: float = 0.0
    bytes: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.inputs + other.inputs,
            self.errors + other.errors,
            self.audio_s + other.audio_s,
            self.bytes + other.bytes,
        )

    @classmethod
    def read(cls, path: Path) -> Counts:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # not written yet, or being replaced
            return cls()

    def write(self, path: Path) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(self.__dict__))
        os.replace(temporary, path)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


@dataclass
class ProgressReporter:
    """Counts of this rank; on rank 0 (with `show`) a tqdm bar of every rank's.

    Args:
        folder: where the progress files live (`OUT.parts`); None: this process only (no files).
        rank, world_size: of this process.
        total_inputs, total_bytes: of the whole run, all ranks (None: unknown).
        show: draw the bar (rank 0 only).
    """

    folder: Path | None
    rank: int
    world_size: int
    total_inputs: int | None
    total_bytes: int | None
    show: bool
    counts: Counts = field(default_factory=Counts)
    started: float = field(default_factory=time.perf_counter)
    _written: float = 0.0

    def __post_init__(self):
        self.bar = None
        if self.show and self.rank == 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total_inputs, unit="file", file=sys.stderr, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} files [{elapsed}{postfix}]",
            )  # fmt: skip

    def _path(self, rank: int, kind: str) -> Path:
        return self.folder / f"rank-{rank:05d}.{kind}.json"

    def clear_markers(self) -> None:
        """Remove this rank's progress and done files of an earlier run (before the start barrier)."""
        if self.folder is not None:
            for kind in ("progress", "done"):
                self._path(self.rank, kind).unlink(missing_ok=True)

    def add(self, audio_s: float, size: int | None, error: bool = False) -> None:
        self.counts.inputs += 1
        self.counts.errors += int(error)
        self.counts.audio_s += audio_s
        self.counts.bytes += size or 0
        now = time.perf_counter()
        if self.folder is not None and now - self._written >= _WRITE_EVERY_S:
            self.counts.write(self._path(self.rank, "progress"))
            self._written = now
        if self.bar is not None:
            self.refresh(now)

    def total(self, kind: str = "progress") -> Counts:
        """Every rank's counts (this rank's own are always current)."""
        total = Counts(**self.counts.__dict__)
        if self.folder is not None:
            for rank in range(self.world_size):
                if rank != self.rank:
                    total = total + Counts.read(self._path(rank, kind))
        return total

    def refresh(self, now: float | None = None) -> None:
        if self.bar is None:
            return
        now = time.perf_counter() if now is None else now
        total = self.total()
        elapsed = max(now - self.started, 1e-9)
        if self.total_bytes:
            remaining = elapsed * (self.total_bytes - total.bytes) / total.bytes if total.bytes else math.inf
        elif self.total_inputs:
            remaining = elapsed * (self.total_inputs - total.inputs) / total.inputs if total.inputs else math.inf
        else:
            remaining = math.nan
        self.bar.n = total.inputs
        self.bar.set_postfix_str(
            f"{total.audio_s / elapsed:.1f} h audio/h, ETA {format_duration(remaining)}", refresh=True
        )

    def finish(self) -> Counts:
        """This rank is done: mark it; rank 0 waits for every rank's mark and returns the counts of all."""
        if self.folder is not None:
            self.counts.write(self._path(self.rank, "done"))
        if self.rank != 0 or self.folder is None:
            self.close()
            return self.counts
        while not all(self._path(rank, "done").exists() for rank in range(self.world_size)):
            self.refresh()
            time.sleep(_POLL_S)
        total = self.total("done")
        self.refresh()
        self.close()
        return total

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
