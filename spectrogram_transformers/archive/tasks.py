"""The tasks of `classify` and `detect` for `run_archive`: one decoded input -> one output row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..inference import AudioClassifier
from .inputs import ArchiveInput

if TYPE_CHECKING:
    from ..detection import DetectionSettings

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
        prediction = self.classifier.classify(
            waveform, name=item.name, top_k=self.top_k, window=self.window, hop=self.hop, progress=False
        )
        return self._row(prediction)

    def from_blocks(
        self, blocks: Iterable[np.ndarray], item: ArchiveInput, expected_samples: int | None
    ) -> dict[str, Any]:
        """The same row from a long file's blocks: windows run as they arrive, window scores kept only for `windows`."""
        prediction = self.classifier.classify_blocks(
            blocks, name=item.name, top_k=self.top_k, window=self.window, hop=self.hop, progress=False,
            keep_windows=self.windows, expected_samples=expected_samples,
        )  # fmt: skip
        return self._row(prediction)

    def _row(self, prediction) -> dict[str, Any]:
        row = {"duration_s": prediction.duration, "labels": label_scores(prediction.labels)}
        if self.windows:
            row["windows"] = [
                {"start": window.start, "end": window.end, "labels": label_scores(window.labels)}
                for window in prediction.windows
            ]
        return row


@dataclass
class DetectTask:
    """Row: `duration_s`, `labels` (top-k of the mean frame probabilities), `events` ([{"label", "start", "end",
    "score"}]), and the `source` ("frames" or "windows") and `resolution_s` of the timeline they were found on."""

    classifier: AudioClassifier
    settings: DetectionSettings
    window: float | None = None
    hop: float | None = None
    top_k: int = 5

    @property
    def sampling_rate(self) -> int:
        return self.classifier.sampling_rate

    def __call__(self, waveform: np.ndarray, item: ArchiveInput) -> dict[str, Any]:
        from ..detection import detect

        detection = detect(
            self.classifier,
            waveform,
            name=item.name,
            window_s=self.window,
            hop_s=self.hop,
            progress=False,
            settings=self.settings,
        )
        return self._row(detection, detection.frame_probabilities.mean(axis=0))

    def from_blocks(
        self, blocks: Iterable[np.ndarray], item: ArchiveInput, expected_samples: int | None
    ) -> dict[str, Any]:
        """The same row from a long file's blocks: no frame timeline is kept, the frames are summed as they are
        finalised (row by row in float32, as `mean(axis=0)` adds them, so the labels are the same)."""
        from ..detection import detect_blocks

        frame_sum: list[np.ndarray] = []
        counted = [0]

        def add_frames(frames: np.ndarray) -> None:
            if not frame_sum:
                frame_sum.append(np.zeros(frames.shape[1], dtype=np.float32))
            for frame in frames:
                frame_sum[0] += frame
            counted[0] += len(frames)

        detection = detect_blocks(
            self.classifier, blocks, name=item.name, window_s=self.window, hop_s=self.hop, progress=False,
            expected_samples=expected_samples, keep_frames=False, frames_observer=add_frames, settings=self.settings,
        )  # fmt: skip
        return self._row(detection, np.true_divide(frame_sum[0], counted[0]))

    def _row(self, detection, mean: np.ndarray) -> dict[str, Any]:
        order = np.argsort(-mean, kind="stable")[: self.top_k]
        return {
            "duration_s": detection.duration,
            "labels": label_scores((detection.label_names[index], mean[index]) for index in order),
            "events": detection.events,
            "source": detection.source,
            "resolution_s": detection.frame_s,
        }
