"""What `classify` and `detect` share on the command line: model flags, loading, one-line errors, speed report."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SpeedReport", "add_model_arguments", "load_classifier", "report_unreadable", "run_reporting_errors"]


def add_model_arguments(parser: argparse.ArgumentParser, default_batch_size: int) -> None:
    parser.add_argument("--model", required=True, help="model directory or Hub id (with --backend onnx: the directory export --format onnx wrote)")
    parser.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=default_batch_size, help=f"windows per forward pass (default {default_batch_size})")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="auto (default): bfloat16 where the device runs it natively (CPUs with AVX512-BF16/AMX, recent GPUs), else float32",
    )
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="torch (default) or onnx (ONNX Runtime, an exported model; needs the [onnx] extra)")


def load_classifier(args: argparse.Namespace):
    from ..inference import AudioClassifier

    return AudioClassifier(args.model, device=args.device, batch_size=args.batch_size, dtype=args.dtype, backend=args.backend)


def run_reporting_errors(body: Callable[[], int]) -> int:
    """Run a command body; a user's mistake (bad model, unreadable input, missing tool or extra) becomes one line
    on stderr and exit status 2, without a traceback."""
    from ..inference import InferenceError

    try:
        return body()
    except (InferenceError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def report_unreadable(unreadable: list, total: int, speed_summary: str) -> None:
    """After a run: one `error:` line per unreadable file, their count, then the speed summary (all on stderr)."""
    for failure in unreadable:
        print(f"error: {failure.reason}", file=sys.stderr)
    if unreadable:
        print(f"{len(unreadable)} of {total} file(s) could not be read", file=sys.stderr)
    print(speed_summary, file=sys.stderr)


class SpeedReport:
    """Audio seconds processed against wall-clock seconds (decoding, features and model): the real-time factor."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.audio_seconds = 0.0
        self.files = 0

    def add(self, seconds: float) -> None:
        self.audio_seconds += seconds
        self.files += 1

    def summary(self, what: Any) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return (
            f"{self.files} file(s), {self.audio_seconds:.1f} s of audio in {elapsed:.1f} s: "
            f"{self.audio_seconds / elapsed:.1f}x real time ({what})"
        )
