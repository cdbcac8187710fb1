"""`spectrogram-transformers pretrain`: SSAST self-supervised pre-training on unlabeled audio (`[train]` extra)."""

import argparse
import json
import os
import sys

from ._training_arguments import (
    add_training_argument_overrides,
    require_training_extra,
    training_overrides,
)

__all__ = ["add_arguments", "run"]

# flags of this subcommand that are not TrainingArguments fields
_OWN_FLAGS = (
    "data", "model", "config_overrides", "feature_extractor", "mean", "std", "streaming", "split",
    "audio_column", "dataset_config", "eval_data", "eval_split", "shuffle_buffer_size",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of audio files (recursive) or a Hub dataset id")
    parser.add_argument(
        "--model",
        default="ssast-base-patch-400",
        help="SSAST variant (hub_configs), config.json, or a directory to resume from",
    )
    parser.add_argument(
        "--config_overrides", default=None, help="JSON object of config fields, e.g. '{\"max_length\": 512}'"
    )
    parser.add_argument(
        "--feature_extractor",
        default=None,
        help="variant or directory of the AST feature extractor (default: the model's)",
    )
    parser.add_argument(
        "--mean", type=float, default=None, help="fbank mean of the data (default: AudioSet's, as the released models)"
    )
    parser.add_argument("--std", type=float, default=None, help="fbank std of the data")
    parser.add_argument("--streaming", action="store_true", help="stream the Hub dataset (needs --max_steps)")
    parser.add_argument("--split", default="train", help="split of a Hub dataset")
    parser.add_argument("--audio_column", default="audio", help="audio column of a Hub dataset")
    parser.add_argument("--dataset_config", default=None, help="config name of a Hub dataset")
    parser.add_argument("--eval_data", default=None, help="held-out folder or Hub id for masked-patch accuracy")
    parser.add_argument("--eval_split", default="test", help="split of --eval_data")
    parser.add_argument("--shuffle_buffer_size", type=int, default=1000, help="shuffle buffer of a streamed dataset")
    add_training_argument_overrides(
        parser, "TrainingArguments overrides (any field; defaults follow the original recipe)"
    )


def run(args: argparse.Namespace) -> int:
    require_training_extra("pretrain", ("datasets", "accelerate"))
    from ..training.pretrain import run_pretraining

    overrides = training_overrides(args, _OWN_FLAGS)
    try:
        config_overrides = json.loads(args.config_overrides) if args.config_overrides else None
    except json.JSONDecodeError as error:
        raise SystemExit(f"--config_overrides must be a JSON object: {error}") from error
    if config_overrides is not None and not isinstance(config_overrides, dict):
        raise SystemExit("--config_overrides must be a JSON object")
    metrics = run_pretraining(
        args.data,
        args.model,
        config_overrides=config_overrides,
        feature_extractor=args.feature_extractor,
        mean=args.mean,
        std=args.std,
        streaming=args.streaming,
        split=args.split,
        audio_column=args.audio_column,
        dataset_config=args.dataset_config,
        eval_data=args.eval_data,
        eval_split=args.eval_split,
        shuffle_buffer_size=args.shuffle_buffer_size,
        training_overrides=overrides,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        json.dump(metrics, sys.stdout, indent=2, sort_keys=True, default=float)
        sys.stdout.write("\n")
    return 0
