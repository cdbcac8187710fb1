"""Audio files as a stream of blocks, and the model's windows cut from that stream, in memory that does not grow
with the file.

A 10-hour recording is 1.7 billion samples at 48 kHz: decoding it whole (soundfile's `read`, then a float32
copy, then the resampled copy) needs several times its size in memory. Here a file is read a block at a time:

* `probe_audio`: what the file's header says (rate, channels, length) before anything is decoded, so that a
  caller can refuse a file that is too long;
* `stream_audio`: mono float32 blocks at the wanted rate. libsndfile (soundfile: WAV, FLAC, OGG, MP3, ...) reads
  regular files in blocks; everything else (AAC/M4A, WMA, video, and every pipe or FIFO, which libsndfile would
  consume before ffmpeg gets it) goes through ffmpeg, whose output is read from its stdout as it comes. A stream
  that delivers nothing for `read_timeout_s` seconds (a FIFO with no writer) is an error, not a hang.
  Blocks are down-mixed (mean over channels) and resampled with soxr's streaming resampler, which gives the same
  samples as resampling the whole file at once (`audio.resample`);
* `WindowStream`: the windows `inference.windows.window_starts` would cut from the whole waveform (same starts,
  same zero padding), cut from the blocks as they arrive.

Errors are `ValueError`s (`FileNotFoundError` for a missing path) that name the file.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .audio import to_mono_float32

__all__ = [
    "DEFAULT_BLOCK_SECONDS",
    "AudioInfo",
    "WindowStream",
    "default_read_timeout",
    "probe_audio",
    "resample_blocks",
    "stream_audio",
]

# Seconds of audio per decoded block: large enough that per-block overhead is negligible, small enough that a
# block (at most 8 channels of float32) stays in the tens of MB.
DEFAULT_BLOCK_SECONDS = 10.0
# Seconds without a single byte from a stream before it counts as dead (a FIFO nobody writes to).
_DEFAULT_READ_TIMEOUT_S = 30.0
READ_TIMEOUT_ENV = "SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT"
_FFMPEG_HINT = "apt-get install ffmpeg / brew install ffmpeg / conda install ffmpeg"


def default_read_timeout() -> float:
    """Seconds a stream may stay silent: `$SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT`, else 30."""
    text = os.environ.get(READ_TIMEOUT_ENV)
    if not text:
        return _DEFAULT_READ_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"${READ_TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class AudioInfo:
    """What is known about a file before decoding it.

    `sampling_rate`, `channels` and `frames` (samples per channel) come from the header; they are None where the
    header is not read first (pipes and FIFOs, which can be read only once) or does not say. `decoder` is the
    library that will decode the file.
    """

    path: str
    sampling_rate: int | None
    channels: int | None
    frames: int | None
    decoder: Literal["soundfile", "ffmpeg"]
    is_stream: bool = False  # a pipe, FIFO or device: readable once, handed to ffmpeg on its stdin

    @property
    def duration(self) -> float | None:
        """Seconds of audio according to the header (None when unknown)."""
        if self.frames is None or not self.sampling_rate:
            return None
        return self.frames / self.sampling_rate

    def samples_at(self, sampling_rate: int) -> int | None:
        """Samples the header announces once resampled to `sampling_rate` (None when it does not say): sizes
        progress bars and streamed windows before the audio is decoded."""
        if self.frames is None or not self.sampling_rate:
            return None
        return round(self.frames * sampling_rate / self.sampling_rate)


def _soundfile_info(path: str) -> AudioInfo | None:
    import soundfile

    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError):  # not a format libsndfile reads
        return None
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), "soundfile")


def _ffprobe_info(path: str, timeout: float) -> AudioInfo:
    """Rate, channels and duration of the first audio stream from ffprobe; unknown fields are None."""
    unknown = AudioInfo(path, None, None, None, "ffmpeg")
    if shutil.which("ffprobe") is None:
        return unknown
    command = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate,channels,duration:format=duration",
        "-of",
        "default=noprint_wrappers=1",
        path,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return unknown
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        fields.setdefault(key.strip(), value.strip())  # the stream's duration comes before the container's

    def number(key: str) -> float | None:
        try:
            value = float(fields.get(key, ""))
        except ValueError:
            return None
        return value if math.isfinite(value) and value > 0 else None

    rate, channels, duration = number("sample_rate"), number("channels"), number("duration")
    if rate is None:
        return unknown
    frames = None if duration is None else round(duration * rate)
    return AudioInfo(path, int(rate), None if channels is None else int(channels), frames, "ffmpeg")


def probe_audio(path: str | os.PathLike, *, read_timeout_s: float | None = None) -> AudioInfo:
    """The header of an audio file, read without decoding its samples.

    Regular files libsndfile reads are probed with soundfile; other regular files with ffprobe (when installed).
    Pipes, FIFOs and devices are not probed (a probe would consume what the decoder needs): they go to ffmpeg with
    every field None.

    Raises:
        FileNotFoundError: no such path.
        ValueError: a directory, or a file only ffmpeg could read when ffmpeg is not installed.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {name}") from None
    except OSError as error:  # a symlink loop, a path through a file, no permission to search a folder
        raise ValueError(f"cannot read {name}: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{name} is a directory, not an audio file")
    timeout = default_read_timeout() if read_timeout_s is None else read_timeout_s
    regular = stat.S_ISREG(mode)
    info = _soundfile_info(name) if regular else None
    if info is not None:
        return info
    if shutil.which("ffmpeg") is None:
        what = "a format libsndfile does not read" if regular else "not a regular file (a pipe, FIFO or device)"
        raise ValueError(
            f"could not decode audio {name}: {what}; formats libsndfile does not read (AAC/M4A, WMA, video) and "
            f"pipes need ffmpeg, which is not installed ({_FFMPEG_HINT})"
        )
    return _ffprobe_info(name, timeout) if regular else AudioInfo(name, None, None, None, "ffmpeg", is_stream=True)


def _stalled_message(path: str, timeout: float) -> str:
    return (
        f"could not decode audio {path}: no data for {timeout:g} s (a FIFO or pipe with no writer, or a stalled "
        f"device); set ${READ_TIMEOUT_ENV} to wait longer"
    )


def _soundfile_blocks(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at the file's own rate (PCM scaled as `soundfile.read` does)."""
    import soundfile

    try:
        with soundfile.SoundFile(info.path) as handle:
            while True:
                data = handle.read(block_frames, dtype="float32", always_2d=True)  # [frames, channels]
                if len(data) == 0:
                    return
                yield to_mono_float32(data, channels_axis=1, name=info.path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError) as error:
        raise ValueError(f"could not decode audio {info.path}: {error}") from error


def _ffmpeg_blocks(
    info: AudioInfo, output_rate: int | None, block_frames: int, timeout: float
) -> Iterator[np.ndarray]:
    """Mono float32 blocks from ffmpeg's stdout, read as they come (`-ac 1`: ffmpeg down-mixes). `output_rate`
    None keeps the stream's own rate. No output for `timeout` seconds kills ffmpeg and raises."""
    stdin = subprocess.DEVNULL
    if info.is_stream:
        # Opened here and given to ffmpeg as its stdin: a child process does not inherit our /dev/fd/N (`<(...)`),
        # and a FIFO opened without O_NONBLOCK would block until a writer comes. Wait for data (or its end).
        stdin = os.open(info.path, os.O_RDONLY | os.O_NONBLOCK)
        ready, _, _ = select.select([stdin], [], [], timeout)
        if not ready:
            os.close(stdin)
            raise ValueError(_stalled_message(info.path, timeout))
        os.set_blocking(stdin, True)
    command = ["ffmpeg", "-v", "error", "-i", "pipe:0" if info.is_stream else info.path, "-vn", "-ac", "1"]
    if output_rate is not None:
        command += ["-ar", str(output_rate)]
    command += ["-f", "f32le", "pipe:1"]
    block_bytes = 4 * block_frames
    # stderr to a file, not a pipe: a pipe nobody reads fills up on a corrupt stream and blocks ffmpeg
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=errors)
        finally:
            if info.is_stream:
                os.close(stdin)  # ffmpeg holds its own copy
        try:
            descriptor = process.stdout.fileno()
            pending = bytearray()
            while True:
                ready, _, _ = select.select([descriptor], [], [], timeout)
                if not ready:
                    raise ValueError(_stalled_message(info.path, timeout))
                chunk = os.read(descriptor, block_bytes - len(pending))
                if not chunk:
                    break
                pending += chunk
                if len(pending) == block_bytes:
                    yield to_mono_float32(np.frombuffer(pending, dtype=np.float32).copy(), name=info.path)
                    pending = bytearray()
            if process.wait(timeout=timeout) != 0:
                errors.seek(0)
                reason = errors.read().decode(errors="replace").strip().splitlines()
                raise ValueError(f"could not decode audio {info.path}: ffmpeg: {reason[-1] if reason else 'failed'}")
            usable = len(pending) - len(pending) % 4
            if usable:
                yield to_mono_float32(np.frombuffer(pending[:usable], dtype=np.float32).copy(), name=info.path)
        except subprocess.TimeoutExpired:
            raise ValueError(
                f"could not decode audio {info.path}: ffmpeg did not finish within {timeout:g} s"
            ) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


def resample_blocks(blocks: Iterable[np.ndarray], orig_sr: int, target_sr: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `orig_sr` resampled to `target_sr` with soxr's streaming resampler ("HQ", as
    `audio.resample`): the concatenated output equals `resample` of the concatenated input."""
    if orig_sr == target_sr:
        yield from blocks
        return
    import soxr

    resampler = soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality="HQ")
    for block in blocks:
        resampled = resampler.resample_chunk(block, last=False)
        if len(resampled):
            yield np.ascontiguousarray(resampled, dtype=np.float32)
    tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if len(tail):
        yield np.ascontiguousarray(tail, dtype=np.float32)


def _checked_not_empty(blocks: Iterator[np.ndarray], name: str) -> Iterator[np.ndarray]:
    empty = True
    for block in blocks:
        if len(block):
            empty = False
            yield block
    if empty:
        raise ValueError(f"audio {name} is empty (no samples decoded)")


def stream_audio(
    path: str | os.PathLike,
    sampling_rate: int | None = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    *,
    read_timeout_s: float | None = None,
) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """Decode a file as a stream of mono float32 blocks at `sampling_rate` (None: the file's own rate).

    Args:
        path: an audio file, or a pipe / FIFO (`<(cat clip.m4a)`; decoded by ffmpeg).
        sampling_rate: rate of the blocks, Hz.
        block_seconds: seconds of the file's audio decoded at a time (resampled blocks vary slightly in length).
        read_timeout_s: seconds a pipe may deliver nothing before the stream is an error (default
            `default_read_timeout()`: 30, or `$SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT`).

    Returns:
        `(info, blocks)`: the header (`probe_audio`, read now) and a generator of non-empty float32 [samples]
        blocks; decoding happens as the generator is consumed, and closing it stops an ffmpeg process. The
        concatenated blocks equal `load_audio(path, sampling_rate)` for files libsndfile reads.

    Raises:
        FileNotFoundError, ValueError: from `probe_audio` at once; while iterating, a `ValueError` naming the file
        for corrupt data, an ffmpeg failure, NaN or infinite samples, no samples at all, or a stalled stream.
    """
    if not (block_seconds > 0 and math.isfinite(block_seconds)):
        raise ValueError(f"block_seconds must be a positive number, got {block_seconds}")
    timeout = default_read_timeout() if read_timeout_s is None else read_timeout_s
    info = probe_audio(path, read_timeout_s=timeout)
    if info.sampling_rate is None:  # a pipe: its rate is unknown until decoded, so ffmpeg resamples
        block_frames = max(1, round(block_seconds * (sampling_rate or 48000)))
        blocks = _ffmpeg_blocks(info, sampling_rate, block_frames, timeout)
    else:
        block_frames = max(1, round(block_seconds * info.sampling_rate))
        if info.decoder == "soundfile":
            blocks = _soundfile_blocks(info, block_frames)
        else:
            blocks = _ffmpeg_blocks(info, None, block_frames, timeout)
        if sampling_rate is not None:
            blocks = resample_blocks(blocks, info.sampling_rate, int(sampling_rate))
    return info, _checked_not_empty(blocks, info.path)


class WindowStream:
    """The windows of a stream of mono blocks: `(start, samples)` pairs with exactly the starts and contents that
    `window_starts(len(whole), window, hop, pad_end=pad_end)` and slicing the whole waveform would give, holding
    at most about one window, one hop and one block in memory.

    `pad_end=False`: windows every `hop` while they fit, plus one flush with the end when the tail is not
    covered. `pad_end=True`: windows on the `hop` grid until one reaches the end, the last zero-padded to
    `window` samples. A stream no longer than one window gives one window: all of it, unpadded.
    `num_samples` (the stream's length) is set once the iteration has ended.
    """

    def __init__(self, blocks: Iterable[np.ndarray], window: int, hop: int, *, pad_end: bool = False):
        if window < 1 or hop < 1:
            raise ValueError(f"window and hop must be at least one sample, got {window} and {hop}")
        self.blocks = blocks
        self.window = int(window)
        self.hop = int(hop)
        self.pad_end = pad_end
        self.num_samples: int | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        window, hop = self.window, self.hop
        buffer = np.zeros(0, dtype=np.float32)
        offset = 0  # absolute index of buffer[0]
        next_start = 0  # the next grid start
        last_start = None  # the last start given out
        for block in self.blocks:
            block = np.asarray(block, dtype=np.float32)
            buffer = block if len(buffer) == 0 else np.concatenate([buffer, block])  # never modified in place
            while next_start + window <= offset + len(buffer):  # a full window: in both modes, part of the result
                begin = next_start - offset
                yield next_start, buffer[begin : begin + window].copy()
                last_start, next_start = next_start, next_start + hop
            # keep from the last start given out (a flush-with-the-end window starts after it) or the next start
            keep_from = min(next_start, last_start + 1) if last_start is not None else 0
            if keep_from > offset:
                buffer = buffer[keep_from - offset :].copy()
                offset = keep_from
        total = offset + len(buffer)
        self.num_samples = total
        if total == 0:
            return
        if last_start is None:  # no longer than one window: all of it
            yield 0, buffer.copy()
            return
        if self.pad_end:
            # grid starts whose previous window did not reach the end
            while next_start - hop + window < total:
                piece = buffer[next_start - offset :]
                yield next_start, np.pad(piece, (0, window - len(piece)))
                next_start += hop
        elif last_start + window < total:
            yield total - window, buffer[total - window - offset :].copy()
