"""A finished run is never overwritten unless asked, and weight averaging uses only the checkpoints of its own run
(real `python -m spectrogram_transformers` processes; slow)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from testing_utils.fixtures import REPO_ROOT
from testing_utils.training import tiny_ast_dir, write_esc50_parquet, write_recipe

pytestmark = pytest.mark.slow


def _run(arguments: list[str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "spectrogram_transformers", *arguments]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)


def _fingerprint(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns for path in sorted(folder.rglob("*")) if path.is_file()
    }


def test_second_train_into_a_finished_run_is_refused_and_overwrite_averages_only_its_own_checkpoints(tmp_path):
    data_dir = write_esc50_parquet(tmp_path / "data", num_classes=3, per_fold=1)  # 12 training clips: 3 steps/epoch
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=100)

    def recipe(epochs: int) -> Path:
        return write_recipe(
            tmp_path / f"recipe{epochs}.json",
            "esc50",
            ast={
                "feature_extractor": {"max_length": 100},
                "model": {"max_length": 100},
                "global_train_batch_size": 4,
                "weight_averaging": {"start_epoch": 1, "end_epoch": 99},  # every checkpoint of the run
                "training_arguments": {"num_train_epochs": epochs, "learning_rate": 1e-3, "eval_strategy": "no"},
            },
        )

    output_dir = tmp_path / "out"
    common = [
        "--model",
        str(model_dir),
        "--data_dir",
        str(data_dir),
        "--fold",
        "1",
        "--output_dir",
        str(output_dir),
        "--report_to",
        "none",
    ]
    first = _run(["train", "--recipe", str(recipe(4)), *common])  # checkpoints 3, 6, 9, 12
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == [
        "checkpoint-12",
        "checkpoint-3",
        "checkpoint-6",
        "checkpoint-9",
    ]
    stale_checkpoint = tmp_path / "run1-checkpoint-12"
    shutil.copytree(output_dir / "checkpoint-12", stale_checkpoint)
    finished = _fingerprint(output_dir)

    # a second run into the finished one: one line, non-zero exit, nothing touched
    refused = _run(["train", "--recipe", str(recipe(2)), *common])
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()] and "Traceback" not in refused.stderr
    assert "holds a previous run" in refused.stderr and "--overwrite_output_dir" in refused.stderr
    assert _fingerprint(output_dir) == finished

    # asked to overwrite: the old run's checkpoints go first, and the final model averages the new run's only
    second = _run(["train", "--recipe", str(recipe(2)), *common, "--overwrite_output_dir"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    metrics = json.loads((output_dir / "all_results.json").read_text())
    assert metrics["weight_averaged_from"] == ["checkpoint-3", "checkpoint-6"]
    states = [load_file(str(output_dir / name / "model.safetensors")) for name in ("checkpoint-3", "checkpoint-6")]
    final = load_file(str(output_dir / "model.safetensors"))
    for key, value in final.items():
        torch.testing.assert_close(value, ((states[0][key].double() + states[1][key].double()) / 2).to(value.dtype))

    # a checkpoint of another run that lands in the directory anyway is not averaged, and `average` says so
    shutil.copytree(stale_checkpoint, output_dir / "checkpoint-12")
    averaged = _run(["average", str(output_dir), "--output", str(tmp_path / "averaged")])
    assert averaged.returncode == 0, averaged.stderr[-3000:]
    summary = json.loads(averaged.stdout)
    assert [Path(path).name for path in summary["checkpoints"]] == ["checkpoint-3", "checkpoint-6"]
    assert summary["skipped"] == {"checkpoint-12": "written by another run in this directory"}
    averaged_weights = load_file(str(tmp_path / "averaged" / "model.safetensors"))
    for key, value in final.items():
        torch.testing.assert_close(averaged_weights[key], value)

    # resuming the finished run's newest checkpoint is allowed (no refusal), and --resume_from_checkpoint of a
    # missing folder is one line
    missing = _run(
        ["train", "--recipe", str(recipe(2)), *common, "--resume_from_checkpoint", str(output_dir / "checkpoint-99")]
    )
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "cannot resume from" in missing.stderr
