"""The tasks of `classify` and `detect` for `run_archive`: one decoded input -> one output row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..inference import AudioClassifier
from .inputs import ArchiveInput

__all__ = ["ClassifyTask", "DetectTask", "label_scores"]


def label_scores(pairs) -> list[dict[str, Any]]:
    """[(label, score), ...] -> [{"label", "score"}, ...] (the row format of top-k labels)."""
    return [{"label": label, "score": float(score)} for label, score in pairs]


@dataclass
class ClassifyTask:
    """Row: `duration_s`, `labels` (top-k of the mean window probabilities) and, with `windows`, each window's
    `start`, `end` and top-k `labels`."""

    classifier: AudioClassifier
    top_k: int = 5
    window: float | None = None
    hop: float | None = None
    windows: bool = False

    @property
    def sampling_rate(self) -> int:
        return self.classifier.sampling_rate

    def __call__(self, waveform: np.ndarray, item: ArchiveInput) -> dict[str, Any]:
        prediction = self.classifier.classify(waveform, name=item.name, top_k=self.top_k, window=self.window, hop=self.hop, progress=False)
        row = {"duration_s": prediction.duration, "labels": label_scores(prediction.labels)}
        if self.windows:
            row["windows"] = [
                {"start": window.start, "end": window.end, "labels": label_scores(window.labels)} for window in prediction.windows
            ]
        return row


@dataclass
class DetectTask:
    """Row: `duration_s`, `labels` (top-k of the mean frame probabilities), `events` ([{"label", "start", "end",
    "score"}]), and the `source` ("frames" or "windows") and `resolution_s` of the timeline they were found on."""

    classifier: AudioClassifier
    detect_kwargs: dict[str, Any]
    window: float | None = None
    hop: float | None = None
    top_k: int = 5

    @property
    def sampling_rate(self) -> int:
        return self.classifier.sampling_rate

    def __call__(self, waveform: np.ndarray, item: ArchiveInput) -> dict[str, Any]:
        from ..detection import detect

        detection = detect(self.classifier, waveform, name=item.name, window_s=self.window, hop_s=self.hop, progress=False, **self.detect_kwargs)
        mean = detection.frame_probabilities.mean(axis=0)
        order = np.argsort(-mean, kind="stable")[: self.top_k]
        return {
            "duration_s": detection.duration,
            "labels": label_scores((detection.label_names[index], mean[index]) for index in order),
            "events": detection.events,
            "source": detection.source,
            "resolution_s": detection.frame_s,
        }
