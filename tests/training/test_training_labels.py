"""Every split's labels are checked against the label map before the first training step: one error naming the
labels and the split, instead of a failure after a training epoch or a silent extra class."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spectrogram_transformers.training.datasets import load_recipe_datasets
from spectrogram_transformers.training.label_check import (
    LabelMismatch,
    check_split_labels,
)
from spectrogram_transformers.training.recipe import load_recipe
from testing_utils.fixtures import REPO_ROOT
from testing_utils.training import tiny_ast_dir, tone_wav_bytes


def _audio_folder(root: Path, splits: dict[str, tuple[str, ...]]) -> Path:
    """<split>/<class>/<clip>.wav, two 0.5 s tones per class."""
    for split, classes in splits.items():
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for take in range(2):
                (folder / f"{name}{take}.wav").write_bytes(
                    tone_wav_bytes(300 + 400 * index, 0.5, 16000, 10 * index + take)
                )
    return root


def _recipe(path: Path, labels: str, splits: dict | None = None) -> Path:
    splits = splits or {"train": "train", "eval": "test"}
    path.write_text(
        json.dumps(
            {
                "name": "folder",
                "dataset": {"hub_id": "local/folder", "splits": splits, "labels": labels},
                "families": {
                    "ast": {
                        "feature_extractor": {"max_length": 48},
                        "model": {"max_length": 48},
                        "global_train_batch_size": 2,
                    }
                },
            }
        )
    )
    return path


def test_a_class_only_in_test_is_not_a_silent_extra_class(tmp_path):
    data_dir = _audio_folder(tmp_path / "folder", {"train": ("high", "low"), "test": ("high", "low", "rattle")})
    recipe = load_recipe(_recipe(tmp_path / "recipe.json", "dataset"))
    data = load_recipe_datasets(recipe.dataset, data_dir=data_dir)
    assert data.label_map.names == ["high", "low", "rattle"]  # the folder names of every split
    with pytest.raises(LabelMismatch, match=r"split 'eval' has class\(es\) 'rattle' with no training example"):
        check_split_labels(data, recipe.dataset)
    matching = _audio_folder(tmp_path / "matching", {"train": ("high", "low"), "test": ("high", "low")})
    check_split_labels(load_recipe_datasets(recipe.dataset, data_dir=matching), recipe.dataset)  # no error


def test_a_label_outside_a_given_label_map_is_named_with_its_split(tmp_path):
    data_dir = _audio_folder(tmp_path / "folder", {"train": ("high", "low"), "test": ("high", "low", "rattle")})
    labels = tmp_path / "labels.csv"
    labels.write_text("index,mid,display_name\n0,high,high\n1,low,low\n")
    recipe = load_recipe(_recipe(tmp_path / "recipe.json", str(labels)))
    data = load_recipe_datasets(recipe.dataset, data_dir=data_dir)
    assert data.label_map.names == ["high", "low"]
    with pytest.raises(
        LabelMismatch, match=r"split 'eval' has label\(s\) 'rattle' that are not in the label map \(2 classes"
    ):
        check_split_labels(data, recipe.dataset)


THREE_SPLITS = {"train": "train", "eval": "validation", "test": "test"}


@pytest.mark.parametrize("labels", ["dataset", "csv"])
def test_a_class_only_in_the_test_split_is_refused_before_training(tmp_path, labels):
    """The test split is checked like the others: with a label map from the data or a given one, a class that
    only `test` has is refused up front (not an extra class nobody trains, nor an error after training)."""
    splits = {"train": ("high", "low"), "validation": ("high", "low"), "test": ("high", "low", "rattle")}
    data_dir = _audio_folder(tmp_path / "folder", splits)
    if labels == "csv":
        labels = str(tmp_path / "labels.csv")
        Path(labels).write_text("index,mid,display_name\n0,high,high\n1,low,low\n")
        expected = r"split 'test' has label\(s\) 'rattle' that are not in the label map"
    else:
        expected = r"split 'test' has class\(es\) 'rattle' with no training example"
    recipe = load_recipe(_recipe(tmp_path / "recipe.json", labels, THREE_SPLITS))
    data = load_recipe_datasets(recipe.dataset, data_dir=data_dir)
    assert data.test is not None
    with pytest.raises(LabelMismatch, match=expected) as refused:
        check_split_labels(data, recipe.dataset)
    assert "'eval'" not in str(refused.value)  # only the split that has it is named
    matching = _audio_folder(tmp_path / "matching", {**splits, "test": ("high", "low")})
    check_split_labels(load_recipe_datasets(recipe.dataset, data_dir=matching), recipe.dataset)  # no error


@pytest.mark.slow
def test_train_command_refuses_before_the_first_step(tmp_path):
    data_dir = _audio_folder(tmp_path / "folder", {"train": ("high", "low"), "test": ("high", "low", "rattle")})
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=48, num_labels=3)
    output_dir = tmp_path / "out"
    command = [
        sys.executable, "-m", "spectrogram_transformers", "train", "--recipe", str(_recipe(tmp_path / "recipe.json", "dataset")),
        "--model", str(model_dir), "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--report_to", "none",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "split 'eval' has class(es) 'rattle' with no training example" in result.stderr.strip().splitlines()[-1]
    assert not output_dir.exists() or not any(output_dir.iterdir())  # refused before any training step or checkpoint
