"""Sound-event detection: events with labels, start and end times in seconds, for every model family.

HTS-AT (Chen et al., ICASSP 2022; https://github.com/RetroCirce/HTS-Audio-Transformer) gives, besides clip
logits, `framewise_logits` [B, 1024, labels] from its token-semantic head. Those 1024 frames live on the model's
stretched time axis: they span the whole audio the model was fed (10 s -> 1001 log-mel frames -> 1024), so one
frame lasts `input duration / 1024` seconds.

AST and SSAST have clip outputs only. Their timeline is made of the clip scores of overlapping windows: each
window's probabilities cover the hop-long frames whose centres lie inside it, so event times have the
resolution of the hop. HTS-AT's frames are ~10 ms, but its token-semantic head gives one output per 32 frames
(0.3125 s for a 10 s clip) repeated over them, so its event times are that coarse; `Detection.source` says which
kind a result is and `Detection.resolution_s` how fine its times are.

`detect_events` turns frame probabilities into events (per-class thresholds, median filtering, minimum
duration); `frame_probabilities` runs an `AudioClassifier` (inference.py: loading, dtype, backend, windows and
batches) over a long waveform in overlapping windows and averages the overlaps into one timeline; `detect`
does both. The command line (`spectrogram-transformers detect`) is `spectrogram_transformers.cli.detect`.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .inference import AudioClassifier, InferenceError, UnreadableAudioError, UnreadableFile, WindowStream
from .inference.classifier import as_mono_waveform
from .inference.windows import num_windows

__all__ = [
    "Detection",
    "DetectionSettings",
    "EventStream",
    "detect",
    "detect_blocks",
    "detect_events",
    "detect_file",
    "detect_files",
    "detect_stream",
    "file_frame_probabilities",
    "frame_probabilities",
    "median_filter_time",
    "stream_frame_probabilities",
]

Thresholds = float | Sequence[float] | Mapping[str | int, float]


@dataclass(frozen=True)
class DetectionSettings:
    """How frame probabilities become events, one object handed from `detect*` down to `EventStream` (and to
    the archive's `DetectTask`). Fields as the arguments of `detect_events`; checked when built, so a bad value
    fails before any audio is decoded. A threshold above 1 is allowed (it finds nothing); per-class names and
    list lengths are checked against the model's labels later, when those are known."""

    threshold: Thresholds = 0.5
    median_filter_frames: int = 1
    min_duration_s: float = 0.0
    min_gap_s: float = 0.0
    default_threshold: float = 0.5

    def __post_init__(self):
        if (
            isinstance(self.median_filter_frames, bool)
            or not isinstance(self.median_filter_frames, int)
            or (self.median_filter_frames < 1 or self.median_filter_frames % 2 == 0)
        ):
            raise ValueError(
                f"median_filter_frames must be a positive odd number of frames, got {self.median_filter_frames!r}"
            )
        for name in ("min_duration_s", "min_gap_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, numbers.Real) and value >= 0 and math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        values = (
            list(self.threshold.values())
            if isinstance(self.threshold, Mapping)
            else [self.threshold]
            if isinstance(self.threshold, (int, float))
            else list(self.threshold)
        )
        for value in [*values, self.default_threshold]:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                raise ValueError(f"thresholds must be probabilities (numbers >= 0), got {value!r}")
        if isinstance(self.threshold, list):  # frozen and hashable: keep a per-class list as a tuple
            object.__setattr__(self, "threshold", tuple(self.threshold))


def _settings(settings: DetectionSettings | None, options: Mapping[str, Any]) -> DetectionSettings:
    """The settings a caller gave: a `DetectionSettings`, its fields as keywords, or both (keywords win)."""
    if settings is None:
        return DetectionSettings(**options)
    return replace(settings, **options) if options else settings


def median_filter_time(probabilities: np.ndarray, window: int) -> np.ndarray:
    """Median over `window` (odd) frames along time of a [frames, labels] array, edges replicated."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"median_filter_frames must be a positive odd number of frames, got {window}")
    if window == 1 or probabilities.shape[0] == 0:
        return probabilities
    half = window // 2
    padded = np.pad(probabilities, ((half, half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # [frames, labels, window]
    return np.median(windows, axis=-1)


def _label_names(id2label: Mapping[int, str] | Sequence[str] | None, num_labels: int) -> list[str]:
    if id2label is None:
        return [str(index) for index in range(num_labels)]
    if isinstance(id2label, Mapping):
        names = [id2label.get(index, id2label.get(str(index))) for index in range(num_labels)]
        if any(name is None for name in names):
            raise ValueError(f"id2label must name every one of the {num_labels} classes")
        return [str(name) for name in names]
    if len(id2label) != num_labels:
        raise ValueError(f"id2label has {len(id2label)} names for {num_labels} classes")
    return [str(name) for name in id2label]


def _class_thresholds(threshold: Thresholds, names: list[str], default_threshold: float) -> np.ndarray:
    """One threshold per class from a float, a per-class list, or a {label or index: threshold} mapping."""
    if isinstance(threshold, (int, float)):
        return np.full(len(names), float(threshold))
    if isinstance(threshold, Mapping):
        thresholds = np.full(len(names), float(default_threshold))
        index_of = {name: index for index, name in enumerate(names)}
        for key, value in threshold.items():
            index = key if isinstance(key, int) else index_of.get(key)
            if index is None or not 0 <= index < len(names):
                raise ValueError(f"threshold given for unknown class {key!r}; classes are {names}")
            thresholds[index] = float(value)
        return thresholds
    thresholds = np.asarray(threshold, dtype=np.float64)
    if thresholds.shape != (len(names),):
        raise ValueError(f"threshold list has {thresholds.size} values for {len(names)} classes")
    return thresholds


def detect_events(
    frame_probabilities: np.ndarray | torch.Tensor,
    frame_duration_s: float,
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    threshold: Thresholds = 0.5,
    median_filter_frames: int = 1,
    min_duration_s: float = 0.0,
    min_gap_s: float = 0.0,
    default_threshold: float = 0.5,
    offset_s: float = 0.0,
) -> list[dict]:
    """Events from frame probabilities: runs of frames at or above the class threshold.

    Args:
        frame_probabilities: [frames, labels] probabilities (for HTS-AT `sigmoid(framewise_logits[i])`).
        frame_duration_s: seconds per frame. For one HTS-AT clip of `d` seconds: `d / 1024` (the 1024 frames
            span the whole input, whatever its length).
        id2label: class names (`model.config.id2label`) or a list; default: the class indices as strings.
        threshold: one value for all classes, one per class (list), or `{label or index: value}` (classes not
            named get `default_threshold`).
        median_filter_frames: odd length of a median filter along time applied first (1 = none); removes
            blips shorter than half of it and fills gaps as short.
        min_duration_s: events shorter than this are dropped (after gaps are merged).
        min_gap_s: events of one class separated by less than this are merged.
        default_threshold: see `threshold`.
        offset_s: added to every time (the start of the analysed audio within a longer file).

    Returns:
        `[{"label", "start", "end", "score"}]` sorted by start then label; times in seconds (an event covering
        frames i..j-1 runs from i·frame_duration_s to j·frame_duration_s); score is the event's peak
        probability after the median filter.
    """
    probabilities = (
        frame_probabilities.detach().cpu().double().numpy()
        if isinstance(frame_probabilities, torch.Tensor)
        else np.asarray(frame_probabilities, dtype=np.float64)
    )
    if probabilities.ndim != 2:
        raise ValueError(f"frame_probabilities must be [frames, labels], got shape {probabilities.shape}")
    if not frame_duration_s > 0:
        raise ValueError(f"frame_duration_s must be positive, got {frame_duration_s}")
    DetectionSettings(threshold, median_filter_frames, min_duration_s, min_gap_s, default_threshold)  # the checks
    names = _label_names(id2label, probabilities.shape[1])
    thresholds = _class_thresholds(threshold, names, default_threshold)
    probabilities = median_filter_time(probabilities, median_filter_frames)

    active = probabilities >= thresholds[None, :]  # [frames, labels]
    edges = np.diff(np.pad(active.astype(np.int8), ((1, 1), (0, 0))), axis=0)  # +1 at starts, -1 after ends
    max_gap_frames = min_gap_s / frame_duration_s
    events = []
    for label_index, name in enumerate(names):
        starts = np.flatnonzero(edges[:, label_index] == 1)
        ends = np.flatnonzero(edges[:, label_index] == -1)  # exclusive
        runs: list[list[int]] = []
        for start, end in zip(starts.tolist(), ends.tolist()):
            if runs and start - runs[-1][1] < max_gap_frames:
                runs[-1][1] = end
            else:
                runs.append([start, end])
        for start, end in runs:
            if (end - start) * frame_duration_s + 1e-9 < min_duration_s:
                continue
            events.append(
                {
                    "label": name,
                    "start": offset_s + start * frame_duration_s,
                    "end": offset_s + end * frame_duration_s,
                    "score": float(probabilities[start:end, label_index].max()),
                }
            )
    events.sort(key=lambda event: (event["start"], event["label"]))
    return events


class EventStream:
    """`detect_events` over frames that arrive in pieces: `add` finalised frame probabilities in time order,
    `finish` returns exactly the events `detect_events` finds on all of them at once, while only a median
    window's worth of frames and one open event per class are held (so events of a 10-hour timeline need no
    10-hour array). Arguments as `detect_events`, with the class names given: a `DetectionSettings`, or its
    fields as keywords."""

    def __init__(
        self,
        frame_duration_s: float,
        names: Sequence[str],
        settings: DetectionSettings | None = None,
        offset_s: float = 0.0,
        **options: Any,
    ):
        if not frame_duration_s > 0:
            raise ValueError(f"frame_duration_s must be positive, got {frame_duration_s}")
        settings = _settings(settings, options)
        self.names = list(names)
        self.thresholds = _class_thresholds(settings.threshold, self.names, settings.default_threshold)
        self.frame_s, self.offset_s = frame_duration_s, offset_s
        self.min_duration_s = settings.min_duration_s
        self.max_gap_frames = settings.min_gap_s / frame_duration_s
        self.width = settings.median_filter_frames
        self.half = settings.median_filter_frames // 2
        self.padded = np.zeros((0, len(self.names)))  # median input not yet filtered (start edge-replicated)
        self.received = 0  # raw frames added
        self.filtered = 0  # frames filtered and thresholded
        labels = len(self.names)
        self.run_start = np.full(labels, -1)  # start of the run of active frames in progress, -1: none
        self.run_max = np.full(labels, -np.inf)
        self.held: list[list | None] = [None] * labels  # the last closed (merged) run [start, end, max], not yet final
        self.events: list[dict] = []

    def add(self, frames: np.ndarray) -> None:
        """Frame probabilities [k, labels] following those added before."""
        frames = np.asarray(frames, dtype=np.float64)
        if len(frames) == 0:
            return
        if self.received == 0 and self.half:
            frames = np.concatenate([np.repeat(frames[:1], self.half, axis=0), frames])  # edge at the start
        self.received += len(frames) - (self.half if self.received == 0 else 0)
        self.padded = np.concatenate([self.padded, frames])
        self._filter_ready()

    def _filter_ready(self) -> None:
        ready = len(self.padded) - self.width + 1  # frames whose whole median window is here
        if ready <= 0:
            return
        if self.width == 1:
            values = self.padded
        else:
            windows = np.lib.stride_tricks.sliding_window_view(
                self.padded[: ready + self.width - 1], self.width, axis=0
            )
            values = np.median(windows, axis=-1)
        self._threshold(values[:ready])
        self.padded = self.padded[ready:].copy()

    def _threshold(self, values: np.ndarray) -> None:
        first = self.filtered
        self.filtered += len(values)
        active = values >= self.thresholds[None, :]
        was_active = (self.run_start >= 0)[None, :]
        edges = np.diff(np.concatenate([was_active, active]).astype(np.int8), axis=0)  # +1 run starts, -1 run ends
        for label in np.flatnonzero(active.any(axis=0) | was_active[0]):
            column = values[:, label]
            starts = np.flatnonzero(edges[:, label] == 1).tolist()
            ends = np.flatnonzero(edges[:, label] == -1).tolist()
            if self.run_start[label] >= 0:
                starts = [None, *starts]  # the run in progress continues from an earlier piece
            for index, start in enumerate(starts):
                end = ends[index] if index < len(ends) else None
                segment = column[(start or 0) : end]
                peak = float(segment.max()) if len(segment) else -np.inf
                if start is not None:
                    self.run_start[label], self.run_max[label] = first + start, peak
                else:
                    self.run_max[label] = max(self.run_max[label], peak)
                if end is not None:
                    self._close(label, first + end)

    def _close(self, label: int, end: int) -> None:
        start, peak = int(self.run_start[label]), float(self.run_max[label])
        self.run_start[label], self.run_max[label] = -1, -np.inf
        held = self.held[label]
        if held is not None and start - held[1] < self.max_gap_frames:
            held[1], held[2] = end, max(held[2], peak)
            return
        self._emit(label, held)
        self.held[label] = [start, end, peak]

    def _emit(self, label: int, run: list | None) -> None:
        if run is None or (run[1] - run[0]) * self.frame_s + 1e-9 < self.min_duration_s:
            return
        self.events.append(
            {
                "label": self.names[label],
                "start": self.offset_s + run[0] * self.frame_s,
                "end": self.offset_s + run[1] * self.frame_s,
                "score": run[2],
            }
        )

    def finish(self) -> list[dict]:
        """The events, sorted by start then label, as `detect_events` returns them."""
        if self.received and self.half:
            self.padded = np.concatenate(
                [self.padded, np.repeat(self.padded[-1:], self.half, axis=0)]
            )  # edge at the end
            self._filter_ready()
        for label in np.flatnonzero(self.run_start >= 0):
            self._close(label, self.filtered)
        for label, run in enumerate(self.held):
            self._emit(label, run)
        self.held = [None] * len(self.names)
        self.events.sort(key=lambda event: (event["start"], event["label"]))
        return self.events


@dataclass
class FrameProbabilities:
    """A file's timeline: `probabilities` [frames, labels] with `frame_s` seconds per frame, from the model's
    frame outputs (`source="frames"`, HTS-AT) or from the clip scores of overlapping windows (`"windows"`, AST and
    SSAST: frames are one hop long); `window_s` / `hop_s` are the windows actually run. `resolution_s` is the
    finest time step the model tells apart: HTS-AT's token-semantic head gives one output per
    `config.frames_per_step` frames (repeated over them), AST's timeline one per hop (None: `frame_s`)."""

    probabilities: np.ndarray
    frame_s: float
    source: Literal["frames", "windows"]
    window_s: float
    hop_s: float
    resolution_s: float | None = None

    def __post_init__(self):
        if self.resolution_s is None:
            self.resolution_s = self.frame_s


class _Timeline:
    """Window probabilities averaged onto a frame grid as they arrive. Frames no later window can reach are
    finalised (sum / count, as float32) and handed to `sink` (the event search) and, with `keep`, stored: a
    compact [frames, labels] array. float64 sums are held only for the frames still open."""

    def __init__(self, num_labels: int, sink: Callable[[np.ndarray], None] | None = None, keep: bool = True):
        self.sink, self.keep = sink, keep
        self.finished: list[np.ndarray] = []
        self.finished_frames = 0
        self.open_frames = 0  # frames after the finished ones that have received something
        self.open_sum = np.zeros((0, num_labels))  # capacity >= open_frames rows
        self.open_count = np.zeros((0, 1))

    def add(self, offset: int, probabilities: np.ndarray) -> None:
        """Add [frames, labels] from frame `offset` on."""
        first = offset - self.finished_frames
        last = first + len(probabilities)
        if last > len(self.open_sum):  # grow by doubling: adding windows one by one stays linear
            capacity = max(last, 2 * len(self.open_sum))
            self.open_sum = np.concatenate(
                [self.open_sum, np.zeros((capacity - len(self.open_sum), self.open_sum.shape[1]))]
            )
            self.open_count = np.concatenate([self.open_count, np.zeros((capacity - len(self.open_count), 1))])
        self.open_sum[first:last] += probabilities
        self.open_count[first:last] += 1
        self.open_frames = max(self.open_frames, last)

    def _hand_over(self, frames: np.ndarray) -> None:
        if len(frames) == 0:
            return
        if self.sink is not None:
            self.sink(frames)
        if self.keep:
            self.finished.append(frames)
        self.finished_frames += len(frames)

    def finish_before(self, frame: int) -> None:
        """Frames before `frame` receive nothing more: finalise them."""
        done = min(frame - self.finished_frames, self.open_frames)
        if done <= 0:
            return
        frames = (self.open_sum[:done] / np.maximum(self.open_count[:done], 1)).astype(np.float32)
        remaining = np.zeros_like(self.open_sum)
        remaining[: self.open_frames - done] = self.open_sum[done : self.open_frames]
        counts = np.zeros_like(self.open_count)
        counts[: self.open_frames - done] = self.open_count[done : self.open_frames]
        self.open_sum, self.open_count = remaining, counts
        self.open_frames -= done
        self._hand_over(frames)

    def result(self, length: int) -> np.ndarray | None:
        """Finalise up to `length` frames (the end of the audio: frames never reached are 0, later ones dropped);
        the [length, labels] float32 timeline when kept."""
        labels = self.open_sum.shape[1]
        rest = max(0, length - self.finished_frames)
        frames = np.zeros((rest, labels), np.float32)
        used = min(rest, self.open_frames)
        frames[:used] = self.open_sum[:used] / np.maximum(self.open_count[:used], 1)
        self.open_frames = 0
        self._hand_over(frames)
        if not self.keep:
            return None
        probabilities = np.concatenate(self.finished) if self.finished else np.zeros((0, labels), np.float32)
        return probabilities[:length]


def frame_probabilities(
    classifier: AudioClassifier,
    waveform: np.ndarray,
    window_s: float | None = None,
    hop_s: float | None = None,
    *,
    progress: bool | None = None,
    name: str = "<waveform>",
) -> FrameProbabilities:
    """Frame probabilities over a whole mono waveform at `classifier.sampling_rate`.

    The audio is cut into windows (default: the model's input, never longer) every `hop_s` seconds (default: half
    a window) on one grid, the last window zero-padded. HTS-AT: each window's `sigmoid(framewise_logits)` is
    placed on the timeline at the frame nearest to its start; AST / SSAST: each window's clip probabilities
    (sigmoid, or softmax for single-label models) fill the hop-long frames whose centres lie in the window.
    Overlaps are averaged; frames past the end of the audio are dropped. The probabilities are float32.
    """
    waveform = as_mono_waveform(waveform, name)
    timeline, _ = stream_frame_probabilities(
        classifier, [waveform], window_s, hop_s, progress=progress, name=name, expected_samples=len(waveform)
    )
    return timeline


def stream_frame_probabilities(
    classifier: AudioClassifier,
    blocks: Iterable[np.ndarray],
    window_s: float | None = None,
    hop_s: float | None = None,
    *,
    progress: bool | None = None,
    name: str = "<waveform>",
    expected_samples: int | None = None,
    frames_sink: Callable[[float, int], Callable[[np.ndarray], None]] | None = None,
    keep_frames: bool = True,
) -> tuple[FrameProbabilities, int]:
    """`(frame_probabilities, samples)` of audio given as consecutive mono blocks at `classifier.sampling_rate`
    (`classifier.stream(path)`): windows run as the blocks arrive and only the frame timeline is kept, so memory
    grows with frames × labels (float32), not with the audio. Equal to `frame_probabilities` of the concatenated
    blocks.

    `frames_sink(frame_s, num_labels)`, when given, makes a function that receives the finalised frames in time
    order (e.g. `EventStream.add`); with `keep_frames=False` the timeline is not stored (`probabilities` None)."""
    rate = classifier.sampling_rate
    window, hop = classifier.window_sizes(window_s, hop_s)
    if window is None:  # a model without a fixed input and no window asked: 10 s windows
        window, hop = classifier.window_sizes(10.0, hop_s)
        window = window if window is not None else 10 * rate
        hop = hop if hop is not None else window // 2
    from_frames = classifier.has_frame_outputs
    if from_frames:
        # the model's frames span what it was fed: the extractor's fixed clip (window zero- or repeat-filled) or the window
        span = classifier.input_samples if classifier.input_samples is not None else window
        frame_s = None  # known from the first batch (frames per window)
    else:
        frame_s = hop / rate
        frames_per_window = max(1, math.ceil(window / hop - 0.5))  # hop-long frames whose centre is in the window
    timeline = None
    windows = WindowStream(blocks, window, hop, pad_end=True)
    total_windows = None if expected_samples is None else num_windows(expected_samples, window, hop, pad_end=True)
    for batch in classifier.run_window_stream(windows, total_windows=total_windows, progress=progress, name=name):
        if from_frames:
            if batch.framewise_logits is None:
                raise InferenceError(f"{type(classifier.model).__name__} returned no framewise_logits")
            window_probabilities = torch.sigmoid(
                torch.from_numpy(batch.framewise_logits)
            ).numpy()  # [B, frames, labels]
            if frame_s is None:
                frame_s = span / rate / window_probabilities.shape[1]
                frames_per_window = min(window_probabilities.shape[1], math.ceil(window / rate / frame_s - 1e-9))
        else:
            window_probabilities = classifier.scores(batch.logits)[:, None, :]  # [B, 1, labels]
        if timeline is None:
            labels = window_probabilities.shape[2]
            timeline = _Timeline(labels, None if frames_sink is None else frames_sink(frame_s, labels), keep_frames)
        for start, probabilities in zip(batch.starts, window_probabilities):
            offset = round(start / rate / frame_s)
            # HTS-AT: the window's first frames; AST: its one clip score broadcast over the frames it covers
            covered = (
                probabilities[:frames_per_window]
                if from_frames
                else np.broadcast_to(probabilities, (frames_per_window, probabilities.shape[1]))
            )
            timeline.add(offset, covered)
        timeline.finish_before(round(batch.starts[-1] / rate / frame_s))  # later windows start at or after this frame
    total = windows.num_samples
    length = math.ceil(total / rate / frame_s - 1e-9)
    return (
        FrameProbabilities(
            probabilities=timeline.result(length),
            frame_s=frame_s,
            source="frames" if from_frames else "windows",
            window_s=window / rate,
            hop_s=hop / rate,
            resolution_s=frame_s * getattr(classifier.config, "frames_per_step", 1) if from_frames else frame_s,
        ),
        total,
    )


@dataclass
class Detection:
    """Events of one file or waveform, with the timeline they were found on (for plots).

    `events`: `[{"label", "start", "end", "score"}]` (see `detect_events`); `frame_probabilities`
    [frames, labels] in the order of `label_names`, `frame_s` seconds per frame; `source` "frames" (HTS-AT frame
    outputs) or "windows" (AST / SSAST: clip scores of overlapping windows, event times with the resolution of
    the hop); `resolution_s` the time step event boundaries fall on (see `FrameProbabilities`).
    """

    path: str
    duration: float
    events: list[dict]
    source: Literal["frames", "windows"]
    frame_s: float
    window_s: float
    hop_s: float
    frame_probabilities: np.ndarray | None = field(repr=False, compare=False)  # None: not kept (keep_frames=False)
    label_names: list[str] = field(default_factory=list, repr=False, compare=False)
    resolution_s: float | None = None

    def __post_init__(self):
        if self.resolution_s is None:
            self.resolution_s = self.frame_s

    @property
    def resolution_note(self) -> str:
        if self.source == "frames":
            frames = round(self.resolution_s / self.frame_s)
            return (
                f"frame outputs: event times to {self.resolution_s:g} s, the model's time step "
                f"({frames} frames of {self.frame_s * 1000:.1f} ms share one output)"
            )
        return (
            f"clip scores of {self.window_s:g} s windows every {self.hop_s:g} s (this model has no frame outputs): "
            f"event times are coarse, to {self.frame_s:g} s"
        )

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "duration": self.duration,
            "source": self.source,
            "resolution_s": self.resolution_s,
            "frame_s": self.frame_s,
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "events": self.events,
        }


def detect(
    classifier: AudioClassifier,
    waveform: np.ndarray,
    *,
    name: str = "<waveform>",
    window_s: float | None = None,
    hop_s: float | None = None,
    progress: bool | None = None,
    settings: DetectionSettings | None = None,
    **options: Any,
) -> Detection:
    """Events in a mono waveform at `classifier.sampling_rate`: `frame_probabilities` then `detect_events`.
    `settings` (`DetectionSettings`) or its fields as keywords (threshold, median_filter_frames,
    min_duration_s, min_gap_s, default_threshold; keywords override `settings`)."""
    waveform = as_mono_waveform(waveform, name)
    return detect_blocks(
        classifier,
        [waveform],
        name=name,
        window_s=window_s,
        hop_s=hop_s,
        progress=progress,
        expected_samples=len(waveform),
        settings=_settings(settings, options),
    )


def detect_blocks(
    classifier: AudioClassifier,
    blocks: Iterable[np.ndarray],
    *,
    name: str = "<waveform>",
    window_s: float | None = None,
    hop_s: float | None = None,
    progress: bool | None = None,
    expected_samples: int | None = None,
    keep_frames: bool = True,
    frames_observer: Callable[[np.ndarray], None] | None = None,
    settings: DetectionSettings | None = None,
    **options: Any,
) -> Detection:
    """`detect` of audio given as consecutive mono blocks (`classifier.stream(path)`), run as they arrive; equal to
    `detect` of the concatenated blocks. Events are searched as the frames are finalised (`EventStream`), so with
    `keep_frames=False` (no `frame_probabilities`, e.g. no plot wanted) memory does not grow with the audio at
    all; with it, the float32 timeline (frames × labels) is kept. `frames_observer`, when given, also receives the
    finalised frames in time order (e.g. to sum them without keeping them). `settings`/keywords as in `detect`."""
    settings = _settings(settings, options)
    searches: list[EventStream] = []

    def event_search(frame_s: float, num_labels: int) -> Callable[[np.ndarray], None]:
        searches.append(EventStream(frame_s, _label_names(classifier.label_names, num_labels), settings))
        if frames_observer is None:
            return searches[0].add

        def both(frames: np.ndarray) -> None:
            searches[0].add(frames)
            frames_observer(frames)

        return both

    timeline, num_samples = stream_frame_probabilities(
        classifier,
        blocks,
        window_s,
        hop_s,
        progress=progress,
        name=name,
        expected_samples=expected_samples,
        frames_sink=event_search,
        keep_frames=keep_frames,
    )
    events = searches[0].finish()
    return Detection(
        path=name,
        duration=num_samples / classifier.sampling_rate,
        events=events,
        source=timeline.source,
        frame_s=timeline.frame_s,
        window_s=timeline.window_s,
        hop_s=timeline.hop_s,
        frame_probabilities=timeline.probabilities,
        label_names=classifier.label_names,
        resolution_s=timeline.resolution_s,
    )


def detect_stream(
    classifier: AudioClassifier,
    path: str | Path,
    *,
    window_s: float | None = None,
    hop_s: float | None = None,
    progress: bool | None = None,
    keep_frames: bool = True,
    settings: DetectionSettings | None = None,
    **options: Any,
) -> Detection:
    """`detect` of a file decoded as a stream while its windows run (`detect_blocks`)."""
    settings = _settings(settings, options)  # before decoding: a bad setting fails at once
    info, blocks = classifier.stream(path)
    return detect_blocks(
        classifier,
        blocks,
        name=str(path),
        window_s=window_s,
        hop_s=hop_s,
        progress=progress,
        expected_samples=classifier.expected_samples(info),
        keep_frames=keep_frames,
        settings=settings,
    )


def detect_files(
    classifier: AudioClassifier,
    paths: Iterable[str | Path],
    *,
    window_s: float | None = None,
    hop_s: float | None = None,
    progress: bool | None = None,
    keep_frames: bool = True,
    settings: DetectionSettings | None = None,
    **options: Any,
) -> Iterator[Detection | UnreadableFile]:
    """`detect` on each file, decoded as a stream (a background thread decodes ahead while the model runs);
    unreadable files are yielded as `UnreadableFile`s and the others still analysed."""
    settings = _settings(settings, options)
    for path in paths:
        path = os.fspath(path)
        try:
            yield detect_stream(
                classifier,
                path,
                window_s=window_s,
                hop_s=hop_s,
                progress=progress,
                keep_frames=keep_frames,
                settings=settings,
            )
        except (UnreadableAudioError, FileNotFoundError) as error:
            yield UnreadableFile(path, str(error))


def _classifier_of(model, feature_extractor, batch_size: int) -> AudioClassifier:
    if isinstance(model, AudioClassifier):
        return model
    return AudioClassifier.from_model(model, feature_extractor, batch_size=batch_size)


def file_frame_probabilities(
    model,
    feature_extractor,
    audio: str | Path | np.ndarray,
    window_s: float | None = None,
    hop_s: float | None = None,
    sampling_rate: int | None = None,
    batch_size: int = 4,
) -> tuple[np.ndarray, float]:
    """`(probabilities [frames, labels], seconds per frame)` of a file or array for an in-memory model and its
    feature extractor (or an `AudioClassifier` as `model`); see `frame_probabilities`."""
    from .feature_extraction import resample

    classifier = _classifier_of(model, feature_extractor, batch_size)
    if isinstance(audio, (str, Path)):
        info, blocks = classifier.stream(audio)
        timeline, _ = stream_frame_probabilities(
            classifier, blocks, window_s, hop_s, name=str(audio), expected_samples=classifier.expected_samples(info)
        )
    else:
        if sampling_rate is None:
            raise ValueError("sampling_rate is required when audio is an array")
        waveform = resample(audio, sampling_rate, classifier.sampling_rate)
        timeline = frame_probabilities(classifier, waveform, window_s, hop_s)
    return timeline.probabilities, timeline.frame_s


def detect_file(
    model,
    feature_extractor,
    path: str | Path,
    window_s: float | None = None,
    hop_s: float | None = None,
    batch_size: int = 4,
    settings: DetectionSettings | None = None,
    **options: Any,
) -> list[dict]:
    """Events in an audio file of any length for an in-memory model and its feature extractor (or an
    `AudioClassifier` as `model`): `detect` on the decoded file; `settings`/keywords as in `detect`."""
    settings = _settings(settings, options)
    classifier = _classifier_of(model, feature_extractor, batch_size)
    return detect_stream(classifier, path, window_s=window_s, hop_s=hop_s, settings=settings).events
