"""original-htsat conversion: plain state dicts and Lightning `.ckpt` files of RetroCirce/HTS-Audio-Transformer."""

import math

import pytest
import torch

from spectrogram_transformers import HTSATConfig, convert
from spectrogram_transformers.modeling.checkpoint import CheckpointKeyError
from spectrogram_transformers.modeling.htsat.convert_htsat import (
    convert_original_htsat_state_dict,
    infer_htsat_config,
)
from testing_utils.fixtures import load_fixture

FIXTURE = "htsat_e12_d2222"
N_FFT = 1024


def stft_kernels(n_fft: int = N_FFT) -> dict[str, torch.Tensor]:
    """torchlibrosa's frozen conv-STFT kernels (README §7): periodic Hann × DFT in float64, cast to float32."""
    taps = torch.arange(n_fft, dtype=torch.float64)
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * taps / n_fft)
    angle = 2 * math.pi * bins * taps / n_fft  # (bins, taps)
    return {
        "spectrogram_extractor.stft.conv_real.weight": (window * torch.cos(angle)).float()[:, None],
        "spectrogram_extractor.stft.conv_imag.weight": (window * -torch.sin(angle)).float()[:, None],
    }


@pytest.fixture(scope="module")
def original_state_dict():
    return {**load_fixture(f"{FIXTURE}.state_dict"), **stft_kernels()}


@pytest.fixture(scope="module")
def reference():
    return {**load_fixture(f"{FIXTURE}.intermediates"), **load_fixture(f"{FIXTURE}.io")}


def assert_matches_reference(model, reference):
    with torch.no_grad():
        output = model(reference["logmel"][:, 0])
    torch.testing.assert_close(output.logits.sigmoid(), reference["clipwise_output"], atol=1e-6, rtol=0)
    torch.testing.assert_close(output.framewise_logits.sigmoid(), reference["framewise_output"], atol=1e-6, rtol=0)


def test_infer_config_from_shapes(original_state_dict):
    config = infer_htsat_config(original_state_dict)
    assert config.embed_dim == 12
    assert tuple(config.depths) == (2, 2, 2, 2)
    assert tuple(config.num_heads) == (2, 4, 8, 16)
    assert config.window_size == 8 and config.num_mel_bins == 64 and config.num_labels == 10
    assert config.use_token_semantic_head and config.token_semantic_kernel == (2, 3)


def test_plain_state_dict(original_state_dict, reference):
    model = convert(original_state_dict, "original-htsat")
    assert not model.training
    assert_matches_reference(model, reference)


def test_lightning_checkpoint_file(original_state_dict, reference, tmp_path):
    """The released format: torch.save({'state_dict': {'sed_model.' + key: ...}, epoch, optimizer states, ...})."""
    checkpoint = {
        "epoch": 41,
        "global_step": 123456,
        "pytorch-lightning_version": "1.5.9",
        "state_dict": {f"sed_model.{key}": value for key, value in original_state_dict.items()},
        "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.47), "monitor": "mAP"}},
        "optimizer_states": [
            {"state": {0: {"step": 10, "exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-3, "params": [0]}]}
        ],
        "lr_schedulers": [{"last_epoch": 41, "base_lrs": [1e-3]}],
    }
    path = tmp_path / "HTSAT_AudioSet_Saved_1.ckpt"
    torch.save(checkpoint, path)
    model = convert(path, "original-htsat")
    assert_matches_reference(model, reference)


def test_fused_qkv_is_split_and_dropped_keys_are_gone(original_state_dict):
    config = infer_htsat_config(original_state_dict)
    converted = convert_original_htsat_state_dict(original_state_dict, config)
    qkv = original_state_dict["layers.1.blocks.1.attn.qkv.weight"]  # (3·24, 24)
    prefix = "htsat.encoder.layers.1.blocks.1.attention"
    for index, name in enumerate(("q_proj", "k_proj", "v_proj")):
        assert torch.equal(converted[f"{prefix}.{name}.weight"], qkv[index * 24 : (index + 1) * 24])
    assert torch.equal(converted["classifier.conv.weight"], original_state_dict["tscam_conv.weight"])
    assert torch.equal(converted["htsat.embeddings.mel_norm.running_var"], original_state_dict["bn0.running_var"])
    assert not any("qkv" in key or "relative_position_index" in key or "attn_mask" in key for key in converted)
    assert not any(key.startswith(("head.", "spectrogram_extractor", "logmel_extractor")) for key in converted)


def test_unexpected_key_is_named(original_state_dict):
    broken = {**original_state_dict, "absolute_pos_embed": torch.zeros(1, 4096, 12)}
    with pytest.raises(CheckpointKeyError, match="absolute_pos_embed"):
        convert(broken, "original-htsat")


def test_missing_key_is_named(original_state_dict):
    broken = {key: value for key, value in original_state_dict.items() if key != "layers.2.downsample.norm.bias"}
    with pytest.raises(CheckpointKeyError, match=r"htsat\.encoder\.layers\.2\.downsample\.norm\.bias"):
        convert(broken, "original-htsat")


def test_config_given_is_used(original_state_dict, reference):
    labels = {index: f"class {index}" for index in range(10)}
    config = HTSATConfig(
        embed_dim=12,
        depths=(2, 2, 2, 2),
        num_heads=(2, 4, 8, 16),
        id2label=labels,
        label2id={name: index for index, name in labels.items()},
        problem_type="multi_label_classification",
    )
    model = convert(original_state_dict, "original-htsat", config)
    assert model.config.id2label[3] == "class 3" and model.config.problem_type == "multi_label_classification"
    assert_matches_reference(model, reference)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"embed_dim": 24, "num_heads": (2, 4, 8, 16)}, "config.embed_dim"),
        ({"num_labels": 527}, "config.num_labels"),
        ({"num_heads": (1, 2, 4, 8)}, "config.num_heads"),
        ({"depths": (2, 2, 6, 2)}, "config.depths"),
        ({"window_size": 4}, "config.window_size"),
        ({"use_token_semantic_head": False}, "config.use_token_semantic_head"),
    ],
)
def test_config_disagreeing_with_the_checkpoint_is_named(original_state_dict, overrides, field):
    settings = {"embed_dim": 12, "depths": (2, 2, 2, 2), "num_heads": (2, 4, 8, 16), "num_labels": 10}
    config = HTSATConfig(**{**settings, **overrides})
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        convert(original_state_dict, "original-htsat", config)


def test_other_config_types_are_refused(original_state_dict):
    from spectrogram_transformers import ASTConfig

    with pytest.raises(TypeError, match="HTSATConfig"):
        convert(original_state_dict, "original-htsat", ASTConfig())


def test_cli_conversion_of_a_lightning_checkpoint_feeds_the_pipeline(original_state_dict, reference, tmp_path):
    """`spectrogram-transformers convert --source original-htsat` on a .ckpt, then pipeline() on raw 32 kHz audio."""
    from transformers import pipeline

    from spectrogram_transformers.cli import main as cli_main

    checkpoint = tmp_path / "htsat.ckpt"
    torch.save({"epoch": 1, "state_dict": {f"sed_model.{k}": v for k, v in original_state_dict.items()}}, checkpoint)
    labels = tmp_path / "labels.csv"
    labels.write_text("index,mid,display_name\n" + "".join(f"{i},/m/{i},sound {i}\n" for i in range(10)))
    output = tmp_path / "converted"
    code = cli_main(
        [
            "convert",
            "--source",
            "original-htsat",
            "--checkpoint",
            str(checkpoint),
            "--labels",
            str(labels),
            "--problem-type",
            "multi_label_classification",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    classifier = pipeline("audio-classification", model=str(output), top_k=10)
    scene = (reference["input_waveform_int16"][1].float() / 32768).numpy()
    scores = {entry["label"]: entry["score"] for entry in classifier({"array": scene, "sampling_rate": 32000})}
    expected = reference["clipwise_output"][1]  # the original's sigmoid clip output (clip_bce)
    for index in range(10):
        assert scores[f"sound {index}"] == pytest.approx(expected[index].item(), abs=1e-4)
