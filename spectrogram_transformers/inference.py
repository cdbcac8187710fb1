"""Classify audio files of any format soundfile reads, any sampling rate and any length.

A clip is cut into windows of the model's input length (or `window` seconds) every `hop` seconds, each window is
classified, and the file gets the mean of the window probabilities (softmax for single-label models, sigmoid
for multi-label ones such as AudioSet taggers). Windows are batched; long files show a progress bar.

The command line (`spectrogram-transformers classify`) is `spectrogram_transformers.cli.classify`.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["AudioClassifier", "FilePrediction", "WindowPrediction", "classify_files", "window_starts"]


@dataclass
class WindowPrediction:
    start: float  # seconds
    end: float
    labels: list[tuple[str, float]]  # top-k (label, probability), best first


@dataclass
class FilePrediction:
    path: str
    duration: float  # seconds
    labels: list[tuple[str, float]]  # top-k of the mean window probabilities
    windows: list[WindowPrediction] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Start samples of the windows covering a clip: every `hop` samples, plus a last window flush with the end
    so the tail is never dropped; a clip no longer than one window is one window."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least one sample, got {window} and {hop}")
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


class AudioClassifier:
    """A saved audio-classification model (directory or Hub id) with its feature extractor.

    Args:
        model: model directory (or Hub id) that `AutoModelForAudioClassification` loads.
        device: torch device.
        batch_size: windows per forward pass.
    """

    def __init__(self, model: str | Path, device: str | torch.device = "cpu", batch_size: int = 16):
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = AutoModelForAudioClassification.from_pretrained(str(model)).to(device).eval()
        self.feature_extractor = AutoFeatureExtractor.from_pretrained(str(model))
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        self.multi_label = self.model.config.problem_type == "multi_label_classification"
        self.id2label = self.model.config.id2label

    @property
    def input_seconds(self) -> float | None:
        """Duration the model sees at once (its default window)."""
        from .training.datasets import model_input_samples

        samples = model_input_samples(self.feature_extractor)
        return None if samples is None else samples / self.sampling_rate

    def probabilities(self, windows: list[np.ndarray]) -> np.ndarray:
        """(N, labels) probabilities of N waveforms at `self.sampling_rate`."""
        features = self.feature_extractor(windows, sampling_rate=self.sampling_rate, return_tensors="pt")
        input_name = self.feature_extractor.model_input_names[0]
        with torch.no_grad():
            logits = self.model(**{input_name: features[input_name].to(self.device)}).logits.float()
        scores = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return scores.cpu().numpy()

    def _top(self, scores: np.ndarray, top_k: int) -> list[tuple[str, float]]:
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(self.id2label[int(index)], float(scores[index])) for index in order]

    def classify(
        self,
        waveform: np.ndarray,
        *,
        name: str = "<waveform>",
        top_k: int = 5,
        window: float | None = None,
        hop: float | None = None,
        progress: bool | None = None,
    ) -> FilePrediction:
        """Classify a mono waveform at `self.sampling_rate` by windows.

        Args:
            window: window length in seconds (default: the model's input duration, or the whole clip).
            hop: seconds between window starts (default: half a window).
            progress: show a tqdm bar (default: when there is more than one batch of windows).
        """
        from tqdm.auto import tqdm

        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if (window is not None and window <= 0) or (hop is not None and hop <= 0):
            raise ValueError(f"window and hop must be positive seconds, got {window} and {hop}")
        if len(waveform) == 0:
            raise ValueError(f"{name}: empty audio")
        window = window if window is not None else self.input_seconds
        window_samples = len(waveform) if window is None else max(1, round(window * self.sampling_rate))
        hop_samples = max(1, round(hop * self.sampling_rate)) if hop is not None else max(1, window_samples // 2)
        starts = window_starts(len(waveform), window_samples, hop_samples)
        num_batches = math.ceil(len(starts) / self.batch_size)
        show = num_batches > 1 if progress is None else progress
        scores = []
        for first in tqdm(range(0, len(starts), self.batch_size), total=num_batches, disable=not show, desc=name, unit="batch"):
            chunk = starts[first : first + self.batch_size]
            scores.append(self.probabilities([waveform[start : start + window_samples] for start in chunk]))
        scores = np.concatenate(scores)  # (windows, labels)
        windows = [
            WindowPrediction(
                start=start / self.sampling_rate,
                end=min(start + window_samples, len(waveform)) / self.sampling_rate,
                labels=self._top(row, top_k),
            )
            for start, row in zip(starts, scores)
        ]
        return FilePrediction(
            path=name, duration=len(waveform) / self.sampling_rate, labels=self._top(scores.mean(axis=0), top_k), windows=windows
        )

    def classify_file(self, path: str | Path, **kwargs) -> FilePrediction:
        from .feature_extraction import load_audio

        waveform, _ = load_audio(str(path), target_sr=self.sampling_rate)
        return self.classify(waveform, name=str(path), **kwargs)


def classify_files(
    paths: Sequence[str | Path],
    model: str | Path,
    *,
    top_k: int = 5,
    window: float | None = None,
    hop: float | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool | None = None,
) -> list[FilePrediction]:
    classifier = AudioClassifier(model, device=device, batch_size=batch_size)
    return [classifier.classify_file(path, top_k=top_k, window=window, hop=hop, progress=progress) for path in paths]
