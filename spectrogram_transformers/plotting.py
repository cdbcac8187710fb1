"""Pictures of what a model hears: top-k bars, class probabilities over time, detected events on a timeline.

Event detection is read from a timeline, not from a list of numbers. `plot_classification` draws a file's
top-k labels (and, for long files, the probabilities of those classes in each window); `plot_detection`
draws a log-mel spectrogram, the frame-wise probabilities of the top classes as a heat map and the detected
events as labelled segments, on one shared time axis. Both return a `matplotlib.figure.Figure` (shown inline
in a notebook) and draw nothing themselves: the numbers come from `inference` and `detection`, the same code
`classify` and `detect` print.

matplotlib is an optional extra (`pip install "spectrogram-transformers[plot]"`); it is imported only when a
plot is made. Figures are built with the object-oriented API (no pyplot state), so the Gradio demo can draw
them from worker threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .detection import Detection
    from .inference import AudioClassifier, FilePrediction

__all__ = [
    "PLOT_EXTRA_MESSAGE",
    "check_plot_path",
    "display_log_mel",
    "plot_classification",
    "plot_detection",
    "plot_detection_result",
    "plot_file",
    "plot_paths",
    "save_classification_plots",
    "save_detection_plots",
    "save_figure",
]

PLOT_EXTRA_MESSAGE = 'plots need matplotlib: pip install "spectrogram-transformers[plot]"'
# Axes names (`Axes.get_label()`), so callers and tests find a panel without relying on its position.
SPECTROGRAM_AXES = "spectrogram"
PROBABILITIES_AXES = "probabilities"
EVENTS_AXES = "events"
TOP_K_AXES = "top-k"
TIME_LABEL = "time (s)"
# probability colour scale, shared by every heat map so pictures compare
PROBABILITY_CMAP = "viridis"
# events at least this fraction of the timeline wide get their label and score written on them
LABELLED_EVENT_FRACTION = 0.04


def _figure_class():
    """`matplotlib.figure.Figure`, or ImportError naming the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(PLOT_EXTRA_MESSAGE) from error
    return Figure


def check_plot_path(path: str | Path) -> Path:
    """Fail early (before any model runs) when a plot cannot be written: no matplotlib, or a file type
    matplotlib does not write. Returns the path."""
    figure = _figure_class()()
    path = Path(path)
    supported = figure.canvas.get_supported_filetypes()
    file_type = path.suffix.lower().lstrip(".")
    if file_type not in supported:
        raise ValueError(f"cannot write a plot to {path}: use one of the suffixes .{', .'.join(sorted(supported))}")
    return path


def save_figure(figure: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write `figure` to `path` (type from the suffix), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def plot_paths(output: str | Path, inputs: Sequence[str | Path]) -> list[Path]:
    """Where the plots of `inputs` go: `output` itself for one file, `<output stem>-<input stem><suffix>` beside
    it for several (numbered when two inputs share a stem)."""
    output = Path(output)
    if len(inputs) == 1:
        return [output]
    paths, seen = [], set()
    for index, item in enumerate(inputs):
        name = f"{output.stem}-{Path(item).stem}"
        if name in seen:
            name = f"{name}-{index}"
        seen.add(name)
        paths.append(output.with_name(name + output.suffix))
    return paths


def display_log_mel(
    waveform: np.ndarray, sampling_rate: float, num_mel_bins: int = 64, top_db: float = 80.0
) -> tuple[np.ndarray, float]:
    """A log-mel spectrogram [mel bins, frames] in dB for display, and the seconds per frame.

    For the eye only (25 ms windows every 10 ms, 0 Hz to Nyquist, `top_db` of range); the models' inputs come
    from their own feature extractors.
    """
    from .feature_extraction import LogMelSettings, log_mel_spectrogram

    waveform = np.asarray(waveform, dtype=np.float32)
    hop = max(1, round(0.010 * sampling_rate))
    n_fft = 1 << max(1, int(np.ceil(np.log2(0.025 * sampling_rate))))
    if waveform.shape[0] <= n_fft // 2:  # the reflect padding needs more than half a window
        waveform = np.pad(waveform, (0, n_fft // 2 + 1 - waveform.shape[0]))
    settings = LogMelSettings(
        n_fft=n_fft, hop_length=hop, num_mel_bins=num_mel_bins, fmin=0.0, fmax=None, top_db=top_db
    )
    features, _ = log_mel_spectrogram(waveform, sampling_rate, settings=settings)
    return features[0].numpy().T, hop / sampling_rate


def _label_names(id2label: Mapping[int, str] | Sequence[str] | None, num_labels: int) -> list[str]:
    if id2label is None:
        return [str(index) for index in range(num_labels)]
    if isinstance(id2label, Mapping):
        return [str(id2label.get(index, id2label.get(str(index), index))) for index in range(num_labels)]
    return [str(name) for name in id2label]


def _draw_spectrogram(axes: Axes, waveform: np.ndarray, sampling_rate: float, duration: float) -> None:
    log_mel, _ = display_log_mel(waveform, sampling_rate)
    image = axes.imshow(
        log_mel,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, duration, 0, log_mel.shape[0]),
        interpolation="nearest",
    )
    axes.set_label(SPECTROGRAM_AXES)
    axes.set_ylabel("mel bin")
    axes.set_title("log-mel spectrogram (dB)", fontsize="medium", loc="left")
    axes.figure.colorbar(image, ax=axes, pad=0.01, fraction=0.03)


def _draw_heat_map(axes: Axes, x_edges: np.ndarray, values: np.ndarray, names: list[str], title: str) -> None:
    """Rows = classes (first on top), columns between `x_edges`; NaN cells (unknown) drawn grey."""
    from matplotlib import colormaps

    cmap = colormaps[PROBABILITY_CMAP].with_extremes(bad="0.85")
    masked = np.ma.masked_invalid(values)
    mesh = axes.pcolormesh(x_edges, np.arange(len(names) + 1), masked, cmap=cmap, vmin=0.0, vmax=1.0, shading="flat")
    axes.set_label(PROBABILITIES_AXES)
    axes.set_yticks(np.arange(len(names)) + 0.5, names)
    axes.set_ylim(len(names), 0)  # first class on top
    axes.set_title(title, fontsize="medium", loc="left")
    axes.figure.colorbar(mesh, ax=axes, pad=0.01, fraction=0.03, label="probability")


def plot_classification(
    prediction: FilePrediction,
    waveform: np.ndarray | None = None,
    sampling_rate: float | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Figure of one file's classification: top-k bars, and, for a file classified in several windows, a heat map
    of those classes' probabilities per window (above it the log-mel spectrogram when `waveform` is given).

    Args:
        prediction: what `AudioClassifier.classify` / `classify_files` returned for the file.
        waveform, sampling_rate: the file's audio, for the spectrogram panel (optional).
        title: figure title (default: the file name).

    Axes are named (`ax.get_label()`): "spectrogram", "probabilities" (windows), "top-k" (bars).
    """
    Figure = _figure_class()
    if (waveform is None) != (sampling_rate is None):
        raise ValueError("give both waveform and sampling_rate, or neither")
    names = [label for label, _ in prediction.labels]
    scores = np.array([score for _, score in prediction.labels])
    timeline = len(prediction.windows) > 1
    heights = (
        ([2.0] if waveform is not None else [])
        + ([0.5 + 0.3 * len(names)] if timeline else [])
        + [0.6 + 0.35 * len(names)]
    )
    figure = Figure(figsize=(9, 1.0 + sum(heights)), layout="constrained")
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    row, time_axes = 0, None
    if waveform is not None:
        time_axes = figure.add_subplot(grid[row])
        _draw_spectrogram(time_axes, waveform, sampling_rate, prediction.duration)
        row += 1
    if timeline:
        axes = figure.add_subplot(grid[row], sharex=time_axes)
        # each window's column is centred on it and reaches halfway to its neighbours
        centres = np.array([(window.start + window.end) / 2 for window in prediction.windows])
        edges = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [prediction.duration]])
        if prediction.probabilities is not None and prediction.label_names:
            # every window's probabilities were kept (AudioClassifier.classify): the exact values
            columns = [prediction.label_names.index(name) for name in names]
            values = np.asarray(prediction.probabilities, dtype=np.float64)[:, columns].T
            note = ""
        else:  # only each window's top-k is known (e.g. a prediction read back from JSON)
            values = np.full((len(names), len(prediction.windows)), np.nan)
            for column, window in enumerate(prediction.windows):
                window_scores = dict(window.labels)
                for row_index, name in enumerate(names):
                    values[row_index, column] = window_scores.get(name, np.nan)
            note = "; grey: below the window's top-k"
        _draw_heat_map(axes, edges, values, names, f"probability per window ({len(prediction.windows)} windows{note})")
        axes.set_xlabel(TIME_LABEL)
        axes.set_xlim(0.0, prediction.duration)
        row += 1
    elif time_axes is not None:
        time_axes.set_xlabel(TIME_LABEL)
    bars = figure.add_subplot(grid[row])
    bars.set_label(TOP_K_AXES)
    positions = np.arange(len(names))
    bars.barh(positions, scores, color="tab:blue")
    bars.set_yticks(positions, names)
    bars.set_ylim(len(names) - 0.5, -0.5)  # best on top
    bars.set_xlim(0.0, 1.0)
    bars.set_xlabel("probability" + (" (mean over windows)" if timeline else ""))
    for position, score in zip(positions, scores):
        bars.text(min(score + 0.01, 0.9), position, f"{score:.3f}", va="center", fontsize="small")
    figure.suptitle(title if title is not None else Path(prediction.path).name)
    return figure


def plot_detection(
    frame_probabilities: np.ndarray,
    frame_duration_s: float,
    events: Sequence[Mapping],
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    waveform: np.ndarray | None = None,
    sampling_rate: float | None = None,
    *,
    top_k: int = 5,
    title: str | None = None,
) -> Figure:
    """Figure of sound-event detection on one shared time axis: log-mel spectrogram (when `waveform` is given),
    frame-wise probabilities of the top classes as a heat map, and the events as labelled segments.

    Args:
        frame_probabilities: [frames, labels] (`file_frame_probabilities`), frame i covering
            [i·frame_duration_s, (i+1)·frame_duration_s).
        events: `detect_events` / `detect_file` output, `{"label", "start", "end", "score"}` in seconds.
        id2label: class names (`model.config.id2label`) or a list.
        top_k: classes in the heat map: every class with an event, then the most probable others, up to
            `max(top_k, classes with events)`.

    Axes are named (`ax.get_label()`): "spectrogram", "probabilities", "events".
    """
    Figure = _figure_class()
    probabilities = np.asarray(frame_probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"frame_probabilities must be [frames, labels], got shape {probabilities.shape}")
    if not frame_duration_s > 0:
        raise ValueError(f"frame_duration_s must be positive, got {frame_duration_s}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if (waveform is None) != (sampling_rate is None):
        raise ValueError("give both waveform and sampling_rate, or neither")
    names = _label_names(id2label, probabilities.shape[1])
    index_of = {name: index for index, name in enumerate(names)}
    unknown = sorted({event["label"] for event in events} - set(index_of))
    if unknown:
        raise ValueError(f"events name classes the model does not have: {unknown}")
    duration = probabilities.shape[0] * frame_duration_s

    # classes shown: those with events (by their best score), then the most probable others
    event_classes = sorted(
        {event["label"] for event in events}, key=lambda name: -max(e["score"] for e in events if e["label"] == name)
    )
    peak = probabilities.max(axis=0) if probabilities.shape[0] else np.zeros(len(names))
    others = [names[index] for index in np.argsort(-peak, kind="stable") if names[index] not in event_classes]
    shown = event_classes + others[: max(0, top_k - len(event_classes))]

    heights = ([2.0] if waveform is not None else []) + [
        0.5 + 0.3 * len(shown),
        0.5 + 0.3 * max(1, len(event_classes)),
    ]
    figure = Figure(figsize=(10, 1.2 + sum(heights)), layout="constrained")
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    row, first_axes = 0, None
    if waveform is not None:
        first_axes = figure.add_subplot(grid[row])
        _draw_spectrogram(first_axes, waveform, sampling_rate, duration)
        row += 1
    heat = figure.add_subplot(grid[row], sharex=first_axes)
    edges = np.arange(probabilities.shape[0] + 1) * frame_duration_s
    values = probabilities[:, [index_of[name] for name in shown]].T
    _draw_heat_map(heat, edges, values, shown, "frame-wise probability")
    row += 1

    lanes = figure.add_subplot(grid[row], sharex=heat)
    lanes.set_label(EVENTS_AXES)
    lane_of = {name: lane for lane, name in enumerate(event_classes)}
    colours = [f"C{lane % 10}" for lane in range(len(event_classes))]
    for event in events:
        lane = lane_of[event["label"]]
        lanes.broken_barh(
            [(event["start"], event["end"] - event["start"])], (lane + 0.1, 0.8), color=colours[lane], alpha=0.85
        )
        if event["end"] - event["start"] >= LABELLED_EVENT_FRACTION * duration:  # narrower ones: the lane names them
            lanes.text(
                event["start"],
                lane + 0.5,
                f" {event['label']} {event['score']:.2f}",
                va="center",
                ha="left",
                fontsize="small",
                clip_on=True,
            )
    lanes.set_yticks(np.arange(len(event_classes)) + 0.5, event_classes)
    lanes.set_ylim(max(1, len(event_classes)), 0)
    lanes.set_title(
        f"detected events ({len(events)})" if events else "detected events: none", fontsize="medium", loc="left"
    )
    lanes.set_xlabel(TIME_LABEL)
    lanes.set_xlim(0.0, duration)
    # keep the lanes' width equal to the heat map's, which has a colorbar beside it
    figure.colorbar(heat.collections[0], ax=lanes, pad=0.01, fraction=0.03).ax.set_visible(False)
    if first_axes is not None:
        first_axes.tick_params(labelbottom=False)
    heat.tick_params(labelbottom=False)
    if title is not None:
        figure.suptitle(title)
    return figure


def plot_detection_result(
    detection: Detection,
    waveform: np.ndarray | None = None,
    sampling_rate: float | None = None,
    *,
    top_k: int = 5,
    title: str | None = None,
) -> Figure:
    """`plot_detection` of what `detection.detect` returned (timeline, events, labels), titled with the file name."""
    if waveform is not None:  # the timeline stops at the end of the audio; so does the spectrogram
        waveform = np.asarray(waveform)[
            : round(detection.frame_probabilities.shape[0] * detection.frame_s * sampling_rate)
        ]
    return plot_detection(
        detection.frame_probabilities,
        detection.frame_s,
        detection.events,
        detection.label_names,
        waveform,
        sampling_rate,
        top_k=top_k,
        title=Path(detection.path).name if title is None else title,
    )


def plot_file(
    model: AudioClassifier | str | Path,
    path: str | Path,
    *,
    events: bool | None = None,
    top_k: int = 5,
    **kwargs,
) -> Figure:
    """One call for a notebook: classify a file, or detect its events, and return the figure.

    Args:
        model: an `AudioClassifier`, or a model directory / Hub id to load one from.
        events: draw the event timeline (`detection.detect`); default: for models with frame outputs (HTS-AT).
            Otherwise the top-k bars (and windows) of `AudioClassifier.classify`.
        kwargs: to `detect` (window_s, hop_s, threshold, median_filter_frames, ...) or to `classify` (window, hop).
    """
    _figure_class()
    from .inference import AudioClassifier

    classifier = model if isinstance(model, AudioClassifier) else AudioClassifier(model)
    waveform = classifier.decode(path)
    rate = classifier.sampling_rate
    if events if events is not None else classifier.has_frame_outputs:
        from .detection import detect

        detection = detect(classifier, waveform, name=str(path), progress=False, **kwargs)
        return plot_detection_result(detection, waveform, rate, top_k=top_k)
    prediction = classifier.classify(waveform, name=str(path), top_k=top_k, progress=False, **kwargs)
    return plot_classification(prediction, waveform, rate)


def save_classification_plots(
    predictions: Sequence[FilePrediction], output: str | Path, sampling_rate: int | None = None
) -> list[Path]:
    """One `plot_classification` figure per file (with its spectrogram) at `plot_paths(output, files)`; the audio
    is decoded again (at `sampling_rate`, default the file's own) for the spectrogram."""
    from .feature_extraction import load_audio
    from .inference import decode_audio

    paths = plot_paths(output, [prediction.path for prediction in predictions])
    for prediction, path in zip(predictions, paths):
        if sampling_rate is None:
            waveform, rate = load_audio(prediction.path)
        else:
            waveform, rate = decode_audio(prediction.path, sampling_rate), sampling_rate
        save_figure(plot_classification(prediction, waveform, rate), path)
    return paths


def save_detection_plots(detections: Sequence[Detection], output: str | Path, sampling_rate: int) -> list[Path]:
    """One `plot_detection_result` figure per file at `plot_paths(output, files)`, from the timelines and events
    already computed (the audio is decoded again at `sampling_rate` for the spectrogram)."""
    from .inference import decode_audio

    paths = plot_paths(output, [detection.path for detection in detections])
    for detection, path in zip(detections, paths):
        waveform = decode_audio(detection.path, sampling_rate)
        save_figure(plot_detection_result(detection, waveform, sampling_rate), path)
    return paths
