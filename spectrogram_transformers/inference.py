"""Run a saved model over audio files and arrays of any format, sampling rate and length.

This module is the one implementation of what `classify` and `detect` (`detection.py`) share: loading a model
(directory, Hub id, in-memory model, or an exported ONNX file) with its feature extractor, choosing the dtype,
cutting a waveform into windows the model sees whole, and running those windows in batches.

Classification: a clip is cut into windows of the model's input length (or `window` seconds, never more than
the model's input) every `hop` seconds; each window is classified and the file gets the mean of the window
probabilities (softmax for single-label models, sigmoid for multi-label ones such as AudioSet taggers).

The command line (`spectrogram-transformers classify`) is `spectrogram_transformers.cli.classify`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .feature_extraction import model_input_samples
from .feature_extraction.kaldi import pad_batch
from .runtime import cpu_supports_bf16

__all__ = [
    "AudioClassifier",
    "FilePrediction",
    "InferenceError",
    "UnreadableFile",
    "WindowBatch",
    "WindowPrediction",
    "classify_files",
    "decode_audio",
    "load_torch_classifier",
    "model_input_samples",
    "prefetch_decoded",
    "resolve_dtype",
    "window_starts",
]

logger = logging.getLogger(__name__)

DTypeName = Literal["auto", "float32", "bfloat16"]
BackendName = Literal["torch", "onnx"]
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16")
BACKENDS: tuple[str, ...] = ("torch", "onnx")


class InferenceError(ValueError):
    """A user's mistake (unreadable audio, a model that cannot classify, a missing tool): the message says what
    to change; the command line prints it as one line."""


# ----------------------------------------------------------------------------------------------------------------
# how much audio a model sees, and the windows that cover a clip
# ----------------------------------------------------------------------------------------------------------------


def window_starts(num_samples: int, window: int, hop: int, *, pad_end: bool = False) -> list[int]:
    """Start samples of the windows covering a clip of `num_samples`.

    Windows start every `hop` samples. `pad_end=False` (classification): the last window is flush with the end of
    the clip, so the tail is never dropped and no window reads past the audio. `pad_end=True` (detection, which
    needs windows on one time grid): windows stay on the grid and the last one may run past the end (the caller
    zero-pads it). A clip no longer than one window is one window.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least one sample, got {window} and {hop}")
    if num_samples <= window:
        return [0]
    if pad_end:
        last = math.ceil((num_samples - window) / hop) * hop  # the first grid start whose window reaches the end
        return list(range(0, last + 1, hop))
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


# ----------------------------------------------------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------------------------------------------------


def _ffmpeg_decode(path: str, sampling_rate: int) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-ac", "1", "-ar", str(sampling_rate), "-f", "f32le", "pipe:1"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise InferenceError(f"could not decode audio {path}: ffmpeg: {reason[-1] if reason else 'no audio in the file'}")
    from .feature_extraction import to_mono_float32

    return to_mono_float32(np.frombuffer(result.stdout, dtype=np.float32), name=path)  # NaN / empty checks


def _soundfile_reads_format(path: str) -> bool:
    import soundfile

    try:
        soundfile.info(path)
        return True
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError):  # unknown or broken formats
        return False


def decode_audio(path: str | os.PathLike, sampling_rate: int) -> np.ndarray:
    """Mono float32 waveform of a file at `sampling_rate`.

    soundfile (libsndfile: WAV, FLAC, OGG, MP3, ...) decodes, soxr resamples. Formats libsndfile does not read
    (AAC/M4A, WMA, video containers) go through ffmpeg when it is installed; otherwise the error says to
    install it. Every failure is an `InferenceError` (or `FileNotFoundError`) naming the file.
    """
    from .feature_extraction import load_audio

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise InferenceError(f"{path} is a directory, not an audio file")
    try:
        waveform, _ = load_audio(path, target_sr=sampling_rate)
        return waveform
    except ValueError as soundfile_error:
        if _soundfile_reads_format(path):  # decoded, but the audio itself is unusable (empty, NaN): no second try
            raise InferenceError(str(soundfile_error)) from None
        if shutil.which("ffmpeg") is None:
            raise InferenceError(
                f"{soundfile_error}; formats libsndfile does not read (AAC/M4A, WMA, video) need ffmpeg, which is "
                "not installed (apt-get install ffmpeg / brew install ffmpeg / conda install ffmpeg)"
            ) from None
        return _ffmpeg_decode(path, sampling_rate)


@dataclass
class UnreadableFile:
    """A file that could not be decoded, and why."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.reason}


def prefetch_decoded(
    paths: Iterable[str | os.PathLike], decode: Callable[[str], np.ndarray]
) -> Iterator[tuple[str, np.ndarray | UnreadableFile]]:
    """`(path, waveform or UnreadableFile)` for each path, decoding the next file in a background thread while
    the caller computes on the current one (libsndfile and soxr release the GIL). At most two decoded files are
    held at once."""
    paths = [os.fspath(path) for path in paths]

    def safe_decode(path: str) -> np.ndarray | UnreadableFile:
        try:
            return decode(path)
        except (ValueError, OSError) as error:  # InferenceError, FileNotFoundError, soundfile/ffmpeg failures
            return UnreadableFile(path, str(error))

    if not paths:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending = pool.submit(safe_decode, paths[0])
        for index, path in enumerate(paths):
            result = pending.result()
            if index + 1 < len(paths):
                pending = pool.submit(safe_decode, paths[index + 1])
            yield path, result


# ----------------------------------------------------------------------------------------------------------------
# dtype and backend
# ----------------------------------------------------------------------------------------------------------------


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether `device` runs bfloat16 natively (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # the CPU's own flags: oneDNN's check also says yes where bf16 is emulated (slower than float32)
        return cpu_supports_bf16()
    return False


def resolve_dtype(dtype: DTypeName | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype:
    """The torch dtype to run in. "auto" (or None): bfloat16 where the device runs it natively (the bf16 parity
    tests keep top-1 predictions unchanged on the fixture clips), float32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.bfloat16):
            raise InferenceError(f"dtype must be float32 or bfloat16, got {dtype}")
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    raise InferenceError(f"dtype must be one of {DTYPES}, got {dtype!r}")


def load_torch_classifier(model: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """(classifier in eval mode on `device` in `dtype`, its feature extractor) from a directory or Hub id; a
    base or pre-training model (which would get a random head) or a missing extractor is an InferenceError."""
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModelForAudioClassification,
    )

    name = str(model)
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InferenceError(f"cannot load a model from {name}: {first_line}") from None
    architectures = list(getattr(config, "architectures", None) or [])
    wrong_kind = InferenceError(
        f"{name} holds {', '.join(architectures) or f'a {type(config).__name__} model'}, not an audio-classification "
        "model: classify and detect need a fine-tuned classifier (AST, SSAST or HTS-AT ...ForAudioClassification; a "
        "pre-training checkpoint must be fine-tuned first)"
    )
    # a saved base or pre-training model would load into the classifier with a random head: refuse it
    if architectures and not any(architecture.endswith("ForAudioClassification") for architecture in architectures):
        raise wrong_kind
    try:
        loaded = AutoModelForAudioClassification.from_pretrained(name)
    except ValueError:  # a config no audio-classification class is registered for
        raise wrong_kind from None
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise InferenceError(f"{name} has no usable preprocessor_config.json: {str(error).splitlines()[0]}") from None
    return loaded.to(device=device, dtype=dtype).eval(), feature_extractor


def _load_onnx_model(path: str | Path):
    """The exported ONNX model (`export --format onnx`: a directory with model.onnx, or the file) and the feature
    extractor saved beside it."""
    from transformers import AutoFeatureExtractor

    from .onnx_export import OnnxAudioModel

    path = Path(path)
    directory = path.parent if path.suffix == ".onnx" else path
    try:
        model = OnnxAudioModel(str(path))
    except ImportError as error:  # the [onnx] extra is missing
        raise InferenceError(str(error)) from None
    except (FileNotFoundError, OSError, ValueError) as error:
        raise InferenceError(f"cannot load an ONNX model from {path}: {str(error).splitlines()[0]}") from None
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(str(directory))
    except (OSError, ValueError) as error:
        raise InferenceError(f"no feature extractor (preprocessor_config.json) beside {path}: {str(error).splitlines()[0]}") from None
    return model, feature_extractor


# ----------------------------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------------------------


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
            "windows": [{"start": w.start, "end": w.end, "labels": [list(pair) for pair in w.labels]} for w in self.windows],
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


# ----------------------------------------------------------------------------------------------------------------
# the runner
# ----------------------------------------------------------------------------------------------------------------


class AudioClassifier:
    """A trained audio-classification model with its feature extractor, ready to run over windows of audio.

    Args:
        model: a model directory or Hub id (`AutoModelForAudioClassification`), a loaded classification model
            (then pass `feature_extractor`), or, with `backend="onnx"`, an exported `.onnx` file (or its directory)
            with the `preprocessor_config.json` saved beside it.
        device: torch device.
        batch_size: windows per forward pass.
        dtype: "float32", "bfloat16", or "auto" (bfloat16 where the device runs it natively, else float32; an
            in-memory model keeps its own dtype); also a torch dtype. The ONNX backend runs in float32.
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
        if batch_size < 1:
            raise InferenceError(f"batch_size must be >= 1, got {batch_size}")
        if backend not in BACKENDS:
            raise InferenceError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.backend = backend
        if backend == "onnx":
            if dtype not in (None, "auto", "float32", torch.float32):
                raise InferenceError(f"the ONNX backend runs the exported float32 graph; dtype {dtype} is not available")
            self.dtype = torch.float32
            self.model, self.feature_extractor = _load_onnx_model(model)
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
            return f"{name}, ONNX Runtime float32"
        return f"{name}, torch {str(self.dtype).removeprefix('torch.')} on {self.device}"

    # -- windows ---------------------------------------------------------------------------------------------------

    def window_sizes(self, window: float | None, hop: float | None) -> tuple[int, int]:
        """(window, hop) in samples for the requested seconds: the window defaults to the model's input and is
        never longer than it (a longer window would be cut by the feature extractor, so the model would see only
        its start: it is capped, with a warning); the hop defaults to half a window and never exceeds it, so that
        every sample is seen."""
        if (window is not None and not window > 0) or (hop is not None and not hop > 0):
            raise InferenceError(f"window and hop must be positive seconds, got {window} and {hop}")
        window_samples = None if window is None else max(1, round(window * self.sampling_rate))
        if self.input_samples is not None and (window_samples is None or window_samples > self.input_samples):
            if window_samples is not None:
                logger.warning(
                    f"window of {window:g} s is longer than the model's input ({self.input_seconds:.3f} s), which "
                    f"would be cut to its first {self.input_seconds:.3f} s: using {self.input_seconds:.3f} s windows"
                )
            window_samples = self.input_samples
        hop_samples = None if hop is None else max(1, round(hop * self.sampling_rate))
        if hop_samples is None:
            hop_samples = max(1, window_samples // 2) if window_samples is not None else None
        elif window_samples is not None and hop_samples > window_samples:
            logger.warning(
                f"hop of {hop:g} s is longer than the window ({window_samples / self.sampling_rate:.3f} s), which "
                "would leave audio unseen: using a hop of one window"
            )
            hop_samples = window_samples
        return window_samples, hop_samples  # None, None: unbounded model and no window asked: the whole clip

    def features(self, windows: Sequence[np.ndarray]) -> torch.Tensor:
        """Features [B, frames, bins] of mono waveforms at `self.sampling_rate`: one zero-padded batch through the
        extractor's tensor entry point (`extract`), computed on the model's device."""
        device = self.device if self.backend == "torch" else torch.device("cpu")
        batch, lengths = pad_batch([torch.from_numpy(np.asarray(window, dtype=np.float32)) for window in windows], device=device)
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
        from tqdm.auto import tqdm

        starts = window_starts(len(waveform), window, hop, pad_end=pad_end)
        num_batches = math.ceil(len(starts) / self.batch_size)
        show = num_batches > 1 if progress is None else progress
        for first in tqdm(range(0, len(starts), self.batch_size), total=num_batches, disable=not show, desc=name, unit="batch"):
            batch_starts = starts[first : first + self.batch_size]
            windows = []
            for start in batch_starts:
                piece = waveform[start : start + window]
                if pad_end and len(waveform) > window and len(piece) < window:
                    piece = np.pad(piece, (0, window - len(piece)))
                windows.append(piece)
            logits, framewise = self.run(windows)
            yield WindowBatch(batch_starts, logits, framewise)

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
    ) -> FilePrediction:
        """Classify a mono waveform at `self.sampling_rate` by windows.

        Args:
            window: window length in seconds (default and maximum: the model's input duration; a model without a
                fixed input gets the whole clip by default).
            hop: seconds between window starts (default: half a window; at most one window).
            progress: show a tqdm bar (default: when there is more than one batch of windows).
        """
        if top_k < 1:
            raise InferenceError(f"top_k must be >= 1, got {top_k}")
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1 or len(waveform) == 0:
            raise InferenceError(f"{name}: expected a non-empty mono waveform, got shape {waveform.shape}")
        window_samples, hop_samples = self.window_sizes(window, hop)
        if window_samples is None:
            window_samples = hop_samples = len(waveform)
        window_samples = min(window_samples, len(waveform))
        hop_samples = min(hop_samples, window_samples)
        starts, scores = [], []
        for batch in self.run_windows(waveform, window_samples, hop_samples, progress=progress, name=name):
            starts.extend(batch.starts)
            scores.append(self.scores(batch.logits))
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
            path=name,
            duration=len(waveform) / self.sampling_rate,
            labels=self._top(scores.mean(axis=0), top_k),
            windows=windows,
            window_s=window_samples / self.sampling_rate,
            hop_s=hop_samples / self.sampling_rate,
            probabilities=scores,
            label_names=self.label_names,
        )

    def decode(self, path: str | os.PathLike) -> np.ndarray:
        """A file decoded to a mono waveform at `self.sampling_rate` (see `decode_audio`)."""
        return decode_audio(path, self.sampling_rate)

    def classify_file(self, path: str | Path, **kwargs: Any) -> FilePrediction:
        return self.classify(self.decode(path), name=str(path), **kwargs)

    def classify_files(self, paths: Iterable[str | os.PathLike], **kwargs: Any) -> Iterator[FilePrediction | UnreadableFile]:
        """Classify files one after the other, decoding the next while the current one runs; a file that cannot
        be decoded is yielded as an `UnreadableFile` and the others are still classified."""
        for path, waveform in prefetch_decoded(paths, self.decode):
            yield waveform if isinstance(waveform, UnreadableFile) else self.classify(waveform, name=path, **kwargs)


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
