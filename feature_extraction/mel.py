"""librosa/torchlibrosa-style log-mel spectrogram for HTS-AT, batched in torch (librosa not needed).

HTS-AT (Chen et al., "HTS-AT: A Hierarchical Token-Semantic Audio Transformer for Sound Classification and
Detection", ICASSP 2022, https://github.com/RetroCirce/HTS-Audio-Transformer) takes its input from
torchlibrosa's `Spectrogram` + `LogmelFilterBank`:

1. STFT with a periodic Hann window of `n_fft` samples every `hop_length`, `center=True`: each clip is
   reflect-padded by n_fft // 2 on both sides, so a clip of N samples gives 1 + N // hop_length frames;
2. power spectrum |X|^2;
3. librosa's default mel filterbank (`librosa.filters.mel(htk=False, norm="slaney")`): triangles equally
   spaced on the Slaney mel scale (linear below 1 kHz, logarithmic above) from `fmin` to `fmax`, each divided
   by its bandwidth so that it has unit area;
4. 10 log10(max(x, amin)) - 10 log10(max(amin, ref)), with no top_db clipping in HTS-AT.

torchlibrosa does step 1 as a float32 convolution with a DFT matrix; here it is an FFT of the framed batch,
which gives the same spectrum up to float32 rounding (<= 1.6e-4 dB on the HTS-AT fixtures, within the 5e-4 dB
tested in tests/test_feature_extraction_htsat.py). The filterbank is applied band by band (`filterbank.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .filterbank import BandedFilterbank, power_spectrum
from .kaldi import _own_copy, pad_batch

__all__ = ["LogMelSettings", "hz_to_mel_slaney", "log_mel_spectrogram", "mel_to_hz_slaney", "slaney_mel_filterbank"]

# Slaney's Auditory Toolbox mel scale (librosa's default, htk=False): linear at 200/3 Hz per mel up to
# 1 kHz (15 mel), then logarithmic with 27 mel per factor 6.4 in frequency.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_LOG_BREAK_HZ = 1000.0
_LOG_BREAK_MEL = _LOG_BREAK_HZ / _LINEAR_HZ_PER_MEL
_LOG_MEL_STEP = math.log(6.4) / 27.0


def hz_to_mel_slaney(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney mel of frequencies in Hz (float64), as librosa.hz_to_mel(htk=False)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    linear = frequencies / _LINEAR_HZ_PER_MEL
    # np.maximum keeps log() away from 0 Hz; those entries take the linear branch anyway.
    logarithmic = _LOG_BREAK_MEL + np.log(np.maximum(frequencies, _LOG_BREAK_HZ) / _LOG_BREAK_HZ) / _LOG_MEL_STEP
    return np.where(frequencies >= _LOG_BREAK_HZ, logarithmic, linear)


def mel_to_hz_slaney(mels: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz of Slaney mels (float64), as librosa.mel_to_hz(htk=False)."""
    mels = np.asarray(mels, dtype=np.float64)
    linear = mels * _LINEAR_HZ_PER_MEL
    logarithmic = _LOG_BREAK_HZ * np.exp(_LOG_MEL_STEP * (mels - _LOG_BREAK_MEL))
    return np.where(mels >= _LOG_BREAK_MEL, logarithmic, linear)


@lru_cache(maxsize=32)
def _slaney_filterbank_cpu(
    sample_rate: float, n_fft: int, num_mel_bins: int, fmin: float, fmax: float
) -> torch.Tensor:
    # Band edges: num_mel_bins + 2 points equally spaced in mel; filter i rises from edge i to edge i+1 and
    # falls to edge i+2. The weights are computed in float64 and stored in float32, then scaled by the Slaney
    # area normalisation 2 / (right - left) and stored in float32 again: librosa's exact sequence, which makes
    # this matrix equal to torchlibrosa's `melW` to the last bit.
    edges_hz = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), num_mel_bins + 2))
    fft_hz = np.arange(n_fft // 2 + 1) * (1.0 / (n_fft * (1.0 / sample_rate)))
    widths = np.diff(edges_hz)  # (M + 1,)
    distance = edges_hz[:, None] - fft_hz[None, :]  # (M + 2, F): edge minus bin frequency
    rising = -distance[:-2] / widths[:-1, None]  # (M, F)
    falling = distance[2:] / widths[1:, None]  # (M, F)
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    area_norm = 2.0 / (edges_hz[2:] - edges_hz[:-2])  # (M,)
    weights = (weights.astype(np.float64) * area_norm[:, None]).astype(np.float32)
    # Stored as [F, M] (torchlibrosa's melW layout): power [.., F] @ W gives mel energies [.., M].
    return torch.from_numpy(np.ascontiguousarray(weights.T))


def slaney_mel_filterbank(
    sample_rate: float,
    n_fft: int,
    num_mel_bins: int = 64,
    fmin: float = 50.0,
    fmax: float | None = 14000.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """librosa's default mel filterbank (`htk=False`, `norm="slaney"`) as a [n_fft // 2 + 1, num_mel_bins]
    matrix, i.e. `librosa.filters.mel(...).T`, torchlibrosa's `melW` (cached per settings).

    `fmax=None` means Nyquist. An `fmax` above Nyquist is allowed, as librosa allows it: the filters beyond
    Nyquist are then all zero (HTS-AT's Speech Commands setting, 16 kHz with fmax 14 kHz, has such filters).
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    if not 0.0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    bank = _slaney_filterbank_cpu(float(sample_rate), int(n_fft), int(num_mel_bins), float(fmin), float(fmax))
    return _own_copy(bank, device, dtype)


@lru_cache(maxsize=32)
def _banded_slaney_filterbank(
    sample_rate: float, n_fft: int, num_mel_bins: int, fmin: float, fmax: float, device: str, dtype: torch.dtype
) -> BandedFilterbank:
    bank = _slaney_filterbank_cpu(sample_rate, n_fft, num_mel_bins, fmin, fmax)
    return BandedFilterbank(bank).to(device=device, dtype=dtype)


@lru_cache(maxsize=8)
def _periodic_hann(size: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    # float64 then float32, as scipy/librosa's window that torchlibrosa bakes into its STFT kernels
    return torch.hann_window(size, periodic=True, dtype=torch.float64).float().to(device=device, dtype=dtype)


def _reflect_pad_batch(batch: torch.Tensor, lengths: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad every clip of a zero-padded batch at its own ends (numpy/torch "reflect", edge not repeated).

    Returns [B, max_samples + 2 * pad]: row b holds pad reflected samples, the clip, pad reflected samples of
    the clip's own end, then whatever followed the clip in `batch` (only frames past the clip's frame count
    read it). Two small [B, pad] edge gathers for the batch instead of a per-clip loop.
    """
    batch_size, samples = batch.shape
    padded = batch.new_empty(batch_size, samples + 2 * pad)
    padded[:, pad : pad + samples] = batch
    padded[:, samples + pad :] = 0.0
    padded[:, :pad] = batch[:, 1 : pad + 1].flip(-1)  # x[pad], ..., x[1]: every clip starts at column 0
    offsets = torch.arange(1, pad + 1, device=batch.device).unsqueeze(0)  # (1, pad)
    last = (lengths.to(batch.device) - 1).unsqueeze(1)  # (B, 1)
    tail = torch.gather(batch, 1, last - offsets)  # (B, pad): x[L-2], ..., x[L-1-pad] of each clip's own end
    padded.scatter_(1, last + 1 + pad + offsets - 1, tail)  # written at padded columns L + pad, ...
    return padded


@dataclass(frozen=True)
class LogMelSettings:
    """The settings of HTS-AT's log-mel front end, travelling as one value from the feature extractor to the FFT.

    The defaults are HTS-AT's AudioSet/ESC-50 configuration at 32 kHz. `HTSATFeatureExtractor` saves each field
    as an attribute of its own (`preprocessor_config.json`) and builds this object from them.
    """

    n_fft: int = 1024  # FFT and window size (periodic Hann)
    hop_length: int = 320  # frame shift in samples
    num_mel_bins: int = 64  # Slaney mel filters from fmin to fmax
    fmin: float = 50.0
    fmax: float | None = 14000.0  # None is Nyquist
    amin: float = 1e-10  # floor of the mel power before the log (-100 dB)
    ref: float = 1.0  # reference power: 10 log10(max(x, amin)) - 10 log10(max(amin, ref))
    top_db: float | None = None  # if set, clip each clip's values to (its max - top_db); HTS-AT uses None
    # frames past each clip's own frame count; None is the log-mel of silence, 10 log10(amin) - 10 log10(max(amin,
    # ref)) (-100 dB by default), which is what zero-padding the waveform would give away from the clip's end
    padding_value: float | None = None

    @classmethod
    def from_attributes(cls, source: Any) -> LogMelSettings:
        """The settings held as same-named attributes of `source` (a feature extractor)."""
        return cls(**{field.name: getattr(source, field.name) for field in fields(cls)})


HTSAT_LOG_MEL = LogMelSettings()


def log_mel_spectrogram(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    sample_rate: float = 32000,
    *,
    lengths: torch.Tensor | Sequence[int] | None = None,
    settings: LogMelSettings = HTSAT_LOG_MEL,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel spectrogram (dB) of a batch of clips, as HTS-AT's torchlibrosa front end computes it.

    Args:
        waveforms: float waveforms: a list of 1-D clips of any lengths, a zero-padded batch [B, samples]
            (give `lengths`), or one clip [samples] (B = 1). Computed in float32 on the input's device.
        sample_rate: sampling rate in Hz (only the mel filterbank depends on it).
        lengths: valid samples of each clip of a padded batch (default: all full length).
        settings: the front end's settings (STFT, mel filterbank, dB scale, padding value).

    Returns:
        `(features, num_frames)`: features [B, max_frames, num_mel_bins] (time along dim 1), num_frames [B]
        int64 = 1 + samples // hop_length per clip (center=True framing).

    Raises:
        ValueError: a clip of n_fft // 2 samples or fewer (reflect padding needs more), or bad settings.
    """
    batch, lengths = pad_batch(waveforms, lengths)
    device = batch.device
    n_fft, hop_length, fmin, fmax = settings.n_fft, settings.hop_length, settings.fmin, settings.fmax
    amin, top_db, padding_value = settings.amin, settings.top_db, settings.padding_value
    if hop_length < 1 or n_fft < 2:
        raise ValueError(f"need n_fft >= 2 and hop_length >= 1, got n_fft={n_fft}, hop_length={hop_length}")
    fmax = sample_rate / 2.0 if fmax is None else fmax
    if not 0.0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative, got {top_db}")
    pad = n_fft // 2
    if bool((lengths <= pad).any()):
        shortest = int(lengths.min())
        raise ValueError(
            f"a clip of {shortest} samples is too short for a centred STFT with n_fft={n_fft}: reflect padding "
            f"needs more than {pad} samples ({pad / sample_rate * 1000:.1f} ms at {sample_rate} Hz)"
        )

    padded = _reflect_pad_batch(batch, lengths, pad)  # (B, S + n_fft)
    num_frames = 1 + lengths.div(hop_length, rounding_mode="floor")
    max_frames = int(num_frames.max())
    window = _periodic_hann(n_fft, str(device), batch.dtype)
    frames = padded[:, : (max_frames - 1) * hop_length + n_fft].unfold(-1, n_fft, hop_length)  # (B, T, n_fft)
    spectrum = torch.fft.rfft(frames * window, dim=-1)  # (B, T, n_fft // 2 + 1)

    mel_bank = _banded_slaney_filterbank(
        float(sample_rate), int(n_fft), int(settings.num_mel_bins), float(fmin), float(fmax), str(device), batch.dtype
    )
    features = mel_bank(power_spectrum(spectrum))  # (B, T, M) mel power
    offset = 10.0 * math.log10(max(amin, settings.ref))
    features = features.clamp_(min=amin).log10_().mul_(10.0).sub_(offset)

    valid = torch.arange(max_frames, device=device).unsqueeze(0) < num_frames.to(device).unsqueeze(1)  # (B, T)
    if top_db is not None:
        peak = features.masked_fill(~valid.unsqueeze(-1), -math.inf).amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        features = torch.maximum(features, peak - top_db)
    if padding_value is None:
        padding_value = 10.0 * math.log10(amin) - offset
    features = features.masked_fill(~valid.unsqueeze(-1), padding_value)
    return features, num_frames
