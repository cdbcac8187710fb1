"""Every converter source refuses unknown, missing and mis-shaped keys, naming them.

Parametrised over `SUPPORTED_SOURCES`: a new source cannot be added without a case here (the lookup fails).
"""

import pytest
import torch
import transformers

from spectrogram_transformers import SUPPORTED_SOURCES, ASTConfig, convert
from spectrogram_transformers.modeling.ssast.convert_ssast import infer_ssast_config
from testing_utils.fixtures import load_fixture


def _hf_ast():
    torch.manual_seed(0)
    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100, num_labels=3
    )
    return transformers.ASTForAudioClassification(config).state_dict(), None


def _ssast():
    state_dict = load_fixture("ssast_patch_w64d2.pretrain_state_dict")
    return state_dict, infer_ssast_config(state_dict, num_attention_heads=2, num_masked_patches=40)


# source -> (state dict and config, a key of the source format to remove / reshape, where an extra key goes)
CASES = {
    "original-ast": (
        lambda: (load_fixture("ast_tiny224_f10t10_tdim100.state_dict"), None),
        "v.blocks.0.mlp.fc1.weight",
        "v.blocks.0.attn",
    ),
    "timm-vit": (
        lambda: (
            load_fixture("ast_imagenet_init_w48d1.source_deit"),
            ASTConfig(
                hidden_size=48,
                num_hidden_layers=1,
                num_attention_heads=3,
                intermediate_size=192,
                max_length=200,
                num_labels=10,
            ),
        ),
        "blocks.0.mlp.fc1.weight",
        "blocks.0.attn",
    ),
    "hf-ast": (
        _hf_ast,
        "audio_spectrogram_transformer.layers.0.mlp.fc1.weight",
        "audio_spectrogram_transformer.layers.0.attention",
    ),
    "original-ssast": (_ssast, "module.v.blocks.0.mlp.fc1.weight", "module.v.blocks.0.attn"),
    "original-htsat": (
        lambda: (load_fixture("htsat_e12_d2222.state_dict"), None),
        "layers.0.blocks.0.mlp.fc1.weight",
        "layers.0.blocks.0.attn",
    ),
}


def test_every_source_has_key_cases():
    assert set(CASES) == set(SUPPORTED_SOURCES)


@pytest.mark.parametrize("source", SUPPORTED_SOURCES)
def test_valid_checkpoint_converts(source):
    make, _, _ = CASES[source]
    state_dict, config = make()
    model = convert(dict(state_dict), source, config)
    assert sum(parameter.numel() for parameter in model.parameters()) > 0


@pytest.mark.parametrize("source", SUPPORTED_SOURCES)
def test_unknown_key_is_refused_by_name(source):
    make, _, module = CASES[source]
    state_dict, config = make()
    with pytest.raises(KeyError, match=rf"{module.split('.')[-1]}\.extra_scale"):
        convert({**state_dict, f"{module}.extra_scale": torch.ones(1)}, source, config)


@pytest.mark.parametrize("source", SUPPORTED_SOURCES)
def test_missing_key_is_refused_by_name(source):
    make, key, _ = CASES[source]
    state_dict, config = make()
    state_dict = dict(state_dict)
    del state_dict[key]
    with pytest.raises((KeyError, ValueError), match=r"fc1\.weight"):
        convert(state_dict, source, config)


@pytest.mark.parametrize("source", SUPPORTED_SOURCES)
def test_misshaped_key_is_refused_by_name(source):
    make, key, _ = CASES[source]
    state_dict, config = make()
    key = key.replace("fc1", "fc2")  # fc1 tells the MLP width where no config is given; fc2 must then fit it
    state_dict = {**state_dict, key: torch.zeros(state_dict[key].shape[0], state_dict[key].shape[1] + 1)}
    with pytest.raises((KeyError, ValueError), match=r"fc2\.weight"):
        convert(state_dict, source, config)
