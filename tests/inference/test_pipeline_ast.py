"""End to end for a user: convert an original checkpoint with the CLI, reload it with `pipeline`, classify."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    pipeline,
)

import spectrogram_transformers
from spectrogram_transformers import ASTConfig, ASTForAudioClassification, hub_configs
from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
from spectrogram_transformers.modeling.convert import save_converted
from testing_utils.fixtures import fixture_path, load_fixture

W64D3 = "ast_w64d3_f16t16_tdim128"


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory):
    """The fixture-B original checkpoint converted by the CLI with a 7-label CSV."""
    directory = tmp_path_factory.mktemp("converted")
    checkpoint = directory / "original.pth"
    torch.save(load_fixture(f"{W64D3}.state_dict"), checkpoint)
    labels = directory / "labels.csv"
    names = ["yes", "no", "up", "down", "left", "right", "stop"]
    labels.write_text("index,mid,display_name\n" + "".join(f"{i},/m/{i},{name}\n" for i, name in enumerate(names)))
    config = ASTConfig(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=256,
        frequency_stride=16,
        time_stride=16,
        max_length=128,
        num_labels=7,
    )
    config_dir = directory / "config"
    config.save_pretrained(config_dir)
    output = directory / "model"
    code = cli_main(
        [
            "convert",
            "--source",
            "original-ast",
            "--checkpoint",
            str(checkpoint),
            "--config",
            str(config_dir / "config.json"),
            "--labels",
            str(labels),
            "--output",
            str(output),
        ]
    )
    assert code == 0
    return output


def test_cli_output_loads_with_auto_classes(converted_dir):
    model = AutoModelForAudioClassification.from_pretrained(converted_dir)
    assert isinstance(model, ASTForAudioClassification)
    assert model.config.id2label[6] == "stop"
    extractor = AutoFeatureExtractor.from_pretrained(converted_dir)
    assert isinstance(extractor, ASTFeatureExtractor)
    assert extractor.max_length == 128
    assert (converted_dir / "model.safetensors").is_file()
    reference = load_fixture(f"{W64D3}.io")
    with torch.no_grad():
        torch.testing.assert_close(model(reference["input_values"]).logits, reference["logits"], atol=2e-6, rtol=0)


def test_pipeline_matches_the_model_on_arrays_dicts_and_files(converted_dir):
    classifier = pipeline("audio-classification", model=str(converted_dir), top_k=7)
    assert isinstance(classifier.feature_extractor, ASTFeatureExtractor)
    audio, rate = soundfile.read(fixture_path("audio/word_up_16k.wav"), dtype="float32")
    model = AutoModelForAudioClassification.from_pretrained(converted_dir)
    features = ASTFeatureExtractor.from_pretrained(converted_dir)(audio, sampling_rate=rate, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**features).logits.softmax(-1)[0]
    expected = {model.config.id2label[i]: probabilities[i].item() for i in range(7)}
    for inputs in (audio, {"array": audio, "sampling_rate": rate}, str(fixture_path("audio/word_up_16k.wav"))):
        scores = {entry["label"]: entry["score"] for entry in classifier(inputs)}
        assert scores.keys() == expected.keys()
        for label, score in expected.items():
            assert scores[label] == pytest.approx(score, abs=1e-5)


def test_pipeline_decodes_other_rates_from_files(converted_dir):
    """A 32 kHz file path is decoded (and resampled) by ffmpeg to the model's rate."""
    classifier = pipeline("audio-classification", model=str(converted_dir), top_k=1)
    from_32k_file = classifier(str(fixture_path("audio/mix_3s_32k.wav")))
    from_16k_file = classifier(str(fixture_path("audio/mix_3s_16k.wav")))
    assert from_32k_file[0]["label"] == from_16k_file[0]["label"]


def test_multi_label_models_get_sigmoid_scores(tmp_path):
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        num_labels=5,
        problem_type="multi_label_classification",
    )
    model = ASTForAudioClassification(config).eval()
    save_converted(model, tmp_path)
    classifier = pipeline("audio-classification", model=str(tmp_path), top_k=5)
    audio = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    scores = classifier({"array": audio, "sampling_rate": 16000})
    with torch.no_grad():
        logits = model(**ASTFeatureExtractor(max_length=100)(audio, sampling_rate=16000, return_tensors="pt")).logits[
            0
        ]
    expected = sorted(torch.sigmoid(logits).tolist(), reverse=True)
    assert [entry["score"] for entry in scores] == pytest.approx(expected, abs=1e-5)
    assert sum(entry["score"] for entry in scores) != pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("variant", hub_configs.list_variants())
def test_every_hub_config_builds_a_model(variant):
    config = hub_configs.load_config(variant)
    assert config.model_type in ("ast", "ssast", "htsat")
    # a narrow copy keeps this fast; the geometry, labels and preprocessing are the variant's own
    narrow = (
        {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "num_hidden_layers": 1}
        if config.model_type != "htsat"
        else {"embed_dim": 8, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)}
    )
    model = AutoModelForAudioClassification.from_config(hub_configs.load_config(variant, **narrow))
    assert model.config.num_labels == config.num_labels
    extractor = hub_configs.load_feature_extractor(variant)
    seconds = 1.0
    audio = np.random.default_rng(0).normal(0, 0.1, int(extractor.sampling_rate * seconds)).astype(np.float32)
    inputs = extractor(audio, sampling_rate=extractor.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, config.num_labels)
    assert torch.isfinite(logits).all()


def test_package_registers_auto_config():
    assert isinstance(AutoConfig.for_model("ast"), ASTConfig)
    # every converter source; a new one must be added here (and to the converter tests) on purpose
    assert set(spectrogram_transformers.SUPPORTED_SOURCES) == {
        "original-ast",
        "timm-vit",
        "hf-ast",
        "original-ssast",
        "original-htsat",
    }


def test_python_dash_m_entry_point_lists_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "spectrogram_transformers", "--help"], capture_output=True, text=True, check=True
    )
    assert "convert" in result.stdout


def test_convert_cli_prints_a_json_summary(tmp_path, capsys):
    torch.save(load_fixture("ast_tiny224_f10t10_tdim100.state_dict"), tmp_path / "tiny.pth")
    cli_main(
        [
            "convert",
            "--source",
            "original-ast",
            "--checkpoint",
            str(tmp_path / "tiny.pth"),
            "--output",
            str(tmp_path / "out"),
            "--max-length",
            "200",
        ]
    )
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{") :])
    assert summary["architecture"] == "ASTForAudioClassification" and summary["num_labels"] == 10
    model = ASTForAudioClassification.from_pretrained(tmp_path / "out")
    assert model.config.max_length == 200
    assert model.ast.embeddings.position_embeddings.shape[1] == 12 * 19 + 2
    assert ASTFeatureExtractor.from_pretrained(tmp_path / "out").max_length == 200
