"""Kaldi-compatible log mel filterbank ("fbank") features, batched in torch, without torchaudio.

AST (Gong et al., Interspeech 2021, https://github.com/YuanGongND/ast) and SSAST (Gong et al., AAAI 2022,
https://github.com/YuanGongND/ssast) compute their inputs with `torchaudio.compliance.kaldi.fbank`. This module
computes the same features for a whole batch of clips of different lengths at once: the clips are framed
together (one `unfold` over a zero-padded batch) and each clip keeps its own frame count. The time-domain
steps keep torchaudio's float32 operations and rounding (the low mel bins are ill-conditioned enough that
reordering them shows at 1e-3 in the log); the power spectrum and the mel sums are computed faster, in
another summation order, which moves the log features by at most ~1e-6 on CPU (tested against the AST
fixtures). Per frame, as Kaldi's `compute-fbank-feats` does:

1. cut frames of `frame_length_ms` every `frame_shift_ms` ("snip edges": only whole frames,
   1 + (samples - window) // shift of them);
2. subtract each frame's mean (DC offset);
3. pre-emphasis `y[i] = x[i] - k * x[i-1]`, with `x[-1] = x[0]` inside each frame;
4. multiply by the window (AST: "hanning", the symmetric Hann window 0.5 - 0.5 cos(2 pi n / (N - 1)));
5. zero-pad to the next power of two and take the power spectrum |rfft|^2;
6. apply triangular filters equally spaced on Kaldi's mel scale 1127 ln(1 + f / 700), from `low_freq` to
   `high_freq` (<= 0 means relative to Nyquist), with no area normalisation;
7. natural log, floored at float32 eps (Kaldi's `log(max(x, eps))`).

Dither is left out (AST and SSAST use 0, and it would make features random). No energy coefficient is
produced (AST passes `use_energy=False`), so `htk_compat` has nothing to reorder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch

from .filterbank import BandedFilterbank, power_spectrum

__all__ = [
    "KaldiFbankSettings",
    "WindowType",
    "kaldi_fbank",
    "kaldi_frame_sizes",
    "kaldi_mel_banks",
    "kaldi_mel_scale",
    "kaldi_window",
    "pad_batch",
]

WindowType = Literal["hanning", "hamming", "povey", "rectangular"]

# Kaldi's mel scale constants: mel(f) = 1127 ln(1 + f / 700).
_MEL_FACTOR = 1127.0
_MEL_BREAK_HZ = 700.0
# Kaldi floors energies at the machine epsilon of the feature dtype before the log.
_FLOAT32_EPS = torch.finfo(torch.float32).eps
# Exponent of Kaldi's "povey" window (a Hann window raised to this power).
_POVEY_EXPONENT = 0.85


def kaldi_mel_scale(frequency_hz: float) -> float:
    """Kaldi's (HTK-style) mel scale, 1127 ln(1 + f / 700)."""
    return _MEL_FACTOR * math.log(1.0 + frequency_hz / _MEL_BREAK_HZ)


def kaldi_frame_sizes(
    sample_rate: float, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, round_to_power_of_two: bool = True
) -> tuple[int, int, int]:
    """(window, shift, FFT size) in samples, truncated to integers as Kaldi does (400, 160, 512 at 16 kHz)."""
    window = int(sample_rate * frame_length_ms * 0.001)
    hop = int(sample_rate * frame_shift_ms * 0.001)
    if window < 2 or hop < 1:
        raise ValueError(
            f"frame_length_ms={frame_length_ms} / frame_shift_ms={frame_shift_ms} at {sample_rate} Hz give a "
            f"window of {window} and a shift of {hop} samples; need a window >= 2 and a shift >= 1"
        )
    fft_size = 1 << (window - 1).bit_length() if round_to_power_of_two else window
    return window, hop, fft_size


def _own_copy(cached: torch.Tensor, device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    """`cached` on device/dtype, never the cached tensor itself (a caller's in-place edit must not reach the cache)."""
    moved = cached.to(device=device, dtype=dtype)
    return moved.clone() if moved is cached else moved


@lru_cache(maxsize=32)
def _mel_banks_cpu(num_mel_bins: int, fft_size: int, sample_rate: float, low_freq: float, high_freq: float):
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq = nyquist + high_freq
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(
            f"mel range must satisfy 0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz); got low_freq={low_freq}, "
            f"high_freq={high_freq} (high_freq <= 0 is an offset from Nyquist)"
        )
    num_fft_bins = fft_size // 2
    bin_width_hz = sample_rate / fft_size
    mel_low = kaldi_mel_scale(low_freq)
    mel_high = kaldi_mel_scale(high_freq)
    mel_step = (mel_high - mel_low) / (num_mel_bins + 1)

    # The edges and the FFT-bin mels are float32 tensors built exactly as torchaudio builds them (python-float
    # scalars times float32 tensors), so the triangles match it bit for bit.
    index = torch.arange(num_mel_bins, dtype=torch.float32).unsqueeze(1)  # (M, 1)
    left = mel_low + index * mel_step
    center = mel_low + (index + 1.0) * mel_step
    right = mel_low + (index + 2.0) * mel_step
    bin_hz = bin_width_hz * torch.arange(num_fft_bins, dtype=torch.float32)
    bin_mel = (_MEL_FACTOR * (1.0 + bin_hz / _MEL_BREAK_HZ).log()).unsqueeze(0)  # (1, F/2)
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)  # (M, F/2)
    # Kaldi's filters stop below the Nyquist bin; it gets a zero column so the bank matches the rfft size.
    return torch.nn.functional.pad(banks, (0, 1))  # (M, F/2 + 1)


def kaldi_mel_banks(
    num_mel_bins: int,
    fft_size: int,
    sample_rate: float,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Kaldi's triangular mel filters as a [num_mel_bins, fft_size // 2 + 1] matrix (cached per settings)."""
    banks = _mel_banks_cpu(int(num_mel_bins), int(fft_size), float(sample_rate), float(low_freq), float(high_freq))
    return _own_copy(banks, device, dtype)


@lru_cache(maxsize=32)
def _banded_mel_banks(
    num_mel_bins: int,
    fft_size: int,
    sample_rate: float,
    low_freq: float,
    high_freq: float,
    device: str,
    dtype: torch.dtype,
) -> BandedFilterbank:
    banks = _mel_banks_cpu(num_mel_bins, fft_size, sample_rate, low_freq, high_freq)  # (M, F)
    return BandedFilterbank(banks.T).to(device=device, dtype=dtype)


@lru_cache(maxsize=32)
def _window_cpu(window_type: str, size: int) -> torch.Tensor:
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False, dtype=torch.float32)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46, dtype=torch.float32)
    if window_type == "povey":
        return torch.hann_window(size, periodic=False, dtype=torch.float32).pow(_POVEY_EXPONENT)
    if window_type == "rectangular":
        return torch.ones(size, dtype=torch.float32)
    raise ValueError(f"window_type must be one of 'hanning', 'hamming', 'povey', 'rectangular'; got {window_type!r}")


def kaldi_window(
    window_type: WindowType, size: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Kaldi's analysis window of `size` samples (symmetric, as Kaldi's windows are; cached per settings)."""
    return _own_copy(_window_cpu(window_type, int(size)), device, dtype)


def pad_batch(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    lengths: torch.Tensor | Sequence[int] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-padded batch [B, max_samples] and the clip lengths [B] (int64) from any batch form.

    Accepts a list of 1-D clips, a 2-D padded batch (with `lengths`, or all full length), or one 1-D clip (B=1).
    """
    if isinstance(waveforms, (torch.Tensor, np.ndarray)):
        batch = torch.as_tensor(waveforms, device=device)
        if batch.ndim == 1:
            batch = batch.unsqueeze(0)
        if batch.ndim != 2:
            raise ValueError(f"waveforms must be [samples] or [batch, samples], got shape {tuple(batch.shape)}")
        if not (batch.is_floating_point()):
            raise ValueError(f"waveforms must be floating point (convert PCM with to_mono_float32), got {batch.dtype}")
        batch = batch.to(dtype)
        if lengths is None:
            lengths = torch.full((batch.shape[0],), batch.shape[1], dtype=torch.long)
    else:
        clips = [torch.as_tensor(clip) for clip in waveforms]
        if not clips:
            raise ValueError("waveforms is an empty list")
        for index, clip in enumerate(clips):
            if clip.ndim != 1 or not clip.is_floating_point():
                raise ValueError(
                    f"clip {index} must be a 1-D floating-point waveform, got shape {tuple(clip.shape)} {clip.dtype}"
                )
        if lengths is None:
            lengths = [clip.shape[0] for clip in clips]
        batch = torch.nn.utils.rnn.pad_sequence([clip.to(dtype) for clip in clips], batch_first=True).to(device)
    lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
    if lengths.shape != (batch.shape[0],) or bool((lengths < 0).any()) or bool((lengths > batch.shape[1]).any()):
        raise ValueError(f"lengths {lengths.tolist()} do not fit a batch of shape {tuple(batch.shape)}")
    return batch, lengths


@dataclass(frozen=True)
class KaldiFbankSettings:
    """The settings of a Kaldi fbank front end, travelling as one value from the feature extractor to the FFT.

    The defaults are AST's call: `fbank(wav, htk_compat=True, sample_frequency=sr, use_energy=False,
    window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)`. `ASTFeatureExtractor` saves each
    field as an attribute of its own (`preprocessor_config.json`) and builds this object from them.
    """

    num_mel_bins: int = 128  # triangular mel filters
    frame_length_ms: float = 25.0  # Kaldi's frame length
    frame_shift_ms: float = 10.0  # Kaldi's frame shift
    preemphasis: float = 0.97  # pre-emphasis coefficient (0 disables it)
    remove_dc_offset: bool = True  # subtract each frame's mean before pre-emphasis
    window_type: WindowType = "hanning"  # AST's; "povey" is Kaldi's default
    round_to_power_of_two: bool = True  # zero-pad each frame to the next power of two before the FFT
    low_freq: float = 20.0  # lower edge of the mel filterbank in Hz
    high_freq: float = 0.0  # upper edge in Hz; <= 0 is an offset from Nyquist
    padding_value: float = 0.0  # value of the frames past each clip's own frame count

    @classmethod
    def from_attributes(cls, source: Any) -> KaldiFbankSettings:
        """The settings held as same-named attributes of `source` (a feature extractor)."""
        return cls(**{field.name: getattr(source, field.name) for field in fields(cls)})

    def frame_sizes(self, sample_rate: float) -> tuple[int, int, int]:
        """(window, shift, FFT size) in samples at `sample_rate` (`kaldi_frame_sizes`)."""
        return kaldi_frame_sizes(sample_rate, self.frame_length_ms, self.frame_shift_ms, self.round_to_power_of_two)


AST_FBANK = KaldiFbankSettings()


def kaldi_fbank(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    sample_rate: float = 16000,
    *,
    lengths: torch.Tensor | Sequence[int] | None = None,
    settings: KaldiFbankSettings = AST_FBANK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi fbank features of a batch of clips, as `torchaudio.compliance.kaldi.fbank` computes them.

    The default settings are AST's call (`KaldiFbankSettings`). The caller removes the waveform's mean first
    when it wants AST's behaviour (the AST dataloader does so before calling fbank).

    Args:
        waveforms: float waveforms: a list of 1-D clips of any lengths, a zero-padded batch [B, samples]
            (give `lengths`), or one clip [samples] (treated as B = 1). The arithmetic runs on the input's
            device in float32, the precision of the reference (within ~1e-6 of torchaudio on CPU; on GPU,
            cuFFT's rounding differs from pocketfft's, which was not measured here).
        sample_rate: sampling rate in Hz; sets the window (e.g. 400 samples at 16 kHz, 800 at 32 kHz).
        lengths: valid samples of each clip of a padded batch (default: all full length).
        settings: the front end's settings (frames, window, pre-emphasis, mel filterbank, padding value).

    Returns:
        `(features, num_frames)`: features [B, max_frames, num_mel_bins] (frames along dim 1, mel bins along
        dim 2, as AST expects), and num_frames [B] int64 with 1 + (samples - window) // shift per clip (0 for a
        clip shorter than one window, whose rows are all `padding_value`).
    """
    batch, lengths = pad_batch(waveforms, lengths)
    dtype, device = batch.dtype, batch.device
    window, hop, fft_size = settings.frame_sizes(sample_rate)
    num_mel_bins, padding_value, preemphasis = settings.num_mel_bins, settings.padding_value, settings.preemphasis

    num_frames = torch.where(lengths >= window, 1 + (lengths - window).div(hop, rounding_mode="floor"), 0)
    max_frames = int(num_frames.max())
    batch_size = batch.shape[0]
    if max_frames == 0:
        return batch.new_full((batch_size, 0, num_mel_bins), padding_value), num_frames

    # Per frame, in Kaldi's order and rounding: x <- x - mean(x); y[i] = x[i] - k x[i-1] with x[-1] = x[0];
    # y <- y * window. The order matters: the low mel bins hold little energy once DC is removed and
    # pre-emphasis has damped low frequencies, so any reassociation of these steps (e.g. pre-emphasising the
    # waveform first) moves them by ~1e-3 in the log. Speed comes instead from writing each step into the
    # zero-padded FFT buffer, rather than allocating a new (B, T, window) tensor per step.
    frames = batch[:, : (max_frames - 1) * hop + window].unfold(-1, window, hop)  # (B, T, window), a strided view
    buffer = batch.new_empty(batch_size, max_frames, fft_size)  # (B, T, fft_size): samples past the window = 0
    buffer[..., window:] = 0.0
    body = buffer[..., :window]
    centred = frames - frames.mean(dim=-1, keepdim=True) if settings.remove_dc_offset else frames  # (B, T, window)
    if preemphasis != 0.0:
        # (x[i-1] * k rounded, then subtracted: `sub(..., alpha=k)` may fuse to one FMA and round differently)
        torch.mul(centred[..., :-1], preemphasis, out=body[..., 1:])
        torch.sub(centred[..., 1:], body[..., 1:], out=body[..., 1:])
        body[..., 0] = centred[..., 0] - centred[..., 0] * preemphasis
    else:
        body.copy_(centred)
    body *= kaldi_window(settings.window_type, window, device=device, dtype=dtype)

    spectrum = torch.fft.rfft(buffer)  # (B, T, fft_size // 2 + 1)
    banks = _banded_mel_banks(
        int(num_mel_bins),
        int(fft_size),
        float(sample_rate),
        float(settings.low_freq),
        float(settings.high_freq),
        str(device),
        dtype,
    )
    features = banks(power_spectrum(spectrum))  # (B, T, M)
    features.clamp_(min=_FLOAT32_EPS).log_()

    if bool((num_frames < max_frames).any()):
        valid = torch.arange(max_frames, device=device).unsqueeze(0) < num_frames.to(device).unsqueeze(1)  # (B, T)
        features.masked_fill_(~valid.unsqueeze(-1), padding_value)
    return features, num_frames
