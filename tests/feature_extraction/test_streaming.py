"""Streaming decode: blocks equal the whole-file decode, soxr's streaming resampler equals whole-file resampling,
the windows cut from blocks are `window_starts`' windows, pipes go to ffmpeg, and a dead FIFO is an error."""

import os
import shutil
import subprocess
import threading
import tracemalloc

import numpy as np
import pytest
import soundfile

from spectrogram_transformers.feature_extraction import load_audio, resample
from spectrogram_transformers.feature_extraction.streaming import (
    WindowStream,
    probe_audio,
    resample_blocks,
    stream_audio,
)
from spectrogram_transformers.inference import window_starts

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def write_noise(path, seconds: float, rate: int, channels: int = 1, subtype: str = "PCM_16", seed: int = 0):
    rng = np.random.default_rng(seed)
    audio = (0.2 * rng.standard_normal((int(seconds * rate), channels))).astype(np.float32)
    soundfile.write(path, audio, rate, subtype=subtype)
    return path


@pytest.mark.parametrize(
    ("rate", "channels", "target"), [(16000, 1, 16000), (48000, 2, 16000), (44100, 1, 32000), (22050, 3, 32000)]
)
def test_blocks_equal_whole_file_decode(tmp_path, rate, channels, target):
    path = write_noise(tmp_path / "clip.flac", 3.3, rate, channels)
    info, blocks = stream_audio(path, target, block_seconds=0.37)
    blocks = list(blocks)
    assert len(blocks) > 5
    assert (info.sampling_rate, info.channels, info.frames, info.decoder) == (
        rate,
        channels,
        round(3.3 * rate),
        "soundfile",
    )
    whole, _ = load_audio(path, target)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)  # soxr streaming == one-shot, bit for bit here


def test_streaming_resampler_equals_one_shot_resampling():
    rng = np.random.default_rng(1)
    audio = rng.standard_normal(100_003).astype(np.float32)
    sizes = [1, 4097, 333, 65536, 7]
    pieces, first = [], 0
    while first < len(audio):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(audio[first : first + size])
        first += size
    streamed = np.concatenate(list(resample_blocks(pieces, 44100, 16000)))
    np.testing.assert_allclose(streamed, resample(audio, 44100, 16000), rtol=0, atol=1e-6)


def test_header_is_read_before_decoding(tmp_path):
    path = write_noise(tmp_path / "clip.wav", 2.5, 8000, 2)
    info = probe_audio(path)
    assert info.duration == pytest.approx(2.5) and info.channels == 2
    with pytest.raises(FileNotFoundError):
        probe_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="is a directory"):
        probe_audio(tmp_path)


@pytest.mark.parametrize("pad_end", [False, True])
@pytest.mark.parametrize(
    ("length", "window", "hop"),
    [(100, 30, 10), (100, 30, 7), (95, 30, 30), (30, 30, 10), (29, 30, 10), (1, 30, 15), (101, 10, 13), (64, 64, 1)],
)
@pytest.mark.parametrize("block", [1, 7, 50, 1000])
def test_windows_from_blocks_are_window_starts_windows(length, window, hop, block, pad_end):
    waveform = np.arange(1, length + 1, dtype=np.float32)
    blocks = [waveform[first : first + block] for first in range(0, length, block)]
    stream = WindowStream(blocks, window, hop, pad_end=pad_end)
    windows = list(stream)
    assert stream.num_samples == length
    starts = window_starts(length, window, hop, pad_end=pad_end)
    assert [start for start, _ in windows] == starts
    for start, piece in windows:
        expected = waveform[start : start + window]
        if pad_end and length > window and len(expected) < window:
            expected = np.pad(expected, (0, window - len(expected)))
        np.testing.assert_array_equal(piece, expected)


def test_decoding_a_long_file_in_blocks_never_holds_it(tmp_path):
    """Peak Python allocations while streaming 10 minutes stay near those of 10 seconds (the whole 10 minutes at
    16 kHz would be 38 MB of float32)."""
    short = write_noise(tmp_path / "short.wav", 10, 16000)
    long = tmp_path / "long.wav"
    with soundfile.SoundFile(long, "w", 16000, 1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write(np.zeros(160000, dtype=np.float32))

    def peak(path) -> int:
        tracemalloc.start()
        try:
            _, blocks = stream_audio(path, 16000, block_seconds=2.0)
            for _ in WindowStream(blocks, 16000, 8000):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short_peak, long_peak = peak(short), peak(long)
    assert long_peak < short_peak + 2_000_000, (short_peak, long_peak)


@needs_ffmpeg
def test_formats_libsndfile_cannot_read_stream_through_ffmpeg(tmp_path):
    source = write_noise(tmp_path / "clip.wav", 2.0, 44100, 2)
    m4a = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:a", "aac", str(m4a)], check=True)
    info, blocks = stream_audio(m4a, 16000, block_seconds=0.25)
    assert info.decoder == "ffmpeg" and info.sampling_rate == 44100 and info.duration == pytest.approx(2.0, abs=0.1)
    blocks = list(blocks)
    assert len(blocks) > 4 and abs(sum(map(len, blocks)) - 32000) < 2000


@needs_ffmpeg
def test_a_pipe_goes_to_ffmpeg_whole(tmp_path):
    """`classify <(cat clip.m4a)`: the pipe is not probed by soundfile first, so ffmpeg gets every byte."""
    source = write_noise(tmp_path / "clip.wav", 1.0, 16000)
    m4a = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:a", "aac", str(m4a)], check=True)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as handle:
            handle.write(m4a.read_bytes())

    writer = threading.Thread(target=write)
    writer.start()
    info, blocks = stream_audio(fifo, 16000, read_timeout_s=20)
    samples = sum(map(len, blocks))
    writer.join()
    assert info.decoder == "ffmpeg" and info.duration is None
    assert abs(samples - 16000) < 2000


@needs_ffmpeg
def test_a_fifo_with_no_writer_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    _, blocks = stream_audio(fifo, 16000, read_timeout_s=1.0)
    with pytest.raises(ValueError, match="no data for 1 s"):
        list(blocks)


def test_empty_and_corrupt_files_are_errors_naming_them(tmp_path):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="empty.wav is empty"):
        list(stream_audio(empty, 16000)[1])
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full(100, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav.*NaN"):
        list(stream_audio(nan, 16000)[1])
