"""Files to mono float32 waveforms: as a stream of blocks (`stream_decoded`, what classify and detect use) or
whole (`decode_audio`); soundfile (libsndfile) for what it reads, ffmpeg for other formats and pipes. Also a
prefetching iterator that decodes the next whole file while the current one runs."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..feature_extraction.streaming import DEFAULT_BLOCK_SECONDS, AudioInfo, stream_audio
from .errors import InferenceError


class UnreadableAudioError(InferenceError):
    """A file that cannot be decoded (corrupt, unknown format, empty, NaN samples, a stalled pipe): the input's
    fault, so a run over many files lists it and carries on."""


def _reraise_as_unreadable(error: ValueError | OSError) -> UnreadableAudioError:
    return UnreadableAudioError(str(error))


def _decoding_errors_named(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    try:
        yield from blocks
    except UnreadableAudioError:
        raise
    except (ValueError, OSError) as error:
        raise _reraise_as_unreadable(error) from None
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()


def read_ahead(blocks: Iterator[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """The same blocks, decoded up to `depth` blocks ahead in a background thread while the caller computes on
    the current one (libsndfile, soxr and ffmpeg's pipe release the GIL). Closing the iterator stops the thread
    and closes `blocks` (which stops an ffmpeg process)."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not put(("block", block)):
                    return
            put(("end", None))
        except BaseException as error:  # handed to the consumer, raised there
            put(("error", error))
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="decode-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "block":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()


def stream_decoded(
    path: str | os.PathLike,
    sampling_rate: int,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    *,
    prefetch: int = 2,
    read_timeout_s: float | None = None,
) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """A file as `(header info, mono float32 blocks at sampling_rate)` in memory that does not grow with the file
    (`feature_extraction.streaming.stream_audio`), decoded `prefetch` blocks ahead in a background thread (0: in
    the caller's thread).

    soundfile (libsndfile: WAV, FLAC, OGG, MP3, ...) decodes regular files and soxr resamples them as a stream;
    other formats (AAC/M4A, WMA, video containers) and pipes / FIFOs are decoded by ffmpeg, read from its stdout
    as it comes; a stream silent for `read_timeout_s` (default 30 s, `$SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT`)
    is an error. Failures are `UnreadableAudioError`s (an `InferenceError`) or `FileNotFoundError`s naming the
    file: the header's at once, the samples' while iterating.
    """
    try:
        info, blocks = stream_audio(path, sampling_rate, block_seconds, read_timeout_s=read_timeout_s)
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as error:
        raise _reraise_as_unreadable(error) from None
    blocks = _decoding_errors_named(blocks)
    return info, (read_ahead(blocks, prefetch) if prefetch > 0 else blocks)


def decode_audio(path: str | os.PathLike, sampling_rate: int) -> np.ndarray:
    """Mono float32 waveform of a whole file at `sampling_rate`: the blocks of `stream_decoded`, concatenated (so
    a file gives the same samples whether it is decoded whole or as a stream). Use `stream_decoded` for files that
    may be long. Every failure is an `InferenceError` (or `FileNotFoundError`) naming the file."""
    _, blocks = stream_decoded(path, sampling_rate, prefetch=0)
    return np.concatenate(list(blocks))


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
