"""`evaluate`: the recipe's metrics on a whole split equal `Trainer.evaluate` on it, and 2 processes equal 1; the
metric modules load with `evaluate.load` offline and give the package's numbers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from spectrogram_transformers import ASTConfig, ASTForAudioClassification, metrics
from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
from spectrogram_transformers.training.metrics import average_precision_per_class, multi_label_metrics
from spectrogram_transformers.training.recipe import load_label_map
from testing_utils.fixtures import REPO_ROOT, free_port
from testing_utils.training import write_esc50_parquet


@pytest.fixture(scope="module")
def esc50(tmp_path_factory):
    """ESC-50 layout with 3 classes x 2 clips per fold (0.5 s), row 0 (fold 1) corrupt; a tiny AST with the
    recipe's 50 labels, whose head picks among the 3 classes present, differently for different clips."""
    root = tmp_path_factory.mktemp("esc")
    data_dir = write_esc50_parquet(root / "data", num_classes=3, per_fold=2, corrupt=(0,))
    names = load_label_map("esc50").names
    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100,
        frequency_stride=16, time_stride=16, id2label=dict(enumerate(names)), label2id={name: index for index, name in enumerate(names)},
    )  # fmt: skip
    model = ASTForAudioClassification(config).eval()
    with torch.no_grad():  # scores that differ between clips, among the 3 classes the data holds
        model.classifier.dense.weight.mul_(30)
        model.classifier.dense.bias[3:] = -100.0
    model.save_pretrained(root / "model")
    ASTFeatureExtractor(max_length=100).save_pretrained(root / "model")
    return {"data_dir": data_dir, "model": root / "model"}


def evaluate_json(esc50, capsys, *extra) -> dict:
    arguments = [
        "evaluate",
        "--model",
        str(esc50["model"]),
        "--recipe",
        "esc50",
        "--data-dir",
        str(esc50["data_dir"]),
        "--json",
        "--num-workers",
        "0",
        *extra,
    ]
    assert cli_main(arguments) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_equals_trainer_evaluate_on_the_same_split(esc50, tmp_path, capsys):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, TrainingArguments

    from spectrogram_transformers.training.collator import AudioClassificationCollator
    from spectrogram_transformers.training.dataset_loading import load_recipe_datasets
    from spectrogram_transformers.training.metrics import build_compute_metrics
    from spectrogram_transformers.training.recipe import load_recipe
    from spectrogram_transformers.training.trainer import AudioClassificationTrainer

    result = evaluate_json(esc50, capsys, "--fold", "2")
    recipe = load_recipe("esc50")
    data = load_recipe_datasets(recipe.dataset, fold=2, data_dir=esc50["data_dir"])
    model = AutoModelForAudioClassification.from_pretrained(str(esc50["model"]))
    collator = AudioClassificationCollator(
        AutoFeatureExtractor.from_pretrained(str(esc50["model"])), label_encoder=data.label_encoder,
        audio_column=recipe.dataset.audio_column, label_column=recipe.dataset.label_column,
    )  # fmt: skip
    arguments = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=4,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    trainer = AudioClassificationTrainer(
        model=model, args=arguments, data_collator=collator, eval_data_collator=collator,
        compute_metrics=build_compute_metrics(recipe.dataset.problem_type),
    )  # fmt: skip
    expected = trainer.evaluate(data.eval)
    capsys.readouterr()  # Trainer prints its metrics
    assert result["num_clips"] == 6 and result["skipped_clips"] == 0
    assert 0.0 < expected["eval_accuracy"] < 1.0  # the comparison can tell predictions apart
    assert result["accuracy"] == pytest.approx(expected["eval_accuracy"])
    # fold 1 holds the corrupt clip: counted, not scored
    with_corrupt = evaluate_json(esc50, capsys, "--fold", "1")
    assert with_corrupt["num_clips"] == 5 and with_corrupt["skipped_clips"] == 1
    assert with_corrupt["paper"]["metric"] == "accuracy" and with_corrupt["paper"]["value"] == 0.956  # AST on ESC-50


def test_evaluate_accuracy_equals_the_accuracy_of_classify_output_rows_on_the_same_files(esc50, tmp_path, capsys):
    import pyarrow.parquet as pq

    from spectrogram_transformers.archive import read_jsonl

    result = evaluate_json(esc50, capsys, "--fold", "2")
    clips = tmp_path / "fold2"
    clips.mkdir()
    names = load_label_map("esc50").names
    expected_label = {}
    for shard in sorted((esc50["data_dir"] / "data").glob("*.parquet")):
        for row in pq.read_table(shard).to_pylist():
            if row["fold"] == 2:
                path = clips / row["filename"]
                path.write_bytes(row["audio"]["bytes"])
                expected_label[str(path)] = names[row["target"]]
    out = tmp_path / "fold2.jsonl"
    assert (
        cli_main(
            [
                "classify",
                str(clips),
                "--model",
                str(esc50["model"]),
                "--output",
                str(out),
                "--top-k",
                "1",
                "--num-workers",
                "0",
            ]
        )
        == 0
    )
    rows = list(read_jsonl(out))
    assert sorted(row["path"] for row in rows) == sorted(expected_label) and len(rows) == 6
    accuracy = np.mean([row["labels"][0]["label"] == expected_label[row["path"]] for row in rows])
    assert 0.0 < accuracy < 1.0  # the comparison can tell predictions apart
    assert result["accuracy"] == pytest.approx(accuracy)


@pytest.mark.slow
def test_evaluate_on_two_processes_equals_one(esc50, capsys):
    single = evaluate_json(esc50, capsys, "--fold", "1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "spectrogram_transformers", "evaluate", "--model", str(esc50["model"]), "--recipe", "esc50",
        "--data-dir", str(esc50["data_dir"]), "--fold", "1", "--json",
    ]  # fmt: skip
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    printed = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # rank 0 alone prints
    assert json.loads(printed[0]) == single


def test_metric_modules_load_offline_with_evaluate_load(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    rng = np.random.default_rng(0)
    scores = rng.random((16, 4))
    multi_hot = (rng.random((16, 4)) > 0.6).astype(np.float64)
    multi_hot[0], multi_hot[1] = 1.0, 0.0  # every class has a positive and a negative
    audioset = evaluate.load(metrics.path("audioset_map")).compute(
        predictions=scores, references=multi_hot, per_class=True
    )
    expected = multi_label_metrics(scores, multi_hot)
    for key in ("mAP", "mAUC", "d_prime", "num_scored_classes"):
        assert audioset[key] == pytest.approx(expected[key])
    np.testing.assert_allclose(audioset["per_class_ap"], average_precision_per_class(scores, multi_hot))
    targets = np.arange(16) % 4
    accuracy = evaluate.load(metrics.path("clip_accuracy")).compute(predictions=scores, references=targets)
    assert accuracy["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == targets))
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.path("bleu")
