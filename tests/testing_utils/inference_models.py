"""Tiny random models saved as directories, for the inference, detection and pipeline tests."""

from pathlib import Path

import numpy as np
import soundfile
import torch

from spectrogram_transformers import (
    ASTConfig,
    ASTForAudioClassification,
    HTSATConfig,
    HTSATFeatureExtractor,
    HTSATForAudioClassification,
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
)
from spectrogram_transformers.feature_extraction import ASTFeatureExtractor

LABELS = {0: "dog", 1: "siren", 2: "speech"}
RATE = 16000


def tiny_ast_dir(directory: Path, max_length: int = 100, multi_label: bool = False, seed: int = 0) -> Path:
    """One-layer AST on 16 kHz Kaldi fbank; `max_length` 100 frames = 1.015 s of input."""
    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=max_length,
        id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    model = ASTForAudioClassification(config).eval()
    with torch.no_grad():  # a larger head than the 0.02-std initialisation, so that windows score clearly apart
        model.classifier.dense.weight.mul_(10)
    model.save_pretrained(directory)
    ASTFeatureExtractor(max_length=max_length).save_pretrained(directory)
    return directory


def tiny_htsat_dir(directory: Path, clip_seconds: float = 2.0, seed: int = 0) -> Path:
    """64×64-image HTS-AT (16 mel bins, 256 frames), `clip_seconds` clips at 16 kHz, multi-label."""
    torch.manual_seed(seed)
    config = HTSATConfig(
        spec_size=64,
        num_mel_bins=16,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
        problem_type="multi_label_classification",
    )
    HTSATForAudioClassification(config).save_pretrained(directory)
    HTSATFeatureExtractor(
        sampling_rate=RATE,
        num_mel_bins=16,
        n_fft=512,
        hop_length=160,
        fmax=8000.0,
        clip_samples=int(clip_seconds * RATE),
    ).save_pretrained(directory)
    return directory


def tiny_ssast_dir(directory: Path, seed: int = 0) -> Path:
    """Two-layer SSAST classifier (mean pooling of the patch tokens) on 32 mel bins × 100 frames, 16×16 patches with
    stride 16 × 10: a 2 × 9 patch grid, one cls token (no distillation token)."""
    torch.manual_seed(seed)
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=32,
        max_length=100,
        patch_size=16,
        frequency_stride=16,
        time_stride=10,
        num_prefix_tokens=1,
        id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
    )
    SSASTForAudioClassification(config).save_pretrained(directory)
    ASTFeatureExtractor(num_mel_bins=32, max_length=100).save_pretrained(directory)
    return directory


def tiny_ssast_pretraining_dir(directory: Path, seed: int = 0) -> Path:
    """An SSAST pre-training checkpoint (encoder + pre-training heads, no classifier): a frame model, 32 mel × 4
    frame patches on 100 frames, i.e. one token per 40 ms time step (a 1 × 25 grid)."""
    torch.manual_seed(seed)
    config = SSASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=32,
        max_length=100,
        patch_size=(32, 4),
        frequency_stride=32,
        time_stride=4,
        num_masked_patches=10,
        prediction_size=128,
    )
    SSASTForPreTraining(config).save_pretrained(directory)
    ASTFeatureExtractor(num_mel_bins=32, max_length=100).save_pretrained(directory)
    return directory


def tone_file(path: Path, seconds: float, rate: int = RATE, frequency: float = 440.0, seed: int = 0) -> Path:
    """Noise plus a tone, written as 16-bit PCM (the format follows the suffix)."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * rate)) / rate
    audio = 0.05 * rng.standard_normal(time.size) + 0.3 * np.sin(2 * np.pi * frequency * time)
    soundfile.write(path, audio.astype(np.float32), rate, subtype="PCM_16")
    return path


def embedding_model_dirs(root: Path) -> dict[str, Path]:
    """One tiny model directory per kind the embeddings load: AST, SSAST and HTS-AT classifiers and an SSAST
    pre-training checkpoint, keyed "ast", "ssast", "htsat", "ssast-pretraining"."""
    builders = {
        "ast": tiny_ast_dir,
        "ssast": tiny_ssast_dir,
        "htsat": tiny_htsat_dir,
        "ssast-pretraining": tiny_ssast_pretraining_dir,
    }
    return {name: build(root / name) for name, build in builders.items()}
