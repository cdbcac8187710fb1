"""`spectrogram-transformers detect FILE --model DIR`: labelled start/end times of sound events.

HTS-AT models give events from their frame outputs (~10 ms frames, but one output per 32 of them: event
times to 0.3125 s for a 10 s clip, said in the output); AST and SSAST from the clip scores of
overlapping windows (event times to the hop, said in the output). Unreadable files are listed with the reason
and the exit status is 1; the others are still analysed. With --output (or --dataset, or under torchrun /
accelerate launch) the inputs go through the archive runner (`spectrogram_transformers.archive`): one row per
input with its events, written as it goes, resumable, on every rank.
"""

import argparse
import sys

from ._archive import add_archive_arguments, check_output_arguments, input_source_from_args, run_task, uses_archive
from ._argument_types import non_negative_seconds, positive_int, positive_seconds, probability
from ._inference import (
    SpeedReport,
    add_model_arguments,
    load_classifier,
    print_json,
    report_unreadable,
    run_reporting_errors,
)

__all__ = ["add_arguments", "run"]


def _class_threshold(text: str) -> tuple[str, float]:
    label, separator, value = text.rpartition("=")
    if not separator or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, got {text!r}")
    try:
        return label, probability(value)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value {error}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_archive_arguments(parser, "audio files (soundfile formats; others via ffmpeg)")
    add_model_arguments(parser, default_batch_size=4)
    parser.add_argument("--threshold", type=probability, default=0.5, help="probability threshold of every class")
    parser.add_argument(
        "--class-threshold",
        type=_class_threshold,
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="threshold of one class (repeatable), overriding --threshold",
    )
    parser.add_argument(
        "--median-filter", type=int, default=1, metavar="FRAMES", help="odd median-filter length in frames"
    )
    parser.add_argument(
        "--min-duration", type=non_negative_seconds, default=0.0, metavar="SECONDS", help="drop shorter events"
    )
    parser.add_argument(
        "--min-gap", type=non_negative_seconds, default=0.0, metavar="SECONDS", help="merge events closer than this"
    )
    parser.add_argument(
        "--window",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="analysis window (default and maximum: the model's input)",
    )
    parser.add_argument(
        "--hop", type=positive_seconds, default=None, metavar="SECONDS", help="analysis hop (default: half a window)"
    )
    parser.add_argument(
        "--top-k",
        "--top_k",
        dest="top_k",
        type=positive_int,
        default=5,
        help="--output rows: top-k labels of the mean frame probabilities (default 5)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object {file: result}")
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="also draw spectrogram, class probabilities over time and the events to this image; several files: "
        "OUT-<file>.png (needs the [plot] extra)",
    )


def _print_row(row: dict) -> None:
    """A row of the archive runner on the terminal (dataset rows without --output)."""
    name = row.get("path") if row.get("path") is not None else f"row {row.get('index')}"
    if "error" in row:
        print(f"error: {row['error']}", file=sys.stderr)
        return
    print(f"# {name}: {len(row['events'])} events")
    for event in row["events"]:
        print(f"{event['start']:.3f}\t{event['end']:.3f}\t{event['label']}\t{event['score']:.3f}", flush=True)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        from ..detection import DetectionSettings, detect_files
        from ..inference import InferenceError, UnreadableFile

        if args.plot:
            from ._plot import check_plot_argument

            check_plot_argument(args.plot)
        if args.median_filter < 1 or args.median_filter % 2 == 0:
            raise InferenceError(f"--median-filter must be a positive odd number of frames, got {args.median_filter}")
        if uses_archive(args):
            if args.plot or args.json:
                raise InferenceError(
                    "--plot and --json print per file; with --output, --dataset or several processes the rows go to OUT (leave them out)"
                )
            from ..archive import DistributedContext

            check_output_arguments(args)
            args.device = str(DistributedContext.from_environment().device_for(args.device))  # this rank's GPU
        else:
            files = list(input_source_from_args(args).listing())
        classifier = load_classifier(args)
        unknown = sorted({label for label, _ in args.class_threshold} - set(classifier.label_names))
        if unknown:
            raise InferenceError(
                f"--class-threshold names unknown label(s) {unknown}; the model's labels are {classifier.label_names[:20]}{' ...' if len(classifier.label_names) > 20 else ''}"
            )
        threshold = dict(args.class_threshold) if args.class_threshold else args.threshold
        settings = DetectionSettings(
            threshold=threshold,
            default_threshold=args.threshold,
            median_filter_frames=args.median_filter,
            min_duration_s=args.min_duration,
            min_gap_s=args.min_gap,
        )
        if uses_archive(args):
            from ..archive.tasks import DetectTask

            task = DetectTask(classifier, settings, window=args.window, hop=args.hop, top_k=args.top_k)
            return run_task(args, lambda device: task, _print_row)
        speed = SpeedReport()
        results, unreadable, detections = {}, [], []
        # the frame timeline only for the plot: without it, memory does not grow with the file
        keep_frames = bool(args.plot)
        for result in detect_files(
            classifier, files, window_s=args.window, hop_s=args.hop, keep_frames=keep_frames, settings=settings
        ):
            if isinstance(result, UnreadableFile):
                unreadable.append(result)
                results[result.path] = {"error": result.reason}
                continue
            speed.add(result.duration)
            detections.append(result)
            results[result.path] = result.to_dict()
            if not args.json:
                print(f"# {result.path}: {len(result.events)} events ({result.resolution_note})")
                for event in result.events:
                    print(
                        f"{event['start']:.3f}\t{event['end']:.3f}\t{event['label']}\t{event['score']:.3f}", flush=True
                    )
        speed_summary = speed.summary(classifier.description)  # before plotting, which is not inference
        report_unreadable(unreadable, len(files), speed_summary)
        if args.plot and detections:
            from ..plotting import save_detection_plots

            for path in save_detection_plots(detections, args.plot, classifier.sampling_rate):
                print(f"plot: {path}", file=sys.stderr)
        if args.json:
            print_json(results)
        return 1 if unreadable else 0

    return run_reporting_errors(body)
