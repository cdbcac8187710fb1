"""classify and detect on files decoded as streams: the same results as on the whole decoded file, no per-window
data kept unless asked, pipes through ffmpeg, and a FIFO with no writer an error rather than a hang."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from spectrogram_transformers.detection import EventStream, detect, detect_blocks, detect_events, detect_stream
from spectrogram_transformers.inference import AudioClassifier
from testing_utils.inference_models import tiny_ast_dir, tiny_htsat_dir, tone_file

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


@pytest.fixture(scope="module")
def ast(tmp_path_factory):
    return AudioClassifier(tiny_ast_dir(tmp_path_factory.mktemp("ast")), batch_size=3, dtype="float32")


@pytest.fixture(scope="module")
def htsat(tmp_path_factory):
    return AudioClassifier(
        tiny_htsat_dir(tmp_path_factory.mktemp("htsat"), clip_seconds=1.0), batch_size=2, dtype="float32"
    )


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """6.3 s at the model's rate, and 5.1 s of stereo 44.1 kHz (resampled while streaming)."""
    directory = tmp_path_factory.mktemp("audio")
    tone_file(directory / "long.wav", 6.3)
    rng = np.random.default_rng(3)
    stereo = (0.2 * rng.standard_normal((int(5.1 * 44100), 2))).astype(np.float32)
    soundfile.write(directory / "stereo.flac", stereo, 44100)
    return directory


def assert_same_prediction(streamed, whole):
    assert streamed.labels == whole.labels
    assert (
        streamed.duration == whole.duration and streamed.window_s == whole.window_s and streamed.hop_s == whole.hop_s
    )
    assert streamed.windows == whole.windows
    np.testing.assert_array_equal(streamed.probabilities, whole.probabilities)


@pytest.mark.parametrize("name", ["long.wav", "stereo.flac"])
def test_classify_of_a_stream_equals_classify_of_the_whole_file(ast, audio, name):
    path = audio / name
    whole = ast.classify(ast.decode(path), name=str(path))
    assert len(whole.windows) > 5
    assert_same_prediction(ast.classify_file(path), whole)
    _, blocks = ast.stream(path, block_seconds=0.37)  # many blocks, none aligned with a window
    assert_same_prediction(ast.classify_blocks(blocks, name=str(path)), whole)


def test_without_keep_windows_a_file_result_holds_no_per_window_data(ast, audio):
    path = audio / "long.wav"
    whole = ast.classify(ast.decode(path), name=str(path))
    labels_only = ast.classify_file(path, keep_windows=False)
    assert labels_only.labels == whole.labels and labels_only.duration == whole.duration
    assert labels_only.windows == [] and labels_only.probabilities is None


@pytest.mark.parametrize("model", ["ast", "htsat"])
def test_detect_of_a_stream_equals_detect_of_the_whole_file(model, audio, request):
    classifier = request.getfixturevalue(model)
    path = audio / "long.wav"
    whole = detect(classifier, classifier.decode(path), name=str(path), threshold=0.3)
    _, blocks = classifier.stream(path, block_seconds=0.29)
    streamed = detect_blocks(classifier, blocks, name=str(path), threshold=0.3)
    assert whole.events, "the test needs events to compare"
    assert streamed == whole  # path, duration, events, source, frame_s, window_s, hop_s
    assert streamed.frame_probabilities.dtype == np.float32
    np.testing.assert_array_equal(streamed.frame_probabilities, whole.frame_probabilities)
    assert detect_stream(classifier, path, threshold=0.3) == whole
    # events are searched as frames are finalised: without the timeline kept, the same events
    no_frames = detect_stream(
        classifier, path, threshold=0.3, median_filter_frames=5, min_gap_s=0.2, keep_frames=False
    )
    assert no_frames.frame_probabilities is None
    assert no_frames.events == detect_events(
        whole.frame_probabilities,
        whole.frame_s,
        classifier.label_names,
        threshold=0.3,
        median_filter_frames=5,
        min_gap_s=0.2,
    )


def test_event_search_in_pieces_equals_detect_events():
    rng = np.random.default_rng(0)
    for trial in range(200):
        frames, labels = int(rng.integers(1, 300)), int(rng.integers(1, 5))
        probabilities = np.repeat(rng.random((frames // 5 + 1, labels)), 5, axis=0)[:frames].astype(np.float32)
        probabilities += 0.05 * rng.standard_normal(probabilities.shape).astype(np.float32)
        options = {
            "threshold": float(rng.choice([0.3, 0.5, 0.7])),
            "median_filter_frames": int(rng.choice([1, 3, 5, 9])),
            "min_duration_s": float(rng.choice([0, 0.2, 0.5])),
            "min_gap_s": float(rng.choice([0, 0.15, 0.4])),
        }
        names = [f"class{index}" for index in range(labels)]
        search, first = EventStream(0.1, names, **options), 0
        while first < frames:
            size = int(rng.integers(1, 40))
            search.add(probabilities[first : first + size])
            first += size
        assert search.finish() == detect_events(probabilities, 0.1, names, **options), (trial, options)


def run_cli(command: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120, check=False)


@needs_ffmpeg
def test_classify_reads_a_process_substitution_and_refuses_a_dead_fifo(ast, audio, tmp_path):
    m4a = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(audio / "long.wav"), "-c:a", "aac", str(m4a)], check=True)
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    model = ast.config.name_or_path
    env = {**os.environ, "SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT": "2"}
    cli = f"{sys.executable} -m spectrogram_transformers classify --model {model} --no-windows"
    piped = run_cli(f"{cli} <(cat {m4a})", env)
    assert piped.returncode == 0, piped.stderr
    assert "/dev/fd/" in piped.stdout and "(6.3" in piped.stdout
    dead = run_cli(f"{cli} {fifo} {audio / 'long.wav'}", env)
    assert dead.returncode == 1 and "Traceback" not in dead.stderr
    assert f"{fifo}: no data for 2 s" in dead.stderr and "long.wav (6.30 s)" in dead.stdout
