"""`spectrogram-transformers average`: average the weights of checkpoints of one run (AST's weight averaging)."""

import argparse
import json
from pathlib import Path

from ..training.averaging import (
    average_checkpoints,
    find_checkpoints,
    select_checkpoints,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoints",
        nargs="+",
        help="a Trainer output directory (its checkpoint-<step> folders are used) or several checkpoint/model folders",
    )
    parser.add_argument("--output", "--output_dir", dest="output", required=True, help="folder for the averaged model")
    parser.add_argument("--last", type=int, default=None, help="average the last N checkpoints of the run")
    parser.add_argument("--start_epoch", type=int, default=None, help="first epoch to average (1-based, as AST's wa_start)")
    parser.add_argument("--end_epoch", type=int, default=None, help="last epoch to average (AST's wa_end)")


def run(args: argparse.Namespace) -> int:
    sources = [Path(path) for path in args.checkpoints]
    single_run = len(sources) == 1 and sources[0].is_dir() and bool(find_checkpoints(sources[0]))
    if single_run:
        chosen = select_checkpoints(sources[0], last=args.last, start_epoch=args.start_epoch, end_epoch=args.end_epoch)
    else:
        if args.last is not None or args.start_epoch is not None or args.end_epoch is not None:
            raise SystemExit("--last/--start_epoch/--end_epoch select among the checkpoints of ONE run directory")
        chosen = sources
    average_checkpoints(chosen, args.output)
    print(json.dumps({"output": str(args.output), "checkpoints": [str(path) for path in chosen]}, indent=2))
    return 0
