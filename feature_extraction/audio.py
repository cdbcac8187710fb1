"""Audio input handling shared by the feature extractors, the training code and inference.

Three steps every clip goes through before a spectrogram is taken:

* `to_mono_float32`: any numpy array or torch tensor (1-D, or 2-D multi-channel, PCM integers or floats)
  becomes one float32 mono waveform in [-1, 1] scale, or a `ValueError` says what is wrong with it;
* `resample`: band-limited sample-rate conversion with soxr;
* `load_audio`: decoding of files, bytes or file objects with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis,
  Opus, MP3 on libsndfile >= 1.1), followed by the two steps above.

Errors are `ValueError`s that name the offending input, so that a data loader can catch them, count the
clip as corrupt and carry on.
"""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

import numpy as np
import torch
from transformers.utils import logging

__all__ = ["MAX_CHANNELS", "is_channels_last_clip", "load_audio", "resample", "to_mono_batch", "to_mono_float32"]

logger = logging.get_logger(__name__)

# The largest channel count we expect in a 2-D waveform (7.1 surround). A 2-D input whose smaller dimension
# is at most this is read as [channels, samples] or [samples, channels]; anything else is ambiguous.
MAX_CHANNELS = 8

# Full-scale value of each PCM integer type: dividing by it maps the integer range onto [-1, 1), the same
# scaling soundfile/libsndfile and torchaudio use when they decode PCM to float.
_PCM_FULL_SCALE = {
    np.dtype(np.int8): 2.0**7,
    np.dtype(np.int16): 2.0**15,
    np.dtype(np.int32): 2.0**31,
}
# 8-bit PCM (WAV's only 8-bit format) is unsigned with its zero at 128.
_UINT8_OFFSET = 128.0


def _as_numpy(waveform: Any) -> np.ndarray:
    """numpy view/copy of a numpy array, torch tensor or (nested) list, without changing its dtype class."""
    if isinstance(waveform, torch.Tensor):
        tensor = waveform.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            # numpy has no bfloat16; float32 holds both half types exactly.
            tensor = tensor.float()
        if tensor.is_complex():
            raise ValueError(f"audio must be real-valued, got a complex tensor of dtype {tensor.dtype}")
        return tensor.numpy()
    if isinstance(waveform, np.ndarray):
        return waveform
    if isinstance(waveform, (list, tuple)):
        return np.asarray(waveform)
    raise TypeError(f"audio must be a numpy array, a torch tensor or a list of samples, got {type(waveform).__name__}")


def _channel_axis(shape: tuple[int, int], channels_axis: int | None) -> int:
    """Which axis of a 2-D waveform holds the channels.

    The smaller dimension is the channel axis when it is at most `MAX_CHANNELS`: clips have far more samples
    than channels, whatever order the library that produced them prefers (torchaudio: [channels, samples];
    soundfile, scipy: [samples, channels]). On a tie (e.g. [2, 2]) the torch convention, channels first, wins.
    """
    if channels_axis is not None:
        if channels_axis not in (0, 1, -1, -2):
            raise ValueError(f"channels_axis must be 0 or 1 for a 2-D waveform, got {channels_axis}")
        return channels_axis % 2
    smaller_axis = 0 if shape[0] <= shape[1] else 1
    if shape[smaller_axis] > MAX_CHANNELS:
        raise ValueError(
            f"cannot tell channels from samples in a 2-D waveform of shape {tuple(shape)}: neither dimension is "
            f"<= {MAX_CHANNELS} channels. Pass one clip at a time, or pass channels_axis explicitly."
        )
    return smaller_axis


def to_mono_float32(waveform: Any, *, channels_axis: int | None = None, name: str | None = None) -> np.ndarray:
    """Turn one clip into a mono float32 waveform of shape [samples].

    Args:
        waveform: numpy array, torch tensor or list of samples. 1-D is mono; 2-D is multi-channel, either
            [channels, samples] or [samples, channels] (the smaller dimension, if <= `MAX_CHANNELS`, is taken
            as the channel axis; see `channels_axis`) and is down-mixed by the mean over channels.
            Integer PCM is scaled to [-1, 1): int16 / 2**15, int32 / 2**31, int8 / 2**7, uint8 (unsigned
            8-bit WAV) (x - 128) / 128. Floating-point input is taken as already scaled and only cast.
        channels_axis: force which axis of a 2-D input holds the channels, instead of guessing.
        name: how to refer to the clip in error messages (e.g. its file name).

    Returns:
        `np.ndarray` float32 of shape [samples] (a new array; the input is never modified).

    Raises:
        ValueError: empty audio, NaN or infinite samples, more than 2 dimensions, an ambiguous 2-D shape, or a
            dtype that is not audio (bool, complex, strings, int64 and other integer types with no PCM scale).
        TypeError: an input that is not an array, tensor or list.
    """
    label = f" ({name})" if name else ""
    array = _as_numpy(waveform)
    dtype = array.dtype

    if array.ndim > 2:
        raise ValueError(
            f"audio{label} must be 1-D [samples] or 2-D [channels, samples] / [samples, channels], "
            f"got {array.ndim} dimensions with shape {tuple(array.shape)}"
        )
    if array.size == 0:
        raise ValueError(f"audio{label} is empty (shape {tuple(array.shape)})")

    if dtype in _PCM_FULL_SCALE:
        # int32 has more precision than float32: scale in float64, then round once.
        samples = (array.astype(np.float64) / _PCM_FULL_SCALE[dtype]).astype(np.float32)
    elif dtype == np.uint8:
        samples = (array.astype(np.float32) - np.float32(_UINT8_OFFSET)) / np.float32(_UINT8_OFFSET)
    elif np.issubdtype(dtype, np.floating):
        with np.errstate(over="ignore"):  # values beyond float32's range become inf, rejected below
            samples = array.astype(np.float32)  # always a copy, so callers may modify the result
    else:
        raise ValueError(
            f"audio{label} has dtype {dtype}, which is not an audio sample type: use float32/float64, "
            "or PCM int16/int32/int8/uint8 (int64 has no PCM scale: cast it to the integer type it came from)"
        )

    if array.ndim == 2:
        axis = _channel_axis(array.shape, channels_axis)
        samples = samples.mean(axis=axis, dtype=np.float32)

    if not np.isfinite(samples).all():
        # Checked after the float32 cast: float64 values beyond float32's range become inf here too.
        bad = int((~np.isfinite(samples)).sum())
        raise ValueError(f"audio{label} contains {bad} NaN or infinite sample(s)")
    return np.ascontiguousarray(samples)


def _check_rate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number of samples per second, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive, finite sampling rate, got {value}")
    return float(value)


def resample(waveform: Any, orig_sr: float, target_sr: float) -> np.ndarray:
    """Resample a mono waveform from `orig_sr` to `target_sr` Hz (identity when they are equal).

    Uses soxr (libsoxr, the SoX resampler) at its "HQ" quality: a band-limited polyphase filter with ~-140 dB
    stop band and a linear-phase pass band up to ~95% of the new Nyquist, computed in C, typically 10-100x
    faster than FFT- or sinc-based Python resamplers, and maintained (it is also what librosa uses by default).
    Its output length is round(samples * target_sr / orig_sr), with no group delay to trim.

    Args:
        waveform: anything `to_mono_float32` accepts; multi-channel input is down-mixed first.
        orig_sr: sampling rate of `waveform` in Hz.
        target_sr: wanted sampling rate in Hz.

    Returns:
        `np.ndarray` float32 of shape [round(samples * target_sr / orig_sr)].
    """
    import soxr

    samples = to_mono_float32(waveform)
    orig = _check_rate(orig_sr, "orig_sr")
    target = _check_rate(target_sr, "target_sr")
    if orig == target:
        return samples
    return np.ascontiguousarray(soxr.resample(samples, orig, target, quality="HQ"), dtype=np.float32)


AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | dict


def _describe_source(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes of audio>"
    return getattr(source, "name", None) or f"<{type(source).__name__} object>"


def load_audio(source: AudioSource, target_sr: float | None = None) -> tuple[np.ndarray, int | float]:
    """Decode an audio file to a mono float32 waveform, optionally resampled.

    Args:
        source: a path, the encoded bytes of a file, a binary file object, or a `datasets` audio dict
            (`{"bytes": ..., "path": ...}` as given by `Audio(decode=False)`; bytes win over the path).
        target_sr: resample to this rate (Hz); None keeps the file's own rate.

    Returns:
        `(waveform, sampling_rate)`: float32 [samples] (PCM scaled as soundfile does: int16 / 32768) and the
        rate of that waveform (`target_sr` when given, else the file's rate).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: input that soundfile cannot decode (corrupt, truncated or unknown format), or that decodes
            to empty / non-finite audio. The message names the file.
    """
    import soundfile

    if isinstance(source, dict):
        if source.get("bytes") is not None:
            source = source["bytes"]
        elif source.get("path") is not None:
            source = source["path"]
        else:
            raise ValueError(f"an audio dict needs 'bytes' or 'path', got keys {sorted(source)}")

    name = _describe_source(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"audio file not found: {name}")
    handle = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source

    try:
        # always_2d gives [frames, channels] for every file, so down-mixing is one code path.
        data, sampling_rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError) as error:
        raise ValueError(f"could not decode audio {name}: {error}") from error

    waveform = to_mono_float32(data, channels_axis=1, name=name)
    if target_sr is not None:
        waveform = resample(waveform, sampling_rate, target_sr)
        sampling_rate = target_sr
    return waveform, sampling_rate


def is_channels_last_clip(shape: tuple[int, ...]) -> bool:
    """Whether a 2-D array of `shape` is one clip in channels-last layout [samples, channels] rather than a
    batch of mono clips [batch, samples]: its trailing axis is at most `MAX_CHANNELS` and its leading axis is
    longer. (Clips of <= 8 samples are shorter than any analysis frame, so no real batch looks like this.)"""
    return len(shape) == 2 and shape[1] <= MAX_CHANNELS and shape[0] > shape[1]


_warned_channels_last = False


def _warn_channels_last_once(shape: tuple[int, ...]) -> None:
    global _warned_channels_last
    if not _warned_channels_last:
        _warned_channels_last = True
        logger.warning(
            f"a 2-D audio array of shape {tuple(shape)} was read as ONE clip in channels-last layout [samples, "
            f"channels] (as soundfile.read returns it) and down-mixed to mono, not as {shape[0]} clips of "
            f"{shape[1]} samples. A batch of mono clips is [batch, samples]; a channels-first clip goes in a list: "
            "[clip]. (This warning is shown once.)"
        )


def to_mono_batch(
    raw_speech: Any, sampling_rate: float | None = None, target_sr: float | None = None
) -> list[np.ndarray]:
    """Normalise what a feature extractor's `__call__` receives into a list of mono float32 clips.

    Args:
        raw_speech: one clip (1-D array/tensor, or a list of numbers), a batch of mono clips as a 2-D
            array/tensor [batch, samples] (the `transformers` convention), or a list/tuple of clips, each
            anything `to_mono_float32` accepts (a multi-channel clip goes in a list: `[stereo_clip]`).
            One exception to [batch, samples]: a 2-D array whose trailing axis is a handful of channels
            (<= `MAX_CHANNELS`) and whose leading axis is longer ([samples, channels], as `soundfile.read`
            returns a stereo file) is one channels-last clip, down-mixed with a one-time warning; read as a
            batch it would be thousands of clips shorter than any analysis frame.
        sampling_rate: rate of `raw_speech` in Hz; with `target_sr`, clips are resampled when they differ.
        target_sr: rate wanted by the caller.

    Returns:
        list of float32 [samples] arrays, one per clip.

    Raises:
        ValueError: an empty batch, a 3-D or larger array, or any clip `to_mono_float32` rejects (the message
            says which clip).
    """
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        if raw_speech.ndim == 1:
            clips = [raw_speech]
        elif raw_speech.ndim == 2 and is_channels_last_clip(raw_speech.shape):
            _warn_channels_last_once(raw_speech.shape)
            return to_mono_batch([to_mono_float32(raw_speech, channels_axis=1)], sampling_rate, target_sr)
        elif raw_speech.ndim == 2:
            clips = list(raw_speech)
        else:
            raise ValueError(
                f"audio arrays must be 1-D (one clip) or 2-D [batch, samples], got shape {tuple(raw_speech.shape)}; "
                "pass a multi-channel clip inside a list, e.g. [clip] with clip [channels, samples]"
            )
    elif isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("got an empty list of audio clips")
        if isinstance(raw_speech[0], (np.ndarray, torch.Tensor, list, tuple)):
            clips = list(raw_speech)
        else:
            clips = [raw_speech]  # a plain list of samples is one clip
    else:
        raise TypeError(
            f"audio must be a numpy array, a torch tensor, or a list of them, got {type(raw_speech).__name__}"
        )
    if len(clips) == 0:
        raise ValueError("got an empty batch of audio clips")

    waveforms = [
        to_mono_float32(clip, name=f"clip {index}" if len(clips) > 1 else None) for index, clip in enumerate(clips)
    ]
    if sampling_rate is not None and target_sr is not None and float(sampling_rate) != float(target_sr):
        waveforms = [resample(waveform, sampling_rate, target_sr) for waveform in waveforms]
    return waveforms
