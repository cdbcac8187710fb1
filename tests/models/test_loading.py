"""from_pretrained: transformers-native AST converts exactly on load; encoder weights are never left random."""

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForAudioClassification

from spectrogram_transformers import (
    ASTForAudioClassification,
    ASTModel,
    HTSATForAudioClassification,
    HTSATModel,
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    SSASTModel,
)
from spectrogram_transformers.modeling.checkpoint import CheckpointKeyError
from testing_utils.tiny_models import save_tiny_ast, save_tiny_htsat

LABELS = {0: "dog", 1: "rain", 2: "siren"}


def _transformers_ast(tmp_path, base: bool = False):
    torch.manual_seed(3)
    config = transformers.ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    model = (transformers.ASTModel if base else transformers.ASTForAudioClassification)(config).eval()
    for parameter in model.parameters():  # transformers zero-initialises tokens: make every tensor count
        parameter.data.normal_(0, 0.05)
    directory = tmp_path / ("native_base" if base else "native")
    model.save_pretrained(directory)
    return model, directory


def test_transformers_native_ast_converts_exactly_on_load(tmp_path):
    native, directory = _transformers_ast(tmp_path)
    features = torch.randn(2, 100, 128)
    ours = ASTForAudioClassification.from_pretrained(directory)
    assert type(ours) is ASTForAudioClassification and ours.config.id2label == LABELS
    with torch.no_grad():
        expected = native(features).logits
        torch.testing.assert_close(ours(features).logits, expected, atol=1e-6, rtol=0)
        encoder = ASTModel.from_pretrained(directory)
        torch.testing.assert_close(
            encoder(features).last_hidden_state,
            native.audio_spectrogram_transformer(features).last_hidden_state,
            atol=1e-6,
            rtol=0,
        )
    # the Auto class (package imported) keeps transformers' own model for its own model_type: exact by definition
    auto = AutoModelForAudioClassification.from_pretrained(directory)
    with torch.no_grad():
        assert torch.equal(auto(features).logits, expected)
    # a transformers ASTModel directory (no prefix) loads as our encoder, and as a classifier with a fresh head
    native_base, base_directory = _transformers_ast(tmp_path, base=True)
    with torch.no_grad():
        torch.testing.assert_close(
            ASTModel.from_pretrained(base_directory)(features).last_hidden_state,
            native_base(features).last_hidden_state,
            atol=1e-6,
            rtol=0,
        )
    with pytest.raises(ValueError, match="SSAST"):
        SSASTForAudioClassification.from_pretrained(directory)


def test_transformers_native_ast_with_overrides(tmp_path):
    native, directory = _transformers_ast(tmp_path)
    longer = ASTForAudioClassification.from_pretrained(directory, max_length=128)  # positional embedding resized
    assert longer.config.max_length == 128 and longer.config.id2label == LABELS
    relabelled = ASTForAudioClassification.from_pretrained(directory, num_labels=5, ignore_mismatched_sizes=True)
    assert torch.equal(relabelled.ast.layernorm.weight, native.audio_spectrogram_transformer.layernorm.weight)
    with pytest.raises(CheckpointKeyError, match="classifier.dense.weight"):
        ASTForAudioClassification.from_pretrained(directory, num_labels=5)


def _tiny_ssast(tmp_path, pretraining=False):
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        patch_size=16,
        frequency_stride=16,
        time_stride=16,
        num_labels=3,
        num_masked_patches=8,
    )
    directory = tmp_path / ("ssast_pretraining" if pretraining else "ssast")
    (SSASTForPreTraining if pretraining else SSASTForAudioClassification)(config).save_pretrained(directory)
    return directory


def _edit_weights(directory, edit):
    path = directory / "model.safetensors"
    state = load_file(path)
    edit(state)
    save_file(state, path, metadata={"format": "pt"})


@pytest.mark.parametrize(
    "family, model_class, encoder_key",
    [
        ("ast", ASTForAudioClassification, "ast.encoder.layers.0.mlp.fc1.weight"),
        ("ast", ASTModel, "ast.encoder.layers.0.mlp.fc1.weight"),
        ("ssast", SSASTForAudioClassification, "ssast.embeddings.position_embeddings"),
        ("ssast", SSASTModel, "ssast.embeddings.position_embeddings"),
        ("ssast_pretraining", SSASTForPreTraining, "ssast.encoder.layers.0.attention.k_proj.weight"),
        ("htsat", HTSATForAudioClassification, "htsat.encoder.layers.0.blocks.0.mlp.fc1.weight"),
        ("htsat", HTSATModel, "htsat.layernorm.weight"),
    ],
)
def test_missing_unexpected_or_misshaped_encoder_weights_raise_naming_them(tmp_path, family, model_class, encoder_key):
    makers = {
        "ast": lambda: save_tiny_ast(tmp_path / "ast"),
        "htsat": lambda: save_tiny_htsat(tmp_path / "htsat"),
        "ssast": lambda: _tiny_ssast(tmp_path),
        "ssast_pretraining": lambda: _tiny_ssast(tmp_path, pretraining=True),
    }
    directory = makers[family]()
    model_class.from_pretrained(directory)  # loads as saved
    short_key = encoder_key.split(".", 1)[1]
    _edit_weights(directory, lambda state: state.pop(encoder_key))
    with pytest.raises(CheckpointKeyError, match=short_key.replace(".", r"\.")):
        model_class.from_pretrained(directory)
    directory = makers[family]()
    _edit_weights(
        directory, lambda state: state.update({encoder_key.rsplit(".", 1)[0] + ".extra_scale": torch.ones(1)})
    )
    with pytest.raises(CheckpointKeyError, match="extra_scale"):
        model_class.from_pretrained(directory)
    directory = makers[family]()
    _edit_weights(directory, lambda state: state.update({encoder_key: torch.zeros(*state[encoder_key].shape[:-1], 1)}))
    with pytest.raises(CheckpointKeyError, match="another shape"):
        model_class.from_pretrained(directory)


def test_only_heads_are_initialised_fresh(tmp_path):
    ssast_pretraining = _tiny_ssast(tmp_path, pretraining=True)
    classifier, info = SSASTForAudioClassification.from_pretrained(ssast_pretraining, output_loading_info=True)
    assert all(key.startswith("classifier.") for key in info["missing_keys"]) and info["missing_keys"]
    assert "mask_embedding" in info["unexpected_keys"]  # the pre-training heads are dropped, not loaded
    encoder = SSASTModel.from_pretrained(ssast_pretraining)
    assert torch.equal(encoder.embeddings.position_embeddings, classifier.ssast.embeddings.position_embeddings)


def test_corrupt_weights_name_the_file(tmp_path):
    directory = save_tiny_ast(tmp_path / "ast")
    (directory / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match=r"model\.safetensors.*truncated, corrupt"):
        ASTForAudioClassification.from_pretrained(directory)


def test_convert_of_a_truncated_safetensors_file_names_it(tmp_path):
    from spectrogram_transformers import convert

    path = tmp_path / "audioset.safetensors"
    save_file(load_file(save_tiny_ast(tmp_path / "ast") / "model.safetensors"), path)
    path.write_bytes(path.read_bytes()[:100])  # truncated download
    with pytest.raises(ValueError, match=r"audioset\.safetensors.*truncated"):
        convert(path, "original-ast")


def test_pipeline_on_a_corrupt_file_path_names_the_file(tmp_path):
    directory = save_tiny_ast(tmp_path / "ast")
    corrupt = tmp_path / "broken_clip.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk")
    classify = transformers.pipeline("audio-classification", model=str(directory))
    with pytest.raises(ValueError, match="broken_clip.wav"):
        classify(str(corrupt))


def test_geometry_change_reads_the_checkpoint_once(tmp_path, monkeypatch):
    from spectrogram_transformers.modeling import loading

    directory = save_tiny_ast(tmp_path / "ast")
    reads = []
    read = loading.load_checkpoint
    monkeypatch.setattr(loading, "load_checkpoint", lambda path: reads.append(path) or read(path))
    model = ASTForAudioClassification.from_pretrained(directory, max_length=200)
    assert model.config.max_length == 200 and len(reads) == 1  # then handed to transformers as a state dict


@pytest.mark.parametrize("family", ["ast", "ssast", "htsat"])
def test_name_or_path_is_the_loaded_directory(tmp_path, family):
    """As transformers sets it: PEFT writes `model.name_or_path` into adapters as `base_model_name_or_path`."""
    makers = {"ast": save_tiny_ast, "htsat": save_tiny_htsat, "ssast": lambda path: _tiny_ssast(path.parent)}
    directory = makers[family](tmp_path / family)
    model = AutoModelForAudioClassification.from_pretrained(directory)
    assert model.name_or_path == str(directory) == model.config.name_or_path


def test_label2id_follows_id2label_through_convert_save_load_and_export(tmp_path):
    """A transformers AST with default labels, converted by the CLI, reloaded and exported back to transformers'
    format: label2id stays the inverse of id2label at every step (it used to be None after the round trip, and
    `export --format transformers` crashed on it)."""
    from spectrogram_transformers.cli import main

    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100, num_labels=3
    )
    transformers.ASTForAudioClassification(config).save_pretrained(tmp_path / "native")
    assert (
        main(
            [
                "convert",
                "--checkpoint",
                str(tmp_path / "native"),
                "--source",
                "hf-ast",
                "--output",
                str(tmp_path / "ours"),
            ]
        )
        == 0
    )
    reloaded = ASTForAudioClassification.from_pretrained(tmp_path / "ours")
    expected = {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}
    assert reloaded.config.label2id == expected and reloaded.config.id2label == {v: k for k, v in expected.items()}
    assert (
        main(["export", str(tmp_path / "ours"), "--format", "transformers", "--output", str(tmp_path / "back")]) == 0
    )
    exported = transformers.AutoConfig.from_pretrained(tmp_path / "back")
    assert exported.model_type == "audio-spectrogram-transformer" and exported.label2id == expected
