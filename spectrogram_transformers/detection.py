"""Sound-event detection with HTS-AT's frame-level output: events with labels, start and end times in seconds.

HTS-AT (Chen et al., ICASSP 2022; https://github.com/RetroCirce/HTS-Audio-Transformer) gives, besides clip
logits, `framewise_logits` [B, 1024, labels] from its token-semantic head. Those 1024 frames live on the model's
stretched time axis: they span the whole audio the model was fed (10 s -> 1001 log-mel frames -> 1024), so one
frame lasts `input duration / 1024` seconds.

`detect_events` turns frame probabilities into events (per-class thresholds, median filtering, minimum
duration); `detect_file` runs a model over a long file in overlapping windows, averages the overlaps into one
timeline and detects on it. The command line (`spectrogram-transformers detect`) is `spectrogram_transformers.cli.detect`.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "detect_events",
    "detect_file",
    "file_frame_probabilities",
    "median_filter_time",
]

Thresholds = float | Sequence[float] | Mapping[str | int, float]


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


def _window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Window starts every `hop` samples until one window reaches the end (the last may run past it)."""
    starts = [0]
    while starts[-1] + window < num_samples:
        starts.append(starts[-1] + hop)
    return starts


@torch.no_grad()
def file_frame_probabilities(
    model,
    feature_extractor,
    audio: str | Path | np.ndarray,
    window_s: float = 10.0,
    hop_s: float = 5.0,
    sampling_rate: int | None = None,
    batch_size: int = 4,
) -> tuple[np.ndarray, float]:
    """Frame probabilities [frames, labels] over a whole file and the seconds per frame.

    The audio is cut into `window_s` windows every `hop_s` seconds (the last one zero-padded), each window goes
    through the feature extractor and the model, and the windows' `sigmoid(framewise_logits)` are placed on one
    timeline (at the frame nearest to their start) and averaged where they overlap. Frames past the end of
    the audio are dropped.
    """
    from .feature_extraction import load_audio, resample

    rate = feature_extractor.sampling_rate
    if isinstance(audio, (str, Path)):
        waveform, _ = load_audio(audio, target_sr=rate)
    else:
        if sampling_rate is None:
            raise ValueError("sampling_rate is required when audio is an array")
        waveform = resample(audio, sampling_rate, rate)
    if not 0 < hop_s <= window_s:
        raise ValueError(f"need 0 < hop_s <= window_s, got hop_s={hop_s}, window_s={window_s}")
    window, hop = round(window_s * rate), round(hop_s * rate)
    clip_samples = getattr(feature_extractor, "clip_samples", None)
    if clip_samples is not None and window > clip_samples:
        raise ValueError(
            f"window_s={window_s} is longer than the feature extractor's clip ({clip_samples / rate:g} s), which "
            "would cut every window; use a window no longer than the clip the model was trained on"
        )
    # the model's frames span what it was fed: the extractor's fixed clip (window zero- or repeat-filled) or the window
    span_s = (clip_samples if clip_samples is not None else window) / rate
    total = waveform.shape[0]
    starts = _window_starts(total, window, hop)
    padded = np.zeros(starts[-1] + window, dtype=np.float32)
    padded[:total] = waveform

    model.eval()
    parameter = next(model.parameters())
    timeline_sum = timeline_count = None
    frame_s = None
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first : first + batch_size]
        clips = [padded[start : start + window] for start in batch_starts]
        features = feature_extractor(clips, sampling_rate=rate, return_tensors="pt")
        output = model(features["input_features"].to(device=parameter.device, dtype=parameter.dtype))
        framewise = getattr(output, "framewise_logits", None)
        if framewise is None:
            raise ValueError(f"{type(model).__name__} has no frame-level output (framewise_logits); use an HTS-AT model")
        probabilities = torch.sigmoid(framewise.float()).cpu().numpy()  # [windows, frames, labels]
        if timeline_sum is None:
            frame_s = span_s / probabilities.shape[1]
            length = int(np.ceil(total / rate / frame_s - 1e-9))
            frames_per_window = min(probabilities.shape[1], int(np.ceil(window_s / frame_s - 1e-9)))
            timeline_sum = np.zeros((length, probabilities.shape[2]))
            timeline_count = np.zeros((length, 1))
        for start, window_probabilities in zip(batch_starts, probabilities):
            offset = int(round(start / rate / frame_s))
            stop = min(offset + frames_per_window, length)
            if stop > offset:
                timeline_sum[offset:stop] += window_probabilities[: stop - offset]
                timeline_count[offset:stop] += 1
    return timeline_sum / np.maximum(timeline_count, 1), frame_s


def detect_file(
    model,
    feature_extractor,
    path: str | Path,
    window_s: float = 10.0,
    hop_s: float = 5.0,
    batch_size: int = 4,
    **detect_kwargs,
) -> list[dict]:
    """Events in an audio file of any length: `file_frame_probabilities` then `detect_events`.

    `detect_kwargs` go to `detect_events` (threshold, median_filter_frames, min_duration_s, ...); labels come
    from `model.config.id2label`.
    """
    probabilities, frame_s = file_frame_probabilities(model, feature_extractor, path, window_s, hop_s, batch_size=batch_size)
    return detect_events(probabilities, frame_s, model.config.id2label, **detect_kwargs)
