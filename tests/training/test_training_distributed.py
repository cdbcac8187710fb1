"""Multi-process training for real (torchrun, 2 CPU processes, gloo). Resumption after a kill: test_training_resume."""

import json
import os
import subprocess
import sys

import pytest

from testing_utils.fixtures import REPO_ROOT, free_port
from testing_utils.training import TWO_EPOCHS_WITH_DECAY, speech_commands_setup

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech_setup(tmp_path_factory):
    # the Speech Commands recipe with all its augmentation (waveform mixup, masks, noise, shift), a lr decay at
    # epoch 1 so the scheduler state matters, batch 4 -> 3 steps per epoch
    return speech_commands_setup(tmp_path_factory.mktemp("speech"), **TWO_EPOCHS_WITH_DECAY)


def test_torchrun_two_processes_gloo(speech_setup, tmp_path):
    """Both ranks train one DDP model on their own half of a streamed dataset and finish; rank 0 writes the
    one checkpoint and the final model."""
    output_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
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
    assert sorted(path.name for path in output_dir.iterdir() if path.name.startswith("checkpoint-")) == [
        "checkpoint-3"
    ]
    metrics = json.loads((output_dir / "all_results.json").read_text())
    # Trainer counts max_steps x per-device batch x world size samples: 3 x 2 x 2
    assert round(metrics["train_samples_per_second"] * metrics["train_runtime"]) == 12
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "README.md").is_file()
    assert '"eval_accuracy"' in result.stdout  # rank 0 printed the metrics
