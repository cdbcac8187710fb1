"""Which checkpoints of a `Trainer` output directory are complete, which run they belong to, and what a new run may
do with a directory that already holds one.

* Complete checkpoint: `Trainer` writes a checkpoint's files one after the other (weights, optimizer, scheduler,
  RNG state) and `trainer_state.json` last, so a process killed while writing leaves a folder without a valid
  `trainer_state.json` (or with a truncated one). Only folders whose state parses and names their own step, and
  that hold weights, count; resuming and averaging never use the others.
* Run identity: every run started by `run_training` gets a random id, stored by the `RunIdentity` callback in
  each checkpoint's `trainer_state.json` (`stateful_callbacks`) and kept when the run is resumed. Weight
  averaging and `average` use only the checkpoints of one run; folders without an id (plain `Trainer` runs) must
  at least share the run's schedule (max_steps, epochs, batch size, save interval).
* A directory holding a previous run is refused unless the user resumes it or asks to overwrite it; overwriting
  removes the old run's checkpoint folders first, so nothing of it can be mixed into the new run.
"""

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.utils import logging

from ..errors import InvalidInputError

__all__ = [
    "RUN_FILES",
    "IncompleteCheckpointError",
    "OutputDirectoryInUse",
    "ResumeError",
    "RunIdentity",
    "check_output_dir",
    "checkpoint_folders",
    "checkpoint_step",
    "clear_previous_run",
    "incomplete_reason",
    "is_complete_checkpoint",
    "last_complete_checkpoint",
    "previous_run_contents",
    "read_trainer_state",
    "remove_incomplete_checkpoints_after",
    "resolve_resume_checkpoint",
    "run_id_of",
    "same_run",
]

logger = logging.get_logger(__name__)

_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# files a finished `run_training` writes next to the checkpoints
RUN_FILES = (
    "trainer_state.json",
    "all_results.json",
    "model.safetensors",
    "config.json",
    "README.md",
)
# `--resume_from_checkpoint` values that mean "the newest complete checkpoint of --output_dir"
LATEST = ("last", "latest", "true", "True")
# the schedule fields of trainer_state.json that one run keeps from its first checkpoint to its last
_SCHEDULE_FIELDS = ("max_steps", "num_train_epochs", "train_batch_size", "save_steps")


class OutputDirectoryInUse(InvalidInputError):
    """The output directory holds a previous run, and the user neither resumes it nor asks to overwrite it."""


class IncompleteCheckpointError(InvalidInputError):
    """A `checkpoint-<step>` folder given to average or ensemble is not complete."""


class ResumeError(InvalidInputError):
    """--resume_from_checkpoint names no complete checkpoint."""


class RunIdentity(TrainerCallback, ExportableState):
    """Stores the run's id in every checkpoint (`trainer_state.json` -> `stateful_callbacks.RunIdentity`)."""

    def __init__(self, run_id: str | None = None):
        self.run_id = run_id or uuid.uuid4().hex

    def state(self) -> dict:
        return {"args": {"run_id": self.run_id}, "attributes": {}}


def checkpoint_step(path: str | Path) -> int | None:
    match = _CHECKPOINT_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


def read_trainer_state(folder: str | Path) -> dict[str, Any] | None:
    """The folder's trainer_state.json, or None when it is missing or not valid JSON (a write cut short)."""
    path = Path(folder) / "trainer_state.json"
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def incomplete_reason(checkpoint: str | Path) -> str | None:
    """Why `checkpoint` is not a complete Trainer checkpoint, or None when it is."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        return "not a directory"
    if not any((checkpoint / name).is_file() for name in _WEIGHT_FILES):
        return "no model weights"
    state = read_trainer_state(checkpoint)
    if state is None:
        return "no readable trainer_state.json (written last: the save was interrupted)"
    step = checkpoint_step(checkpoint)
    if step is not None and state.get("global_step") != step:
        return f"trainer_state.json says step {state.get('global_step')}, the folder name {step}"
    return None


def is_complete_checkpoint(checkpoint: str | Path) -> bool:
    return incomplete_reason(checkpoint) is None


def checkpoint_folders(run_dir: str | Path) -> list[Path]:
    """Every `checkpoint-<step>` folder of a run directory (complete or not), by increasing step."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [
        (checkpoint_step(path), path)
        for path in run_dir.iterdir()
        if path.is_dir() and checkpoint_step(path) is not None
    ]
    return [path for _, path in sorted(found)]


def last_complete_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of `run_dir` (newer incomplete ones are named in a warning and passed over).

    `transformers.trainer_utils.get_last_checkpoint` takes the highest step whatever its state."""
    for checkpoint in reversed(checkpoint_folders(run_dir)):
        reason = incomplete_reason(checkpoint)
        if reason is None:
            return checkpoint
        logger.warning(f"skipping incomplete checkpoint {checkpoint}: {reason}")
    return None


def resolve_resume_checkpoint(resume: str | bool | None, output_dir: str | Path) -> Path | None:
    """The checkpoint folder to resume from: None (a fresh run); "last"/"latest"/True: the newest complete
    checkpoint of `output_dir`; a path: that checkpoint, which must be complete."""
    if resume is None or resume is False:
        return None
    if resume is True or resume in LATEST:
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            raise ResumeError(
                f"--resume_from_checkpoint {resume}: {output_dir} has no complete checkpoint-<step> folder"
            )
        return checkpoint
    checkpoint = Path(resume)
    reason = incomplete_reason(checkpoint)
    if reason is not None:
        newest = last_complete_checkpoint(checkpoint.parent) if checkpoint.parent.is_dir() else None
        hint = f"; the newest complete one is {newest}" if newest is not None else ""
        raise ResumeError(f"cannot resume from {checkpoint}: {reason}{hint}")
    return checkpoint


def remove_incomplete_checkpoints_after(run_dir: str | Path, step: int) -> list[Path]:
    """Delete the interrupted checkpoint folders newer than `step` (the resumed run writes them again)."""
    removed = []
    for checkpoint in checkpoint_folders(run_dir):
        if checkpoint_step(checkpoint) > step and not is_complete_checkpoint(checkpoint):
            logger.warning(f"removing {checkpoint}: an interrupted save ({incomplete_reason(checkpoint)})")
            shutil.rmtree(checkpoint)
            removed.append(checkpoint)
    return removed


def previous_run_contents(output_dir: str | Path) -> list[str]:
    """Names of what a previous run left in `output_dir`: checkpoint folders and the run's files."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    names = [path.name for path in checkpoint_folders(output_dir)]
    names += [name for name in RUN_FILES if (output_dir / name).exists()]
    return names


def clear_previous_run(output_dir: str | Path) -> list[str]:
    """Remove a previous run's checkpoint folders and run files from `output_dir` (the user asked to overwrite)."""
    output_dir = Path(output_dir)
    removed = previous_run_contents(output_dir)
    for name in removed:
        path = output_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if removed:
        logger.warning(f"--overwrite_output_dir: removed the previous run's {', '.join(removed)} from {output_dir}")
    return removed


def check_output_dir(output_dir: str | Path, *, resuming: bool, overwrite: bool) -> None:
    """Refuse an output directory that cannot be written (a file in the way, a read-only file system) or that holds
    a previous run, unless resuming or overwriting. Nothing is removed here: with `overwrite`, the caller clears
    the previous run (`clear_previous_run`) only once the new run has passed every check and can start."""
    _check_writable_directory(Path(output_dir))
    if resuming:
        return
    contents = previous_run_contents(output_dir)
    if not contents or overwrite:
        return
    shown = ", ".join(contents[:6]) + (", ..." if len(contents) > 6 else "")
    raise OutputDirectoryInUse(
        f"{output_dir} holds a previous run ({shown}); pass --overwrite_output_dir to replace it, "
        "--resume_from_checkpoint last to continue it, or another --output_dir"
    )


def _check_writable_directory(output_dir: Path) -> None:
    """--output_dir must be a directory (or creatable as one) on a writable file system."""
    existing = output_dir
    while not existing.exists():
        if existing.is_symlink():  # a dangling link or a loop: it can be neither used nor created
            raise OutputDirectoryInUse(f"--output_dir {output_dir}: {existing} is a symbolic link that leads nowhere")
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = f"--output_dir {output_dir}" + ("" if existing == output_dir else f": {existing}")
        raise OutputDirectoryInUse(f"{where} is a file, not a directory; choose another --output_dir")
    if existing.exists() and not os.access(existing, os.W_OK):
        raise OutputDirectoryInUse(
            f"--output_dir {output_dir}: {existing} is not writable (a read-only file system or no permission); "
            "choose another --output_dir"
        )


def run_id_of(state: dict[str, Any] | None) -> str | None:
    """The `RunIdentity` id stored in a trainer_state.json, if any."""
    if not state:
        return None
    stored = (state.get("stateful_callbacks") or {}).get("RunIdentity")
    if isinstance(stored, list):
        stored = stored[0] if stored else None
    return ((stored or {}).get("args") or {}).get("run_id")


def same_run(state: dict[str, Any] | None, reference: dict[str, Any] | None) -> bool:
    """Whether two trainer states belong to one run with one schedule: the same run id where they have one
    (schedule fields compared where the reference has them), else the same schedule and the earlier one's log a
    prefix of the later one's."""
    if state is None or reference is None:
        return False
    ids = run_id_of(state), run_id_of(reference)
    if ids[0] is not None or ids[1] is not None:
        # one id, and the same schedule (a run resumed with other epochs or batch size is not averaged across)
        return ids[0] == ids[1] and all(
            state.get(field) == reference.get(field) for field in _SCHEDULE_FIELDS if field in reference
        )
    if any(state.get(field) != reference.get(field) for field in _SCHEDULE_FIELDS):
        return False
    earlier, later = sorted((state, reference), key=lambda value: value.get("global_step", 0))
    history, longer = earlier.get("log_history") or [], later.get("log_history") or []
    return longer[: len(history)] == history
