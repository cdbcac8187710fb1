"""Every classification model (AST, SSAST, HTS-AT): `freeze_feature_encoder`, and the input checks of the
forward pass (precision casts, empty batches, too few frames, labels of the wrong shape or dtype)."""

import numpy as np
import pytest
import torch
from test_modeling_ast import tiny_config as tiny_ast_config
from test_modeling_htsat import tiny_config as tiny_htsat_config
from test_modeling_ssast import tiny_config as tiny_ssast_config

from spectrogram_transformers import (
    ASTForAudioClassification,
    HTSATForAudioClassification,
    SSASTForAudioClassification,
    SSASTForPreTraining,
)


def build(family: str, **overrides):
    """(model, features) for a tiny model of `family`; features are a batch of 3 at the model's input length."""
    torch.manual_seed(0)
    if family == "ast":
        config = tiny_ast_config(**overrides)
        return ASTForAudioClassification(config), torch.randn(3, config.max_length, config.num_mel_bins)
    if family == "ssast":
        config = tiny_ssast_config(**overrides)
        return SSASTForAudioClassification(config), torch.randn(3, config.max_length, config.num_mel_bins)
    config = tiny_htsat_config(**overrides)
    return HTSATForAudioClassification(config), torch.randn(3, 200, config.num_mel_bins) * 10 - 30


FAMILIES = ("ast", "ssast", "htsat")
# the parameters of the spectrogram front end, by family
FRONT_END = {
    "ast": ("ast.embeddings.patch_embeddings.",),
    "ssast": ("ssast.embeddings.patch_embeddings.",),
    "htsat": ("htsat.embeddings.mel_norm.", "htsat.embeddings.projection.", "htsat.embeddings.norm."),
}


# ------------------------------------------------------------------------------------------ freeze_feature_encoder


@pytest.mark.parametrize("family", FAMILIES)
def test_freeze_feature_encoder_stops_the_front_end_gradients_only(family):
    model, features = build(family)
    model.freeze_feature_encoder()
    model.train()
    model(features, labels=torch.tensor([0, 1, 2])).loss.backward()
    frozen = {name for name, _ in model.named_parameters() if name.startswith(FRONT_END[family])}
    assert frozen, "the front end has parameters"
    for name, parameter in model.named_parameters():
        if name in frozen:
            assert not parameter.requires_grad and parameter.grad is None, name
        else:
            assert parameter.requires_grad and parameter.grad is not None, f"{name} gets no gradient"


def test_frozen_htsat_batch_norm_keeps_its_statistics_in_training():
    model, features = build("htsat")
    mel_norm = model.htsat.embeddings.mel_norm
    model.train()
    model(features)
    assert mel_norm.num_batches_tracked.item() == 1  # not frozen: a training batch updates the statistics
    model.freeze_feature_encoder()
    before = (mel_norm.running_mean.clone(), mel_norm.running_var.clone())
    model.train()  # Trainer calls train() before every step: the frozen BatchNorm must stay in eval mode
    model(features)
    assert not mel_norm.training and model.htsat.embeddings.projection.training
    assert mel_norm.num_batches_tracked.item() == 1
    torch.testing.assert_close((mel_norm.running_mean, mel_norm.running_var), before, rtol=0, atol=0)


def test_ssast_pretraining_model_freezes_its_patch_embedding_too():
    model = SSASTForPreTraining(tiny_ssast_config())
    model.freeze_feature_encoder()
    assert not any(p.requires_grad for p in model.ssast.embeddings.patch_embeddings.parameters())
    assert model.mask_embedding.requires_grad and model.ssast.embeddings.position_embeddings.requires_grad


# ------------------------------------------------------------------------------------------------- input values


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_precisions_are_cast_to_the_model_dtype(family, dtype):
    model, features = build(family)
    model.eval()
    with torch.no_grad():
        expected = model(features).logits
        actual = model(features.to(dtype)).logits
    assert actual.dtype == torch.float32
    # float64 loses nothing; the half precisions lose their input rounding only (HTS-AT's features are ~-30 dB)
    tolerance = {torch.float64: 1e-6, torch.float16: 5e-3, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(actual, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("family", FAMILIES)
def test_numpy_float64_features_are_accepted(family):
    model, features = build(family)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(features.double().numpy()).logits, model(features).logits)


def test_bfloat16_model_takes_float32_features():
    model, features = build("ast")
    model = model.eval().to(torch.bfloat16)
    with torch.no_grad():
        assert model(features).logits.dtype == torch.bfloat16


@pytest.mark.parametrize("family", FAMILIES)
def test_empty_batch_raises_a_clear_error(family):
    model, features = build(family)
    with pytest.raises(ValueError, match="batch size 0"):
        model(features[:0])


@pytest.mark.parametrize("family", ["ast", "ssast"])
def test_fewer_frames_than_one_patch_raise_a_clear_error(family):
    model, features = build(family)
    patch_frames = model.config.time_patch_size
    with pytest.raises(ValueError, match=f"fewer than one patch \\({patch_frames} frames\\)"):
        model(features[:, : patch_frames - 1], interpolate_pos_encoding=True)


def test_htsat_takes_a_single_frame():
    """HTS-AT stretches any input to its 1024 (here 256) frames: one frame is a valid, if degenerate, input."""
    model, features = build("htsat")
    with torch.no_grad():
        assert torch.isfinite(model.eval()(features[:, :1]).logits).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_integer_features_are_refused(family):
    model, features = build(family)
    with pytest.raises(TypeError, match="floating-point"):
        model(features.to(torch.int16))


# ------------------------------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("label_dtype", [torch.long, torch.int32, torch.uint8, torch.bool, torch.float64])
def test_multi_label_targets_of_any_dtype_give_the_float_loss(family, label_dtype):
    model, features = build(family, problem_type="multi_label_classification")
    model.eval()
    num_labels = model.config.num_labels
    multi_hot = (torch.arange(3 * num_labels).view(3, num_labels) % 3 == 0).float()
    with torch.no_grad():
        expected = model(features, labels=multi_hot).loss
        actual = model(features, labels=multi_hot.to(label_dtype)).loss
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_integer_multi_hot_without_problem_type_is_multi_label(family):
    model, features = build(family)
    model.eval()
    num_labels = model.config.num_labels
    multi_hot = torch.zeros(3, num_labels, dtype=torch.long)
    multi_hot[:, 1] = 1
    with torch.no_grad():
        output = model(features, labels=multi_hot)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, multi_hot.float())
    torch.testing.assert_close(output.loss, expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_multi_label_targets_of_the_wrong_shape_raise(family):
    model, features = build(family, problem_type="multi_label_classification")
    num_labels = model.config.num_labels
    for labels in (torch.zeros(3, num_labels + 1), torch.zeros(3), torch.zeros(2, num_labels)):
        with pytest.raises(ValueError, match=f"shape \\(batch=3, num_labels={num_labels}\\)"):
            model(features, labels=labels)


@pytest.mark.parametrize("family", FAMILIES)
def test_single_label_targets_are_checked(family):
    model, features = build(family, problem_type="single_label_classification")
    model.eval()
    with torch.no_grad():
        expected = model(features, labels=torch.tensor([0, 1, 2])).loss
        # numpy int32 class ids are unambiguous
        torch.testing.assert_close(model(features, labels=np.array([0, 1, 2], dtype=np.int32)).loss, expected)
    with pytest.raises(TypeError, match="integer class ids"):
        model(features, labels=torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="one class id per clip"):
        model(features, labels=torch.tensor([0, 1]))
