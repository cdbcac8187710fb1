"""SSAST models: the common suite, fixture parity with the original code, masking rules, batching, errors."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
)

from spectrogram_transformers import (
    ASTFeatureExtractor,
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    SSASTModel,
    convert,
)
from spectrogram_transformers.modeling.ssast.convert_ssast import infer_ssast_config
from spectrogram_transformers.modeling.ssast.masking import (
    cluster_mask_from_draws,
    cluster_mask_indices,
    patchify_spectrogram,
    random_mask_indices,
)
from testing_utils.fixtures import fixture_info, load_fixture
from testing_utils.model_tester import ModelTesterMixin

FIXTURES = ("ssast_patch_w64d2", "ssast_frame_w64d2")


def tiny_config(**overrides) -> SSASTConfig:
    """8×8 patches on 32 mel × 64 frames: a (4, 8) grid of 32 patches, 64-bin targets."""
    fields = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=32,
        max_length=64,
        patch_size=8,
        frequency_stride=8,
        time_stride=8,
        prediction_size=64,
        num_masked_patches=10,
        num_labels=3,
    )
    fields.update(overrides)
    return SSASTConfig(**fields)


def tiny_frame_config(**overrides) -> SSASTConfig:
    """32×2 frame patches on 32 mel × 64 frames: a (1, 32) grid."""
    return tiny_config(patch_size=(32, 2), frequency_stride=32, time_stride=2, **overrides)


def features(config: SSASTConfig, batch_size: int = 2, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, config.max_length, config.num_mel_bins, generator=generator)


def pretrained_fixture_model(name: str) -> SSASTForPreTraining:
    info = fixture_info(f"{name}.pretrain_io")
    config = infer_ssast_config(
        load_fixture(f"{name}.pretrain_state_dict"),
        num_attention_heads=info["timm_create_model_size_overrides"]["vit_deit_tiny_distilled_patch16_224"][
            "num_heads"
        ],
        num_masked_patches=info["mask_patch"],
    )
    return convert(load_fixture(f"{name}.pretrain_state_dict"), "original-ssast", config)


# --------------------------------------------------------------------------------------------- common suite


class TestSSASTCommon(ModelTesterMixin):
    """Encoder and classifier at a fine-tuning geometry (overlapping stride 4)."""

    model_classes = (SSASTModel, SSASTForAudioClassification)

    def make_config(self, **overrides):
        return tiny_config(frequency_stride=4, time_stride=4, **overrides)

    def make_inputs(self, config):
        return {"input_values": features(config)}


class TestSSASTCommonClsPooling(TestSSASTCommon):
    def make_config(self, **overrides):
        return tiny_config(pooling="cls", num_prefix_tokens=1, **overrides)


class TestSSASTPreTrainingCommon(ModelTesterMixin):
    """Pre-training with fixed masks, so that two forward passes are comparable."""

    model_classes = (SSASTForPreTraining,)

    def make_config(self, **overrides):
        return tiny_config(**overrides)

    def make_inputs(self, config):
        generator = torch.Generator().manual_seed(3)
        return {
            "input_values": features(config),
            "mask_indices": SSASTForPreTraining(config).draw_mask_indices(2, generator),
        }


class TestSSASTFramePreTrainingCommon(TestSSASTPreTrainingCommon):
    def make_config(self, **overrides):
        return tiny_frame_config(**overrides)


# --------------------------------------------------------------------------------------------- fixture parity


@pytest.mark.parametrize("name", FIXTURES)
def test_discriminative_objective_matches_original(name):
    model = pretrained_fixture_model(name)
    io = load_fixture(f"{name}.pretrain_io")
    with torch.no_grad():
        output = model(io["input_values"], mask_indices=io["mpc.mask_index"])
    torch.testing.assert_close(output.nce_loss, io["mpc.nce"], atol=2e-6, rtol=0)
    assert output.accuracy.item() == io["mpc.acc"].item()  # exact: the argmax convention must match
    torch.testing.assert_close(output.discriminative_predictions, io["mpc.pred"], atol=2e-6, rtol=0)
    torch.testing.assert_close(
        output.last_hidden_state, io["mpc.last_hidden_state"], atol=3e-6, rtol=0
    )  # measured <= 1.5e-6
    assert torch.equal(output.mask_indices, io["mpc.mask_index"])


@pytest.mark.parametrize("name", FIXTURES)
def test_generative_objective_matches_original(name):
    model = pretrained_fixture_model(name)
    io = load_fixture(f"{name}.pretrain_io")
    with torch.no_grad():
        output = model(io["input_values"], mask_indices=io["mpg.mask_index"])
    torch.testing.assert_close(output.mse_loss, io["mpg.mse"], atol=2e-6, rtol=0)
    torch.testing.assert_close(output.generative_predictions, io["mpg.pred"], atol=2e-6, rtol=0)
    torch.testing.assert_close(
        output.generative_last_hidden_state, io["mpg.last_hidden_state"], atol=3e-6, rtol=0
    )  # measured <= 1.5e-6
    # the joint loss is the paper's nce + 10·mse
    torch.testing.assert_close(output.loss, output.nce_loss + 10 * output.mse_loss)


@pytest.mark.parametrize("name", FIXTURES)
def test_separate_masks_reproduce_pretrain_joint(name):
    """Original `pretrain_joint`: nce on one masked copy, mse on another, in one call here."""
    model = pretrained_fixture_model(name)
    io = load_fixture(f"{name}.pretrain_io")
    with torch.no_grad():
        output = model(
            io["input_values"], mask_indices=io["mpc.mask_index"], generative_mask_indices=io["mpg.mask_index"]
        )
    torch.testing.assert_close(output.nce_loss, io["mpc.nce"], atol=2e-6, rtol=0)
    torch.testing.assert_close(output.mse_loss, io["mpg.mse"], atol=2e-6, rtol=0)
    assert output.accuracy.item() == io["mpc.acc"].item()
    torch.testing.assert_close(output.loss, io["mpc.nce"] + 10 * io["mpg.mse"], atol=2e-6, rtol=0)


@pytest.mark.parametrize("name", FIXTURES)
def test_visualize_mask_matches_original(name):
    model = pretrained_fixture_model(name)
    io = load_fixture(f"{name}.pretrain_io")
    parameters_before = len(list(model.parameters()))
    output = model.visualize_mask(io["input_values"][:1], mask_indices=io["vis.mask_index"])
    assert torch.equal(output.correct_map, io["vis.pred"])
    assert torch.equal(output.masked_map, io["vis.masked"])
    torch.testing.assert_close(output.discriminative_predictions, io["vis.cpred"], atol=2e-6, rtol=0)
    assert len(list(model.parameters())) == parameters_before  # the original registered a Parameter here


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("pooling, task", [("mean", "ft_avgtok"), ("cls", "ft_cls")])
def test_fine_tuning_from_pretrained_matches_original(name, pooling, task, tmp_path):
    ft_kwargs = fixture_info(f"{name}.pretrain_io")["finetune"][0]["constructor_kwargs"]
    pretrained_fixture_model(name).save_pretrained(tmp_path)
    model = SSASTForAudioClassification.from_pretrained(
        tmp_path,
        num_labels=ft_kwargs["label_dim"],
        frequency_stride=ft_kwargs["fstride"],
        time_stride=ft_kwargs["tstride"],
        max_length=ft_kwargs["input_tdim"],
        pooling=pooling,
    )
    reference = load_fixture(f"{name}.ft0.state_dict")
    state = model.state_dict()
    assert torch.equal(state["ssast.embeddings.position_embeddings"], reference["v.pos_embed"])
    assert torch.equal(
        state["ssast.embeddings.patch_embeddings.projection.weight"], reference["v.patch_embed.proj.weight"]
    )
    assert torch.equal(
        state["ssast.embeddings.patch_embeddings.projection.bias"], reference["v.patch_embed.proj.bias"]
    )
    assert (
        model.config.pretraining_max_length
        == fixture_info(f"{name}.pretrain_io")["pretrain_constructor_kwargs"]["input_tdim"]
    )
    # the fixture's mlp_head was re-valued after construction: take it from the file
    with torch.no_grad():
        model.classifier.layernorm.weight.copy_(reference["mlp_head.0.weight"])
        model.classifier.layernorm.bias.copy_(reference["mlp_head.0.bias"])
        model.classifier.dense.weight.copy_(reference["mlp_head.1.weight"])
        model.classifier.dense.bias.copy_(reference["mlp_head.1.bias"])
    io = load_fixture(f"{name}.ft_io")
    with torch.no_grad():
        encoded = model.ssast(io["ft0.input_values"])
        logits = model(io["ft0.input_values"]).logits
    torch.testing.assert_close(logits, io[f"ft0.{task}.logits"], atol=2e-6, rtol=0)
    torch.testing.assert_close(encoded.pooler_output, io[f"ft0.{task}.pooled"], atol=2e-6, rtol=0)
    torch.testing.assert_close(
        encoded.last_hidden_state, io["ft0.last_hidden_state"], atol=3e-6, rtol=0
    )  # measured <= 1.5e-6


# --------------------------------------------------------------------------------------------- masking rules


def original_cluster_loop(
    side: int, starts: list[int], time_patches: int, num_patches: int, num_masked: int
) -> list[int]:
    """gen_maskid_patch's loop, replayed on given draws (the set's ascending order made explicit)."""
    ids = set()
    for start in starts:
        if len(ids) > num_masked:
            break
        ids.update(
            c for i in range(side) for j in range(side) if 0 < (c := start + time_patches * i + j) < num_patches
        )
    assert len(ids) > num_masked
    return sorted(ids)[:num_masked]


@pytest.mark.parametrize("grid, num_masked", [((8, 16), 40), ((8, 64), 400), ((3, 5), 13), ((1, 128), 40)])
def test_cluster_masking_equals_the_original_loop_on_the_same_draws(grid, num_masked):
    generator = torch.Generator().manual_seed(5)
    sides = torch.randint(3, 6, (6,), generator=generator)
    starts = torch.randint(0, grid[0] * grid[1], (6, 4000), generator=generator)
    indices = cluster_mask_from_draws(sides, starts, grid, num_masked)
    for row in range(6):
        expected = original_cluster_loop(int(sides[row]), starts[row].tolist(), grid[1], grid[0] * grid[1], num_masked)
        assert indices[row].tolist() == expected


def test_cluster_masking_rules():
    generator = torch.Generator().manual_seed(0)
    indices = cluster_mask_indices(64, (8, 16), 40, generator=generator)
    assert indices.shape == (64, 40) and indices.dtype == torch.long
    assert (indices > 0).all(), "patch 0 is never masked"
    assert (indices < 128).all()
    assert (indices[:, 1:] > indices[:, :-1]).all(), "ascending and distinct"
    # neighbouring patches are masked together: far more adjacent pairs than uniform sampling gives
    adjacent = (indices[:, 1:] - indices[:, :-1] == 1).float().mean()
    assert adjacent > 0.6
    # seeded: same generator state, same masks; another seed, other masks
    again = cluster_mask_indices(64, (8, 16), 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(indices, again)
    other = cluster_mask_indices(64, (8, 16), 40, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(indices, other)


def test_cluster_masking_wraps_into_the_next_row():
    # one draw starting at the last time column of row 0 with side 3 covers ids that wrap to the next rows
    indices = cluster_mask_from_draws(torch.tensor([3]), torch.tensor([[15, 40, 80]]), (8, 16), 8)
    assert indices[0].tolist() == sorted([15, 16, 17, 31, 32, 33, 47, 48])


def test_random_masking_rules():
    indices = random_mask_indices(256, 32, 10, generator=torch.Generator().manual_seed(0))
    assert indices.shape == (256, 10)
    assert (indices.sort(dim=1).values.diff(dim=1) > 0).all(), "distinct"
    assert (indices == 0).any(), "frame 0 can be masked"
    assert not (indices.diff(dim=1) > 0).all(), "random order, as random.sample"
    counts = torch.bincount(indices.flatten(), minlength=32).float()
    assert counts.min() > 0.5 * counts.mean()  # roughly uniform
    assert torch.equal(indices, random_mask_indices(256, 32, 10, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("make_config, strategy", [(tiny_config, "cluster"), (tiny_frame_config, "random")])
def test_model_draws_masks_with_the_configured_strategy(make_config, strategy):
    config = make_config()
    assert config.mask_strategy == strategy
    model = SSASTForPreTraining(config).eval()
    x = features(config)
    with torch.no_grad():
        first = model(x, generator=torch.Generator().manual_seed(4))
        second = model(x, generator=torch.Generator().manual_seed(4))
    assert first.mask_indices.shape == (2, config.num_masked_patches)
    assert torch.equal(first.mask_indices, second.mask_indices)
    torch.testing.assert_close(first.loss, second.loss)
    # "separate" joint masking: the generative objective gets its own mask
    assert not torch.equal(first.mask_indices, first.generative_mask_indices)
    if strategy == "cluster":
        assert (first.mask_indices > 0).all()


def test_shared_joint_masking_uses_one_mask_and_one_pass():
    model = SSASTForPreTraining(tiny_config(joint_masking="shared")).eval()
    with torch.no_grad():
        output = model(features(model.config), generator=torch.Generator().manual_seed(0))
    assert output.generative_mask_indices is output.mask_indices
    assert output.generative_last_hidden_state is output.last_hidden_state


# --------------------------------------------------------------------------------------------- batching


def per_sample_losses(model: SSASTForPreTraining, x: torch.Tensor, mask: torch.Tensor) -> tuple[float, float, float]:
    """The original's per-sample loops (mask blend, target gather, InfoNCE) on this model's weights."""
    config = model.config
    prefix = config.num_prefix_tokens
    unfold = torch.nn.Unfold(
        kernel_size=(config.frequency_patch_size, config.time_patch_size),
        stride=(config.frequency_patch_size, config.time_patch_size),
    )
    image = x.unsqueeze(1).transpose(2, 3)
    targets = unfold(image).transpose(1, 2)
    tokens = model.ssast.embeddings.embed_patches(x)
    keep = torch.ones_like(tokens)
    for i in range(x.shape[0]):
        keep[i, mask[i], :] = 0
    tokens = tokens * keep + (1 - keep) * model.mask_embedding.expand_as(tokens)
    hidden = model.ssast.encode(model.ssast.embeddings.add_prefix_and_positions(tokens, x.shape[1])).last_hidden_state
    nce, correct, squared = 0.0, 0.0, 0.0
    for i in range(x.shape[0]):
        prediction = model.discriminative_head(hidden[i, mask[i] + prefix])
        total = targets[i, mask[i]] @ prediction.T
        correct += (torch.softmax(total, dim=-1).argmax(dim=0) == torch.arange(mask.shape[1])).sum().item()
        nce += torch.diag(torch.log_softmax(total, dim=-1)).sum().item()
        squared += ((model.generative_head(hidden[i, mask[i] + prefix]) - targets[i, mask[i]]) ** 2).sum().item()
    count = x.shape[0] * mask.shape[1]
    return -nce / count, correct / count, squared / (count * targets.shape[-1])


@pytest.mark.parametrize("make_config", [tiny_config, tiny_frame_config])
def test_batched_equals_per_sample_loops(make_config):
    config = make_config()
    model = SSASTForPreTraining(config).eval()
    x = features(config, batch_size=4)
    mask = model.draw_mask_indices(4, torch.Generator().manual_seed(2))
    with torch.no_grad():
        output = model(x, mask_indices=mask)
        nce, accuracy, mse = per_sample_losses(model, x, mask)
    assert output.nce_loss.item() == pytest.approx(nce, abs=2e-6)
    assert output.accuracy.item() == pytest.approx(accuracy, abs=1e-7)
    assert output.mse_loss.item() == pytest.approx(mse, abs=2e-6)
    # and one sample at a time gives the same per-sample numbers (negatives never cross samples)
    with torch.no_grad():
        singles = [model(x[i : i + 1], mask_indices=mask[i : i + 1]) for i in range(4)]
    torch.testing.assert_close(torch.stack([s.nce_loss for s in singles]).mean(), output.nce_loss, atol=2e-6, rtol=0)
    torch.testing.assert_close(torch.stack([s.mse_loss for s in singles]).mean(), output.mse_loss, atol=2e-6, rtol=0)


def test_patchify_equals_unfold():
    x = features(tiny_config(max_length=67, num_mel_bins=35), batch_size=3)  # trailing bins dropped as by Unfold
    for patch in ((8, 8), (32, 2), (16, 4)):
        unfold = torch.nn.Unfold(kernel_size=patch, stride=patch)
        expected = unfold(x.unsqueeze(1).transpose(2, 3)).transpose(1, 2)
        assert torch.equal(patchify_spectrogram(x, patch), expected)


def test_bool_masked_pos_equals_mask_indices():
    config = tiny_config()
    model = SSASTForPreTraining(config).eval()
    x = features(config)
    mask = model.draw_mask_indices(2, torch.Generator().manual_seed(1))
    bool_masked_pos = torch.zeros(2, config.num_patches, dtype=torch.bool).scatter_(1, mask, True)
    with torch.no_grad():
        a = model(x, mask_indices=mask)
        b = model(x, bool_masked_pos=bool_masked_pos)
    torch.testing.assert_close(a.loss, b.loss)
    assert a.accuracy == b.accuracy


def test_loss_weights_select_objectives():
    config = tiny_config(nce_weight=0.0)
    model = SSASTForPreTraining(config).eval()
    x = features(config)
    with torch.no_grad():
        output = model(x, generator=torch.Generator().manual_seed(0))
    assert output.nce_loss is None and output.accuracy is None and output.discriminative_predictions is None
    torch.testing.assert_close(output.loss, 10 * output.mse_loss)
    model = SSASTForPreTraining(tiny_config(mse_weight=0.0)).eval()
    with torch.no_grad():
        output = model(x, generator=torch.Generator().manual_seed(0))
    assert output.mse_loss is None and output.generative_mask_indices is None
    torch.testing.assert_close(output.loss, output.nce_loss)


# --------------------------------------------------------------------------------------------- loading


def test_classifier_loads_encoder_from_pretraining_directory(tmp_path):
    pretraining = SSASTForPreTraining(tiny_config())
    pretraining.save_pretrained(tmp_path)
    classifier = SSASTForAudioClassification.from_pretrained(tmp_path, num_labels=5)
    for key, value in pretraining.ssast.state_dict().items():
        assert torch.equal(classifier.ssast.state_dict()[key], value)
    assert classifier.config.num_labels == 5
    assert not hasattr(classifier, "mask_embedding")
    # and through the Auto classes
    assert type(AutoModelForAudioClassification.from_pretrained(tmp_path)) is SSASTForAudioClassification
    assert type(AutoModelForPreTraining.from_pretrained(tmp_path)) is SSASTForPreTraining


def test_fine_tuning_frequency_cut_takes_the_middle_rows(tmp_path):
    """The original crashes here (slices t_dim rows); the intended middle cut of f rows is done instead."""
    config = tiny_config(num_mel_bins=64, max_length=64)  # (8, 8) grid
    pretraining = SSASTForPreTraining(config)
    pretraining.save_pretrained(tmp_path)
    classifier = SSASTForAudioClassification.from_pretrained(tmp_path, num_mel_bins=32, max_length=32)  # (4, 4)
    source = pretraining.ssast.embeddings.position_embeddings[0, 2:].reshape(8, 8, -1)
    adapted = classifier.ssast.embeddings.position_embeddings[0, 2:].reshape(4, 4, -1)
    assert torch.equal(adapted, source[2:6, 2:6])
    assert (classifier.config.pretraining_num_mel_bins, classifier.config.pretraining_max_length) == (64, 64)


def test_auto_classes_and_feature_extractor(tmp_path):
    fields = {k: v for k, v in tiny_config().to_diff_dict().items() if k != "model_type"}
    config = AutoConfig.for_model("ssast", **fields)
    assert isinstance(config, SSASTConfig)
    assert type(AutoModel.from_config(config)) is SSASTModel
    assert type(AutoModelForPreTraining.from_config(config)) is SSASTForPreTraining
    config.save_pretrained(tmp_path)
    ASTFeatureExtractor(num_mel_bins=32, feature_size=32, max_length=64).save_pretrained(tmp_path)
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path)) is ASTFeatureExtractor


# --------------------------------------------------------------------------------------------- errors


def test_pretraining_config_errors():
    with pytest.raises(ValueError, match="num_masked_patches"):
        SSASTForPreTraining(tiny_config(num_masked_patches=31))  # 32 patches, cluster masking allows 30
    SSASTForPreTraining(tiny_frame_config(num_masked_patches=32))  # random masking may mask all
    with pytest.raises(ValueError, match="num_masked_patches"):
        SSASTForPreTraining(tiny_frame_config(num_masked_patches=33))
    with pytest.raises(ValueError, match="prediction_size"):
        SSASTForPreTraining(tiny_config(prediction_size=256))
    with pytest.raises(ValueError, match="non-overlapping"):
        SSASTForPreTraining(tiny_config(frequency_stride=4))
    # config validation errors reach the caller wrapped by huggingface_hub's @strict
    with pytest.raises(StrictDataclassClassValidationError, match="nce_weight"):
        tiny_config(nce_weight=0, mse_weight=0)
    with pytest.raises(StrictDataclassClassValidationError, match="mask_cluster_size_range"):
        tiny_config(mask_cluster_size_range=(4, 3))
    # a fine-tuning config with few patches is fine for the classifier
    SSASTForAudioClassification(tiny_config(max_length=16, num_masked_patches=400))


def test_forward_input_errors():
    config = tiny_config()
    model = SSASTForPreTraining(config).eval()
    x = features(config)
    with pytest.raises(ValueError, match="max_length"):
        model(x[:, :40])
    with pytest.raises(ValueError, match="mel bins"):
        model(x[:, :, :16])
    with pytest.raises(ValueError, match="distinct"):
        model(x, mask_indices=torch.tensor([[1, 1, 2], [3, 4, 5]]))
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        model(x, mask_indices=torch.tensor([[1, 2, 32], [3, 4, 5]]))
    with pytest.raises(TypeError, match="integer"):
        model(x, mask_indices=torch.zeros(2, 3))
    unequal = torch.zeros(2, 32, dtype=torch.bool)
    unequal[0, :3] = True
    unequal[1, :4] = True
    with pytest.raises(ValueError, match="same"):
        model(x, bool_masked_pos=unequal)
    with pytest.raises(ValueError, match="needs mask_indices"):
        model(x, generative_mask_indices=torch.tensor([[1, 2], [3, 4]]))


def test_pretraining_directory_with_fused_qkv_fine_tunes(tmp_path):
    """An SSAST pre-training directory saved with one fused `qkv` (this package before the separate
    projections) still gives the fine-tuning model the same encoder, split into q_proj/k_proj/v_proj."""
    from safetensors.torch import save_file

    pretraining = SSASTForPreTraining(tiny_config()).eval()
    pretraining.config.save_pretrained(tmp_path)
    state = pretraining.state_dict()
    old_layout = {
        k: v.contiguous() for k, v in state.items() if not any(f".{n}." in k for n in ("q_proj", "k_proj", "v_proj"))
    }
    for layer in range(pretraining.config.num_hidden_layers):
        prefix = f"ssast.encoder.layers.{layer}.attention."
        for kind in ("weight", "bias"):
            old_layout[f"{prefix}qkv.{kind}"] = torch.cat(
                [state[f"{prefix}{n}.{kind}"] for n in ("q_proj", "k_proj", "v_proj")]
            )
    save_file(old_layout, tmp_path / "model.safetensors", metadata={"format": "pt"})
    classifier = SSASTForAudioClassification.from_pretrained(tmp_path, num_labels=3).eval()
    for fine_tuned, pretrained in zip(classifier.ssast.encoder.layers, pretraining.ssast.encoder.layers):
        for name in ("q_proj", "k_proj", "v_proj"):
            assert torch.equal(getattr(fine_tuned.attention, name).weight, getattr(pretrained.attention, name).weight)
            assert torch.equal(getattr(fine_tuned.attention, name).bias, getattr(pretrained.attention, name).bias)
