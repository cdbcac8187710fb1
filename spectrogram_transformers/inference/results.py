"""What classification returns: per-window and per-file predictions, and a batch of raw model outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class WindowPrediction:
    start: float  # seconds
    end: float
    labels: list[tuple[str, float]]  # top-k (label, probability), best first


@dataclass
class FilePrediction:
    """Classification of one file or waveform.

    `labels` are the top-k of the mean window probabilities; `windows` hold each window's top-k;
    `probabilities` [windows, num_labels] are every window's probabilities (for plots; left out of `to_dict`),
    in the order of `label_names`.
    """

    path: str
    duration: float  # seconds
    labels: list[tuple[str, float]]
    windows: list[WindowPrediction] = field(default_factory=list)
    window_s: float = 0.0  # window length and hop actually used, in seconds
    hop_s: float = 0.0
    probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)
    label_names: list[str] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "duration": self.duration,
            "labels": [list(pair) for pair in self.labels],
            "windows": [
                {"start": w.start, "end": w.end, "labels": [list(pair) for pair in w.labels]} for w in self.windows
            ],
            "window_s": self.window_s,
            "hop_s": self.hop_s,
        }


@dataclass
class WindowBatch:
    """Model outputs of a batch of windows: `starts` in samples, `logits` [B, labels] float32 and, for models
    with frame outputs (HTS-AT), `framewise_logits` [B, frames, labels] float32."""

    starts: list[int]
    logits: np.ndarray
    framewise_logits: np.ndarray | None = None
