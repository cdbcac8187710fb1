"""`spectrogram-transformers classify`: top-k labels of audio files, windowed for long files.

    spectrogram-transformers classify clip.flac long_recording.wav --model DIR --top-k 3 --window 1 --hop 0.5
    spectrogram-transformers classify clip.wav --model DIR --json
    spectrogram-transformers classify clip.wav --model DIR --plot clip.png   # needs the [plot] extra
    spectrogram-transformers classify recordings/ @more.txt --glob '*.flac' --model DIR --output tags.jsonl [--resume]
    torchrun --nproc_per_node 4 -m spectrogram_transformers classify --dataset DIR_OR_ID --split test \
        --model DIR --device cuda --output tags.parquet

Every readable file is classified; unreadable ones are listed with the reason and the exit status is 1. With
--output (or --dataset, or under torchrun / accelerate launch) the inputs go through the archive runner
(`spectrogram_transformers.archive`): one row per input, written as it goes, resumable, on every rank.
"""

import argparse
import sys

from ._archive import add_archive_arguments, check_output_arguments, run_task, uses_archive
from ._argument_types import positive_int, positive_seconds
from ._inference import (
    SpeedReport,
    add_model_arguments,
    load_classifier,
    print_json,
    report_unreadable,
    run_reporting_errors,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_archive_arguments(parser, "audio files (WAV, FLAC, OGG, MP3, ... via soundfile; other formats via ffmpeg)")
    add_model_arguments(parser, default_batch_size=16)
    parser.add_argument(
        "--top-k", "--top_k", dest="top_k", type=positive_int, default=5, help="labels to show (default 5)"
    )
    parser.add_argument(
        "--window",
        type=positive_seconds,
        default=None,
        help="window seconds (default and maximum: the model's input length)",
    )
    parser.add_argument(
        "--hop", type=positive_seconds, default=None, help="seconds between windows (default: half a window)"
    )
    parser.add_argument(
        "--windows", action="store_true", help="--output rows: also each window's start, end and top-k labels"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--no-windows", dest="show_windows", action="store_false", help="text output: whole-file labels only"
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="also draw top-k bars (and the windows of long files) to this image; several files: OUT-<file>.png "
        "(needs the [plot] extra)",
    )


def _print_prediction(prediction, show_windows: bool) -> None:
    labels = ", ".join(f"{label} {score:.3f}" for label, score in prediction.labels)
    print(f"{prediction.path} ({prediction.duration:.2f} s): {labels}", flush=True)
    if show_windows and len(prediction.windows) > 1:
        for window in prediction.windows:
            labels = ", ".join(f"{label} {score:.3f}" for label, score in window.labels)
            print(f"  [{window.start:8.2f} - {window.end:8.2f} s] {labels}")


def _print_row(row: dict) -> None:
    """A row of the archive runner on the terminal (inputs without --output: dataset rows)."""
    name = row.get("path") if row.get("path") is not None else f"row {row.get('index')}"
    if "error" in row:
        print(f"error: {row['error']}", file=sys.stderr)
        return
    labels = ", ".join(f"{pair['label']} {pair['score']:.3f}" for pair in row["labels"])
    print(f"{name} ({row['duration_s']:.2f} s): {labels}", flush=True)


def _run_archive(args: argparse.Namespace) -> int:
    from ..archive.tasks import ClassifyTask
    from ..inference import AudioClassifier, InferenceError

    if args.plot or args.json:
        raise InferenceError(
            "--plot and --json print per file; with --output, --dataset or several processes the rows go to OUT (leave them out)"
        )
    check_output_arguments(args)

    def make_task(device):
        classifier = AudioClassifier(
            args.model, device=device, batch_size=args.batch_size, dtype=args.dtype, backend=args.backend
        )
        return ClassifyTask(classifier, top_k=args.top_k, window=args.window, hop=args.hop, windows=args.windows)

    return run_task(args, make_task, _print_row)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        from ..inference import UnreadableFile

        if uses_archive(args):
            return _run_archive(args)
        from ._archive import input_source_from_args

        files = list(input_source_from_args(args).listing())
        if args.plot:
            from ._plot import check_plot_argument

            check_plot_argument(args.plot)
        classifier = load_classifier(args)
        speed = SpeedReport()
        results, unreadable = [], []
        # per-window scores only where they are shown: a long file's result then holds its labels alone
        keep_windows = bool(args.show_windows or args.json or args.plot)
        for result in classifier.classify_files(
            files, top_k=args.top_k, window=args.window, hop=args.hop, keep_windows=keep_windows
        ):
            if isinstance(result, UnreadableFile):
                unreadable.append(result)
            else:
                speed.add(result.duration)
                if not args.json:
                    _print_prediction(result, args.show_windows)
            results.append(result)
        speed_summary = speed.summary(classifier.description)  # before plotting, which is not inference
        report_unreadable(unreadable, len(files), speed_summary)
        predictions = [result for result in results if not isinstance(result, UnreadableFile)]
        if args.plot and predictions:
            from ..plotting import save_classification_plots

            for path in save_classification_plots(predictions, args.plot, classifier.sampling_rate):
                print(f"plot: {path}", file=sys.stderr)
        if args.json:
            print_json([result.to_dict() for result in results])
        return 1 if unreadable else 0

    return run_reporting_errors(body)
