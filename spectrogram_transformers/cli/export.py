"""`spectrogram-transformers export`: a model directory -> another format.

`--format transformers` writes transformers' own Audio Spectrogram Transformer format (no remote code needed)
where the architecture fits, and prints the parity; `--format onnx` writes an ONNX model for ONNX Runtime.
"""

import argparse
import sys
from pathlib import Path

__all__ = ["FORMATS", "add_arguments", "run"]

FORMATS = ("transformers", "onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a directory saved by this package (or by `convert`/`train`), or a Hub id")
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="transformers: transformers' native AST format (AST and fine-tuned SSAST patch models); onnx: ONNX",
    )
    parser.add_argument("--output", required=True, help="directory (transformers) or file/directory (onnx) to write")
    parser.add_argument("--quantize", choices=["int8"], help="onnx only: dynamic int8 quantisation")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")


def _export_transformers(args: argparse.Namespace) -> int:
    from ..modeling.export_transformers import (
        NotExpressibleError,
        export_to_transformers,
    )

    if args.quantize:
        print("error: --quantize applies to --format onnx only", file=sys.stderr)
        return 2
    try:
        report = export_to_transformers(args.model, args.output, overwrite=args.overwrite)
    except (NotExpressibleError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from ..onnx_export import export_onnx

    try:
        report = export_onnx(args.model, Path(args.output), quantize=args.quantize, overwrite=args.overwrite)
    except (ImportError, FileExistsError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def run(args: argparse.Namespace) -> int:
    return _export_transformers(args) if args.format == "transformers" else _export_onnx(args)
