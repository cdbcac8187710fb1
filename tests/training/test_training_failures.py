"""Training never ends silently wrong and never destroys a previous run: divergence stops with one line naming
the step, NaN weights are never saved, all-corrupt batches are skipped and counted (the first one included), data
that cannot train a meaningful model is refused, and `--overwrite_output_dir` removes the old run only once the
new one has passed every check. CLI cases go through `main` (the one error boundary) or a real subprocess."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from safetensors.torch import load_file

from spectrogram_transformers.cli import main
from spectrogram_transformers.errors import UserError
from spectrogram_transformers.training.train import run_training
from spectrogram_transformers.training.trainer import CheckpointWriteError, TrainingDiverged
from testing_utils.training import tiny_ast_dir, write_esc50_parquet, write_recipe


def _recipe(path: Path, **arguments) -> Path:
    return write_recipe(
        path,
        "esc50",
        ast={
            "feature_extractor": {"max_length": 100},
            "model": {"max_length": 100},
            "global_train_batch_size": 2,
            "weight_averaging": None,
            "training_arguments": {"num_train_epochs": 1, "learning_rate": 1e-3, "eval_strategy": "no", **arguments},
        },
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("failures")
    return {
        "root": root,
        "data": write_esc50_parquet(root / "data", num_classes=2, per_fold=1),  # 8 training clips (folds 2-5)
        "one_class": write_esc50_parquet(root / "one_class", num_classes=1, per_fold=1),
        "model": tiny_ast_dir(root / "tiny", max_length=100, num_labels=2),
        "recipe": _recipe(root / "recipe.json"),
    }


def _train_cli(capsys, setup, output_dir, *extra, data=None) -> tuple[int, str]:
    capsys.readouterr()
    arguments = [
        "train",
        "--recipe",
        setup["recipe"],
        "--model",
        setup["model"],
        "--data_dir",
        data or setup["data"],
        "--fold",
        "1",
        "--output_dir",
        output_dir,
        "--report_to",
        "none",
        *extra,
    ]
    status = main([str(argument) for argument in arguments])
    return status, capsys.readouterr().err


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_divergence_stops_at_the_step_and_saves_no_model(setup, tmp_path):
    with pytest.raises(
        TrainingDiverged,
        match=r"training diverged at step \d+: the (loss|gradient norm) is (nan|inf).*lower --learning_rate",
    ):
        run_training(
            str(setup["recipe"]),
            str(setup["model"]),
            output_dir=tmp_path / "out",
            fold=1,
            data_dir=setup["data"],
            training_overrides={"learning_rate": 1e6, "report_to": "none", "save_strategy": "steps", "save_steps": 1},
        )
    for weights in (tmp_path / "out").rglob("model.safetensors"):  # checkpoints before the divergence: finite
        assert all(bool(tensor.isfinite().all()) for tensor in load_file(weights).values()), weights
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_all_corrupt_batches_are_skipped_and_counted_the_first_included(tmp_path, setup, caplog):
    # 7 of the 8 training clips corrupt, batch 2: three of the four batches hold no decodable clip
    data = write_esc50_parquet(tmp_path / "corrupt", num_classes=2, per_fold=1, corrupt=tuple(range(2, 9)))
    with caplog.at_level("WARNING"):
        metrics = run_training(
            str(setup["recipe"]),
            str(setup["model"]),
            output_dir=tmp_path / "out",
            fold=1,
            data_dir=data,
            training_overrides={"report_to": "none", "seed": 0},
        )
    skipped = [
        record.getMessage()
        for record in caplog.records
        if "no clip of the batch could be decoded" in record.getMessage()
    ]
    assert metrics["train_skipped_clips"] == 7, (metrics, skipped)
    assert len(skipped) == 3 and skipped[0].startswith("step 1:"), skipped  # the first batch, which used to crash
    assert all(bool(tensor.isfinite().all()) for tensor in load_file(tmp_path / "out" / "model.safetensors").values())


def test_refusals_before_anything_is_loaded_or_removed(setup, tmp_path, capsys):
    # a previous run: refused new runs with --overwrite_output_dir must leave it whole
    previous = tmp_path / "previous"
    (previous / "checkpoint-3").mkdir(parents=True)
    for name in (
        "model.safetensors",
        "config.json",
        "all_results.json",
        "README.md",
        "checkpoint-3/trainer_state.json",
    ):
        (previous / name).write_text(name)
    before = sorted(str(path.relative_to(previous)) for path in previous.rglob("*"))

    status, stderr = _train_cli(capsys, setup, previous, "--overwrite_output_dir", data=setup["one_class"])
    assert status == 2 and "at least two classes" in _one_error_line(stderr)
    status, stderr = _train_cli(capsys, setup, previous, "--overwrite_output_dir", "--learning_rate", "nan")
    assert status == 2 and "--learning_rate must be a finite number > 0" in _one_error_line(stderr)
    empty = tmp_path / "empty_data"
    empty.mkdir()
    status, stderr = _train_cli(capsys, setup, previous, "--overwrite_output_dir", data=empty)
    assert status == 2 and "holds no save_to_disk dataset" in _one_error_line(stderr)
    assert sorted(str(path.relative_to(previous)) for path in previous.rglob("*")) == before
    assert (previous / "model.safetensors").read_text() == "model.safetensors"

    a_file = tmp_path / "a_file.txt"
    a_file.write_text("keep")
    status, stderr = _train_cli(capsys, setup, a_file)
    assert status == 2 and "is a file, not a directory" in _one_error_line(stderr) and a_file.read_text() == "keep"


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, check=False
        ).returncode
        == 0
    )


def test_read_only_output_and_a_full_disk_are_one_line(setup, tmp_path, capsys):
    read_only, full = tmp_path / "ro", tmp_path / "full"
    if not (_mount_tmpfs(read_only, "size=1m,ro") and _mount_tmpfs(full, "size=64k")):
        subprocess.run(["umount", str(read_only)], capture_output=True, check=False)
        pytest.skip("needs root and tmpfs mounts to make a read-only and a full file system")
    try:
        status, stderr = _train_cli(capsys, setup, read_only / "out")
        assert status == 2 and "not writable" in _one_error_line(stderr)
        with pytest.raises(CheckpointWriteError, match=rf"no space left on device while writing to {full}"):
            run_training(
                str(setup["recipe"]),
                str(setup["model"]),
                output_dir=full,
                fold=1,
                data_dir=setup["data"],
                training_overrides={"report_to": "none", "save_strategy": "steps", "save_steps": 1},
            )
    finally:
        for mount in (read_only, full):
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)


def test_nan_learning_rate_in_a_real_process_is_one_line(setup, tmp_path):
    command = [
        sys.executable,
        "-m",
        "spectrogram_transformers",
        "train",
        "--recipe",
        str(setup["recipe"]),
        "--model",
        str(setup["model"]),
        "--data_dir",
        str(setup["data"]),
        "--output_dir",
        str(tmp_path / uuid.uuid4().hex),
        "--learning_rate",
        "nan",
        "--report_to",
        "none",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 2 and "--learning_rate must be a finite number > 0" in _one_error_line(result.stderr)
    assert issubclass(TrainingDiverged, UserError) and issubclass(CheckpointWriteError, UserError)


def test_ensemble_of_models_with_other_labels_is_one_line(setup, tmp_path, capsys):
    three_labels = tiny_ast_dir(tmp_path / "three", max_length=100, num_labels=3)
    capsys.readouterr()
    status = main(
        [
            "ensemble",
            "--models",
            str(setup["model"]),
            str(three_labels),
            "--recipe",
            str(setup["recipe"]),
            "--data_dir",
            str(setup["data"]),
            "--fold",
            "1",
        ]
    )
    assert status == 2 and "predicts other labels than the recipe's 50 classes (2 labels" in _one_error_line(
        capsys.readouterr().err
    )
