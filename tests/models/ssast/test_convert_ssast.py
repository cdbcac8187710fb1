"""original-ssast converter: pre-training and fine-tuned checkpoints, config inference, strict key errors, hub configs."""

import pytest
import torch

from spectrogram_transformers import (
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    convert,
)
from spectrogram_transformers.hub_configs import (
    build_model,
    list_variants,
    load_config,
    load_feature_extractor,
)
from spectrogram_transformers.modeling.checkpoint import CheckpointKeyError
from spectrogram_transformers.modeling.ssast.convert_ssast import (
    convert_original_ssast_state_dict,
    infer_ssast_config,
)
from testing_utils.fixtures import fixture_info, load_fixture

FIXTURES = ("ssast_patch_w64d2", "ssast_frame_w64d2")
HEADS = 2  # the fixtures' narrow DeiT (width 64) has 2 heads; widths 192/384/768 are inferred


def fine_tuning_config(name: str, pooling: str = "mean") -> SSASTConfig:
    info = fixture_info(f"{name}.pretrain_io")
    ft = info["finetune"][0]["constructor_kwargs"]
    return infer_ssast_config(
        load_fixture(f"{name}.ft0.state_dict"),
        num_attention_heads=HEADS,
        frequency_stride=ft["fstride"],
        time_stride=ft["tstride"],
        max_length=ft["input_tdim"],
        pooling=pooling,
    )


@pytest.mark.parametrize("name", FIXTURES)
def test_infer_config_from_pretraining_checkpoint(name):
    state_dict = load_fixture(f"{name}.pretrain_state_dict")
    info = fixture_info(f"{name}.pretrain_io")["pretrain_constructor_kwargs"]
    config = infer_ssast_config(state_dict, num_attention_heads=HEADS)
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (64, 2, 256)
    assert (config.frequency_patch_size, config.time_patch_size) == (info["fshape"], info["tshape"])
    assert (config.frequency_stride, config.time_stride) == (info["fstride"], info["tstride"])
    assert (config.num_mel_bins, config.max_length) == (info["input_fdim"], info["input_tdim"])
    assert config.num_prefix_tokens == 2
    expected = "cluster" if fixture_info(f"{name}.pretrain_io")["cluster"] else "random"
    assert config.mask_strategy == expected


def test_heads_default_by_width_and_unknown_width_needs_them():
    state_dict = load_fixture("ssast_patch_w64d2.pretrain_state_dict")
    with pytest.raises(ValueError, match="num_attention_heads"):
        infer_ssast_config(state_dict)
    widened = {key: value for key, value in state_dict.items() if key.startswith("module.v.patch_embed")}
    widened["module.v.patch_embed.proj.weight"] = torch.zeros(192, 1, 16, 16)
    assert infer_ssast_config(widened).num_attention_heads == 3


@pytest.mark.parametrize("name", FIXTURES)
def test_pretraining_checkpoint_converts_to_pretraining_model(name):
    state_dict = load_fixture(f"{name}.pretrain_state_dict")
    config = infer_ssast_config(state_dict, num_attention_heads=HEADS, num_masked_patches=40)
    model = convert(state_dict, "original-ssast", config)
    assert type(model) is SSASTForPreTraining and not model.training
    converted = model.state_dict()
    assert torch.equal(converted["mask_embedding"], state_dict["module.mask_embed"])
    assert torch.equal(converted["discriminative_head.fc2.weight"], state_dict["module.cpredlayer.2.weight"])
    assert torch.equal(converted["generative_head.fc1.bias"], state_dict["module.gpredlayer.0.bias"])
    split = torch.cat(
        [converted[f"ssast.encoder.layers.1.attention.{name}.weight"] for name in ("q_proj", "k_proj", "v_proj")]
    )
    assert torch.equal(split, state_dict["module.v.blocks.1.attn.qkv.weight"])
    assert torch.equal(converted["ssast.embeddings.position_embeddings"], state_dict["module.v.pos_embed"])


@pytest.mark.parametrize("name", FIXTURES)
def test_fine_tuned_checkpoint_converts_to_classifier_and_matches_logits(name):
    """The ft0 state dict (plain `v.*` + `mlp_head.*`) reproduces the original's fine-tuning logits."""
    io = load_fixture(f"{name}.ft_io")
    for pooling, task in (("mean", "ft_avgtok"), ("cls", "ft_cls")):
        model = convert(load_fixture(f"{name}.ft0.state_dict"), "original-ssast", fine_tuning_config(name, pooling))
        assert type(model) is SSASTForAudioClassification
        with torch.no_grad():
            logits = model(io["ft0.input_values"]).logits
        torch.testing.assert_close(logits, io[f"ft0.{task}.logits"], atol=2e-6, rtol=0)


@pytest.mark.parametrize("name", FIXTURES)
def test_converted_fine_tuned_checkpoint_equals_adapted_pretraining_checkpoint(name, tmp_path):
    """Both routes to a fine-tuning model agree on every encoder tensor, bit for bit."""
    pretraining = load_fixture(f"{name}.pretrain_state_dict")
    convert(
        pretraining,
        "original-ssast",
        infer_ssast_config(pretraining, num_attention_heads=HEADS, num_masked_patches=40),
    ).save_pretrained(tmp_path)
    config = fine_tuning_config(name)
    adapted = SSASTForAudioClassification.from_pretrained(tmp_path, config=config).state_dict()
    converted = convert(load_fixture(f"{name}.ft0.state_dict"), "original-ssast", config).state_dict()
    for key, value in converted.items():
        if key.startswith("ssast."):
            assert torch.equal(adapted[key], value), key


def test_unknown_and_missing_keys_are_named():
    state_dict = dict(load_fixture("ssast_patch_w64d2.pretrain_state_dict"))
    config = infer_ssast_config(state_dict, num_attention_heads=HEADS, num_masked_patches=40)
    with pytest.raises(CheckpointKeyError, match="module.v.extra_token|v.extra_token"):
        convert({**state_dict, "module.v.extra_token": torch.zeros(1)}, "original-ssast", config)
    del state_dict["module.gpredlayer.2.bias"]
    with pytest.raises(CheckpointKeyError, match="generative_head.fc2.bias"):
        convert(state_dict, "original-ssast", config)


def test_config_contradicting_checkpoint_is_rejected():
    state_dict = load_fixture("ssast_patch_w64d2.pretrain_state_dict")
    config = infer_ssast_config(state_dict, num_attention_heads=HEADS, num_masked_patches=40)
    with pytest.raises(ValueError, match="hidden_size"):
        convert(
            state_dict,
            "original-ssast",
            SSASTConfig(**{**config.to_diff_dict(), "hidden_size": 128, "num_attention_heads": 2}),
        )
    with pytest.raises(ValueError, match="from_pretrained"):
        convert(
            state_dict,
            "original-ssast",
            SSASTConfig(**{**config.to_diff_dict(), "frequency_stride": 10, "time_stride": 10}),
        )
    with pytest.raises(ValueError, match="does not store its strides"):
        convert(load_fixture("ssast_patch_w64d2.ft0.state_dict"), "original-ssast")


def test_pure_conversion_drops_imagenet_heads_and_input_size():
    state_dict = load_fixture("ssast_frame_w64d2.pretrain_state_dict")
    config = infer_ssast_config(state_dict, num_attention_heads=HEADS, num_masked_patches=40)
    converted = convert_original_ssast_state_dict(state_dict, config)
    assert not any("head_dist" in key or "p_input" in key or key.startswith("v.") for key in converted)
    assert set(converted) == set(SSASTForPreTraining(config).state_dict())


SSAST_VARIANTS = [name for name in list_variants() if name.startswith("ssast-")]


def test_released_variants_are_shipped():
    expected = {
        "ssast-base-patch-400",
        "ssast-base-frame-400",
        "ssast-base-patch-250",
        "ssast-base-frame-250",
        "ssast-small-patch-400",
        "ssast-tiny-patch-400",
        "ssast-tiny-frame-400",
    }
    assert set(SSAST_VARIANTS) == expected


@pytest.mark.parametrize("name", SSAST_VARIANTS)
def test_variant_configs_describe_the_pretraining_geometry(name):
    config = load_config(name)
    size, shape, masked = name.split("-")[1:]
    assert isinstance(config, SSASTConfig)
    assert config.hidden_size == {"tiny": 192, "small": 384, "base": 768}[size]
    assert config.num_masked_patches == int(masked)
    assert (config.frequency_patch_size, config.time_patch_size) == ((16, 16) if shape == "patch" else (128, 2))
    assert config.pretraining_errors() == []
    assert config.max_length == 1024 and config.patch_grid == ((8, 64) if shape == "patch" else (1, 512))
    extractor = load_feature_extractor(name)
    assert extractor.max_length == 1024 and extractor.mean == pytest.approx(-4.2677393)


def test_variant_builds_a_classifier():
    model = build_model("ssast-tiny-frame-400", num_labels=7)
    assert type(model) is SSASTForAudioClassification
    assert model.config.num_labels == 7
