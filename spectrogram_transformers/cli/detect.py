"""`spectrogram-transformers detect FILE --model DIR`: labelled start/end times of sound events."""

import argparse
import json
import sys

from ..detection import detect_file

__all__ = ["add_arguments", "run"]


def _class_threshold(text: str) -> tuple[str, float]:
    label, separator, value = text.rpartition("=")
    if not separator or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, got {text!r}")
    return label, float(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (any format soundfile reads)")
    parser.add_argument("--model", required=True, help="model directory (HTS-AT, saved with save_pretrained)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold of every class")
    parser.add_argument(
        "--class-threshold",
        type=_class_threshold,
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="threshold of one class (repeatable), overriding --threshold",
    )
    parser.add_argument("--median-filter", type=int, default=1, metavar="FRAMES", help="odd median-filter length in frames")
    parser.add_argument("--min-duration", type=float, default=0.0, metavar="SECONDS", help="drop shorter events")
    parser.add_argument("--min-gap", type=float, default=0.0, metavar="SECONDS", help="merge events closer than this")
    parser.add_argument("--window", type=float, default=10.0, metavar="SECONDS", help="analysis window length")
    parser.add_argument("--hop", type=float, default=5.0, metavar="SECONDS", help="analysis window hop")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON object {file: events}")
    parser.add_argument(
        "--plot", metavar="OUT.png", default=None,
        help="also draw spectrogram, class probabilities over time and the events to this image; several files: "
        "OUT-<file>.png (needs the [plot] extra)",
    )


def run(args: argparse.Namespace) -> int:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    if args.plot:
        from ._plot import check_plot_argument

        check_plot_argument(args.plot)
    model = AutoModelForAudioClassification.from_pretrained(args.model).to(args.device).eval()
    feature_extractor = AutoFeatureExtractor.from_pretrained(args.model)
    threshold = {label: value for label, value in args.class_threshold} if args.class_threshold else args.threshold
    results = {}
    for path in args.files:
        results[path] = detect_file(
            model,
            feature_extractor,
            path,
            window_s=args.window,
            hop_s=args.hop,
            batch_size=args.batch_size,
            threshold=threshold,
            default_threshold=args.threshold,
            median_filter_frames=args.median_filter,
            min_duration_s=args.min_duration,
            min_gap_s=args.min_gap,
        )
    if args.plot:
        from ..plotting import save_detection_plots

        plots = save_detection_plots(
            model, feature_extractor, results, args.plot, window_s=args.window, hop_s=args.hop, batch_size=args.batch_size
        )
        for path in plots:
            print(f"plot: {path}", file=sys.stderr)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for path, events in results.items():
            print(f"# {path}: {len(events)} events")
            for event in events:
                print(f"{event['start']:.3f}\t{event['end']:.3f}\t{event['label']}\t{event['score']:.3f}")
    return 0
