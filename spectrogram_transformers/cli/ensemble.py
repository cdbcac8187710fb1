"""`spectrogram-transformers ensemble`: evaluate the averaged predictions of several models on a recipe split."""

import argparse
import json
import sys

from ._argument_types import positive_int, torch_device
from ._training_arguments import require_training_extra

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", required=True, help="model directories (or Hub ids) to ensemble")
    parser.add_argument("--recipe", required=True, help="recipe name or JSON file giving the evaluation data")
    parser.add_argument("--split", choices=("eval", "test"), default="eval", help="recipe split to evaluate on")
    parser.add_argument("--fold", type=int, default=None, help="evaluation fold of cross-validation recipes")
    parser.add_argument("--data_dir", default=None, help="local files with the recipe dataset's schema")
    parser.add_argument("--dataset_id", default=None)
    parser.add_argument("--dataset_config", default=None)
    parser.add_argument("--batch_size", type=positive_int, default=16)
    parser.add_argument("--device", type=torch_device, default="cpu")


def run(args: argparse.Namespace) -> int:
    require_training_extra("ensemble", ("datasets", "sklearn"))
    from ..training.checkpoints import IncompleteCheckpointError
    from ..training.ensemble import ensemble_evaluate

    try:
        results = ensemble_evaluate(
            args.models,
            args.recipe,
            split=args.split,
            fold=args.fold,
            data_dir=args.data_dir,
            dataset_id=args.dataset_id,
            dataset_config=args.dataset_config,
            batch_size=args.batch_size,
            device=args.device,
        )
    except IncompleteCheckpointError as error:
        raise SystemExit(f"ensemble: {error}") from None
    json.dump(results, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0
