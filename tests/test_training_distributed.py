"""Multi-process training for real (torchrun, 2 CPU processes, gloo) and exact resumption from a checkpoint
after the training process is killed."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from spectrogram_transformers.training.train import run_training
from training_helpers import tiny_ast_dir, write_recipe, write_speech_commands_parquet

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


@pytest.fixture(scope="module")
def speech_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    data_dir = write_speech_commands_parquet(root / "sc", words=3)  # 12 training clips (+ a _silence_ row, excluded)
    model_dir = tiny_ast_dir(root / "tiny", max_length=100)
    # the Speech Commands recipe with all its augmentation (waveform mixup, masks, noise, shift), a lr decay at
    # epoch 1 so the scheduler state matters, batch 4 -> 3 steps per epoch
    recipe = write_recipe(
        root / "recipe.json",
        "speech-commands",
        ast={
            "feature_extractor": {"max_length": 100},
            "model": {"max_length": 100},
            "global_train_batch_size": 4,
            "schedule": {"start_epoch": 1},
            "training_arguments": {"num_train_epochs": 2, "learning_rate": 1e-3},
        },
    )
    return {"root": root, "data_dir": data_dir, "model_dir": model_dir, "recipe": recipe}


def test_torchrun_two_processes_gloo(speech_setup, tmp_path):
    """Both ranks train one DDP model on their own half of a streamed dataset and finish; rank 0 writes the
    one checkpoint and the final model."""
    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "spectrogram_transformers", "train",
        "--recipe", str(speech_setup["recipe"]), "--model", str(speech_setup["model_dir"]),
        "--data_dir", str(speech_setup["data_dir"]), "--streaming",
        "--ddp_backend", "gloo", "--max_steps", "3", "--per_device_train_batch_size", "2", "--save_steps", "3",
        "--report_to", "none", "--output_dir", str(output_dir),
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log  # a real process group, not two lone runs
    assert sorted(path.name for path in output_dir.iterdir() if path.name.startswith("checkpoint-")) == ["checkpoint-3"]
    metrics = json.loads((output_dir / "all_results.json").read_text())
    # Trainer counts max_steps x per-device batch x world size samples: 3 x 2 x 2
    assert round(metrics["train_samples_per_second"] * metrics["train_runtime"]) == 12
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "README.md").is_file()
    assert '"eval_accuracy"' in result.stdout  # rank 0 printed the metrics


CRASHING_RUN = textwrap.dedent(
    """
    import os, sys
    import torch
    from transformers import TrainerCallback
    from spectrogram_transformers.training.train import run_training

    recipe, model, data_dir, output_dir, threads, crash_after = sys.argv[1:7]
    torch.set_num_threads(int(threads))

    class CrashAfterSave(TrainerCallback):
        # the checkpoint is complete when on_save runs; exit at once, as a killed job would
        def on_save(self, args, state, control, **kwargs):
            if state.global_step >= int(crash_after):
                os._exit(17)

    overrides = {"report_to": "none", "save_strategy": "steps", "save_steps": 2, "eval_strategy": "no", "logging_steps": 1, "seed": 3}
    run_training(recipe, model, output_dir=output_dir, data_dir=data_dir, training_overrides=overrides, callbacks=[CrashAfterSave()])
    """
)


def test_resume_after_kill_equals_uninterrupted_run(speech_setup, tmp_path):
    from safetensors.torch import load_file

    overrides = {"report_to": "none", "save_strategy": "steps", "save_steps": 2, "eval_strategy": "no", "logging_steps": 1, "seed": 3}
    common = {"data_dir": speech_setup["data_dir"]}
    recipe, model = str(speech_setup["recipe"]), str(speech_setup["model_dir"])

    # killed right after the step-4 checkpoint: mid-epoch (3 steps per epoch), after the lr decay
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_RUN)
    crashed = tmp_path / "crashed"
    result = subprocess.run(
        [sys.executable, str(script), recipe, model, str(speech_setup["data_dir"]), str(crashed), str(torch.get_num_threads()), "4"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 17, (result.stdout + result.stderr)[-3000:]
    assert (crashed / "checkpoint-4").is_dir() and not (crashed / "model.safetensors").exists()

    run_training(recipe, model, output_dir=crashed, training_overrides={**overrides, "resume_from_checkpoint": str(crashed / "checkpoint-4")}, **common)
    uninterrupted = tmp_path / "uninterrupted"
    run_training(recipe, model, output_dir=uninterrupted, training_overrides=overrides, **common)

    resumed_weights = load_file(str(crashed / "model.safetensors"))
    reference = load_file(str(uninterrupted / "model.safetensors"))
    for key, value in reference.items():
        torch.testing.assert_close(resumed_weights[key], value, rtol=0, atol=1e-7)
    resumed_log = json.loads((crashed / "trainer_state.json").read_text())["log_history"]
    reference_log = json.loads((uninterrupted / "trainer_state.json").read_text())["log_history"]
    losses = [(entry["step"], entry["loss"]) for entry in reference_log if "loss" in entry]
    assert [(entry["step"], entry["loss"]) for entry in resumed_log if "loss" in entry] == losses and len(losses) == 6
    assert len({loss for _, loss in losses}) == 6  # the steps did train
