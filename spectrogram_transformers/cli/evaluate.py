"""`spectrogram-transformers evaluate`: a model's metrics on a whole split, beside the paper's figure.

    spectrogram-transformers evaluate --model DIR --recipe esc50 --fold 1 [--data-dir LOCAL_COPY]
    spectrogram-transformers evaluate --model DIR --data-dir AUDIO_FOLDER_OR_PARQUET --split test --json
    torchrun --nproc_per_node 4 -m spectrogram_transformers evaluate --model DIR --recipe audioset-full --device cuda

Clips are scored as `classify` scores files (mean window probabilities; one window for clips no longer than the
model's input); under torchrun / accelerate launch every rank scores its share and rank 0 prints the metrics.
"""

import argparse
import json
import sys

from ._training_arguments import require_training_extra

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or Hub id")
    parser.add_argument(
        "--recipe",
        default=None,
        help="recipe name or JSON file: its dataset, labels and split (esc50, speech-commands, audioset-full, ...)",
    )
    parser.add_argument(
        "--fold",
        type=int,
        default=None,
        help="evaluation fold of cross-validation recipes (ESC-50; default the first)",
    )
    parser.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        help="local files: the recipe dataset's schema, or (without --recipe) an audio folder / parquet / save_to_disk directory",
    )
    parser.add_argument(
        "--dataset",
        dest="dataset_id",
        default=None,
        help="a Hub dataset id (with --recipe: a copy of the recipe's dataset)",
    )
    parser.add_argument("--dataset-config", dest="dataset_config", default=None)
    parser.add_argument(
        "--split",
        default=None,
        help="split to evaluate: with --recipe eval or test (default test when the recipe has one); else a split name (default test)",
    )
    parser.add_argument(
        "--audio-column",
        dest="audio_column",
        default="audio",
        help="without --recipe: the audio column (default audio)",
    )
    parser.add_argument(
        "--label-column",
        dest="label_column",
        default="label",
        help="without --recipe: the label column (class ids, names, or lists for multi-label; default label)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="window seconds for clips longer than the model's input (default and maximum: the input)",
    )
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: half a window)")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=16, help="windows per forward pass")
    parser.add_argument("--device", default="cpu", help="torch device; 'cuda' under torchrun means each rank's GPU")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto")
    parser.add_argument(
        "--num-workers", dest="num_workers", type=int, default=1, help="loader processes decoding ahead of the model"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _text(result: dict) -> str:
    if "accuracy" in result:
        line = f"accuracy {100 * result['accuracy']:.2f} %"
    else:
        line = f"mAP {result['mAP']:.4f}, mAUC {result['mAUC']:.4f}, d-prime {result['d_prime']:.3f}"
    line += f" on {result['num_clips']} clips ({result['skipped_clips']} skipped)"
    paper = result.get("paper")
    if paper:
        value = f"{100 * paper['value']:.1f} %" if paper["metric"] == "accuracy" else f"{paper['value']:.3f}"
        line += f"; paper ({paper['source']}, {result['recipe']}): {paper['metric']} {value}"
    return line


def run(args: argparse.Namespace) -> int:
    require_training_extra("evaluate", ("datasets", "sklearn"))
    from ..archive import DistributedContext
    from ..inference import InferenceError
    from ..training.evaluation import evaluate_model

    context = DistributedContext.from_environment()
    try:
        result = evaluate_model(
            args.model, recipe=args.recipe, fold=args.fold, data_dir=args.data_dir, dataset_id=args.dataset_id,
            dataset_config=args.dataset_config, split=args.split, audio_column=args.audio_column,
            label_column=args.label_column, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
            window=args.window, hop=args.hop, num_workers=args.num_workers, progress=args.progress, context=context,
        )  # fmt: skip
    except (InferenceError, FileNotFoundError, ValueError) as error:  # the recipe loader's ValueErrors name the data
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        context.close()
    if result is None:  # not rank 0
        return 0
    if args.json:
        keys = ("accuracy", "mAP", "mAUC", "d_prime", "num_clips", "skipped_clips", "paper")
        print(json.dumps({key: result[key] for key in keys if key in result}))
    else:
        print(_text(result))
    return 0
