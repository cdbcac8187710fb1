"""`export --format transformers`: transformers' native AST format, parity reported, refusal naming the field."""

import json
import subprocess
import sys

import pytest
import torch
import transformers

from spectrogram_transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    ASTModel,
    SSASTConfig,
    SSASTForAudioClassification,
)
from spectrogram_transformers.modeling.export_transformers import (
    NotExpressibleError,
    export_to_transformers,
)

TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=100, num_labels=3
)


def _saved(tmp_path, model, name="model"):
    directory = tmp_path / name
    model.save_pretrained(directory)
    ASTFeatureExtractor(max_length=model.config.max_length, mean=-5.0, std=3.0).save_pretrained(directory)
    return directory


def test_exported_classifier_loads_in_plain_transformers_with_reported_parity(tmp_path):
    config = ASTConfig(**TINY, id2label={0: "dog", 1: "rain", 2: "siren"}, label2id={"dog": 0, "rain": 1, "siren": 2})
    model = ASTForAudioClassification(config).eval()
    report = export_to_transformers(_saved(tmp_path, model), tmp_path / "native")
    saved = json.loads((tmp_path / "native" / "config.json").read_text())
    assert saved["model_type"] == "audio-spectrogram-transformer" and "auto_map" not in saved
    native = transformers.ASTForAudioClassification.from_pretrained(tmp_path / "native")
    assert type(native).__module__.startswith("transformers.")
    assert native.config.id2label == config.id2label
    features = torch.randn(3, 100, 128)
    with torch.no_grad():
        difference = (native(features).logits - model(features).logits).abs().max().item()
    # the only change is the classifier LayerNorm eps (1e-5 -> 1e-6): a small, reported difference
    assert 0 < difference < 1e-4 and 0 < report.max_abs_logits_difference < 1e-4
    assert any("eps" in note for note in report.notes)
    extractor = transformers.AutoFeatureExtractor.from_pretrained(tmp_path / "native")
    assert type(extractor).__module__.startswith("transformers.")
    assert (extractor.mean, extractor.std, extractor.max_length) == (-5.0, 3.0, 100)


def test_equal_eps_exports_exactly(tmp_path):
    model = ASTModel(ASTConfig(**TINY, classifier_layer_norm_eps=1e-6)).eval()
    report = export_to_transformers(model, tmp_path / "native")
    native = transformers.ASTModel.from_pretrained(tmp_path / "native")
    features = torch.randn(2, 100, 128)
    with torch.no_grad():
        torch.testing.assert_close(
            native(features).last_hidden_state, model(features).last_hidden_state, atol=1e-6, rtol=0
        )
    assert report.max_abs_logits_difference < 1e-6 and not any("eps" in note for note in report.notes)


@pytest.mark.parametrize(
    "config, field",
    [
        (
            SSASTConfig(
                **{**TINY, "max_length": 128}, patch_size=(128, 2), frequency_stride=128, time_stride=2, pooling="cls"
            ),
            "patch_size",
        ),
        (SSASTConfig(**TINY, patch_size=16, pooling="mean", num_prefix_tokens=2), "pooling"),
        (ASTConfig(**TINY, num_prefix_tokens=1), "num_prefix_tokens"),
    ],
)
def test_inexpressible_architecture_is_refused_naming_the_field(tmp_path, config, field):
    model_class = SSASTForAudioClassification if config.model_type == "ssast" else ASTForAudioClassification
    with pytest.raises(NotExpressibleError, match=field):
        export_to_transformers(model_class(config), tmp_path / "native")
    assert not (tmp_path / "native").exists()


@pytest.mark.slow
def test_cli_prints_parity_and_refuses_one_line(tmp_path):
    source = _saved(tmp_path, ASTForAudioClassification(ASTConfig(**TINY)))
    command = [sys.executable, "-m", "spectrogram_transformers", "export", str(source), "--format", "transformers"]
    done = subprocess.run([*command, "--output", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "max |logits difference|" in done.stdout
    again = subprocess.run([*command, "--output", str(tmp_path / "out")], capture_output=True, text=True)
    assert again.returncode != 0 and "not empty" in again.stderr and "Traceback" not in again.stderr
    frame = _saved(
        tmp_path,
        SSASTForAudioClassification(
            SSASTConfig(**{**TINY, "max_length": 128}, patch_size=(128, 2), frequency_stride=128, time_stride=2)
        ),
        "frame",
    )
    refused = subprocess.run(
        [*command[:4], str(frame), *command[5:], "--output", str(tmp_path / "x")], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "patch_size" in refused.stderr and "Traceback" not in refused.stderr


def test_htsat_has_no_transformers_format(tmp_path):
    from testing_utils.tiny_models import save_tiny_htsat

    with pytest.raises(NotExpressibleError, match="model_type 'htsat'"):
        export_to_transformers(save_tiny_htsat(tmp_path / "htsat"), tmp_path / "native")
