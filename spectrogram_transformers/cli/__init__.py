"""`spectrogram-transformers` command line: one subcommand per module of this package.

Each subcommand module provides `add_arguments(parser)` and `run(args) -> int`. Subcommand modules keep
heavy or optional imports (training stack, plotting, ONNX Runtime) inside `run`, so `--help` and the
inference commands work on a base install.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

# name -> one-line help; the module is `spectrogram_transformers.cli.<name>`
SUBCOMMANDS: dict[str, str] = {
    "convert": "convert an original checkpoint into a model directory",
    "export": "export a model directory to another format (transformers' native AST, ONNX)",
    "train": "fine-tune a model with a recipe (ESC-50, Speech Commands, AudioSet, ...)",
    "pretrain": "SSAST self-supervised pre-training on unlabeled audio",
    "classify": "classify audio files (sliding windows for long files)",
    "detect": "sound-event detection (HTS-AT frame outputs): labelled start/end times",
    "average": "average the weights of several checkpoints of one run",
    "ensemble": "evaluate the averaged predictions of several models",
    "demo": "a web page (Gradio) to try a model: top labels, timeline, events",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectrogram-transformers", description="AST, HTS-AT and SSAST audio spectrogram transformers"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, help_text in SUBCOMMANDS.items():
        module = importlib.import_module(f"{__name__}.{name}")
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(subparser)
        subparser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
