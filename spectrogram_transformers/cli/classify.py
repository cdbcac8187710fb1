"""`spectrogram-transformers classify`: top-k labels of audio files, windowed for long files.

    spectrogram-transformers classify clip.flac long_recording.wav --model DIR --top-k 3 --window 1 --hop 0.5
    spectrogram-transformers classify clip.wav --model DIR --json
    spectrogram-transformers classify clip.wav --model DIR --plot clip.png   # needs the [plot] extra
"""

import argparse
import json
import sys
from pathlib import Path

from ..inference import classify_files

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="audio files (any format soundfile reads: WAV, FLAC, OGG, MP3, ...)")
    parser.add_argument("--model", required=True, help="model directory or Hub id")
    parser.add_argument("--top-k", "--top_k", dest="top_k", type=int, default=5, help="labels to show (default 5)")
    parser.add_argument("--window", type=float, default=None, help="window seconds (default: the model's input length)")
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: half a window)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--no-windows", dest="show_windows", action="store_false", help="text output: whole-file labels only")
    parser.add_argument(
        "--plot", metavar="OUT.png", default=None,
        help="also draw top-k bars (and the windows of long files) to this image; several files: OUT-<file>.png "
        "(needs the [plot] extra)",
    )


def run(args: argparse.Namespace) -> int:
    missing = [path for path in args.files if not Path(path).is_file()]
    if missing:
        raise SystemExit(f"no such file(s): {', '.join(missing)}")
    if args.plot:
        from ._plot import check_plot_argument

        check_plot_argument(args.plot)
    predictions = classify_files(
        args.files, args.model, top_k=args.top_k, window=args.window, hop=args.hop, batch_size=args.batch_size, device=args.device
    )
    if args.plot:
        from ..plotting import save_classification_plots

        for path in save_classification_plots(predictions, args.plot):
            print(f"plot: {path}", file=sys.stderr)
    if args.json:
        json.dump([prediction.to_dict() for prediction in predictions], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for prediction in predictions:
        labels = ", ".join(f"{label} {score:.3f}" for label, score in prediction.labels)
        print(f"{prediction.path} ({prediction.duration:.2f} s): {labels}")
        if args.show_windows and len(prediction.windows) > 1:
            for window in prediction.windows:
                labels = ", ".join(f"{label} {score:.3f}" for label, score in window.labels)
                print(f"  [{window.start:8.2f} - {window.end:8.2f} s] {labels}")
    return 0
