"""`spectrogram-transformers train --lora R`: a LoRA adapter trained with a recipe on the tiny local ESC-50 data,
saved as an adapter and as a merged model that load to the same outputs (real peft, in-process, seconds)."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForAudioClassification

from spectrogram_transformers.cli import main
from testing_utils.training import tiny_ast_dir, write_esc50_parquet, write_recipe

peft = pytest.importorskip("peft")


def test_train_lora_saves_an_adapter_and_the_merged_model(tmp_path, capsys):
    data_dir = write_esc50_parquet(tmp_path / "data", num_classes=3, per_fold=1)  # 12 training clips
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=100)
    recipe = write_recipe(
        tmp_path / "recipe.json",
        "esc50",
        ast={
            "feature_extractor": {"max_length": 100},
            "model": {"max_length": 100},
            "global_train_batch_size": 4,
            "training_arguments": {
                "num_train_epochs": 1,
                "learning_rate": 1e-2,
                "eval_strategy": "no",
                "save_strategy": "no",
            },
        },
    )
    output_dir = tmp_path / "out"
    arguments = [
        "train",
        "--recipe",
        str(recipe),
        "--model",
        str(model_dir),
        "--data-dir",
        str(data_dir),
        "--fold",
        "1",
        "--output-dir",
        str(output_dir),
        "--report-to",
        "none",
        "--lora",
        "4",
        "--lora-targets",
        "q_proj,v_proj",
    ]
    assert main(arguments) == 0
    assert "eval_accuracy" in capsys.readouterr().out  # the final metrics are printed

    adapter_dir = output_dir / "adapter"
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4 and sorted(adapter_config["target_modules"]) == ["q_proj", "v_proj"]
    assert adapter_config["base_model_name_or_path"] == str(model_dir)
    assert not (output_dir / "adapter_config.json").exists()  # the run directory is a plain model directory

    base = AutoModelForAudioClassification.from_pretrained(model_dir).eval()
    merged = AutoModelForAudioClassification.from_pretrained(output_dir).eval()
    # the recipe gave the model its labels (50 ESC-50 classes): the base is loaded with the run's config
    run_config = AutoConfig.from_pretrained(output_dir)
    assert run_config.num_labels == 50 and base.config.num_labels == 3
    base_for_adapter = AutoModelForAudioClassification.from_pretrained(
        model_dir, config=run_config, ignore_mismatched_sizes=True
    )
    adapted = peft.PeftModel.from_pretrained(base_for_adapter, adapter_dir).eval()
    features = torch.randn(2, 100, 128)
    with torch.no_grad():
        torch.testing.assert_close(merged(features).logits, adapted(features).logits, atol=1e-5, rtol=0)
    # only the targets (through their adapters) and the head changed
    base_state, merged_state = base.state_dict(), merged.state_dict()
    assert merged_state["classifier.dense.weight"].shape == (50, 32)
    changed = sorted(
        key
        for key in base_state
        if key.startswith("classifier.") or not torch.equal(base_state[key], merged_state[key])
    )
    assert changed and all(".q_proj." in key or ".v_proj." in key or key.startswith("classifier.") for key in changed)
    assert any(".q_proj." in key for key in changed) and any(key.startswith("classifier.") for key in changed)


def test_lora_targets_the_model_lacks_are_one_line(tmp_path, capsys):
    data_dir = write_esc50_parquet(tmp_path / "data", num_classes=3, per_fold=1)
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=100)
    recipe = write_recipe(
        tmp_path / "recipe.json", "esc50", ast={"feature_extractor": {"max_length": 100}, "model": {"max_length": 100}}
    )
    status = main(
        [
            "train",
            "--recipe",
            str(recipe),
            "--model",
            str(model_dir),
            "--data-dir",
            str(data_dir),
            "--fold",
            "1",
            "--output-dir",
            str(tmp_path / "out"),
            "--lora",
            "4",
            "--lora-targets",
            "query,value",
        ]
    )
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert status == 2 and len(errors) == 1 and "Traceback" not in stderr  # one line, exit status 2
    assert "query,value" in errors[0] and "q_proj" in errors[0]
