"""Tag an archive: run one task over every input of a collection of any size, on many processes and machines,
resumable, with one progress bar.

The layer knows nothing about classification: `classify`, `detect`, `evaluate` and `embed` each give it a task.

    from spectrogram_transformers.archive import FileSource, run_archive

    class Loudness:                                   # an ArchiveTask: one decoded input -> one row's fields
        sampling_rate = 16000                         # inputs are decoded to mono float32 at this rate
        def __call__(self, waveform, item):           # item: ArchiveInput (path/size/mtime or index, position)
            return {"duration_s": len(waveform) / 16000, "rms": float((waveform ** 2).mean() ** 0.5)}

    summary = run_archive(FileSource(["recordings/", "@more.txt"], glob="*.flac"), Loudness(), "out.jsonl",
                          resume=True, num_workers=2)
    print(summary.describe()); exit(summary.exit_status)

What the runner does around the task:
- inputs (`inputs`): files, directories (recursive, `glob`), `@list.txt` files, or a `datasets` split
  (`DatasetSource`), listed lazily in one order, which is the order of OUT;
- sharding (`sharding`): under `torchrun` / `accelerate launch`, rank r of W takes a deterministic share (files
  balanced by bytes); `DistributedContext.device_for("cuda")` is the rank's GPU (LOCAL_RANK);
- decoding in `num_workers` DataLoader processes, ahead of the task (`inputs.decode_file` is the one decode);
  a task with `from_blocks(blocks, item, expected_samples)` (classify, detect) gets files longer than
  `stream_longer_than_s` (default 600 s) streamed block by block in the main process instead, so memory does
  not grow with the file;
- rows (`outputs`): the task's fields plus the input's identity (`path`, `size`, `mtime` or `index`) appended
  to per-rank part files, flushed every `flush_rows` rows; rank 0 merges them into OUT (.jsonl/.csv/.parquet)
  in input order; `resume=True` skips inputs already written (path + size + mtime, or dataset index) and never
  duplicates a row; without it an existing OUT is refused;
- unreadable inputs (a decoder error, or a `ValueError` / `InferenceError` the task raises) go to
  `OUT.errors.jsonl`, and `summary.exit_status` is 1 on rank 0;
- progress (`progress`): one bar on rank 0 for all ranks (files, hours of audio per hour, ETA) and a summary.

Task rules: return JSON-able values (numpy arrays and scalars are converted); do not print; raise ValueError
(or `InferenceError`) for an input you cannot use; an optional attribute `parquet_types` ({column: pyarrow
type}) fixes the column types of a .parquet OUT (e.g. `pa.list_(pa.float32(), 768)` for vectors).
"""

from .inputs import AUDIO_SUFFIXES, ArchiveInput, DatasetSource, FileSource, InputSource, decode_file
from .outputs import FORMATS, ArchiveOutput, read_jsonl, read_rows
from .progress import Counts
from .runner import ArchiveSummary, ArchiveTask, run_archive
from .sharding import DistributedContext, assign_shares

__all__ = [
    "AUDIO_SUFFIXES",
    "FORMATS",
    "ArchiveInput",
    "ArchiveOutput",
    "ArchiveSummary",
    "ArchiveTask",
    "Counts",
    "DatasetSource",
    "DistributedContext",
    "FileSource",
    "InputSource",
    "assign_shares",
    "decode_file",
    "read_jsonl",
    "read_rows",
    "run_archive",
]
