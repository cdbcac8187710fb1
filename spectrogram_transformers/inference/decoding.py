"""Files to mono float32 waveforms: soundfile (libsndfile) first, ffmpeg for the formats it cannot read, and
a prefetching iterator that decodes the next file while the current one runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import InferenceError


def _ffmpeg_decode(path: str, sampling_rate: int) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-ac", "1", "-ar", str(sampling_rate), "-f", "f32le", "pipe:1"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise InferenceError(f"could not decode audio {path}: ffmpeg: {reason[-1] if reason else 'no audio in the file'}")
    from ..feature_extraction import to_mono_float32

    return to_mono_float32(np.frombuffer(result.stdout, dtype=np.float32), name=path)  # NaN / empty checks


def _soundfile_reads_format(path: str) -> bool:
    import soundfile

    try:
        soundfile.info(path)
        return True
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError):  # unknown or broken formats
        return False


def decode_audio(path: str | os.PathLike, sampling_rate: int) -> np.ndarray:
    """Mono float32 waveform of a file at `sampling_rate`.

    soundfile (libsndfile: WAV, FLAC, OGG, MP3, ...) decodes, soxr resamples. Formats libsndfile does not read
    (AAC/M4A, WMA, video containers) go through ffmpeg when it is installed; otherwise the error says to
    install it. Every failure is an `InferenceError` (or `FileNotFoundError`) naming the file.
    """
    from ..feature_extraction import load_audio

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise InferenceError(f"{path} is a directory, not an audio file")
    try:
        waveform, _ = load_audio(path, target_sr=sampling_rate)
        return waveform
    except ValueError as soundfile_error:
        if _soundfile_reads_format(path):  # decoded, but the audio itself is unusable (empty, NaN): no second try
            raise InferenceError(str(soundfile_error)) from None
        if shutil.which("ffmpeg") is None:
            raise InferenceError(
                f"{soundfile_error}; formats libsndfile does not read (AAC/M4A, WMA, video) need ffmpeg, which is "
                "not installed (apt-get install ffmpeg / brew install ffmpeg / conda install ffmpeg)"
            ) from None
        return _ffmpeg_decode(path, sampling_rate)


@dataclass
class UnreadableFile:
    """A file that could not be decoded, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.reason}


def prefetch_decoded(
    paths: Iterable[str | os.PathLike], decode: Callable[[str], np.ndarray]
) -> Iterator[tuple[str, np.ndarray | UnreadableFile]]:
    """`(path, waveform or UnreadableFile)` for each path, decoding the next file in a background thread while
    the caller computes on the current one (libsndfile and soxr release the GIL). At most two decoded files are
    held at once."""
    paths = [os.fspath(path) for path in paths]

    def safe_decode(path: str) -> np.ndarray | UnreadableFile:
        try:
            return decode(path)
        except (ValueError, OSError) as error:  # InferenceError, FileNotFoundError, soundfile/ffmpeg failures
            return UnreadableFile(path, str(error))

    if not paths:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending = pool.submit(safe_decode, paths[0])
        for index, path in enumerate(paths):
            result = pending.result()
            if index + 1 < len(paths):
                pending = pool.submit(safe_decode, paths[index + 1])
            yield path, result
