"""`spectrogram-transformers convert`: an original checkpoint -> a directory for `from_pretrained`, `pipeline`
and `push_to_hub` (config with labels, safetensors weights, preprocessor config)."""

import argparse
import json
from pathlib import Path

from transformers import AutoConfig, PreTrainedConfig

from ..errors import InvalidInputError
from ..modeling.convert import SUPPORTED_SOURCES, convert, save_converted

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, choices=SUPPORTED_SOURCES, help="format of the checkpoint")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file, or a directory holding one")
    parser.add_argument("--output", required=True, help="directory to write (a non-empty one only with --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the model in a non-empty --output")
    parser.add_argument(
        "--config",
        help="a hub_configs variant name or a config.json path giving what the checkpoint cannot tell "
        "(strides, input length, heads); its preprocessor_config.json is used too when present",
    )
    parser.add_argument(
        "--labels", help="label CSV (index,mid,display_name) as the original repos' class_labels_indices.csv"
    )
    parser.add_argument(
        "--problem-type",
        choices=["single_label_classification", "multi_label_classification"],
        help="multi_label_classification for AudioSet models (sigmoid scores in pipelines)",
    )
    parser.add_argument("--base-model", help="Hub id of the original checkpoint, for the model card's base_model")
    parser.add_argument("--dataset", help="Hub id of the training dataset, for the model card's datasets")
    parser.add_argument(
        "--max-length", type=int, help="input frames to adapt the model to (positional embedding resized)"
    )


def _resolve_config(name_or_path: str | None) -> tuple[PreTrainedConfig | None, Path | None]:
    """(config, directory that may hold a preprocessor_config.json) for a variant name or a config path."""
    if name_or_path is None:
        return None, None
    from .. import hub_configs

    path = Path(name_or_path)
    if path.is_file():
        return AutoConfig.from_pretrained(path.parent if path.name == "config.json" else path), path.parent
    if path.is_dir():
        return AutoConfig.from_pretrained(path), path
    directory = hub_configs.variant_dir(name_or_path)
    return hub_configs.load_config(name_or_path), directory


def _check_output(output: Path, checkpoint: Path, overwrite: bool) -> None:
    """Never write into the checkpoint being converted; a non-empty --output only with --overwrite."""
    source = checkpoint.resolve()
    if output.resolve() == source or (checkpoint.is_dir() and source in output.resolve().parents):
        raise InvalidInputError(
            f"--output {output} is (inside) the folder of --checkpoint {checkpoint}; write elsewhere"
        )
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise InvalidInputError(
            f"--output {output} exists and is not empty; pass --overwrite to replace its model, or choose another folder"
        )


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    _check_output(output, Path(args.checkpoint), args.overwrite)
    config, preprocessor_dir = _resolve_config(args.config)
    try:
        model = convert(args.checkpoint, args.source, config)
    except (
        ValueError
    ) as error:  # the file is not a checkpoint of --source (CheckpointKeyError: the boundary names keys)
        raise InvalidInputError(f"cannot convert {args.checkpoint} as --source {args.source}: {error}") from None
    if args.max_length is not None and getattr(model.config, "max_length", args.max_length) != args.max_length:
        # the geometry-aware from_pretrained resizes the positional embedding as the original does
        model.save_pretrained(output)
        model = type(model).from_pretrained(output, max_length=args.max_length)
    if args.labels:
        from ..hub_configs import load_labels

        id2label = load_labels(args.labels)
        if len(id2label) != model.config.num_labels:
            raise SystemExit(f"{args.labels} has {len(id2label)} labels, the checkpoint {model.config.num_labels}")
        model.config.id2label = id2label
        model.config.label2id = {name: index for index, name in id2label.items()}
    if args.problem_type:
        model.config.problem_type = args.problem_type
    save_converted(model, output, preprocessor_dir)
    from ..training.model_card import write_conversion_model_card

    write_conversion_model_card(
        output,
        model=model,
        source_format=args.source,
        checkpoint=str(args.checkpoint),
        base_model=args.base_model,
        datasets=[args.dataset] if args.dataset else None,
    )
    summary = {
        "output": str(output),
        "model_type": model.config.model_type,
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "num_labels": model.config.num_labels,
    }
    print(json.dumps(summary, indent=2))
    return 0
