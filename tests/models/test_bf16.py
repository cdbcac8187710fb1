"""bfloat16 inference: top-1 unchanged against float32 on the fixture clips, bf16 weights and autocast alike."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from spectrogram_transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    HTSATConfig,
    HTSATFeatureExtractor,
    HTSATForAudioClassification,
    SSASTConfig,
    SSASTForAudioClassification,
    convert,
)
from spectrogram_transformers.runtime import cpu_bf16_flags, cpu_supports_bf16, describe_cpu
from testing_utils.fixtures import AUDIO_FIXTURES_DIR, load_fixture

AUDIO = AUDIO_FIXTURES_DIR
# bf16 keeps 8 bits of mantissa: probabilities move by well under this on these models
MAX_SIGMOID_CHANGE = 0.03


def fixture_clips() -> list[np.ndarray]:
    return [soundfile.read(path, dtype="float32")[0] for path in sorted(AUDIO.glob("*_16k.wav"))]


def ast_model_and_features():
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
    model = convert(load_fixture("ast_w64d3_f16t16_tdim128.state_dict"), "original-ast", config)
    return model, ASTFeatureExtractor(max_length=128)(
        fixture_clips(), sampling_rate=16000, return_tensors="pt"
    ).input_values


def ssast_model_and_features():
    config = SSASTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        patch_size=(16, 16),
        frequency_stride=16,
        time_stride=16,
        max_length=128,
        num_mel_bins=128,
        num_labels=5,
    )
    torch.manual_seed(0)
    return SSASTForAudioClassification(config), ASTFeatureExtractor(max_length=128)(
        fixture_clips(), sampling_rate=16000, return_tensors="pt"
    ).input_values


def htsat_model_and_features():
    config = HTSATConfig(
        spec_size=64, num_mel_bins=16, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_labels=6
    )
    torch.manual_seed(0)
    extractor = HTSATFeatureExtractor(
        sampling_rate=16000, num_mel_bins=16, hop_length=160, n_fft=512, fmax=8000.0, clip_samples=32000
    )
    return HTSATForAudioClassification(config), extractor(
        fixture_clips(), sampling_rate=16000, return_tensors="pt"
    ).input_features


@pytest.mark.parametrize("build", [ast_model_and_features, ssast_model_and_features, htsat_model_and_features])
@pytest.mark.parametrize("mode", ["weights", "autocast"])
def test_bf16_keeps_top1_on_the_fixture_clips(build, mode):
    model, features = build()
    model.eval()
    with torch.no_grad():
        reference = model(features)
        if mode == "weights":
            model.to(torch.bfloat16)
            assert next(model.parameters()).dtype == torch.bfloat16
            outputs = model(features)  # float32 features are cast to the model's dtype
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outputs = model(features)
    logits = outputs.logits
    assert logits.dtype == torch.bfloat16
    assert torch.equal(logits.float().argmax(-1), reference.logits.argmax(-1))
    change = (torch.sigmoid(logits.float()) - torch.sigmoid(reference.logits)).abs().max().item()
    assert 0 < change < MAX_SIGMOID_CHANGE  # really computed in bf16, and close
    if "framewise_logits" in reference:
        frame_change = (
            (torch.sigmoid(outputs.framewise_logits.float()) - torch.sigmoid(reference.framewise_logits)).abs().max()
        )
        assert frame_change < MAX_SIGMOID_CHANGE


def test_cpu_bf16_flags_read_x86_and_arm_cpuinfo():
    x86 = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert cpu_bf16_flags(x86) == ("avx512_bf16",)
    assert cpu_bf16_flags("flags\t: fpu sse2 avx512f avx512bw avx512vl\n") == ()  # AVX512 without BF16: emulated only
    assert cpu_bf16_flags("Features\t: fp asimd bf16 i8mm\n") == ("bf16",)
    assert cpu_bf16_flags("") == ()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        assert cpu_supports_bf16() == bool(cpu_bf16_flags(cpuinfo.read_text()))
        # what the benchmarks print names every bf16 flag the CPU has
        assert "bf16 flags: " in describe_cpu()
        assert all(flag in describe_cpu() for flag in cpu_bf16_flags(cpuinfo.read_text()))
