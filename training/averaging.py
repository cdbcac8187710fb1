"""Checkpoint weight averaging ("WA") and prediction ensembles, as in the AST and HTS-AT papers.

* Weight averaging (AST `src/traintest.py` `validate_wa`; HTS-AT `config.wa_folder`): the parameters of the
  checkpoints of several epochs of one run are averaged element-wise into one model, which is then evaluated
  (AST AudioSet: epochs 6-25 of the balanced run, 1-5 of the full run).
* Ensembles (AST Table 2, HTS-AT `ensemble_checkpoints`): several trained models each predict, and the
  class probabilities are averaged (sigmoid for multi-label models, softmax for single-label ones).

Checkpoints are `Trainer` checkpoint folders (`checkpoint-<step>`, whose `trainer_state.json` says the epoch)
or any folders `from_pretrained` loads. From a run directory only complete checkpoints of that one run are
averaged (see `checkpoints.py`).
"""

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers.utils import logging

from ..errors import InvalidInputError
from .checkpoints import (
    checkpoint_folders,
    incomplete_reason,
    read_trainer_state,
    same_run,
)

__all__ = [
    "average_checkpoints",
    "average_state_dicts",
    "checkpoint_epoch",
    "checkpoints_of_run",
    "find_checkpoints",
    "select_checkpoints",
]

logger = logging.get_logger(__name__)


def find_checkpoints(run_dir: str | Path) -> list[Path]:
    """The complete `checkpoint-<step>` folders of a `Trainer` output directory, by increasing step (folders of
    an interrupted save are passed over with a warning)."""
    complete = []
    for path in checkpoint_folders(run_dir):
        reason = incomplete_reason(path)
        if reason is None:
            complete.append(path)
        else:
            logger.warning(f"skipping incomplete checkpoint {path}: {reason}")
    return complete


def checkpoint_epoch(checkpoint: str | Path) -> float | None:
    """The epoch a Trainer checkpoint was written at (from its trainer_state.json), or None."""
    state = read_trainer_state(checkpoint)
    return None if state is None else state.get("epoch")


def checkpoints_of_run(run_dir: str | Path, run_id: str | None = None) -> tuple[list[Path], dict[str, str]]:
    """(complete checkpoints of ONE run, {skipped folder: why}) in `run_dir`.

    The run is `run_id` when given (a run in progress), else the run that finished in `run_dir` (its own
    trainer_state.json), else the run of the newest complete checkpoint. A checkpoint left by another run in
    the same directory (another run id, or without ids another schedule or log) is skipped.
    """
    run_dir = Path(run_dir)
    checkpoints = find_checkpoints(run_dir)
    skipped = {path.name: incomplete_reason(path) for path in checkpoint_folders(run_dir) if path not in checkpoints}
    if run_id is not None:
        reference = {"stateful_callbacks": {"RunIdentity": {"args": {"run_id": run_id}}}}
    else:
        reference = read_trainer_state(run_dir) or (read_trainer_state(checkpoints[-1]) if checkpoints else None)
    chosen = []
    for checkpoint in checkpoints:
        if same_run(read_trainer_state(checkpoint), reference):
            chosen.append(checkpoint)
        else:
            skipped[checkpoint.name] = "written by another run in this directory"
    for name, reason in skipped.items():
        logger.warning(f"not using {run_dir / name}: {reason}")
    return chosen, skipped


def select_checkpoints(
    run_dir: str | Path,
    last: int | None = None,
    start_epoch: int | None = None,
    end_epoch: int | None = None,
    run_id: str | None = None,
) -> list[Path]:
    """The checkpoints to average, all of one run (see `checkpoints_of_run`): the `last` N, or those whose
    (1-based, rounded) epoch is in [start_epoch, end_epoch], the original's `wa_start`/`wa_end`."""
    checkpoints, _ = checkpoints_of_run(run_dir, run_id)
    if not checkpoints:
        raise ValueError(f"no complete checkpoint-<step> folder of the run in {run_dir}")
    if last is not None:
        if last < 1:
            raise ValueError(f"last must be >= 1, got {last}")
        return checkpoints[-last:]
    if start_epoch is None and end_epoch is None:
        return checkpoints
    low = start_epoch if start_epoch is not None else 1
    high = end_epoch if end_epoch is not None else float("inf")
    chosen = []
    for checkpoint in checkpoints:
        epoch = checkpoint_epoch(checkpoint)
        if epoch is not None and low <= round(epoch) <= high:
            chosen.append(checkpoint)
    if not chosen:
        raise ValueError(f"no checkpoint of {run_dir} was written in epochs {low}..{high}")
    return chosen


def average_state_dicts(
    state_dicts: Sequence[dict[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors (in float64, cast back); integer buffers (e.g. BatchNorm's
    `num_batches_tracked`) are taken from the last state dict. All state dicts must have the same keys and shapes."""
    if not state_dicts:
        raise ValueError("nothing to average")
    reference = state_dicts[-1]
    for index, state in enumerate(state_dicts):
        if state.keys() != reference.keys():
            difference = sorted(set(state) ^ set(reference))
            raise InvalidInputError(
                f"checkpoint {index} has other weights than the last one ({difference[:5]}): only checkpoints of one "
                "architecture can be averaged"
            )
        for key, value in state.items():
            if value.shape != reference[key].shape:
                raise InvalidInputError(
                    f"checkpoints of different architectures cannot be averaged: {key} has shape "
                    f"{tuple(value.shape)} in checkpoint {index}, {tuple(reference[key].shape)} in the last"
                )
    averaged = {}
    for key, value in reference.items():
        if value.is_floating_point():
            total = torch.stack([state[key].to(torch.float64) for state in state_dicts]).mean(dim=0)
            averaged[key] = total.to(value.dtype)
        else:
            averaged[key] = value.clone()
    return averaged


def check_averaging_output(output_dir: str | Path, sources: Sequence[str | Path], overwrite: bool) -> None:
    """Never write into a source checkpoint (its optimiser state would no longer match its weights), and never
    replace a non-empty directory unless asked (`overwrite`)."""
    output = Path(output_dir).resolve()
    for source in sources:
        source = Path(source).resolve()
        if output == source or source in output.parents:
            raise InvalidInputError(
                f"--output {output_dir} is (inside) the source checkpoint {source}; write the average elsewhere"
            )
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise InvalidInputError(
            f"--output {output_dir} exists and is not empty; pass --overwrite to replace its model, or choose another folder"
        )


def average_checkpoints(
    checkpoints: Sequence[str | Path], output_dir: str | Path | None = None, overwrite: bool = False
):
    """Average the weights of several checkpoints of one model; returns the averaged model (and saves it with
    the last checkpoint's config and feature extractor when `output_dir` is given: never into a source, and a
    non-empty `output_dir` only with `overwrite`). Checkpoints with NaN or infinite weights are refused."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    if not checkpoints:
        raise InvalidInputError("give at least one checkpoint to average")
    if output_dir is not None:
        check_averaging_output(output_dir, checkpoints, overwrite)
    models = [AutoModelForAudioClassification.from_pretrained(str(path)) for path in checkpoints]
    for path, candidate in zip(checkpoints, models):
        bad = [
            name
            for name, tensor in candidate.state_dict().items()
            if tensor.is_floating_point() and not torch.isfinite(tensor).all()
        ]
        if bad:
            raise InvalidInputError(
                f"{path} has {len(bad)} weight tensor(s) with NaN or infinity (a diverged run?); leave it out of the average"
            )
    model = models[-1]
    model.load_state_dict(average_state_dicts([candidate.state_dict() for candidate in models]))
    if output_dir is not None:
        output_dir = Path(output_dir)
        model.save_pretrained(output_dir)
        try:
            AutoFeatureExtractor.from_pretrained(str(checkpoints[-1])).save_pretrained(output_dir)
        except (OSError, ValueError):
            pass  # checkpoints saved without a feature extractor: the model alone is still usable
        with open(output_dir / "averaged_from.json", "w", encoding="utf-8") as handle:
            json.dump({"checkpoints": [str(path) for path in checkpoints]}, handle, indent=2)
    return model
