"""`accelerate launch` runs `train` in two real processes on CPU (gloo), beside the torchrun test.

accelerate's `--cpu` means ONE process (its simple launcher ignores `--num_processes`); two CPU processes
take `--multi_gpu --num_processes 2`, which starts torch's elastic launcher, whose processes pick gloo when
there is no GPU (docs/training.md, "Multi-process training", lists the flags for each setup).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testing_utils.fixtures import REPO_ROOT, free_port
from testing_utils.training import speech_commands_setup

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech_setup(tmp_path_factory):
    return speech_commands_setup(tmp_path_factory.mktemp("speech"))


def accelerate_launch(
    launch_flags: list[str], speech_setup: dict, output_dir: Path, cwd: Path
) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "accelerate.commands.launch", *launch_flags, "--main_process_port", str(free_port()),
        "-m", "spectrogram_transformers", "train",
        "--recipe", str(speech_setup["recipe"]), "--model", str(speech_setup["model_dir"]),
        "--data_dir", str(speech_setup["data_dir"]), "--streaming",
        "--max_steps", "2", "--per_device_train_batch_size", "2", "--save_steps", "2",
        "--report_to", "none", "--output_dir", str(output_dir),
    ]  # fmt: skip
    # no user accelerate config may change what the flags mean; one thread per process on a small machine
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HOME": str(cwd / "hf_home"),
        "ACCELERATE_CONFIG_FILE": str(cwd / "no_accelerate_config.yaml"),
    }
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def test_accelerate_multi_gpu_flag_runs_two_cpu_processes_with_gloo(speech_setup, tmp_path):
    output_dir = tmp_path / "accelerate"
    result = accelerate_launch(["--multi_gpu", "--num_processes", "2"], speech_setup, output_dir, tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in log  # a real process group, not two lone runs
    metrics = json.loads((output_dir / "all_results.json").read_text())
    # Trainer counts max_steps x per-device batch x world size: 2 x 2 x 2 samples with two processes
    assert round(metrics["train_samples_per_second"] * metrics["train_runtime"]) == 8
    assert (output_dir / "model.safetensors").is_file()
    assert result.stdout.count('"eval_accuracy"') == 1  # rank 0 alone printed the metrics


@pytest.mark.parametrize(
    "launch_flags, expected",
    [(["--cpu", "--num_processes", "2"], ["1"]), (["--multi_gpu", "--num_processes", "2"], ["2", "2"])],
)
def test_what_accelerate_cpu_flag_means(launch_flags, expected, tmp_path):
    """Why docs/training.md does not say `--cpu --num_processes 2`: accelerate starts one process for it."""
    script = tmp_path / "world.py"
    # one write() per process: writes under PIPE_BUF bytes to a pipe are atomic (print's two writes interleaved)
    script.write_text("import os\nos.write(1, ('WORLD ' + os.environ.get('WORLD_SIZE', '1') + chr(10)).encode())\n")
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launch_flags,
        "--main_process_port",
        str(free_port()),
        str(script),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf_home")}
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(re.findall(r"WORLD (\d+)", result.stdout)) == expected, result.stdout
