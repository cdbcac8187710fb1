"""Model cards of `train` and `convert`: Hub metadata kept, loading shown with and without the package."""

import json
import subprocess
import sys

import pytest
import torch
import transformers
from huggingface_hub import ModelCard

from spectrogram_transformers.training.model_card import write_model_card
from spectrogram_transformers.training.recipe import load_recipe


def _assert_shows_both_ways_of_loading(card, name):
    assert f'pipeline("audio-classification", model="{name}", trust_remote_code=True)' in card.text
    assert "import spectrogram_transformers" in card.text


def test_training_card_metadata_and_loading(tmp_path):
    path = write_model_card(
        tmp_path / "esc50-ast",
        recipe=load_recipe("esc50"),
        model_source="MIT/ast-finetuned-audioset-10-10-0.4593",
        model_type="ast",
        metrics={"eval_accuracy": 0.9},
        fold=1,
        dataset_id="ashraq/esc50",
    )
    card = ModelCard.load(path)
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "audio-classification"
    assert card.data.base_model == "MIT/ast-finetuned-audioset-10-10-0.4593" and card.data.datasets == ["ashraq/esc50"]
    _assert_shows_both_ways_of_loading(card, "esc50-ast")


@pytest.mark.slow
def test_convert_writes_a_card_and_remote_code(tmp_path):
    native = tmp_path / "native"  # a checkpoint in transformers' own AST format

    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100, num_labels=3
    )
    torch.manual_seed(0)
    transformers.ASTForAudioClassification(config).save_pretrained(native)
    output = tmp_path / "converted"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spectrogram_transformers",
            "convert",
            "--source",
            "hf-ast",
            "--checkpoint",
            str(native),
            "--output",
            str(output),
            "--base-model",
            "MIT/ast-finetuned-audioset-10-10-0.4593",
            "--dataset",
            "agkphysics/AudioSet",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    card = ModelCard.load(output / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "audio-classification"
    assert card.data.base_model == "MIT/ast-finetuned-audioset-10-10-0.4593" and card.data.datasets == [
        "agkphysics/AudioSet"
    ]
    _assert_shows_both_ways_of_loading(card, "converted")
    assert "auto_map" in json.loads((output / "config.json").read_text())
    assert (output / "spectrogram_transformers_ast.py").is_file()
