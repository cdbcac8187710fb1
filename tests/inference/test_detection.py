"""Sound-event detection from frame probabilities, long files in overlapping windows, and the `detect` CLI."""

import argparse
import json

import numpy as np
import pytest
import soundfile
import torch

from spectrogram_transformers import (
    HTSATConfig,
    HTSATFeatureExtractor,
    HTSATForAudioClassification,
)
from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.cli.detect import add_arguments, run
from spectrogram_transformers.detection import (
    DetectionSettings,
    EventStream,
    detect,
    detect_events,
    detect_file,
    file_frame_probabilities,
    frame_probabilities,
    median_filter_time,
)
from spectrogram_transformers.inference import AudioClassifier

LABELS = {0: "dog", 1: "siren"}


def constructed_probabilities() -> np.ndarray:
    """100 frames of 0.1 s: dog on frames 10-29; siren on 50-54 and 70-89; a 1-frame siren blip at 40."""
    probabilities = np.full((100, 2), 0.1)
    probabilities[10:30, 0] = 0.9
    probabilities[50:55, 1] = 0.8
    probabilities[70:90, 1] = 0.7
    probabilities[40, 1] = 0.95
    return probabilities


def spans(events):
    return [(event["label"], round(event["start"], 9), round(event["end"], 9)) for event in events]


def test_events_start_and_end_on_frame_edges():
    events = detect_events(constructed_probabilities(), 0.1, LABELS)
    assert spans(events) == [("dog", 1.0, 3.0), ("siren", 4.0, 4.1), ("siren", 5.0, 5.5), ("siren", 7.0, 9.0)]
    assert events[0]["score"] == pytest.approx(0.9)
    assert events[1]["score"] == pytest.approx(0.95)


def test_median_filter_removes_a_one_frame_blip_and_keeps_edges():
    events = detect_events(constructed_probabilities(), 0.1, LABELS, median_filter_frames=3)
    assert spans(events) == [("dog", 1.0, 3.0), ("siren", 5.0, 5.5), ("siren", 7.0, 9.0)]
    with pytest.raises(ValueError, match="odd"):
        median_filter_time(constructed_probabilities(), 4)


def test_events_touching_the_first_or_last_frame_survive_the_median_filter():
    """The filter repeats the end frames: a sound already on when the file starts (or still on when it ends) is
    taken to go on past the file's edge, so 2 frames at either end survive a 5-frame filter, while the same 2
    frames inside the file are a blip it removes."""
    probabilities = np.full((30, 1), 0.1)
    probabilities[[0, 1, 14, 15, 28, 29], 0] = 0.9
    filtered = median_filter_time(probabilities, 5)
    np.testing.assert_allclose(filtered[[0, 1, 28, 29], 0], 0.9)
    events = detect_events(probabilities, 0.1, ["knock"], median_filter_frames=5)
    assert spans(events) == [("knock", 0.0, 0.2), ("knock", 2.8, 3.0)]


def test_min_duration_and_min_gap():
    probabilities = constructed_probabilities()
    assert spans(detect_events(probabilities, 0.1, LABELS, min_duration_s=0.5)) == [
        ("dog", 1.0, 3.0),
        ("siren", 5.0, 5.5),
        ("siren", 7.0, 9.0),
    ]
    assert spans(detect_events(probabilities, 0.1, LABELS, min_duration_s=0.6)) == [
        ("dog", 1.0, 3.0),
        ("siren", 7.0, 9.0),
    ]
    # gaps of 0.9 s (4.1 -> 5.0) and 1.5 s (5.5 -> 7.0): a 1 s minimum gap merges only the first
    merged = detect_events(probabilities, 0.1, LABELS, min_gap_s=1.0)
    assert spans(merged) == [("dog", 1.0, 3.0), ("siren", 4.0, 5.5), ("siren", 7.0, 9.0)]


def test_per_class_thresholds():
    probabilities = constructed_probabilities()
    # siren's 0.7 event stays under 0.75, its 0.8 and 0.95 ones pass; dog is off at 0.95
    by_name = detect_events(probabilities, 0.1, LABELS, threshold={"dog": 0.95, "siren": 0.75})
    assert spans(by_name) == [("siren", 4.0, 4.1), ("siren", 5.0, 5.5)]
    assert spans(detect_events(probabilities, 0.1, LABELS, threshold=[0.95, 0.75])) == spans(by_name)
    by_index = detect_events(probabilities, 0.1, LABELS, threshold={1: 0.75}, default_threshold=0.95)
    assert spans(by_index) == spans(by_name)
    with pytest.raises(ValueError, match="unknown class 'cat'"):
        detect_events(probabilities, 0.1, LABELS, threshold={"cat": 0.5})
    with pytest.raises(ValueError, match="3 values for 2 classes"):
        detect_events(probabilities, 0.1, LABELS, threshold=[0.5, 0.5, 0.5])


def test_htsat_frames_span_the_real_clip_length():
    """1024 stretched frames of a 3 s clip: frame i starts at i · 3/1024 s."""
    probabilities = torch.zeros(1024, 1)
    probabilities[512:768] = 1.0
    (event,) = detect_events(probabilities, 3.0 / 1024, ["speech"], offset_s=10.0)
    assert (event["start"], event["end"]) == pytest.approx((11.5, 12.25))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[frames, labels\]"):
        detect_events(np.zeros(10), 0.1)
    with pytest.raises(ValueError, match="frame_duration_s"):
        detect_events(np.zeros((10, 1)), 0.0)


# --------------------------------------------------------------------------------------------------------------
# long files in windows, with a tiny random HTS-AT
# --------------------------------------------------------------------------------------------------------------

RATE = 16000


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """64×64-image HTS-AT (16 mel bins, 256 frames), 2 s clips at 16 kHz (201 log-mel frames)."""
    directory = tmp_path_factory.mktemp("tiny_htsat")
    torch.manual_seed(0)
    config = HTSATConfig(
        spec_size=64,
        num_mel_bins=16,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
        problem_type="multi_label_classification",
    )
    HTSATForAudioClassification(config).save_pretrained(directory)
    extractor = HTSATFeatureExtractor(
        sampling_rate=RATE, num_mel_bins=16, n_fft=512, hop_length=160, fmax=8000.0, clip_samples=2 * RATE
    )
    extractor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "long.wav"
    rng = np.random.default_rng(0)
    audio = 0.05 * rng.standard_normal(int(6.5 * RATE))
    audio[2 * RATE : 3 * RATE] += 0.5 * np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE)
    soundfile.write(path, audio.astype(np.float32), RATE, subtype="PCM_16")
    return path


def test_windows_are_placed_and_averaged_on_one_timeline(tiny_model_dir, long_file):
    model = HTSATForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = HTSATFeatureExtractor.from_pretrained(tiny_model_dir)
    probabilities, frame_s = file_frame_probabilities(
        model, extractor, long_file, window_s=2.0, hop_s=1.0, batch_size=3
    )
    assert frame_s == pytest.approx(2.0 / 256)
    assert probabilities.shape == (832, 2)  # 6.5 s / (2/256 s)
    assert ((probabilities > 0) & (probabilities < 1)).all()

    # by hand: windows start at 0, 1, ..., 5 s (the last zero-padded past 6.5 s)
    audio, _ = soundfile.read(long_file, dtype="float32")
    padded = np.zeros(7 * RATE, dtype=np.float32)
    padded[: audio.size] = audio
    windows = [padded[start * RATE : (start + 2) * RATE] for start in range(6)]
    with torch.no_grad():
        features = extractor(windows, sampling_rate=RATE, return_tensors="pt").input_features
        expected = torch.sigmoid(model(features).framewise_logits).numpy()  # [6, 256, 2]
    np.testing.assert_allclose(probabilities[:128], expected[0, :128], atol=1e-6)  # first second: window 0 only
    np.testing.assert_allclose(probabilities[128:256], (expected[0, 128:] + expected[1, :128]) / 2, atol=1e-6)
    np.testing.assert_allclose(probabilities[640:768], (expected[4, 128:] + expected[5, :128]) / 2, atol=1e-6)
    np.testing.assert_allclose(probabilities[768:832], expected[5, 128:192], atol=1e-6)  # 6-6.5 s: window 5 only


@pytest.mark.parametrize("window_s", [2.0, 1.0, 0.5])
def test_htsat_windows_shorter_than_the_clip_keep_event_times(tiny_model_dir, long_file, window_s):
    """Whatever the window (up to the model's 2 s clip), a frame of the timeline lasts what a frame of the clip
    lasts (2/256 s) and holds the model's output for the audio at that time: window k's audio, filled out to the
    clip by the extractor, gives frames whose first window_s/frame_s land at k·window_s seconds."""
    model = HTSATForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = HTSATFeatureExtractor.from_pretrained(tiny_model_dir)
    classifier = AudioClassifier.from_model(model, extractor)
    waveform = classifier.decode(long_file)  # 6.5 s
    timeline = frame_probabilities(classifier, waveform, window_s=window_s, hop_s=window_s)
    frame_s = 2.0 / 256
    assert timeline.frame_s == pytest.approx(frame_s) and timeline.probabilities.shape == (832, 2)
    window, frames = int(window_s * RATE), round(window_s / frame_s)
    windows = [waveform[start : start + window] for start in range(0, len(waveform), window)]
    with torch.no_grad():
        features = extractor(windows, sampling_rate=RATE, return_tensors="pt").input_features
        expected = torch.sigmoid(model(features).framewise_logits).numpy()  # [windows, 256, 2]
    for k in range(len(windows)):
        placed = timeline.probabilities[k * frames : (k + 1) * frames]
        np.testing.assert_allclose(placed, expected[k, : len(placed)], atol=1e-6)


def test_detect_file_end_to_end(tiny_model_dir, long_file):
    model = HTSATForAudioClassification.from_pretrained(tiny_model_dir)
    extractor = HTSATFeatureExtractor.from_pretrained(tiny_model_dir)
    everything = detect_file(model, extractor, long_file, window_s=2.0, hop_s=1.0, threshold=0.0)
    assert spans(everything) == [("dog", 0.0, 6.5), ("siren", 0.0, 6.5)]
    assert detect_file(model, extractor, long_file, window_s=2.0, hop_s=1.0, threshold=1.01) == []


def test_windows_longer_than_the_model_input_are_capped(tiny_model_dir, long_file, caplog):
    """A 4 s window on a 2 s model would be cut to its first 2 s: windows are capped, with a warning."""
    model = HTSATForAudioClassification.from_pretrained(tiny_model_dir)
    extractor = HTSATFeatureExtractor.from_pretrained(tiny_model_dir)
    classifier = AudioClassifier.from_model(model, extractor)
    waveform = classifier.decode(long_file)
    with caplog.at_level("WARNING"):
        capped = frame_probabilities(classifier, waveform, window_s=4.0, hop_s=3.0)
    assert "longer than the model's input" in caplog.text and "hop of 3 s is longer than the window" in caplog.text
    assert (capped.window_s, capped.hop_s) == (2.0, 2.0)
    np.testing.assert_array_equal(
        capped.probabilities, frame_probabilities(classifier, waveform, 2.0, 2.0).probabilities
    )


def test_htsat_event_times_fall_on_the_stated_resolution(tiny_model_dir, long_file, capsys):
    """The resolution `detect` states is the one its events have: the token-semantic head gives one output per
    `frames_per_step` frames, so at every threshold each event boundary is a multiple of that step (windows
    every 1 s, a whole number of steps), and the frames of a step agree."""
    classifier = AudioClassifier(tiny_model_dir, dtype="float32")
    waveform = classifier.decode(long_file)
    result = detect(classifier, waveform, window_s=2.0, hop_s=1.0, threshold=0.5)
    step_s = HTSATConfig.from_pretrained(tiny_model_dir).frames_per_step * result.frame_s
    assert result.resolution_s == pytest.approx(step_s) and step_s > result.frame_s
    steps = result.frame_probabilities.reshape(-1, round(step_s / result.frame_s), 2)  # (steps, frames of one, labels)
    np.testing.assert_array_equal(steps, np.repeat(steps[:, :1], steps.shape[1], axis=1))
    boundaries = []
    for threshold in np.quantile(result.frame_probabilities, np.linspace(0.05, 0.95, 10)):
        events = detect_events(
            result.frame_probabilities, result.frame_s, result.label_names, threshold=float(threshold)
        )
        boundaries += [time for event in events for time in (event["start"], event["end"])]
    assert len(boundaries) > 10
    np.testing.assert_allclose(np.round(np.array(boundaries) / step_s) * step_s, boundaries, atol=1e-9)
    assert cli_main(["detect", str(long_file), "--model", str(tiny_model_dir), "--window", "2", "--hop", "1"]) == 0
    assert f"event times to {step_s:g} s" in capsys.readouterr().out


def test_cli_prints_json(tiny_model_dir, long_file, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            str(long_file),
            "--model",
            str(tiny_model_dir),
            "--window",
            "2",
            "--hop",
            "1",
            "--threshold",
            "0",
            "--class-threshold",
            "siren=1",
            "--json",
        ]
    )
    assert run(args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)[str(long_file)]
    assert spans(result["events"]) == [("dog", 0.0, 6.5)]
    step_s = HTSATConfig.from_pretrained(tiny_model_dir).frames_per_step * 2.0 / 256  # 8 frames of a 2 s clip
    assert result["source"] == "frames" and result["frame_s"] == pytest.approx(2.0 / 256)
    assert result["resolution_s"] == pytest.approx(step_s)
    assert "x real time" in captured.err


def test_cli_subcommand_is_registered(tiny_model_dir, long_file, capsys):
    code = cli_main(
        ["detect", str(long_file), "--model", str(tiny_model_dir), "--window", "2", "--hop", "2", "--threshold", "0"]
    )
    assert code == 0
    output = capsys.readouterr().out
    assert "2 events" in output and "0.000\t6.500\tdog" in output


# --------------------------------------------------------------------------------------------------------------
# AST / SSAST: events from the clip scores of overlapping windows
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    from testing_utils.inference_models import tiny_ast_dir

    return tiny_ast_dir(tmp_path_factory.mktemp("ast"), multi_label=True)


def test_ast_timeline_is_made_of_window_clip_scores(ast_dir, long_file):
    """1.015 s windows every 0.5 s: frame k (0.5 s) averages the windows whose span holds its centre."""
    classifier = AudioClassifier(ast_dir, dtype="float32", batch_size=5)
    waveform = classifier.decode(long_file)  # 6.5 s
    timeline = frame_probabilities(classifier, waveform, hop_s=0.5)
    assert timeline.source == "windows" and timeline.frame_s == 0.5 and timeline.window_s == pytest.approx(1.015)
    assert timeline.probabilities.shape == (13, 3)
    window, hop = 16240, 8000
    starts = list(range(0, 11 * hop + 1, hop))  # the last window (5.5-6.515 s) reaches past the end: zero-padded
    windows = [
        np.pad(waveform[start : start + window], (0, max(0, start + window - len(waveform)))) for start in starts
    ]
    scores = classifier.probabilities(windows)  # sigmoid: multi-label
    np.testing.assert_allclose(timeline.probabilities[0], scores[0], atol=1e-6)  # 0-0.5 s: window 0 only
    np.testing.assert_allclose(timeline.probabilities[5], (scores[4] + scores[5]) / 2, atol=1e-6)
    np.testing.assert_allclose(timeline.probabilities[11], (scores[10] + scores[11]) / 2, atol=1e-6)
    np.testing.assert_allclose(timeline.probabilities[12], scores[11], atol=1e-6)  # 6-6.5 s: the last window only


def test_detect_cli_on_ast_says_events_are_coarse(ast_dir, long_file, capsys):
    code = cli_main(
        ["detect", str(long_file), "--model", str(ast_dir), "--threshold", "0", "--dtype", "float32", "--hop", "0.5"]
    )
    assert code == 0
    output = capsys.readouterr().out
    assert "clip scores of 1.015 s windows every 0.5 s" in output and "no frame outputs" in output
    assert "0.000\t6.500\tdog" in output  # threshold 0: one event over the whole file, on the 0.5 s grid


def test_detection_settings_refuse_bad_values_when_built():
    """One settings object travels from `detect*` to `EventStream`; a bad field fails at once, before any audio."""
    assert DetectionSettings() == DetectionSettings(0.5, 1, 0.0, 0.0, 0.5)
    assert DetectionSettings(threshold=[0.2, 0.7]).threshold == (0.2, 0.7)  # frozen: a list is kept as a tuple
    for bad, message in [
        (dict(threshold=-0.1), "thresholds must be probabilities"),
        (dict(threshold=float("nan")), "thresholds must be probabilities"),
        (dict(threshold={"dog": -1.0}), "thresholds must be probabilities"),
        (dict(default_threshold=-0.5), "thresholds must be probabilities"),
        (dict(median_filter_frames=4), "positive odd number"),
        (dict(median_filter_frames=0), "positive odd number"),
        (dict(min_duration_s=-1.0), "min_duration_s must be a finite number of seconds >= 0"),
        (dict(min_gap_s=float("inf")), "min_gap_s must be a finite number of seconds >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            DetectionSettings(**bad)
    with pytest.raises(TypeError):
        EventStream(0.1, ["dog", "siren"], threshhold=0.3)  # a misspelt setting is not silently ignored
    probabilities = constructed_probabilities()
    settings = DetectionSettings(threshold={"dog": 0.95, "siren": 0.75}, median_filter_frames=3)
    stream = EventStream(0.1, ["dog", "siren"], settings)
    stream.add(probabilities)
    assert stream.finish() == detect_events(
        probabilities, 0.1, LABELS, threshold={"dog": 0.95, "siren": 0.75}, median_filter_frames=3
    )
    with pytest.raises(ValueError, match="positive odd number"):
        detect_events(probabilities, 0.1, LABELS, median_filter_frames=2)
