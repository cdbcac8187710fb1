"""One dataset example's audio -> mono float32 at the feature extractor's rate, and the one padding of a batch."""

from typing import Any

import numpy as np
import torch

from ..feature_extraction.audio import load_audio, resample, to_mono_float32
from ..feature_extraction.kaldi import pad_batch

__all__ = ["decode_example_audio", "pad_waveforms"]


def decode_example_audio(value: Any, target_sr: float) -> np.ndarray:
    """One example's audio column -> mono float32 at `target_sr`.

    Accepts what `datasets` gives with `Audio(decode=False)` ({"bytes", "path"}), a path or bytes, or an
    already decoded {"array", "sampling_rate"}. Raises ValueError / FileNotFoundError for undecodable input.
    """
    if isinstance(value, dict) and value.get("array") is not None:
        if value.get("sampling_rate") is None:
            raise ValueError("a decoded audio dict needs its 'sampling_rate'")
        return resample(to_mono_float32(value["array"]), value["sampling_rate"], target_sr)
    waveform, _ = load_audio(value, target_sr=target_sr)
    return waveform


def pad_waveforms(waveforms: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The one padding of a batch: zero-padded [B, longest] float32 and lengths [B] int64 (host tensors)."""
    if not waveforms:  # every clip of an evaluation batch undecodable: an empty batch, not an error
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return pad_batch([torch.as_tensor(waveform) for waveform in waveforms])
