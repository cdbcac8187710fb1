"""What `classify` and `detect` share on the command line: model flags, loading, one-line errors, speed report."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from ._argument_types import positive_int, torch_device

__all__ = [
    "SpeedReport",
    "add_model_arguments",
    "json_safe",
    "load_classifier",
    "print_json",
    "report_unreadable",
    "run_reporting_errors",
]


def add_model_arguments(parser: argparse.ArgumentParser, default_batch_size: int) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="model directory or Hub id (with --backend onnx: the directory export --format onnx wrote)",
    )
    parser.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=positive_int,
        default=default_batch_size,
        help=f"windows per forward pass (default {default_batch_size})",
    )
    parser.add_argument("--device", type=torch_device, default="cpu", help="torch device, e.g. cuda (default cpu)")
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="auto (default): bfloat16 where the device runs it natively (CPUs with AVX512-BF16/AMX, recent GPUs), else float32",
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="torch (default) or onnx (ONNX Runtime, an exported model; needs the [onnx] extra)",
    )


def load_classifier(args: argparse.Namespace):
    from ..inference import AudioClassifier

    return AudioClassifier(
        args.model, device=args.device, batch_size=args.batch_size, dtype=args.dtype, backend=args.backend
    )


def run_reporting_errors(body: Callable[[], int]) -> int:
    """Run a command body. A user's mistake (bad model, unreadable input, missing tool or extra) raised by it
    becomes one line and exit status 2 at the one boundary of every command (`cli.errors.run_command`)."""
    return body()


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON null): JSON has no NaN, and a bare `NaN`
    makes the whole output unreadable to JSON parsers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """Valid JSON on stdout, always (`allow_nan=False` guards it)."""
    json.dump(json_safe(value), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


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
