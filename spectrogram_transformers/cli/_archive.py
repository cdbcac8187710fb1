"""The archive options that `classify`, `detect` and `embed` share: inputs (files, directories, @lists, a
dataset), --output / --resume, loader processes; and running a task over them (`spectrogram_transformers.archive`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["add_archive_arguments", "check_output_arguments", "input_source_from_args", "run_task", "uses_archive"]


def add_archive_arguments(parser: argparse.ArgumentParser, what: str = "audio files") -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help=f"{what}, directories (read recursively; see --glob) or @LIST.txt files (one path per line)",
    )  # fmt: skip
    parser.add_argument(
        "--glob",
        default=None,
        metavar="PATTERN",
        help="file names to take from directories, e.g. '*.flac' (default: audio suffixes)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="ID_OR_DIR",
        help="a datasets dataset instead of files: Hub id, or a local save_to_disk / parquet / audio-folder directory",
    )
    parser.add_argument("--split", default="test", help="dataset split (default test)")
    parser.add_argument(
        "--dataset-config", dest="dataset_config", default=None, help="dataset configuration (Hub datasets)"
    )
    parser.add_argument(
        "--audio-column", dest="audio_column", default="audio", help="dataset column with the audio (default audio)"
    )
    parser.add_argument("--streaming", action="store_true", help="stream the dataset instead of downloading it first")
    parser.add_argument(
        "--output",
        default=None,
        metavar="OUT",
        help="write one row per input to OUT.jsonl, OUT.csv or OUT.parquet as it goes (unreadable inputs: OUT.errors.jsonl)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="finish an interrupted --output run: inputs already in OUT are skipped"
    )
    parser.add_argument(
        "--num-workers",
        dest="num_workers",
        type=int,
        default=1,
        help="loader processes decoding ahead of the model (default 1; 0: decode in the main process)",
    )
    parser.add_argument(
        "--flush-rows",
        dest="flush_rows",
        type=int,
        default=32,
        help="rows per write to disk: what a crash can lose (default 32)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def input_source_from_args(args: argparse.Namespace):
    """The `InputSource` the arguments name (files and directories, or --dataset); one-line errors for misuse."""
    from ..archive import DatasetSource, FileSource
    from ..inference import InferenceError

    if args.dataset is not None:
        if args.inputs:
            raise InferenceError("give either input files/directories or --dataset, not both")
        return DatasetSource.load(args.dataset, args.split, args.audio_column, args.streaming, args.dataset_config)
    if not args.inputs:
        raise InferenceError("no inputs: give audio files, directories, @LIST.txt files, or --dataset ID_OR_DIR")
    if args.streaming:
        raise InferenceError("--streaming applies to --dataset")
    return FileSource(args.inputs, glob=args.glob)


def uses_archive(args: argparse.Namespace) -> bool:
    """Whether a command goes through the archive runner (rows to --output, a dataset, or several processes)
    rather than printing file by file as it always has."""
    from ..archive import DistributedContext

    return args.output is not None or args.dataset is not None or DistributedContext.from_environment().distributed


def check_output_arguments(args: argparse.Namespace) -> None:
    """Refuse a bad --output / --resume before a model is loaded (the runner checks again on every rank)."""
    from ..archive import ArchiveOutput, DistributedContext
    from ..inference import InferenceError

    if args.resume and args.output is None:
        raise InferenceError("--resume finishes an --output run: give the --output OUT of the interrupted run")
    if args.output is not None:
        output = ArchiveOutput(args.output)
        context = DistributedContext.from_environment()
        problem = None if args.resume else output.existing_work(context.rank, context.world_size)
        if problem:
            raise InferenceError(
                f"{problem}: add --resume to finish it, or choose another --output (nothing is overwritten unasked)"
            )


def run_task(args: argparse.Namespace, make_task: Callable[[Any], Any], print_row: Callable[[dict], None]) -> int:
    """Build the task on this rank's device (`make_task(device)`), run it over the inputs, print the summary."""
    from ..archive import DistributedContext, run_archive
    from ..inference import InferenceError

    check_output_arguments(args)
    context = DistributedContext.from_environment()
    if context.distributed and args.output is None:
        raise InferenceError("several processes need --output OUT (each rank writes its rows, rank 0 merges them)")
    source = input_source_from_args(args)
    task = make_task(context.device_for(args.device))
    try:
        summary = run_archive(
            source, task, args.output, resume=args.resume, num_workers=args.num_workers, flush_rows=args.flush_rows, progress=args.progress,
            on_row=print_row if args.output is None else None, context=context,
        )  # fmt: skip
    finally:
        context.close()
    if summary.is_main:
        print(summary.describe(), file=sys.stderr)
    return summary.exit_status
