"""AST models: the common suite on a tiny config, fixture parity with the original code, and edge cases."""

import pytest
import torch

from spectrogram_transformers import (
    ASTConfig,
    ASTForAudioClassification,
    ASTModel,
    convert,
)
from testing_utils.fixtures import load_fixture
from testing_utils.model_tester import ModelTesterMixin


def tiny_config(**overrides) -> ASTConfig:
    fields = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=64,
        num_mel_bins=32,
        frequency_stride=8,
        time_stride=8,
        num_labels=4,
    )
    fields.update(overrides)
    return ASTConfig(**fields)


class TestASTCommon(ModelTesterMixin):
    model_classes = (ASTModel, ASTForAudioClassification)

    def make_config(self, **overrides):
        return tiny_config(**overrides)

    def make_inputs(self, config):
        generator = torch.Generator().manual_seed(1)
        return {"input_values": torch.randn(2, config.max_length, config.num_mel_bins, generator=generator)}


class TestASTCommonSingleToken(TestASTCommon):
    """Plain-ViT backbone (one prefix token) with mean pooling, as SSAST's base_nokd / ft_avgtok."""

    def make_config(self, **overrides):
        return tiny_config(
            num_prefix_tokens=1, pooling="mean", patch_size=(32, 2), frequency_stride=32, time_stride=2, **overrides
        )


def test_hidden_states_and_attentions_have_expected_shapes():
    config = tiny_config()
    model = ASTModel(config).eval()
    output = model(torch.randn(3, 64, 32), output_hidden_states=True, output_attentions=True)
    tokens = config.num_patches + 2
    assert config.patch_grid == (3, 7)
    assert len(output.hidden_states) == config.num_hidden_layers + 1
    assert output.hidden_states[-1].shape == (3, tokens, 32)
    assert len(output.attentions) == config.num_hidden_layers
    assert output.attentions[0].shape == (3, 2, tokens, tokens)
    torch.testing.assert_close(output.attentions[0].sum(-1), torch.ones(3, 2, tokens))


@pytest.mark.parametrize("problem_type", ["single_label_classification", "multi_label_classification"])
def test_loss_follows_problem_type(problem_type):
    model = ASTForAudioClassification(tiny_config(problem_type=problem_type)).eval()
    features = torch.randn(2, 64, 32)
    if problem_type == "single_label_classification":
        labels = torch.tensor([1, 3])
        output = model(features, labels=labels)
        expected = torch.nn.functional.cross_entropy(output.logits, labels)
    else:
        labels = torch.tensor([[1.0, 0, 0, 1], [0, 0, 1, 0]])
        output = model(features, labels=labels)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, labels)
    torch.testing.assert_close(output.loss, expected)


def test_run_time_interpolation_of_positions(tmp_path):
    model = ASTForAudioClassification(tiny_config()).eval()
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model(torch.randn(1, 100, 32))
    model.save_pretrained(tmp_path)
    # resizing at run time gives the model that from_pretrained(max_length=...) adapts when loading (the
    # original's cut / bilinear rule), for a longer and a shorter input
    for frames in (100, 40):
        features = torch.randn(2, frames, 32)
        adapted = ASTForAudioClassification.from_pretrained(tmp_path, max_length=frames).eval()
        with torch.no_grad():
            resized = model(features, interpolate_pos_encoding=True).logits
            torch.testing.assert_close(resized, adapted(features).logits, atol=1e-6, rtol=0)
        assert resized.shape == (2, 4)


@pytest.mark.parametrize(
    "bad_input, message",
    [
        (torch.randn(64, 32), "shape"),
        (torch.randn(1, 64, 30), "mel bins"),
        (torch.ones(1, 64, 32, dtype=torch.long), "floating-point"),
        ([[0.0] * 32] * 64, "torch.Tensor"),
    ],
)
def test_bad_inputs_raise_clear_errors(bad_input, message):
    model = ASTForAudioClassification(tiny_config()).eval()
    with pytest.raises((ValueError, TypeError), match=message):
        model(bad_input)


def test_bad_configs_raise_clear_errors():
    with pytest.raises(Exception, match="multiple of num_attention_heads"):
        tiny_config(hidden_size=30, num_attention_heads=4)
    with pytest.raises(Exception, match="num_prefix_tokens"):
        tiny_config(num_prefix_tokens=3)
    with pytest.raises(Exception, match="exceeds num_mel_bins"):
        tiny_config(patch_size=(64, 2))


def test_from_pretrained_into_another_length_resizes_positions(tmp_path):
    model = ASTForAudioClassification(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    longer = ASTForAudioClassification.from_pretrained(tmp_path, max_length=128)
    assert longer.config.max_length == 128
    assert longer.ast.embeddings.position_embeddings.shape[1] == 3 * 15 + 2
    shorter = ASTForAudioClassification.from_pretrained(tmp_path, max_length=32)
    original = model.ast.embeddings.position_embeddings
    # time axis shrinks 7 -> 3 columns: the middle columns 2..4 of every frequency row, prefix kept
    expected = original[:, 2:].reshape(1, 3, 7, 32)[:, :, 2:5].reshape(1, 9, 32)
    assert torch.equal(shorter.ast.embeddings.position_embeddings[:, 2:], expected)
    assert torch.equal(shorter.ast.embeddings.position_embeddings[:, :2], original[:, :2])
    for name, value in model.state_dict().items():
        if "position_embeddings" not in name:
            assert torch.equal(shorter.state_dict()[name], value), name


# ---------------------------------------------------------------------------------------------------------------
# Parity with the original YuanGongND/ast ASTModel (fixtures README §4)


@pytest.mark.parametrize(
    "name, config",
    [
        (
            "ast_tiny224_f10t10_tdim100",
            ASTConfig(
                hidden_size=192,
                num_hidden_layers=1,
                num_attention_heads=3,
                intermediate_size=768,
                frequency_stride=10,
                time_stride=10,
                max_length=100,
                num_labels=10,
            ),
        ),
        (
            "ast_w64d3_f16t16_tdim128",
            ASTConfig(
                hidden_size=64,
                num_hidden_layers=3,
                num_attention_heads=2,
                intermediate_size=256,
                frequency_stride=16,
                time_stride=16,
                max_length=128,
                num_labels=7,
            ),
        ),
    ],
)
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_original_ast_parity(name, config, attn_implementation):
    reference = load_fixture(f"{name}.io")
    model = convert(load_fixture(f"{name}.state_dict"), "original-ast", config)
    model.set_attn_implementation(attn_implementation)
    with torch.no_grad():
        output = model(reference["input_values"], output_hidden_states=True)
        patch_embeds = model.ast.embeddings.patch_embeddings(reference["input_values"])
    torch.testing.assert_close(patch_embeds, reference["patch_embeds"], atol=1e-6, rtol=0)
    for index in range(config.num_hidden_layers):
        torch.testing.assert_close(
            output.hidden_states[index + 1], reference[f"hidden_block{index}"], atol=3e-6, rtol=0
        )  # measured <= 1.5e-6
    with torch.no_grad():
        base = model.ast(reference["input_values"])
    torch.testing.assert_close(
        base.last_hidden_state, reference["last_hidden_state"], atol=3e-6, rtol=0
    )  # measured <= 1.5e-6
    torch.testing.assert_close(base.pooler_output, reference["pooled"], atol=3e-6, rtol=0)  # measured <= 1.5e-6
    torch.testing.assert_close(output.logits, reference["logits"], atol=2e-6, rtol=0)


def test_parity_needs_both_layer_norm_eps():
    """The fixture tells the head eps (1e-5) from the backbone eps (1e-6): the wrong one fails 2e-6."""
    reference = load_fixture("ast_tiny224_f10t10_tdim100.io")
    config = ASTConfig(
        hidden_size=192,
        num_hidden_layers=1,
        num_attention_heads=3,
        intermediate_size=768,
        max_length=100,
        num_labels=10,
        classifier_layer_norm_eps=1e-6,
    )
    model = convert(load_fixture("ast_tiny224_f10t10_tdim100.state_dict"), "original-ast", config)
    with torch.no_grad():
        logits = model(reference["input_values"]).logits
    assert (logits - reference["logits"]).abs().max() > 2e-6


def test_inference_follows_in_place_weight_updates():
    """Weights updated in place (fused optimisers bump no version counter) must show in the next no-grad call."""
    model = ASTForAudioClassification(tiny_config()).eval()
    features = torch.randn(2, 64, 32)
    with torch.no_grad():
        before = model(features).logits
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    model(features, labels=torch.tensor([0, 1])).loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = model(features).logits
    torch.testing.assert_close(after, model(features).logits.detach(), atol=1e-6, rtol=0)
    assert not torch.allclose(after, before)


def fused_qkv_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as this package saved it before the separate projections: q, k, v stacked in one `qkv`."""
    fused = {}
    for key, value in state_dict.items():
        if ".attention.k_proj." in key or ".attention.v_proj." in key:
            continue
        if ".attention.q_proj." in key:
            parts = [state_dict[key.replace("q_proj", name)] for name in ("q_proj", "k_proj", "v_proj")]
            fused[key.replace("q_proj", "qkv")] = torch.cat(parts).contiguous()
        else:
            fused[key] = value.contiguous()
    return fused


def test_saved_files_hold_separate_projections_and_round_trip(tmp_path):
    """q/k/v are three linears in memory and on disk (PEFT targets them by name); `from_pretrained` gives the
    same outputs back, and a fresh model saves exactly its own names."""
    from safetensors.torch import load_file

    model = ASTForAudioClassification(tiny_config()).eval()
    attention = model.ast.encoder.layers[1].attention
    assert [type(getattr(attention, name)).__name__ for name in ("q_proj", "k_proj", "v_proj")] == ["Linear"] * 3
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert set(saved) == set(model.state_dict()) and not any(".qkv." in key for key in saved)
    assert torch.equal(saved["ast.encoder.layers.1.attention.v_proj.weight"], attention.v_proj.weight)
    reloaded = ASTForAudioClassification.from_pretrained(tmp_path).eval()
    features = torch.randn(2, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(features).logits, model(features).logits, atol=0, rtol=0)


def test_directory_saved_with_fused_qkv_loads(tmp_path):
    """Directories saved with one fused `qkv` (this package before the separate projections) load through
    `from_pretrained` with the same outputs; re-saving writes the separate layout."""
    from safetensors.torch import load_file, save_file

    model = ASTForAudioClassification(tiny_config()).eval()
    old_layout = fused_qkv_layout(model.state_dict())
    assert "ast.encoder.layers.0.attention.qkv.weight" in old_layout
    model.config.save_pretrained(tmp_path / "old")
    save_file(old_layout, tmp_path / "old" / "model.safetensors", metadata={"format": "pt"})
    features = torch.randn(2, 64, 32)
    with torch.no_grad():
        expected = model(features).logits
        loaded, info = ASTForAudioClassification.from_pretrained(tmp_path / "old", output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        torch.testing.assert_close(loaded.eval()(features).logits, expected, atol=0, rtol=0)
        loaded.save_pretrained(tmp_path / "resaved")
        assert set(load_file(tmp_path / "resaved" / "model.safetensors")) == set(model.state_dict())


def test_fused_qkv_projection_for_export_gives_the_same_outputs():
    """`fuse_qkv_projections` (what the ONNX export calls) computes what the three projections compute."""
    model = ASTForAudioClassification(tiny_config()).eval()
    features = torch.randn(2, 64, 32)
    with torch.no_grad():
        expected = model(features).logits
        for layer in model.ast.encoder.layers:
            layer.attention.fuse_qkv_projections()
        assert model.ast.encoder.layers[0].attention.fused_qkv.weight.shape == (3 * 32, 32)
        torch.testing.assert_close(model(features).logits, expected, atol=1e-6, rtol=0)
