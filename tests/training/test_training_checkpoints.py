"""Checkpoint bookkeeping without training: which folders are complete, which run they belong to, what resuming
picks, and when an output directory holding a previous run is refused or cleared."""

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import TrainerState
from transformers.trainer_utils import get_last_checkpoint

from spectrogram_transformers.training.averaging import (
    checkpoints_of_run,
    select_checkpoints,
)
from spectrogram_transformers.training.checkpoints import (
    OutputDirectoryInUse,
    ResumeError,
    RunIdentity,
    check_output_dir,
    clear_previous_run,
    incomplete_reason,
    last_complete_checkpoint,
    resolve_resume_checkpoint,
    same_run,
)


def _state(
    step: int, run_id: str | None = "run-a", epoch: float | None = None, max_steps: int = 6, log=None
) -> TrainerState:
    callbacks = [RunIdentity(run_id)] if run_id is not None else []
    state = TrainerState(
        stateful_callbacks=callbacks, max_steps=max_steps, num_train_epochs=2, train_batch_size=4, save_steps=2
    )
    state.global_step = step
    state.epoch = step / 3 if epoch is None else epoch
    state.log_history = list(log if log is not None else [{"step": s, "loss": 1.0 / s} for s in range(1, step + 1)])
    return state


def _write_checkpoint(run_dir: Path, step: int, *, state: TrainerState | None = None, complete: bool = True) -> Path:
    """A checkpoint folder as Trainer writes it: weights first, trainer_state.json last (left out if not complete)."""
    folder = run_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"weight": torch.full((2,), float(step))}, str(folder / "model.safetensors"))
    if complete:
        torch.save({"step": step}, folder / "optimizer.pt")
        (state or _state(step)).save_to_json(str(folder / "trainer_state.json"))
    return folder


def test_a_checkpoint_is_complete_only_with_weights_and_its_own_readable_state(tmp_path):
    assert incomplete_reason(_write_checkpoint(tmp_path, 2)) is None
    assert "trainer_state.json" in incomplete_reason(_write_checkpoint(tmp_path, 4, complete=False))
    truncated = _write_checkpoint(tmp_path, 6)
    text = (truncated / "trainer_state.json").read_text()
    (truncated / "trainer_state.json").write_text(text[: len(text) // 2])  # killed while writing the state
    assert "trainer_state.json" in incomplete_reason(truncated)
    renamed = _write_checkpoint(tmp_path, 8, state=_state(7))
    assert "step 7" in incomplete_reason(renamed)
    no_weights = _write_checkpoint(tmp_path, 10)
    (no_weights / "model.safetensors").unlink()
    assert incomplete_reason(no_weights) == "no model weights"


def test_resume_last_passes_over_a_half_written_newest_checkpoint(tmp_path):
    _write_checkpoint(tmp_path, 2)
    _write_checkpoint(tmp_path, 4)
    half_written = _write_checkpoint(tmp_path, 6, complete=False)
    assert Path(get_last_checkpoint(str(tmp_path))) == half_written  # what transformers alone would resume from
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert resolve_resume_checkpoint("last", tmp_path) == tmp_path / "checkpoint-4"
    assert resolve_resume_checkpoint(True, tmp_path) == tmp_path / "checkpoint-4"
    assert resolve_resume_checkpoint(None, tmp_path) is None
    with pytest.raises(ResumeError, match=r"checkpoint-6.*trainer_state.json.*newest complete one is .*checkpoint-4"):
        resolve_resume_checkpoint(str(half_written), tmp_path)
    with pytest.raises(ResumeError, match="no complete checkpoint"):
        resolve_resume_checkpoint("last", tmp_path / "empty")


def test_a_previous_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    check_output_dir(tmp_path / "new", resuming=False, overwrite=False)  # nothing there: fine
    (tmp_path / "unrelated.txt").write_text("mine")
    check_output_dir(tmp_path, resuming=False, overwrite=False)  # no run in it: fine
    _write_checkpoint(tmp_path, 2)
    _write_checkpoint(tmp_path, 4, complete=False)
    (tmp_path / "model.safetensors").write_bytes(b"final model")
    (tmp_path / "all_results.json").write_text("{}")
    with pytest.raises(
        OutputDirectoryInUse,
        match=r"checkpoint-2, checkpoint-4, all_results.json, model.safetensors.*--overwrite_output_dir",
    ):
        check_output_dir(tmp_path, resuming=False, overwrite=False)
    assert (tmp_path / "checkpoint-2").is_dir()  # refused: nothing touched
    check_output_dir(tmp_path, resuming=True, overwrite=False)
    assert (tmp_path / "model.safetensors").is_file()
    check_output_dir(tmp_path, resuming=False, overwrite=True)  # allowed, but nothing removed yet
    assert (tmp_path / "model.safetensors").is_file()
    clear_previous_run(tmp_path)  # what run_training does once the new run can start
    assert sorted(path.name for path in tmp_path.iterdir()) == ["unrelated.txt"]  # the run's files only


def test_same_run_by_id_else_by_schedule_and_log():
    first, later = json.loads(_dump(_state(2))), json.loads(_dump(_state(4)))
    assert same_run(first, later)
    assert not same_run(first, json.loads(_dump(_state(4, run_id="run-b"))))
    assert not same_run(first, json.loads(_dump(_state(4, max_steps=12))))  # resumed with another schedule
    assert not same_run(json.loads(_dump(_state(2, run_id=None))), later)  # one with an id, one without
    plain = json.loads(_dump(_state(2, run_id=None)))
    assert same_run(plain, json.loads(_dump(_state(4, run_id=None))))  # no ids: same schedule and log prefix
    assert not same_run(plain, json.loads(_dump(_state(4, run_id=None, max_steps=12))))
    other_log = [{"step": s, "loss": 2.0} for s in range(1, 5)]
    assert not same_run(plain, json.loads(_dump(_state(4, run_id=None, log=other_log))))
    assert not same_run(None, later)


def _dump(state: TrainerState) -> str:
    import dataclasses

    return json.dumps(dataclasses.asdict(state))


def test_averaging_uses_only_the_checkpoints_of_its_run(tmp_path):
    for step in (2, 4):
        _write_checkpoint(tmp_path, step)
    _write_checkpoint(tmp_path, 12, state=_state(12, run_id="old-run", max_steps=12))  # left by an earlier run
    _write_checkpoint(tmp_path, 6, complete=False)
    _state(6).save_to_json(str(tmp_path / "trainer_state.json"))  # the run that finished here
    chosen, skipped = checkpoints_of_run(tmp_path)
    assert [path.name for path in chosen] == ["checkpoint-2", "checkpoint-4"]
    assert skipped["checkpoint-12"] == "written by another run in this directory"
    assert "trainer_state.json" in skipped["checkpoint-6"]
    assert select_checkpoints(tmp_path, last=1) == [tmp_path / "checkpoint-4"]
    assert select_checkpoints(tmp_path, run_id="old-run") == [tmp_path / "checkpoint-12"]
    with pytest.raises(ValueError, match="no complete checkpoint"):
        select_checkpoints(tmp_path, run_id="a-run-that-never-saved")


def test_average_and_ensemble_refuse_a_half_written_checkpoint_in_one_line(tmp_path, capsys):
    from spectrogram_transformers.cli import main

    half_written = _write_checkpoint(tmp_path, 6, complete=False)
    assert (
        main(["average", str(half_written), str(_write_checkpoint(tmp_path, 4)), "--output", str(tmp_path / "avg")])
        == 2
    )
    assert re.search(
        r"error: average: .*checkpoint-6 is not a complete checkpoint: no readable trainer_state",
        capsys.readouterr().err,
    )
    assert (
        main(["ensemble", "--models", str(half_written), "--recipe", "esc50"]) == 2
    )  # refused before any data is read
    assert re.search(r"error: ensemble: .*checkpoint-6 is not a complete checkpoint", capsys.readouterr().err)
