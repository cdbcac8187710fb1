"""Tiny random-weight models saved as directories, for the plot and demo tests (seconds to build and run)."""

from pathlib import Path

import torch

from spectrogram_transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    HTSATConfig,
    HTSATFeatureExtractor,
    HTSATForAudioClassification,
)

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
RATE = 16000


def _labels(names):
    return {"id2label": dict(enumerate(names)), "label2id": {name: index for index, name in enumerate(names)}}


def save_tiny_ast(directory: Path, names=KEYWORDS, seed: int = 0) -> Path:
    """AST reading 1 s (100 fbank frames) at 16 kHz, single-label over `names`."""
    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=100,
        frequency_stride=16,
        time_stride=16,
        **_labels(names),
    )
    ASTForAudioClassification(config).save_pretrained(directory)
    ASTFeatureExtractor(max_length=100).save_pretrained(directory)
    return Path(directory)


def save_tiny_htsat(directory: Path, names=KEYWORDS, seed: int = 0) -> Path:
    """64x64-image HTS-AT (16 mel bins), 2 s clips at 16 kHz, multi-label over `names` (frame-level output)."""
    torch.manual_seed(seed)
    config = HTSATConfig(
        spec_size=64,
        num_mel_bins=16,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        problem_type="multi_label_classification",
        **_labels(names),
    )
    HTSATForAudioClassification(config).save_pretrained(directory)
    HTSATFeatureExtractor(
        sampling_rate=RATE, num_mel_bins=16, n_fft=512, hop_length=160, fmax=8000.0, clip_samples=2 * RATE
    ).save_pretrained(directory)
    return Path(directory)
