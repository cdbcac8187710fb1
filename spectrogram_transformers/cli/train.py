"""`spectrogram-transformers train`: fine-tune with a recipe, or (no recipe) the offline main job.

The training stack (`datasets`, `accelerate`, scikit-learn, ...) is the `[train]` extra: it is imported in
`run`, so `--help` works on a base install.
"""

import argparse
import json
import os
import shutil
import sys

from ..training.offline_demo import OFFLINE_MODEL, OFFLINE_RECIPE, run_offline_main_job
from ..training.recipe import list_recipes
from ..training.synthetic_keywords import SyntheticKeywordsConfig, default_cache_dir
from ._training_arguments import (
    add_training_argument_overrides,
    require_training_extra,
    training_overrides,
)

__all__ = ["add_arguments", "run", "training_overrides_from_args"]

# flags of this subcommand that are not TrainingArguments fields
_OWN_FLAGS = (
    "recipe",
    "model",
    "fold",
    "data_dir",
    "streaming",
    "dataset_id",
    "dataset_config",
    "sampler",
    "labels",
    "overwrite_output_dir",
    "lora",
    "lora_targets",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe", default=None, help=f"shipped recipe ({', '.join(list_recipes())}) or a recipe JSON file"
    )
    parser.add_argument("--model", default=None, help="shipped variant (hub_configs), model directory or Hub id")
    parser.add_argument(
        "--fold", default=None, help="evaluation fold of cross-validation recipes, or 'all' (mean ± std over folds)"
    )
    parser.add_argument(
        "--data_dir", default=None, help="local files with the recipe dataset's schema instead of the Hub"
    )
    parser.add_argument(
        "--streaming", action="store_true", help="stream the dataset (IterableDataset; uses max_steps)"
    )
    parser.add_argument("--dataset_id", default=None, help="another Hub dataset with the recipe's schema")
    parser.add_argument("--dataset_config", default=None, help="config of --dataset_id")
    parser.add_argument(
        "--sampler", choices=("random", "balanced"), default=None, help="override the recipe's sampler"
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="label CSV (index,mid,display_name) overriding the recipe's label map; AudioSet needs the ontology's "
        "class_labels_indices.csv, which this package does not ship",
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace a previous run in --output_dir (its checkpoints are deleted first); without it such a "
        "directory is refused unless --resume_from_checkpoint continues it",
    )
    parser.add_argument(
        "--lora",
        type=int,
        default=None,
        metavar="RANK",
        help="train a LoRA adapter of this rank (and the head) instead of every weight; saves the adapter in "
        "OUTPUT_DIR/adapter and the merged model in OUTPUT_DIR (needs the [lora] extra)",
    )
    parser.add_argument(
        "--lora_targets",
        default=None,
        help="comma-separated module names the adapter targets (default q_proj,v_proj; also k_proj, o_proj, fc1, fc2)",
    )
    add_training_argument_overrides(
        parser,
        "TrainingArguments overrides (any field; defaults come from the recipe). --resume_from_checkpoint takes a "
        "checkpoint folder or 'last' (the newest complete checkpoint of --output_dir)",
    )
    _add_offline_arguments(parser)


def _add_offline_arguments(parser: argparse.ArgumentParser) -> None:
    """The synthetic dataset's flags (used when `train` runs the offline main job)."""
    defaults = SyntheticKeywordsConfig()
    group = parser.add_argument_group(
        "offline main job (no --recipe, or --recipe keywords-offline): synthetic spoken keywords"
    )
    group.add_argument("--synthetic_train_size", type=int, default=defaults.train_size, help="training clips")
    group.add_argument(
        "--synthetic_validation_size", type=int, default=defaults.validation_size, help="validation clips"
    )
    group.add_argument(
        "--synthetic_test_size", type=int, default=defaults.test_size, help="test clips (held-out voices)"
    )
    group.add_argument(
        "--synthetic_seed", type=int, default=defaults.seed, help="seed of the voice split and every draw"
    )
    group.add_argument(
        "--synthetic_cache_dir",
        default=None,
        help=f"where generated datasets are kept (default {default_cache_dir()})",
    )
    group.add_argument(
        "--num_demo_clips", type=int, default=10, help="held-out clips whose top-5 predictions are printed"
    )
    group.add_argument(
        "--torch_threads",
        type=int,
        default=None,
        help="torch intra-op threads for the job; 0: torch's default (one per core). Default: torch's default when "
        "OMP_WAIT_POLICY=PASSIVE or OMP_NUM_THREADS is set, else 1 (see `job_torch_threads`)",
    )


def training_overrides_from_args(args: argparse.Namespace) -> dict:
    """The TrainingArguments fields given on the command line."""
    return training_overrides(args, _OWN_FLAGS)


def _run_offline(args: argparse.Namespace) -> int:
    """`train` without a recipe (or with `--recipe keywords-offline`): the offline main job."""
    if args.fold is not None or args.streaming or args.dataset_id is not None:
        raise SystemExit("--fold, --streaming and --dataset_id do not apply to the offline keywords job")
    if args.data_dir is None and shutil.which("espeak-ng") is None:
        raise SystemExit(
            "error: the offline main job synthesises its spoken keywords with espeak-ng, which is not installed "
            "(Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng); or pass --data_dir with "
            "a dataset it generated before"
        )
    overrides = training_overrides_from_args(args)
    data_config = SyntheticKeywordsConfig(
        train_size=args.synthetic_train_size,
        validation_size=args.synthetic_validation_size,
        test_size=args.synthetic_test_size,
        seed=args.synthetic_seed,
    )
    from ..training.checkpoints import OutputDirectoryInUse, ResumeError
    from ..training.label_check import LabelMismatch

    try:
        run_offline_main_job(
            data_config,
            model=args.model or OFFLINE_MODEL,
            output_dir=overrides.pop("output_dir", None),
            cache_dir=args.synthetic_cache_dir,
            data_dir=args.data_dir,
            training_overrides=overrides,
            overwrite_output_dir=args.overwrite_output_dir,
            num_demo_clips=args.num_demo_clips,
            torch_threads=args.torch_threads,
        )
    except (OutputDirectoryInUse, ResumeError, LabelMismatch) as error:
        raise SystemExit(f"train: {error}") from None
    return 0


def _lora_settings(args: argparse.Namespace):
    """`LoraSettings` of `--lora`/`--lora_targets` (None without `--lora`); a missing peft is one line."""
    if args.lora is None:
        if args.lora_targets is not None:
            raise SystemExit("train: --lora_targets needs --lora RANK")
        return None
    from ..training.lora import LoraSettings, parse_lora_targets

    try:
        import peft  # noqa: F401
    except ImportError:
        raise SystemExit("train: --lora needs PEFT: pip install 'spectrogram-transformers[lora]'") from None
    try:
        return LoraSettings(rank=args.lora, targets=parse_lora_targets(args.lora_targets))
    except ValueError as error:
        raise SystemExit(f"train: {error}") from None


def run(args: argparse.Namespace) -> int:
    require_training_extra("train")
    if args.recipe in (None, OFFLINE_RECIPE):
        if args.lora is not None:
            raise SystemExit("train: --lora needs --recipe and --model (the offline main job trains every weight)")
        return _run_offline(args)
    if args.model is None:
        raise SystemExit("train needs --model with --recipe (see --help)")
    from ..training.recipe import load_recipe
    from ..training.train import TrainingRun, run_cross_validation, run_training

    overrides, lora = training_overrides_from_args(args), _lora_settings(args)
    recipe = load_recipe(args.recipe)
    if args.labels is not None:
        recipe.dataset.labels = args.labels
    run_settings = TrainingRun.of(
        recipe,
        args.model,
        fold=int(args.fold) if args.fold not in (None, "all") else None,
        data_dir=args.data_dir,
        streaming=args.streaming,
        dataset_id=args.dataset_id,
        dataset_config=args.dataset_config,
        sampler=args.sampler,
        training_overrides=overrides,  # its output_dir becomes the run's
        overwrite_output_dir=args.overwrite_output_dir,
        lora=lora,
    )
    from ..training.checkpoints import OutputDirectoryInUse, ResumeError
    from ..training.label_check import LabelMismatch

    try:
        if args.fold == "all":
            summary = run_cross_validation(run_settings)
            result = {key: value for key, value in summary.items() if key != "folds"}
        else:
            result = run_training(run_settings)
    except (OutputDirectoryInUse, ResumeError, LabelMismatch) as error:
        raise SystemExit(f"train: {error}") from None
    if int(os.environ.get("RANK", "0")) == 0:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    return 0
