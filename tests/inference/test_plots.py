"""Plots: a synthetic scene with known event times drawn on one time axis, top-k bars and window heat maps, and
`classify --plot` / `detect --plot` on tiny saved models (plus their one-line errors)."""

import re
import sys

import numpy as np
import pytest
from matplotlib.collections import PolyCollection, QuadMesh
from matplotlib.image import AxesImage

from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.detection import detect_events
from spectrogram_transformers.inference import FilePrediction, WindowPrediction
from spectrogram_transformers.plotting import (
    PLOT_EXTRA_MESSAGE,
    plot_classification,
    plot_detection,
    plot_file,
    plot_paths,
)
from testing_utils.fixtures import fixture_path
from testing_utils.tiny_models import RATE, save_tiny_ast, save_tiny_htsat

NAMES = ["dog", "siren", "car", "rain"]
FRAME_S = 0.05
SCENE_S = 8.0
# the scene: (label, start s, end s, probability inside); frames of 50 ms
SCENE = [("siren", 1.0, 2.5, 0.9), ("dog", 4.0, 4.5, 0.8), ("siren", 6.0, 7.0, 0.7)]
TONE_HZ = {"siren": 1000.0, "dog": 300.0}


def scene_probabilities() -> np.ndarray:
    probabilities = np.full((round(SCENE_S / FRAME_S), len(NAMES)), 0.05)
    probabilities[:, NAMES.index("rain")] = np.linspace(0.0, 0.4, probabilities.shape[0])  # never an event
    for label, start, end, value in SCENE:
        probabilities[round(start / FRAME_S) : round(end / FRAME_S), NAMES.index(label)] = value
    return probabilities


def scene_waveform() -> np.ndarray:
    """Quiet noise with a tone wherever the scene has an event."""
    time = np.arange(round(SCENE_S * RATE)) / RATE
    waveform = 0.01 * np.random.default_rng(0).standard_normal(time.size)
    for label, start, end, _ in SCENE:
        inside = (time >= start) & (time < end)
        waveform[inside] += 0.5 * np.sin(2 * np.pi * TONE_HZ[label] * time[inside])
    return waveform.astype(np.float32)


def named_axes(figure) -> dict:
    return {
        axes.get_label(): axes
        for axes in figure.axes
        if axes.get_label() in ("spectrogram", "probabilities", "events", "top-k")
    }


def tick_labels(axes) -> list[str]:
    return [label.get_text() for label in axes.get_yticklabels()]


def test_detection_figure_shows_the_scene_on_one_time_axis():
    events = detect_events(scene_probabilities(), FRAME_S, NAMES, threshold=0.5)
    assert [event["label"] for event in events] == [label for label, *_ in SCENE]
    # flat lists: pytest.approx compares no nested tuples (pytest >= 9.1 refuses them)
    assert [time for event in events for time in (event["start"], event["end"])] == pytest.approx(
        [time for _, start, end, _ in SCENE for time in (start, end)]
    )
    figure = plot_detection(
        scene_probabilities(), FRAME_S, events, dict(enumerate(NAMES)), scene_waveform(), RATE, top_k=3, title="scene"
    )
    axes = named_axes(figure)
    assert list(axes) == ["spectrogram", "probabilities", "events"]  # top to bottom
    assert figure.get_suptitle() == "scene"
    for panel in axes.values():
        assert panel.get_xlim() == pytest.approx((0.0, SCENE_S))  # one shared time axis
    assert axes["events"].get_xlabel() == "time (s)"
    assert axes["spectrogram"].get_ylabel() == "mel bin"

    # heat map: classes with events first (best score first), then the most probable other class; top_k = 3
    heat = axes["probabilities"]
    assert tick_labels(heat) == ["siren", "dog", "rain"]
    assert heat.yaxis_inverted() and axes["events"].yaxis_inverted()  # the first class is the top row
    (mesh,) = [artist for artist in heat.collections if isinstance(artist, QuadMesh)]
    expected = scene_probabilities()[:, [NAMES.index(name) for name in ("siren", "dog", "rain")]].T
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(expected.shape), expected)
    x_edges = mesh.get_coordinates()[0, :, 0]
    np.testing.assert_allclose(x_edges, np.arange(expected.shape[1] + 1) * FRAME_S)

    # event lanes: one per class with events, each event a segment from its start to its end
    lanes = axes["events"]
    assert tick_labels(lanes) == ["siren", "dog"]
    segments = []
    for collection in lanes.collections:
        assert isinstance(collection, PolyCollection)
        for path in collection.get_paths():
            (x0, y0), (x1, _) = path.get_extents().get_points()
            segments.append((tick_labels(lanes)[int(y0)], x0, x1))
    segments.sort(key=lambda segment: segment[1])
    assert [label for label, _, _ in segments] == [label for label, *_ in SCENE]
    assert [time for _, x0, x1 in segments for time in (x0, x1)] == pytest.approx(
        [time for _, start, end, _ in SCENE for time in (start, end)]
    )
    texts = sorted((text.get_position()[0], text.get_text().strip()) for text in lanes.texts)
    assert texts == [(1.0, "siren 0.90"), (4.0, "dog 0.80"), (6.0, "siren 0.70")]
    assert lanes.get_title(loc="left") == "detected events (3)"

    # the spectrogram is on the same clock: the 1 kHz siren tone is loud exactly where the siren event is
    (image,) = [artist for artist in axes["spectrogram"].get_images() if isinstance(artist, AxesImage)]
    assert image.get_extent()[:2] == pytest.approx([0.0, SCENE_S])
    log_mel = np.asarray(image.get_array())
    frame_times = (np.arange(log_mel.shape[1]) + 0.5) * SCENE_S / log_mel.shape[1]
    loudness = log_mel.max(axis=0)
    in_siren = (frame_times > 1.1) & (frame_times < 2.4)
    silent = (frame_times > 2.7) & (frame_times < 3.8)
    assert loudness[in_siren].min() > loudness[silent].max() + 20  # dB


def test_detection_figure_without_events_or_waveform():
    probabilities = scene_probabilities() * 0.1
    figure = plot_detection(probabilities, FRAME_S, [], NAMES, top_k=2)
    axes = named_axes(figure)
    assert list(axes) == ["probabilities", "events"]
    assert tick_labels(axes["probabilities"]) == ["siren", "dog"]  # highest peaks
    assert axes["events"].get_title(loc="left") == "detected events: none" and not axes["events"].collections
    with pytest.raises(ValueError, match="classes the model does not have"):
        plot_detection(probabilities, FRAME_S, [{"label": "cat", "start": 0.0, "end": 1.0, "score": 0.9}], NAMES)
    with pytest.raises(ValueError, match=r"\[frames, labels\]"):
        plot_detection(probabilities[:, 0], FRAME_S, [], NAMES)
    with pytest.raises(ValueError, match="both waveform and sampling_rate"):
        plot_detection(probabilities, FRAME_S, [], NAMES, scene_waveform())


def long_file_prediction(with_probabilities: bool) -> FilePrediction:
    """A 3 s file in five 1 s windows every 0.5 s over the labels yes/no/up; "no" is not in the third window's top-2."""
    # the model's label order differs from the file's ranking, so a heat map row must be found by name
    probabilities = np.array([[0.1, 0.7, 0.2], [0.1, 0.6, 0.3], [0.4, 0.5, 0.1], [0.1, 0.3, 0.6], [0.05, 0.1, 0.8]])
    names = ["up", "yes", "no"]
    windows = []
    for index, row in enumerate(probabilities):
        order = np.argsort(-row)[:2]
        windows.append(WindowPrediction(index * 0.5, index * 0.5 + 1.0, [(names[i], float(row[i])) for i in order]))
    return FilePrediction(
        path="/data/long.wav",
        duration=3.0,
        labels=[("yes", 0.44), ("no", 0.4)],
        windows=windows,
        probabilities=probabilities if with_probabilities else None,
        label_names=names if with_probabilities else [],
    )


@pytest.mark.parametrize("with_probabilities", [True, False], ids=["all-probabilities", "top-k-only"])
def test_classification_figure_bars_and_window_heat_map(with_probabilities):
    figure = plot_classification(long_file_prediction(with_probabilities))
    axes = named_axes(figure)
    assert list(axes) == ["probabilities", "top-k"]
    assert figure.get_suptitle() == "long.wav"
    bars = axes["top-k"]
    assert tick_labels(bars) == ["yes", "no"]
    assert bars.yaxis_inverted() and axes["probabilities"].yaxis_inverted()  # best on top
    assert [patch.get_width() for patch in bars.patches] == pytest.approx([0.44, 0.4])
    assert bars.get_xlim() == (0.0, 1.0) and bars.get_xlabel().startswith("probability")

    heat = axes["probabilities"]
    assert tick_labels(heat) == ["yes", "no"] and heat.get_xlabel() == "time (s)"
    (mesh,) = [artist for artist in heat.collections if isinstance(artist, QuadMesh)]
    values = np.ma.filled(np.ma.asarray(mesh.get_array()).reshape(2, 5).astype(float), np.nan)
    # every window's probability when the classifier kept them; else only what each window's top-k says
    third_no = 0.1 if with_probabilities else np.nan
    np.testing.assert_allclose(values, [[0.7, 0.6, 0.5, 0.3, 0.1], [0.2, 0.3, third_no, 0.6, 0.8]])
    assert ("grey" in heat.get_title(loc="left")) != with_probabilities
    # columns centred on the windows (0.5, 1.0, ... 2.5 s), reaching halfway to the neighbours, over the whole file
    np.testing.assert_allclose(mesh.get_coordinates()[0, :, 0], [0.0, 0.75, 1.25, 1.75, 2.25, 3.0])


def test_classification_figure_of_a_short_clip_with_its_spectrogram():
    prediction = FilePrediction(path="clip.wav", duration=1.0, labels=[("up", 0.9), ("down", 0.05), ("go", 0.01)])
    waveform = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
    figure = plot_classification(prediction, waveform, RATE, title="one clip")
    axes = named_axes(figure)
    assert list(axes) == ["spectrogram", "top-k"]  # one window: no heat map
    assert axes["spectrogram"].get_xlabel() == "time (s)"
    assert [patch.get_width() for patch in axes["top-k"].patches] == pytest.approx([0.9, 0.05, 0.01])
    assert figure.get_suptitle() == "one clip"


def test_plot_paths_for_one_and_several_files(tmp_path):
    assert plot_paths(tmp_path / "out.png", ["a/x.wav"]) == [tmp_path / "out.png"]
    assert plot_paths(tmp_path / "out.png", ["a/x.wav", "b/y.flac", "c/x.wav"]) == [
        tmp_path / "out-x.png",
        tmp_path / "out-y.png",
        tmp_path / "out-x-2.png",
    ]


# --------------------------------------------------------------------------------------------------------------
# the command line, on tiny saved models
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("plot_models")
    return {"ast": save_tiny_ast(root / "ast"), "htsat": save_tiny_htsat(root / "htsat")}


def png_size(path) -> tuple[int, int]:
    from matplotlib.image import imread

    height, width = imread(path).shape[:2]
    return width, height


def test_classify_plot_writes_one_png_per_file(models, tmp_path, capsys):
    clip = str(fixture_path("audio/mix_3s_16k.wav"))
    word = str(fixture_path("audio/word_yes_16k.wav"))
    assert cli_main(["classify", clip, "--model", str(models["ast"]), "--plot", str(tmp_path / "one.png")]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == f"plot: {tmp_path / 'one.png'}"
    assert "mix_3s_16k.wav (3.00 s)" in captured.out  # the text output is unchanged
    assert png_size(tmp_path / "one.png")[0] >= 600

    assert (
        cli_main(["classify", clip, word, "--model", str(models["ast"]), "--json", "--plot", str(tmp_path / "p.png")])
        == 0
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one.png", "p-mix_3s_16k.png", "p-word_yes_16k.png"]


def test_detect_plot(models, tmp_path, capsys):
    clip = str(fixture_path("audio/mix_3s_16k.wav"))
    out = tmp_path / "plots" / "events.svg"  # any type matplotlib writes; the folder is made
    argv = ["detect", clip, "--model", str(models["htsat"]), "--window", "2", "--hop", "1", "--threshold", "0.5"]
    assert cli_main([*argv, "--plot", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"plot: {out}" in captured.err
    svg = out.read_text()
    printed_events = [line.split("\t") for line in captured.out.splitlines() if not line.startswith("#")]
    assert printed_events and all(label in svg for _, _, label, _ in printed_events)
    assert "time (s)" in svg


def test_plot_file_for_notebooks(models):
    """One call from a model directory and a file to a figure: events for HTS-AT, bars and windows otherwise."""
    clip = fixture_path("audio/mix_3s_16k.wav")
    htsat = plot_file(models["htsat"], clip, threshold=0.5)
    assert list(named_axes(htsat)) == ["spectrogram", "probabilities", "events"]
    assert htsat.get_suptitle() == "mix_3s_16k.wav"
    assert named_axes(htsat)["events"].get_xlim() == pytest.approx((0.0, 3.0))
    ast = plot_file(models["ast"], clip, top_k=3)
    assert list(named_axes(ast)) == ["spectrogram", "probabilities", "top-k"]
    assert len(tick_labels(named_axes(ast)["top-k"])) == 3
    ast_events = plot_file(models["ast"], clip, events=True, threshold=0.2)
    assert list(named_axes(ast_events)) == ["spectrogram", "probabilities", "events"]


def test_plot_errors_are_one_line_before_the_model_runs(models, tmp_path, capsys):
    clip = str(fixture_path("audio/word_yes_16k.wav"))
    assert (
        cli_main(["classify", clip, "--model", str(tmp_path / "no-model-here"), "--plot", str(tmp_path / "out.wav")])
        == 2
    )
    assert re.match(r"error: --plot: cannot write a plot to .*\.wav: use one of the suffixes", capsys.readouterr().err)


def test_plot_without_matplotlib_names_the_extra(models, tmp_path, monkeypatch, capsys):
    """A base install (no matplotlib): `--plot` stops with one line naming the extra, before the model runs."""
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if the [plot] extra were not installed
    clip = str(fixture_path("audio/word_yes_16k.wav"))
    assert cli_main(["classify", clip, "--model", str(models["ast"]), "--plot", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == f"error: --plot: {PLOT_EXTRA_MESSAGE}\n"
    assert cli_main(["detect", clip, "--model", str(models["htsat"]), "--plot", str(tmp_path / "x.png")]) == 2
    assert re.match(r"^error: --plot: plots need matplotlib: pip install .*\[plot\]", capsys.readouterr().err)
    assert not (tmp_path / "x.png").exists()
