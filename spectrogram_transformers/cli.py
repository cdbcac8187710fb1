"""`spectrogram-transformers` command line: one subcommand per job.

Each subcommand lives in the module named in `SUBCOMMANDS`, which provides
`add_arguments(parser: argparse.ArgumentParser) -> None` and `run(args: argparse.Namespace) -> int`.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

# name -> (module providing add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("spectrogram_transformers.modeling.convert_cli", "convert an original checkpoint into a model directory"),
    "train": ("spectrogram_transformers.training.train", "fine-tune a model with a recipe (ESC-50, Speech Commands, AudioSet, ...)"),
    "pretrain": ("spectrogram_transformers.training.pretrain", "SSAST self-supervised pre-training on unlabeled audio"),
    "classify": ("spectrogram_transformers.inference", "classify audio files (sliding windows for long files)"),
    "detect": ("spectrogram_transformers.detection", "sound-event detection (HTS-AT frame outputs): labelled start/end times"),
    "average": ("spectrogram_transformers.training.averaging", "average the weights of several checkpoints of one run"),
    "ensemble": ("spectrogram_transformers.training.ensemble", "evaluate the averaged predictions of several models"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spectrogram-transformers", description="AST, HTS-AT and SSAST audio spectrogram transformers"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(subparser)
        subparser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
