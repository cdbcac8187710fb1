"""AST converters: original checkpoints (fixtures A, B, D), timm ImageNet initialisation (fixture C), transformers."""

import pytest
import torch
from safetensors.torch import load_file

from spectrogram_transformers import ASTConfig, convert
from spectrogram_transformers.modeling.ast.convert_ast import (
    convert_original_ast_state_dict,
    convert_timm_vit_state_dict,
)
from spectrogram_transformers.modeling.checkpoint import CheckpointKeyError
from testing_utils.fixtures import fixture_path, load_fixture

W64D3 = dict(
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=2,
    intermediate_size=256,
    frequency_stride=16,
    time_stride=16,
    max_length=128,
    num_labels=7,
)


def w64d3_config(**overrides) -> ASTConfig:
    return ASTConfig(**{**W64D3, **overrides})


def test_original_weights_are_copied_bit_exactly():
    original = {k.removeprefix("module."): v for k, v in load_fixture("ast_w64d3_f16t16_tdim128.state_dict").items()}
    model = convert(load_fixture("ast_w64d3_f16t16_tdim128.state_dict"), "original-ast", w64d3_config())
    state = model.state_dict()
    assert torch.equal(state["ast.embeddings.position_embeddings"], original["v.pos_embed"])
    assert torch.equal(state["ast.embeddings.distillation_token"], original["v.dist_token"])
    qkv = original["v.blocks.1.attn.qkv.weight"]
    split = torch.cat(
        [state[f"ast.encoder.layers.1.attention.{name}.weight"] for name in ("q_proj", "k_proj", "v_proj")]
    )
    assert torch.equal(split, qkv)  # timm's fused rows are q, k, v in turn
    assert torch.equal(state["classifier.dense.weight"], original["mlp_head.1.weight"])


def test_pth_file_with_and_without_module_prefix(tmp_path):
    reference = load_fixture("ast_w64d3_f16t16_tdim128.io")
    wrapped = load_fixture("ast_w64d3_f16t16_tdim128.state_dict")
    plain = {k.removeprefix("module."): v for k, v in wrapped.items()}
    torch.save(wrapped, tmp_path / "audioset_like.pth")
    torch.save({"state_dict": plain}, tmp_path / "wrapped.ckpt")
    for checkpoint in (tmp_path / "audioset_like.pth", tmp_path / "wrapped.ckpt"):
        model = convert(checkpoint, "original-ast", w64d3_config())
        with torch.no_grad():
            torch.testing.assert_close(model(reference["input_values"]).logits, reference["logits"], atol=2e-6, rtol=0)


def test_architecture_is_inferred_without_config():
    model = convert(load_fixture("ast_tiny224_f10t10_tdim100.state_dict"), "original-ast")
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.num_labels) == (
        192,
        1,
        3,
        10,
    )
    assert config.patch_grid == (12, 9)  # 108 patches at the original's default stride 10
    assert config.max_length == 100
    reference = load_fixture("ast_tiny224_f10t10_tdim100.io")
    with torch.no_grad():
        logits = model(reference["input_values"]).logits
    torch.testing.assert_close(logits, reference["logits"], atol=2e-6, rtol=0)


def test_unknown_and_missing_keys_are_named():
    state_dict = dict(load_fixture("ast_tiny224_f10t10_tdim100.state_dict"))
    state_dict["v.blocks.0.attn.extra_scale"] = torch.ones(1)
    with pytest.raises(CheckpointKeyError, match="v.blocks.0.attn.extra_scale"):
        convert(state_dict, "original-ast")
    state_dict.pop("v.blocks.0.attn.extra_scale")
    state_dict.pop("v.norm.weight")
    with pytest.raises(CheckpointKeyError, match=r"ast\.layernorm\.weight"):
        convert(state_dict, "original-ast")


def test_config_disagreeing_with_checkpoint_names_the_field():
    with pytest.raises(ValueError, match="num_hidden_layers: config has 2, checkpoint has 3"):
        convert(load_fixture("ast_w64d3_f16t16_tdim128.state_dict"), "original-ast", w64d3_config(num_hidden_layers=2))
    with pytest.raises(ValueError, match="num_labels"):
        convert(load_fixture("ast_w64d3_f16t16_tdim128.state_dict"), "original-ast", w64d3_config(num_labels=527))


def test_unknown_source_lists_supported_ones():
    with pytest.raises(ValueError, match="original-ast"):
        convert({}, "fairseq-ast")


# ---------------------------------------------------------------------------------------------------------------
# Fixture C: timm DeiT -> AST initialisation (original imagenet_pretrain=True)

IMAGENET_TARGETS = {
    "t0": dict(frequency_stride=10, time_stride=10, max_length=200, num_labels=10),  # frequency cut, time interpolated
    "t1": dict(frequency_stride=8, time_stride=16, max_length=128, num_labels=6),  # frequency interpolated, time cut
}


@pytest.mark.parametrize("target", sorted(IMAGENET_TARGETS))
def test_timm_imagenet_initialisation_is_bit_exact(target):
    config = ASTConfig(
        hidden_size=48, num_hidden_layers=1, num_attention_heads=3, intermediate_size=192, **IMAGENET_TARGETS[target]
    )
    source = load_fixture("ast_imagenet_init_w48d1.source_deit")
    expected = load_fixture(f"ast_imagenet_init_w48d1.{target}.ast_state_dict")
    model = convert(source, "timm-vit", config)
    # the original keeps the ImageNet heads and a new mlp_head: compare through the original-format converter
    expected_converted, _ = convert_original_ast_state_dict(expected, config)
    state = model.state_dict()
    for key, value in expected_converted.items():
        if key.startswith("classifier."):
            continue
        assert torch.equal(state[key], value), f"{key} differs from the original adaptation"
    # with the original's (re-valued) head, the logits match
    model.load_state_dict({**state, **{k: v for k, v in expected_converted.items() if k.startswith("classifier.")}})
    reference = load_fixture("ast_imagenet_init_w48d1.io")
    with torch.no_grad():
        output = model(reference[f"{target}.input_values"])
        base = model.ast(reference[f"{target}.input_values"])
    torch.testing.assert_close(
        base.last_hidden_state, reference[f"{target}.last_hidden_state"], atol=3e-6, rtol=0
    )  # measured <= 1.5e-6
    torch.testing.assert_close(
        base.pooler_output, reference[f"{target}.pooled"], atol=3e-6, rtol=0
    )  # measured <= 1.5e-6
    torch.testing.assert_close(output.logits, reference[f"{target}.logits"], atol=2e-6, rtol=0)


def test_timm_patch_projection_is_the_rgb_sum_and_head_is_fresh():
    source = load_fixture("ast_imagenet_init_w48d1.source_deit")
    config = ASTConfig(
        hidden_size=48, num_hidden_layers=1, num_attention_heads=3, intermediate_size=192, **IMAGENET_TARGETS["t0"]
    )
    converted, _ = convert_timm_vit_state_dict(source, config)
    projection = converted["ast.embeddings.patch_embeddings.projection.weight"]
    assert projection.shape == (48, 1, 16, 16)
    assert torch.equal(projection, source["patch_embed.proj.weight"].sum(dim=1, keepdim=True))
    assert not any(key.startswith("classifier.") for key in converted)
    model = convert(source, "timm-vit", config)
    assert model.classifier.dense.weight.shape == (10, 48)


# ---------------------------------------------------------------------------------------------------------------
# Fixture D: an AudioSet-trained AST (12 x 101 patches) converted to 100 frames


def test_audioset_checkpoint_into_shorter_input_resizes_positions_as_original():
    adapt = load_fixture("ast_audioset_posembed_adapt")
    generator = torch.Generator().manual_seed(0)
    width = adapt["source.pos_embed"].shape[-1]
    # a depth-0 base384-width checkpoint: only the positional embedding matters in this branch
    checkpoint = {
        "module.v.cls_token": torch.randn(1, 1, width, generator=generator),
        "module.v.dist_token": torch.randn(1, 1, width, generator=generator),
        "module.v.pos_embed": adapt["source.pos_embed"],
        "module.v.patch_embed.proj.weight": torch.randn(width, 1, 16, 16, generator=generator),
        "module.v.patch_embed.proj.bias": torch.randn(width, generator=generator),
        "module.v.norm.weight": torch.ones(width),
        "module.v.norm.bias": torch.zeros(width),
        "module.v.head.weight": torch.zeros(1000, width),
        "module.v.head.bias": torch.zeros(1000),
        "module.v.head_dist.weight": torch.zeros(1000, width),
        "module.v.head_dist.bias": torch.zeros(1000),
        "module.mlp_head.0.weight": torch.ones(width),
        "module.mlp_head.0.bias": torch.zeros(width),
        "module.mlp_head.1.weight": torch.randn(35, width, generator=generator),
        "module.mlp_head.1.bias": torch.zeros(35),
    }
    config = ASTConfig(num_hidden_layers=0, max_length=100, num_labels=35)
    model = convert(checkpoint, "original-ast", config)
    assert torch.equal(model.ast.embeddings.position_embeddings, adapt["tdim100.pos_embed"])
    # the same checkpoint at its own length keeps the embedding untouched
    same = convert(checkpoint, "original-ast", ASTConfig(num_hidden_layers=0, max_length=1024, num_labels=35))
    assert torch.equal(same.ast.embeddings.position_embeddings, adapt["source.pos_embed"])


# ---------------------------------------------------------------------------------------------------------------
# transformers' own ASTForAudioClassification


def _tiny_transformers_ast():
    from transformers import ASTConfig as HFASTConfig
    from transformers import ASTForAudioClassification as HFASTForAudioClassification

    torch.manual_seed(3)
    config = HFASTConfig(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=96,
        max_length=100,
        frequency_stride=12,
        time_stride=10,
        num_labels=5,
    )
    model = HFASTForAudioClassification(config).eval()
    with torch.no_grad():  # make LayerNorm affines and biases non-trivial so a dropped one is caught
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def test_transformers_checkpoint_directory_gives_equal_logits(tmp_path):
    reference_model = _tiny_transformers_ast()
    reference_model.save_pretrained(tmp_path)
    model = convert(tmp_path, "hf-ast")
    assert (
        model.config.layer_norm_eps == model.config.classifier_layer_norm_eps == reference_model.config.layer_norm_eps
    )
    assert (model.config.frequency_stride, model.config.time_stride, model.config.max_length) == (12, 10, 100)
    features = torch.randn(3, 100, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(features).logits, reference_model(features).logits, atol=2e-6, rtol=0)


def test_transformers_in_memory_state_dict_converts(tmp_path):
    reference_model = _tiny_transformers_ast()
    config = ASTConfig(
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=96,
        max_length=100,
        frequency_stride=12,
        time_stride=10,
        num_labels=5,
        layer_norm_eps=1e-12,
        classifier_layer_norm_eps=1e-12,
    )
    model = convert(reference_model.state_dict(), "hf-ast", config)  # 5.x names: layers.N.attention.q_proj
    features = torch.randn(2, 100, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(features).logits, reference_model(features).logits, atol=2e-6, rtol=0)


def test_fixture_state_dict_has_the_original_ast_layout():
    state = load_file(str(fixture_path("ast_tiny224_f10t10_tdim100.state_dict.safetensors")))
    assert len(state) == 27 and {
        "v.cls_token",
        "v.dist_token",
        "v.pos_embed",
        "v.patch_embed.proj.weight",
        "mlp_head.1.weight",
    } <= set(state)
    assert all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in state.values())
    assert state["v.patch_embed.proj.weight"].shape[-2:] == (16, 16)  # 16x16 patches
