"""`spectrogram-transformers average`: average the weights of checkpoints of one run (AST's weight averaging)."""

import argparse
import json
from pathlib import Path

from ..training.averaging import (
    average_checkpoints,
    checkpoints_of_run,
    select_checkpoints,
)
from ..training.checkpoints import checkpoint_folders, incomplete_reason

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoints",
        nargs="+",
        help="a Trainer output directory (its checkpoint-<step> folders are used) or several checkpoint/model folders",
    )
    parser.add_argument("--output", "--output_dir", dest="output", required=True, help="folder for the averaged model")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the model in a non-empty --output (never a source checkpoint)",
    )
    parser.add_argument("--last", type=int, default=None, help="average the last N checkpoints of the run")
    parser.add_argument(
        "--start_epoch", type=int, default=None, help="first epoch to average (1-based, as AST's wa_start)"
    )
    parser.add_argument("--end_epoch", type=int, default=None, help="last epoch to average (AST's wa_end)")


def run(args: argparse.Namespace) -> int:
    sources = [Path(path) for path in args.checkpoints]
    single_run = len(sources) == 1 and sources[0].is_dir() and bool(checkpoint_folders(sources[0]))
    skipped: dict[str, str] = {}
    if single_run:
        try:
            chosen = select_checkpoints(
                sources[0], last=args.last, start_epoch=args.start_epoch, end_epoch=args.end_epoch
            )
        except ValueError as error:
            raise SystemExit(f"average: {error}") from None
        _, skipped = checkpoints_of_run(sources[0])
    else:
        if args.last is not None or args.start_epoch is not None or args.end_epoch is not None:
            raise SystemExit("--last/--start_epoch/--end_epoch select among the checkpoints of ONE run directory")
        for source in sources:
            reason = incomplete_reason(source) if source.name.startswith("checkpoint-") else None
            if reason is not None:
                raise SystemExit(f"average: {source} is not a complete checkpoint: {reason}")
        chosen = sources
    average_checkpoints(chosen, args.output, overwrite=args.overwrite)
    summary = {"output": str(args.output), "checkpoints": [str(path) for path in chosen]}
    if skipped:
        summary["skipped"] = skipped  # folders of the run directory that were not averaged, and why
    print(json.dumps(summary, indent=2))
    return 0
