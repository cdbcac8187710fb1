"""Run a saved model over audio files and arrays of any format, sampling rate and length.

This package is the one implementation of what `classify` and `detect` (`detection.py`) share: loading a model
(directory, Hub id, in-memory model, or an exported ONNX file) with its feature extractor, choosing the dtype,
cutting a waveform into windows the model sees whole, and running those windows in batches.

Classification: a clip is cut into windows of the model's input length (or `window` seconds, never more than
the model's input) every `hop` seconds; each window is classified and the file gets the mean of the window
probabilities (softmax for single-label models, sigmoid for multi-label ones such as AudioSet taggers).

The command line (`spectrogram-transformers classify`) is `spectrogram_transformers.cli.classify`.

Embeddings (`embeddings`): the same windows through the encoder alone (`AudioEmbedder`, `embed_files`): each
window's `pooler_output` and, on request, its tokens on a (time, frequency) grid; a file gets the mean of its
window vectors. Any model directory of the package loads, SSAST pre-training checkpoints included.

Modules, one job each: `windows` (window starts), `decoding` (files to waveforms or streams of blocks, prefetching), `dtypes` (dtype and
backend), `loading` (PyTorch or ONNX model + feature extractor), `results` (prediction dataclasses),
`classifier` (`AudioClassifier`, the runner) and `embeddings` (`AudioEmbedder`). Everything public is importable
from here.
"""

from ..feature_extraction import model_input_samples
from ..feature_extraction.streaming import AudioInfo, WindowStream
from .classifier import AudioClassifier, classify_files
from .decoding import UnreadableAudioError, UnreadableFile, decode_audio, prefetch_decoded, read_ahead, stream_decoded
from .dtypes import BACKENDS, DTYPES, BackendName, DTypeName, bf16_supported, resolve_dtype
from .embeddings import SHORT_CLIP_MODES, AudioEmbedder, FileEmbedding, ShortClipMode, embed_files, token_grid
from .errors import InferenceError
from .loading import load_onnx_classifier, load_torch_classifier, load_torch_encoder
from .results import FilePrediction, WindowBatch, WindowPrediction
from .windows import window_starts

__all__ = [
    "BACKENDS",
    "DTYPES",
    "SHORT_CLIP_MODES",
    "AudioClassifier",
    "AudioEmbedder",
    "AudioInfo",
    "BackendName",
    "DTypeName",
    "FileEmbedding",
    "FilePrediction",
    "InferenceError",
    "ShortClipMode",
    "UnreadableAudioError",
    "UnreadableFile",
    "WindowBatch",
    "WindowPrediction",
    "WindowStream",
    "bf16_supported",
    "classify_files",
    "decode_audio",
    "embed_files",
    "load_onnx_classifier",
    "load_torch_classifier",
    "load_torch_encoder",
    "model_input_samples",
    "prefetch_decoded",
    "read_ahead",
    "resolve_dtype",
    "stream_decoded",
    "token_grid",
    "window_starts",
]
