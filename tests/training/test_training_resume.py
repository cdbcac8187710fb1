"""A training process killed with SIGKILL from outside, at any moment (also while it writes a checkpoint), loses
only the work since its last COMPLETE checkpoint: `train --resume_from_checkpoint last` resumes from there,
runs only the remaining steps, and ends with the weights of an uninterrupted run.

Every run here is a real `python -m spectrogram_transformers train` process (slow: about 20 s each)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from testing_utils.fixtures import REPO_ROOT
from testing_utils.training import TWO_EPOCHS_WITH_DECAY, speech_commands_setup

pytestmark = pytest.mark.slow

TOTAL_STEPS = 6  # 12 training clips, batch 4: 3 steps per epoch, 2 epochs; a checkpoint every 2 steps

# Runs the `train` command, but holds the process still inside the write of the step-`step` checkpoint (after the
# weights, before the optimizer state and trainer_state.json) and says so in a file, so that the test can kill it
# there from outside. Nothing else about the run changes.
PAUSE_IN_CHECKPOINT_WRITE = """
import sys, time
from pathlib import Path
from transformers import Trainer

pause_step, signal_file = int(sys.argv[1]), Path(sys.argv[2])
original = Trainer._save_optimizer_and_scheduler

def paused(self, output_dir):
    if self.state.global_step == pause_step:
        signal_file.write_text(output_dir)
        time.sleep(600)
    return original(self, output_dir)

Trainer._save_optimizer_and_scheduler = paused
from spectrogram_transformers.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    # the Speech Commands recipe with its augmentation (mixup, masks, noise, shift: random state that must be
    # restored) and a learning-rate decay after epoch 1 (scheduler state that must be restored)
    run = speech_commands_setup(tmp_path_factory.mktemp("resume"), **TWO_EPOCHS_WITH_DECAY)
    root = run["root"]
    arguments = [
        "train", "--recipe", str(run["recipe"]), "--model", str(run["model_dir"]), "--data_dir", str(run["data_dir"]),
        "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no", "--logging_steps", "1",
        "--seed", "3", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    uninterrupted = root / "uninterrupted"
    result = _train(arguments + ["--output_dir", str(uninterrupted)])
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "arguments": arguments, "uninterrupted": uninterrupted}


def _environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}


def _train(arguments: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "spectrogram_transformers", *arguments]
    return subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(condition, process: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the training process ended before the kill: {process.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the training process")
        time.sleep(0.05)


def _kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    process.stdout.close()


def _fingerprint(checkpoint: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every file: a checkpoint written again by a rerun from step 0 changes them."""
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in sorted(checkpoint.iterdir())}


def _trained_steps(output: str) -> list[int]:
    """Optimiser steps the process logged: with --logging_steps 1 and --disable_tqdm, Trainer prints one dict with a
    'loss' per step; the epoch it carries gives the step (3 steps per epoch)."""
    steps = []
    for line in output.splitlines():
        if "'loss'" in line and (epoch := re.search(r"'epoch': '?([0-9.]+)", line)):
            steps.append(round(float(epoch.group(1)) * 3))
    return steps


def _assert_resumed_equals_uninterrupted(setup, output_dir: Path, resume_step: int, before: dict, resumed) -> None:
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    # it started from the checkpoint: only the remaining steps ran, and no earlier checkpoint was written again
    assert _trained_steps(resumed.stdout + resumed.stderr) == list(range(resume_step + 1, TOTAL_STEPS + 1))
    for name, fingerprint in before.items():
        assert _fingerprint(output_dir / name) == fingerprint, f"{name} was written again: the run restarted"
    # and it ends where the uninterrupted run ends
    from safetensors.torch import load_file

    resumed_weights = load_file(str(output_dir / "model.safetensors"))
    reference = load_file(str(setup["uninterrupted"] / "model.safetensors"))
    assert resumed_weights.keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=1e-7)
    resumed_log = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    reference_log = json.loads((setup["uninterrupted"] / "trainer_state.json").read_text())["log_history"]
    losses = [(entry["step"], entry["loss"]) for entry in reference_log if "loss" in entry]
    assert [(entry["step"], entry["loss"]) for entry in resumed_log if "loss" in entry] == losses
    assert len({loss for _, loss in losses}) == TOTAL_STEPS  # the steps did train
    # the resumed run kept the run's id: every checkpoint, before and after the kill, is one run's (averaging
    # would use them all), and no interrupted folder is left behind
    from spectrogram_transformers.training.averaging import checkpoints_of_run

    used, skipped = checkpoints_of_run(output_dir)
    assert [path.name for path in used] == [
        f"checkpoint-{step}" for step in range(2, TOTAL_STEPS + 1, 2)
    ] and not skipped


def test_sigkill_while_a_checkpoint_is_written_resumes_from_the_last_complete_one(setup, tmp_path):
    output_dir = tmp_path / "killed-mid-write"
    signal_file = tmp_path / "writing"
    script = tmp_path / "paused_train.py"
    script.write_text(PAUSE_IN_CHECKPOINT_WRITE)
    command = [
        sys.executable,
        str(script),
        str(TOTAL_STEPS),
        str(signal_file),
        *setup["arguments"],
        "--output_dir",
        str(output_dir),
    ]
    process = _start(command)
    _wait_for(signal_file.exists, process)
    _kill(process)

    # the kill left a half-written checkpoint-6 (weights, no optimizer state, no trainer_state.json); the
    # highest step, which transformers' get_last_checkpoint would pick
    from transformers.trainer_utils import get_last_checkpoint

    half_written = output_dir / f"checkpoint-{TOTAL_STEPS}"
    assert (half_written / "model.safetensors").is_file() and not (half_written / "trainer_state.json").exists()
    assert Path(get_last_checkpoint(str(output_dir))) == half_written
    assert not (output_dir / "model.safetensors").exists()
    before = {name: _fingerprint(output_dir / name) for name in ("checkpoint-2", "checkpoint-4")}

    # resuming from it by name is refused with one line naming the newest complete checkpoint
    refused = _train(
        setup["arguments"]
        + [
            "--output_dir",
            str(output_dir),
            "--resume_from_checkpoint",
            str(half_written),
        ]
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"cannot resume from {half_written}" in refused.stderr and "checkpoint-4" in refused.stderr

    resumed = _train(setup["arguments"] + ["--output_dir", str(output_dir), "--resume_from_checkpoint", "last"])
    _assert_resumed_equals_uninterrupted(setup, output_dir, 4, before, resumed)
    assert "skipping incomplete checkpoint" in resumed.stderr


def test_sigkill_at_an_arbitrary_moment_resumes_to_the_same_weights(setup, tmp_path):
    """Killed from outside as soon as the first checkpoint is complete: wherever the process then is (training,
    or writing the next checkpoint), `--resume_from_checkpoint last` finishes the run exactly."""
    from spectrogram_transformers.training.checkpoints import last_complete_checkpoint

    output_dir = tmp_path / "killed"
    process = _start(
        [
            sys.executable,
            "-m",
            "spectrogram_transformers",
            *setup["arguments"],
            "--output_dir",
            str(output_dir),
        ]
    )
    _wait_for(lambda: (output_dir / "checkpoint-2" / "trainer_state.json").is_file(), process)
    _kill(process)

    checkpoint = last_complete_checkpoint(output_dir)
    resume_step = int(checkpoint.name.split("-")[1])
    assert 2 <= resume_step < TOTAL_STEPS or not (output_dir / "model.safetensors").exists()
    before = {
        path.name: _fingerprint(path)
        for path in output_dir.glob("checkpoint-*")
        if int(path.name.split("-")[1]) <= resume_step
    }
    resumed = _train(setup["arguments"] + ["--output_dir", str(output_dir), "--resume_from_checkpoint", "last"])
    _assert_resumed_equals_uninterrupted(setup, output_dir, resume_step, before, resumed)
