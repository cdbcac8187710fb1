"""`run_archive`: a task over every input of a source, on every rank, decoded in loader processes, written to OUT.

The task is the only part a command writes (see `ArchiveTask` in this package's docstring): one decoded input
in, one row out. The runner lists the inputs (`inputs`), deals this rank its share (`sharding`), decodes the
share in `num_workers` DataLoader processes while the task runs, writes rows and unreadable inputs to the rank's
part files (`outputs`), counts for the progress bar (`progress`), and on rank 0 merges everything into OUT.
Long files (header duration above `stream_longer_than_s`) are not decoded by the loaders: the loader hands over
the path and the main process streams the file through the task's `from_blocks`, in memory that does not grow
with the file.
"""

from __future__ import annotations

import bisect
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..inference.errors import InferenceError
from .inputs import ArchiveInput, InputSource
from .outputs import ArchiveOutput, PartWriter
from .progress import Counts, ProgressReporter, format_duration
from .sharding import DistributedContext, RankShare, assign_shares

__all__ = ["ArchiveSummary", "ArchiveTask", "run_archive"]


# what a decoder raises for a bad input (soundfile's errors are RuntimeErrors): the input is listed as unreadable
INPUT_ERRORS = (ValueError, OSError, EOFError, RuntimeError)
# what a task raises for an input it cannot use (InferenceError is a ValueError); anything else is a bug
TASK_INPUT_ERRORS = (ValueError,)
# files whose header says they are longer than this are streamed in the main process (memory that does not grow
# with the file) by tasks that can (`ArchiveTask.from_blocks`); shorter ones are decoded whole by the loaders
STREAM_LONGER_THAN_ENV = "SPECTROGRAM_TRANSFORMERS_STREAM_LONGER_THAN"
DEFAULT_STREAM_LONGER_THAN_S = 600.0


def default_stream_longer_than() -> float:
    """Seconds above which a file is streamed: `$SPECTROGRAM_TRANSFORMERS_STREAM_LONGER_THAN`, default 600."""
    text = os.environ.get(STREAM_LONGER_THAN_ENV, "").strip()
    if not text:
        return DEFAULT_STREAM_LONGER_THAN_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise InferenceError(f"${STREAM_LONGER_THAN_ENV} must be a number of seconds >= 0, got {text!r}")
    return value


@dataclass(frozen=True)
class StreamInMain:
    """What a loader process hands over instead of samples for a long file: the main process streams it."""

    path: str
    expected_samples: int | None


class ArchiveTask(Protocol):
    """One decoded input -> one row. `sampling_rate`: the rate inputs are decoded at (mono float32).

    The row holds the task's fields (JSON-able values; numpy arrays are stored as lists); the runner adds the
    input's identity (`path`, `size`, `mtime`, or `index`). An optional `parquet_types` attribute
    ({column: pyarrow type}) fixes column types of a .parquet OUT (e.g. fixed-size lists for vectors)."""

    sampling_rate: int

    def __call__(self, waveform: np.ndarray, item: ArchiveInput) -> dict[str, Any]: ...

    # optional: the same row from consecutive mono blocks (a long file, streamed; see `run_archive`):
    # def from_blocks(self, blocks: Iterable[np.ndarray], item: ArchiveInput, expected_samples: int | None) -> dict


@dataclass
class ArchiveSummary:
    """A finished run as rank 0 saw it (other ranks: their own counts)."""

    counts: Counts
    already_done: int
    wall_s: float
    output: Path | None
    errors_path: Path | None
    is_main: bool

    @property
    def exit_status(self) -> int:
        """1 on rank 0 when an input was unreadable; other ranks always 0 (a launcher stops every rank when one
        fails, which would cut rank 0's merge short)."""
        return 1 if self.is_main and self.counts.errors else 0

    def describe(self) -> str:
        audio = f"{self.counts.audio_s / 3600:.2f} h" if self.counts.audio_s >= 360 else f"{self.counts.audio_s:.1f} s"
        speed = self.counts.audio_s / max(self.wall_s, 1e-9)
        text = (
            f"{self.counts.inputs - self.counts.errors} input(s), {audio} of audio in "
            f"{format_duration(self.wall_s)} ({self.wall_s:.1f} s): {speed:.1f}x real time"
        )
        if self.already_done:
            text += f"; {self.already_done} already done"
        if self.counts.errors:
            where = f" (listed in {self.errors_path})" if self.errors_path else ""
            text += f"; {self.counts.errors} unreadable{where}"
        return text


class DecodedInputs(torch.utils.data.IterableDataset):
    """This rank's inputs, decoded: `(input, waveform tensor)` or `(input, error text)`, in share order.

    Loader process `w` of `W` decodes every W-th input of the share, and the DataLoader takes from its processes in
    turn, so the order of the share is kept."""

    def __init__(self, source: InputSource, positions, sampling_rate: int, stream_longer_than_s: float | None = None):
        self.source = source
        self.positions = positions
        self.sampling_rate = sampling_rate
        self.stream_longer_than_s = stream_longer_than_s

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.positions[worker::workers]

        def wanted(position: int) -> bool:
            at = bisect.bisect_left(mine, position)
            return at < len(mine) and mine[at] == position

        for item, payload in self.source.iter_inputs(wanted):
            if self.stream_longer_than_s is not None:
                long_file = self.source.long_file(payload, self.stream_longer_than_s, self.sampling_rate)
                if long_file is not None:
                    yield item, StreamInMain(*long_file)
                    continue
            try:
                yield item, torch.from_numpy(np.ascontiguousarray(self.source.decode(payload, self.sampling_rate)))
            except INPUT_ERRORS as error:
                yield item, str(error) or type(error).__name__


def _counted(blocks: Iterable[np.ndarray], seen: list[int]) -> Iterator[np.ndarray]:
    """The blocks, adding their samples to `seen[0]` (the streamed file's length, for the progress counts)."""
    for block in blocks:
        seen[0] += len(block)
        yield block


def _stream_row(task, order: StreamInMain, item: ArchiveInput, sampling_rate: int) -> tuple[dict[str, Any] | str, int]:
    """`(row fields or error text, samples)` of a long file streamed through `task.from_blocks` in this process."""
    from ..inference.decoding import stream_decoded

    seen = [0]
    try:
        _, blocks = stream_decoded(order.path, sampling_rate)
        try:
            return task.from_blocks(_counted(blocks, seen), item, order.expected_samples), seen[0]
        finally:
            blocks.close()  # stops the read-ahead thread (and an ffmpeg process) when the task stops early
    except (*TASK_INPUT_ERRORS, OSError) as error:  # unreadable samples, or a clip the task cannot use
        return str(error) or type(error).__name__, seen[0]


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)  # the loader decodes; the model keeps the process's threads


def _agree_to_start(context: DistributedContext, output: ArchiveOutput | None, resume: bool) -> None:
    """Refuse (on every rank at once) to overwrite an earlier run's OUT or parts without --resume."""
    problem = None
    if output is not None and not resume:
        problem = output.existing_work(context.rank, context.world_size)
    problems = [reason for reason in context.all_gather(problem) if reason]
    if problems:
        raise InferenceError(
            f"{problems[0]}: add --resume to finish it, or choose another --output (nothing is overwritten unasked)"
        )


def run_archive(
    source: InputSource,
    task: ArchiveTask | Callable[[np.ndarray, ArchiveInput], dict],
    output: str | os.PathLike | None,
    *,
    sampling_rate: int | None = None,
    resume: bool = False,
    num_workers: int = 1,
    flush_rows: int = 32,
    progress: bool | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    context: DistributedContext | None = None,
    stream_longer_than_s: float | None = None,
) -> ArchiveSummary:
    """Run `task` over every input of `source`, on this rank's share, writing rows to `output`.

    Args:
        source: `FileSource` or `DatasetSource`.
        task: one decoded input -> row fields (see `ArchiveTask`).
        output: OUT (.jsonl, .csv, .parquet); None: rows only go to `on_row` (and nothing is resumable).
        sampling_rate: decoding rate (default: `task.sampling_rate`).
        resume: skip inputs already in OUT or its parts; without it an existing OUT (or parts) is refused.
        num_workers: loader processes decoding ahead of the task (0: decode in this process).
        flush_rows: rows per flush of the part file (what a crash can lose).
        progress: draw the bar on rank 0 (default: when stderr is a terminal).
        on_row: also called with every row (and every unreadable input as {identity..., "error": reason}).
        context: rank / world size (default: from the launcher's environment variables).
        stream_longer_than_s: files whose header gives a longer duration are not decoded whole by the loaders but
            streamed block by block in this process through `task.from_blocks` (when the task has it), so memory
            does not grow with the file; the row is the same (default: `$SPECTROGRAM_TRANSFORMERS_STREAM_LONGER_THAN`
            or 600 s).
    """
    context = context or DistributedContext.from_environment()
    sampling_rate = int(sampling_rate or task.sampling_rate)
    if not hasattr(task, "from_blocks"):
        stream_longer_than_s = None
    elif stream_longer_than_s is None:
        stream_longer_than_s = default_stream_longer_than()
    if num_workers < 0:
        raise InferenceError(f"--num-workers must be >= 0, got {num_workers}")
    archive = ArchiveOutput(output) if output is not None else None
    _agree_to_start(context, archive, resume)
    started = time.perf_counter()
    reporter_folder = None
    if archive is not None:
        archive.parts.mkdir(exist_ok=True)
        reporter_folder = archive.parts
    show = (sys.stderr.isatty() if progress is None else progress) and context.is_main
    done = archive.done_keys() if archive is not None and resume else set()
    share: RankShare = (
        assign_shares((item for item, _ in source.iter_inputs()), context.rank, context.world_size, done)
        if source.countable
        else None
    )
    if share is None:  # a streamed dataset: dealt round-robin by row while it streams, total unknown
        share = RankShare(None, None, None, 0)
    if reporter_folder is None and share.positions is not None:  # no files to count the other ranks by: this rank's
        share.total_inputs, share.total_bytes = len(share.positions), None
    reporter = ProgressReporter(
        reporter_folder, context.rank, context.world_size, share.total_inputs, share.total_bytes, show
    )
    reporter.clear_markers()
    rows = PartWriter(archive.part(context.rank), flush_rows) if archive is not None else None
    errors = PartWriter(archive.part(context.rank, ".errors"), 1) if archive is not None else None
    context.barrier()  # every rank cleared its old markers before rank 0 looks for them
    try:
        if share.positions is None:
            stream = _StreamedShare(source, sampling_rate, context, done)
        else:
            stream = DecodedInputs(source, share.positions, sampling_rate, stream_longer_than_s)
        loader = torch.utils.data.DataLoader(
            stream, batch_size=None, num_workers=num_workers, worker_init_fn=_one_thread if num_workers else None,
            persistent_workers=False,
        )  # fmt: skip
        for item, decoded in loader:
            row = dict(item.identity)
            if isinstance(decoded, StreamInMain):
                fields, num_samples = _stream_row(task, decoded, item, sampling_rate)
                if isinstance(fields, str):
                    decoded = fields
            if isinstance(decoded, str):
                failure = {**row, "error": f"{item.name}: {decoded}" if item.name not in decoded else decoded}
            elif isinstance(decoded, StreamInMain):
                failure = None
            else:
                waveform = decoded.numpy()
                num_samples = len(waveform)
                del decoded
                try:
                    fields = task(waveform, item)
                    failure = None
                except TASK_INPUT_ERRORS as error:  # e.g. InferenceError: a clip the task cannot use
                    failure = {**row, "error": f"{item.name}: {error}"}
                del waveform
            if failure is not None:
                if errors is not None:
                    errors.add(failure)
                if on_row is not None:
                    on_row(failure)
                reporter.add(0.0, item.size, error=True)
                continue
            row.update(fields)
            if rows is not None:
                rows.add(row)
            if on_row is not None:
                on_row(row)
            reporter.add(num_samples / sampling_rate, item.size)
    finally:
        if rows is not None:
            rows.close()
            errors.close()
    counts = reporter.finish()
    if archive is not None and context.is_main:
        unreadable = archive.merge(source.listing(), getattr(task, "parquet_types", None))
        counts.errors = unreadable
    summary = ArchiveSummary(
        counts=counts,
        already_done=share.already_done,
        wall_s=time.perf_counter() - started,
        output=archive.path if archive is not None else None,
        errors_path=archive.errors_path if archive is not None and counts.errors else None,
        is_main=context.is_main,
    )
    return summary


class _StreamedShare(torch.utils.data.IterableDataset):
    """A streamed dataset's rows for this rank (every world_size-th row) and loader process, decoded."""

    def __init__(self, source: InputSource, sampling_rate: int, context: DistributedContext, done: set[int]):
        self.source = source
        self.sampling_rate = sampling_rate
        self.rank, self.world_size = context.rank, context.world_size
        self.done = done

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        stride = self.world_size * workers
        offset = self.rank + self.world_size * worker

        def wanted(position: int) -> bool:
            return position % stride == offset

        for item, payload in self.source.iter_inputs(wanted):
            if self.done and item.resume_key in self.done:
                continue
            try:
                yield item, torch.from_numpy(np.ascontiguousarray(self.source.decode(payload, self.sampling_rate)))
            except INPUT_ERRORS as error:
                yield item, str(error) or type(error).__name__
