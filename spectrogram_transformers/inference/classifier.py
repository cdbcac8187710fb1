"""`AudioClassifier`: a trained model with its feature extractor, run over windows of audio in batches."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..feature_extraction import model_input_samples, to_mono_float32
from ..feature_extraction.kaldi import pad_batch
from ..feature_extraction.streaming import AudioInfo, WindowStream
from .decoding import UnreadableAudioError, UnreadableFile, decode_audio, stream_decoded
from .dtypes import BackendName, DTypeName, check_runner_arguments, resolve_dtype
from .errors import InferenceError
from .loading import load_onnx_classifier, load_torch_classifier
from .results import FilePrediction, WindowBatch, WindowPrediction
from .windows import batches_of_windows, num_windows, window_and_hop_samples


def as_mono_waveform(waveform: Any, name: str = "<waveform>") -> np.ndarray:
    """The input rules of every entry point (feature extractors, pipeline, `classify`, `detect`): the one
    normalisation `to_mono_float32` (PCM scaled, channels down-mixed, NaN/Inf and non-audio dtypes refused),
    its ValueError/TypeError as an `InferenceError`. A float32 mono array, what decoding gives, is only checked
    (no copy of a long file)."""
    if isinstance(waveform, np.ndarray) and waveform.dtype == np.float32 and waveform.ndim == 1 and waveform.size:
        if not np.isfinite(waveform).all():
            bad = int((~np.isfinite(waveform)).sum())
            raise InferenceError(f"audio ({name}) contains {bad} NaN or infinite sample(s)")
        return waveform
    try:
        return to_mono_float32(waveform, name=name)
    except (ValueError, TypeError) as error:
        raise InferenceError(str(error)) from None


class AudioClassifier:
    """A trained audio-classification model with its feature extractor, ready to run over windows of audio.

    Args:
        model: a model directory or Hub id (`AutoModelForAudioClassification`), a loaded classification model
            (then pass `feature_extractor`), or, with `backend="onnx"`, an exported `.onnx` file (or its directory)
            with the `preprocessor_config.json` saved beside it.
        device: torch device.
        batch_size: windows per forward pass.
        dtype: "float32", "bfloat16", or "auto" (bfloat16 where the device runs it natively, else float32; an
            in-memory model keeps its own dtype); also a torch dtype. The ONNX backend runs the graph as exported
            (float32, or int8-quantised) on float32 features.
        backend: "torch" or "onnx" (ONNX Runtime, `pip install 'spectrogram-transformers[onnx]'`).
        feature_extractor: the extractor of an in-memory `model`.
    """

    def __init__(
        self,
        model: str | Path | torch.nn.Module,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        *,
        dtype: DTypeName | torch.dtype | None = "auto",
        backend: BackendName = "torch",
        feature_extractor=None,
    ):
        check_runner_arguments(batch_size, backend)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.backend = backend
        if backend == "onnx":
            if dtype not in (None, "auto", "float32", torch.float32):
                raise InferenceError(
                    f"the ONNX backend takes float32 features (the graph's precision is fixed at export); dtype {dtype} is not available"
                )
            self.dtype = torch.float32
            self.model, self.feature_extractor = load_onnx_classifier(model)
        else:
            if isinstance(model, torch.nn.Module) and dtype in (None, "auto"):
                dtype = next(model.parameters()).dtype  # an in-memory model is never converted unasked
            self.dtype = resolve_dtype(dtype, self.device)
            if isinstance(model, torch.nn.Module):
                if feature_extractor is None:
                    raise InferenceError("pass the feature_extractor of an in-memory model")
                self.model = model.to(device=self.device, dtype=self.dtype).eval()
                self.feature_extractor = feature_extractor
            else:
                self.model, self.feature_extractor = load_torch_classifier(model, self.device, self.dtype)
        if feature_extractor is not None:
            self.feature_extractor = feature_extractor
        config = self.model.config
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"
        self.id2label = {int(index): str(name) for index, name in config.id2label.items()}
        self.label_names = [self.id2label[index] for index in range(len(self.id2label))]
        self.input_name = self.feature_extractor.model_input_names[0]
        self.input_samples = model_input_samples(self.feature_extractor)
        self.has_frame_outputs = getattr(config, "model_type", None) == "htsat"

    @classmethod
    def from_model(cls, model: torch.nn.Module, feature_extractor, **kwargs) -> AudioClassifier:
        """Wrap an in-memory model; its device and dtype are kept unless given."""
        kwargs.setdefault("device", next(model.parameters()).device)
        return cls(model, feature_extractor=feature_extractor, **kwargs)

    @property
    def config(self):
        """The model's config (id2label, problem_type, ...)."""
        return self.model.config

    @property
    def input_seconds(self) -> float | None:
        """Duration the model sees at once (its default window)."""
        return None if self.input_samples is None else self.input_samples / self.sampling_rate

    @property
    def description(self) -> str:
        """What runs, for messages: e.g. "ASTForAudioClassification, torch bfloat16 on cpu"."""
        name = type(self.model).__name__
        if self.backend == "onnx":
            precision = getattr(self.model, "precision", "float32")  # read from the graph
            return f"{name}, ONNX Runtime {'int8-quantised' if precision == 'int8' else precision}"
        return f"{name}, torch {str(self.dtype).removeprefix('torch.')} on {self.device}"

    # -- windows ---------------------------------------------------------------------------------------------------

    def window_sizes(self, window: float | None, hop: float | None) -> tuple[int, int]:
        """(window, hop) in samples for the requested seconds (see `window_and_hop_samples`)."""
        return window_and_hop_samples(window, hop, self.input_samples, self.sampling_rate)

    def features(self, windows: Sequence[np.ndarray]) -> torch.Tensor:
        """Features [B, frames, bins] of mono waveforms at `self.sampling_rate`: one zero-padded batch through the
        extractor's tensor entry point (`extract`), computed on the model's device."""
        device = self.device if self.backend == "torch" else torch.device("cpu")
        batch, lengths = pad_batch(
            [torch.from_numpy(np.asarray(window, dtype=np.float32)) for window in windows], device=device
        )
        return self.feature_extractor.extract(batch, lengths)[self.input_name]

    def run(self, windows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits [B, labels], framewise_logits [B, frames, labels] or None), float32 numpy, of B waveforms."""
        features = self.features(windows)
        if self.backend == "onnx":
            output = self.model(features)
            logits, framewise = output.logits, getattr(output, "framewise_logits", None)
        else:
            with torch.inference_mode():
                output = self.model(**{self.input_name: features.to(device=self.device, dtype=self.dtype)})
            logits, framewise = output.logits, getattr(output, "framewise_logits", None)

        def as_numpy(values):
            if values is None:
                return None
            if isinstance(values, torch.Tensor):
                return values.float().cpu().numpy()
            return np.asarray(values, dtype=np.float32)

        return as_numpy(logits), as_numpy(framewise)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities of logits: sigmoid for multi-label models, softmax otherwise."""
        logits = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        return (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)).numpy()

    def probabilities(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """(N, labels) probabilities of N waveforms at `self.sampling_rate`."""
        return self.scores(self.run(windows)[0])

    def run_window_stream(
        self,
        windows: Iterable[tuple[int, np.ndarray]],
        *,
        total_windows: int | None = None,
        progress: bool | None = None,
        name: str = "<waveform>",
    ) -> Iterator[WindowBatch]:
        """Model outputs of `(start, samples)` windows (e.g. a `WindowStream` over decoded blocks), run in batches of
        `batch_size` as they arrive. `total_windows` (when known) sizes the progress bar, shown by default when
        there is more than one batch."""
        batches = batches_of_windows(
            windows, self.batch_size, total_windows=total_windows, progress=progress, name=name
        )
        for starts, pieces in batches:
            yield WindowBatch(starts, *self.run(pieces))

    def run_windows(
        self,
        waveform: np.ndarray,
        window: int,
        hop: int,
        *,
        pad_end: bool = False,
        progress: bool | None = None,
        name: str = "<waveform>",
    ) -> Iterator[WindowBatch]:
        """Model outputs of the windows (`window_starts`) of a mono waveform at `self.sampling_rate`, one batch
        of `batch_size` windows at a time. With `pad_end`, the last window is zero-padded to `window` samples."""
        windows = WindowStream([waveform], window, hop, pad_end=pad_end)
        total = num_windows(len(waveform), window, hop, pad_end=pad_end)
        yield from self.run_window_stream(windows, total_windows=total, progress=progress, name=name)

    def stream(self, path: str | os.PathLike, **kwargs: Any) -> tuple[AudioInfo, Iterator[np.ndarray]]:
        """A file as `(header info, mono float32 blocks at self.sampling_rate)` (see `stream_decoded`)."""
        return stream_decoded(path, self.sampling_rate, **kwargs)

    def expected_samples(self, info: AudioInfo) -> int | None:
        """Samples at `self.sampling_rate` the header announces (None when it does not say)."""
        return info.samples_at(self.sampling_rate)

    # -- classification --------------------------------------------------------------------------------------------

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
        keep_windows: bool = True,
    ) -> FilePrediction:
        """Classify a mono waveform at `self.sampling_rate` by windows.

        Args:
            window: window length in seconds (default and maximum: the model's input duration; a model without a
                fixed input gets the whole clip by default).
            hop: seconds between window starts (default: half a window; at most one window).
            progress: show a tqdm bar (default: when there is more than one batch of windows).
            keep_windows: keep each window's scores (`windows`, `probabilities`); without them the result holds
                only the file's labels, whatever the length of the audio.
        """
        waveform = as_mono_waveform(waveform, name)
        return self.classify_blocks(
            [waveform],
            name=name,
            top_k=top_k,
            window=window,
            hop=hop,
            progress=progress,
            keep_windows=keep_windows,
            expected_samples=len(waveform),
        )

    def classify_blocks(
        self,
        blocks: Iterable[np.ndarray],
        *,
        name: str = "<waveform>",
        top_k: int = 5,
        window: float | None = None,
        hop: float | None = None,
        progress: bool | None = None,
        keep_windows: bool = True,
        expected_samples: int | None = None,
    ) -> FilePrediction:
        """`classify` of audio given as consecutive mono blocks at `self.sampling_rate` (`stream` of a file): the
        windows run as the blocks arrive, so memory does not grow with the audio (except the per-window scores
        when `keep_windows`). The result is exactly `classify` of the concatenated blocks: the file's scores are a
        running mean of the window probabilities, summed in window order as `mean` does."""
        if top_k < 1:
            raise InferenceError(f"top_k must be >= 1, got {top_k}")
        window_samples, hop_samples = self.window_sizes(window, hop)
        if window_samples is None:  # a model without a fixed input and no window asked: the whole clip, one window
            whole = np.concatenate(list(blocks))
            blocks, window_samples, hop_samples = [whole], len(whole), len(whole)
        windows = WindowStream(blocks, window_samples, hop_samples)
        total = None if expected_samples is None else num_windows(expected_samples, window_samples, hop_samples)
        score_sum, count = None, 0
        starts, rows = [], []
        for batch in self.run_window_stream(windows, total_windows=total, progress=progress, name=name):
            scores = self.scores(batch.logits)  # (B, labels)
            if score_sum is None:
                score_sum = np.zeros(scores.shape[1], dtype=np.float32)
            for row in scores:  # row by row in float32, as numpy's mean over axis 0 adds them
                score_sum += row
            count += len(scores)
            if keep_windows:
                starts.extend(batch.starts)
                rows.append(scores)
        num_samples = windows.num_samples
        if not num_samples or score_sum is None:
            raise InferenceError(f"{name}: expected a non-empty mono waveform, got no samples")
        window_samples = min(window_samples, num_samples)  # a clip shorter than a window is one window: all of it
        hop_samples = min(hop_samples, window_samples)
        probabilities = np.concatenate(rows) if keep_windows else None
        windows_out = [
            WindowPrediction(
                start=start / self.sampling_rate,
                end=min(start + window_samples, num_samples) / self.sampling_rate,
                labels=self._top(row, top_k),
            )
            for start, row in zip(starts, probabilities if keep_windows else [])
        ]
        return FilePrediction(
            path=name,
            duration=num_samples / self.sampling_rate,
            labels=self._top(np.true_divide(score_sum, count), top_k),
            windows=windows_out,
            window_s=window_samples / self.sampling_rate,
            hop_s=hop_samples / self.sampling_rate,
            probabilities=probabilities,
            label_names=self.label_names,
        )

    def decode(self, path: str | os.PathLike) -> np.ndarray:
        """A whole file decoded to a mono waveform at `self.sampling_rate` (see `decode_audio`; `stream` for long
        files)."""
        return decode_audio(path, self.sampling_rate)

    def classify_file(self, path: str | Path, **kwargs: Any) -> FilePrediction:
        """`classify` of a file, decoded as a stream while its windows run (memory does not grow with the file;
        pass `keep_windows=False` to keep no per-window scores either)."""
        info, blocks = self.stream(path)
        return self.classify_blocks(blocks, name=str(path), expected_samples=self.expected_samples(info), **kwargs)

    def classify_files(
        self, paths: Iterable[str | os.PathLike], **kwargs: Any
    ) -> Iterator[FilePrediction | UnreadableFile]:
        """Classify files one after the other, each decoded as a stream (a background thread decodes ahead while
        the model runs); a file that cannot be decoded is yielded as an `UnreadableFile` and the others are still
        classified."""
        for path in paths:
            path = os.fspath(path)
            try:
                yield self.classify_file(path, **kwargs)
            except (UnreadableAudioError, FileNotFoundError) as error:
                yield UnreadableFile(path, str(error))


def classify_files(
    paths: Sequence[str | Path],
    model: str | Path,
    *,
    top_k: int = 5,
    window: float | None = None,
    hop: float | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    dtype: DTypeName = "auto",
    backend: BackendName = "torch",
    progress: bool | None = None,
) -> list[FilePrediction | UnreadableFile]:
    """Classify files with a model directory; unreadable files come back as `UnreadableFile`s in their place."""
    classifier = AudioClassifier(model, device=device, batch_size=batch_size, dtype=dtype, backend=backend)
    return list(classifier.classify_files(paths, top_k=top_k, window=window, hop=hop, progress=progress))
