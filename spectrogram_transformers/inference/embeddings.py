"""Audio embeddings: the encoder's pooled vector per clip or file, and its tokens laid out on a time grid.

The vectors are the models' own outputs, nothing re-implemented: the pooled vector of a window is the base
model's `pooler_output` (AST: the mean of its prefix tokens, cls and distillation; SSAST: the mean of its patch
tokens, or of its prefix tokens for `pooling="cls"` models; HTS-AT: the mean of its final tokens, the original's
`latent_output`), and the tokens are its `last_hidden_state`. A model directory of any kind loads: a fine-tuned
classifier, an SSAST pre-training checkpoint, a bare encoder (`load_torch_encoder`: `AutoModel` keeps the encoder
and drops the heads).

Files run on the same core as `classify`: the same decoding (any format and sampling rate), windows of the model's
input every half window (`window_starts`), batches of windows, dtype choice. A file's embedding is the mean of
its window vectors; the window vectors are kept.

Tokens (`tokens=True`) come in ONE layout for every family, `(windows, time, frequency, hidden)`, so that
`tokens.mean(axis=2)` is one embedding per time step (`frame_embeddings`) whatever the patch geometry:
- AST / SSAST: the patch grid (the model orders it frequency-major, `f·T + t`), transposed to time first; the
  prefix tokens (cls, distillation) are `prefix_tokens`. Frame models (SSAST 128×2 patches) have frequency 1.
- HTS-AT: the final 8×8 token grid regrouped in time order (`regroup_tokens_by_time`: the image stacks four time
  chunks along its height), i.e. 32 time steps × 2 frequency rows for the 256×256 models.
Time step `t` of window `w` starts at `token_times[w, t]` seconds; steps past the end of a short clip are padding.

Short clips (shorter than the model's input; see docs/embeddings.md for the authors' advice):
- `short_clip="pad"` (default): the clip is padded to the model's input as in training and `classify`. AST's
  pooled vector comes from its prefix tokens, which attend to the whole input and learn to ignore the padding;
  SSAST's mean-pooled vector averages the padding tokens in.
- `short_clip="crop"`: AST / SSAST see only the clip: features of the clip's own length (at least one patch,
  rounded up to whole patches), positional embedding cut to it (`interpolate_pos_encoding=True`: the middle cut
  the original fine-tuning code applies to shorter inputs). HTS-AT cannot crop: its Swin windows need the whole
  image; its feature extractor pads or repeats the clip (`clip_pad_mode`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..feature_extraction import WindowStream, model_input_samples
from ..feature_extraction.kaldi import kaldi_frame_sizes, pad_batch
from .decoding import UnreadableAudioError, UnreadableFile, decode_audio, stream_decoded
from .dtypes import BackendName, DTypeName, check_runner_arguments, resolve_dtype
from .errors import InferenceError
from .loading import ENCODER_MODEL_TYPES, load_torch_encoder
from .windows import batches_of_windows, num_windows, window_and_hop_samples

__all__ = ["SHORT_CLIP_MODES", "AudioEmbedder", "FileEmbedding", "ShortClipMode", "embed_files", "token_grid"]

ShortClipMode = Literal["pad", "crop"]
SHORT_CLIP_MODES: tuple[str, ...] = ("pad", "crop")


def token_grid(config, last_hidden_state: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(prefix tokens (B, prefix, D) or None, tokens (B, time, frequency, D)) of a base model's `last_hidden_state`.

    AST / SSAST: (B, prefix + F·T, D), patch tokens frequency-major (index f·T + t), F the config's frequency
    patches and T whatever the input length gave. HTS-AT: (B, rows·cols, D) over its final grid, regrouped so
    that time runs in order (`regroup_tokens_by_time`).
    """
    batch_size, length, hidden = last_hidden_state.shape
    if config.model_type == "htsat":
        from ..modeling.htsat.modeling_htsat import regroup_tokens_by_time

        resolution = config.stage_resolution(config.num_layers - 1)
        grid = regroup_tokens_by_time(last_hidden_state, resolution, config.freq_ratio)  # (B, D, F, T)
        return None, grid.permute(0, 3, 2, 1)  # (B, T, F, D)
    prefix = config.num_prefix_tokens
    frequency_patches = config.patch_grid[0]
    time_patches = (length - prefix) // frequency_patches
    patches = last_hidden_state[:, prefix:].reshape(
        batch_size, frequency_patches, time_patches, hidden
    )  # (B, F, T, D)
    return last_hidden_state[:, :prefix], patches.transpose(1, 2)  # (B, T, F, D)


@dataclass
class FileEmbedding:
    """Embeddings of one file or waveform.

    `embedding` (hidden,) is the mean of the window vectors `window_embeddings` (windows, hidden), each the
    model's `pooler_output` for that window, which starts at `window_starts[w]` seconds. With `tokens=True`:
    `tokens` (windows, time, frequency, hidden), `prefix_tokens` (windows, prefix, hidden) for AST / SSAST, and
    `token_hop_s`, the seconds between two time steps. Arrays are float32.
    """

    path: str
    duration: float  # seconds
    embedding: np.ndarray
    window_embeddings: np.ndarray
    window_starts: np.ndarray  # seconds
    window_s: float = 0.0  # window length and hop used, in seconds
    hop_s: float = 0.0
    short_clip: str = "pad"
    tokens: np.ndarray | None = field(default=None, repr=False)
    prefix_tokens: np.ndarray | None = field(default=None, repr=False)
    token_hop_s: float | None = None

    @property
    def frame_embeddings(self) -> np.ndarray:
        """(windows, time, hidden): one vector per time step, the tokens averaged over frequency."""
        if self.tokens is None:
            raise ValueError("no tokens: embed with tokens=True")
        return self.tokens.mean(axis=2)

    @property
    def token_times(self) -> np.ndarray:
        """(windows, time) start in seconds of each time step of `tokens`."""
        if self.tokens is None or self.token_hop_s is None:
            raise ValueError("no tokens: embed with tokens=True")
        steps = np.arange(self.tokens.shape[1]) * self.token_hop_s
        return self.window_starts[:, None] + steps[None, :]


class AudioEmbedder:
    """The encoder of a saved model with its feature extractor, run over windows of audio for embeddings.

    Args:
        model: a model directory or Hub id of any AST, SSAST or HTS-AT model of this package (classifier,
            SSAST pre-training checkpoint, bare encoder), or an in-memory model of one (then pass
            `feature_extractor`; a classifier or pre-training model is used through its `base_model`).
        device: torch device.
        batch_size: windows per forward pass.
        dtype: "float32", "bfloat16" or "auto" (bfloat16 where the device runs it natively; an in-memory model
            keeps its own dtype); also a torch dtype. Vectors are returned as float32.
        backend: "torch" only: an exported ONNX graph outputs logits, not the encoder's states.
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
        if backend != "torch":
            raise InferenceError(
                "embeddings need the PyTorch model (--backend torch): an exported ONNX graph outputs the logits only, "
                "not the encoder's pooled vector or tokens"
            )
        self.device = torch.device(device)
        self.batch_size = batch_size
        if isinstance(model, torch.nn.Module):
            if feature_extractor is None:
                raise InferenceError("pass the feature_extractor of an in-memory model")
            if getattr(model.config, "model_type", None) not in ENCODER_MODEL_TYPES:
                raise InferenceError(f"embeddings need an AST, SSAST or HTS-AT model, got {type(model).__name__}")
            if dtype in (None, "auto"):
                dtype = next(model.parameters()).dtype  # an in-memory model is never converted unasked
            self.dtype = resolve_dtype(dtype, self.device)
            self.model = model.base_model.to(device=self.device, dtype=self.dtype).eval()
        else:
            self.dtype = resolve_dtype(dtype, self.device)
            self.model, feature_extractor = load_torch_encoder(model, self.device, self.dtype)
        self.feature_extractor = feature_extractor
        self.sampling_rate = int(feature_extractor.sampling_rate)
        self.input_name = feature_extractor.model_input_names[0]
        self.input_samples = model_input_samples(feature_extractor)

    @classmethod
    def from_model(cls, model: torch.nn.Module, feature_extractor, **kwargs) -> AudioEmbedder:
        """Wrap an in-memory model; its device and dtype are kept unless given."""
        kwargs.setdefault("device", next(model.parameters()).device)
        return cls(model, feature_extractor=feature_extractor, **kwargs)

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        """Length of the vectors."""
        return int(self.config.hidden_size)

    @property
    def input_seconds(self) -> float | None:
        return None if self.input_samples is None else self.input_samples / self.sampling_rate

    @property
    def description(self) -> str:
        """What runs, for messages: e.g. "ASTModel, torch float32 on cpu"."""
        return f"{type(self.model).__name__}, torch {str(self.dtype).removeprefix('torch.')} on {self.device}"

    @property
    def can_crop(self) -> bool:
        """Whether short clips can be cropped (`short_clip="crop"`): AST and SSAST, whose positional embedding
        can be cut to a shorter input; not HTS-AT, whose Swin windows need its whole image."""
        return self.config.model_type in ("ast", "ssast")

    # -- model input ---------------------------------------------------------------------------------------------

    def cropped_frames(self, num_samples: int) -> int | None:
        """Input frames for a clip of `num_samples` seen alone (`short_clip="crop"`): the clip's Kaldi frames, at
        least one patch, rounded up to whole patches so that its end is read; None when that is the model's full
        input (nothing to crop)."""
        extractor, config = self.feature_extractor, self.config
        frame, shift, _ = kaldi_frame_sizes(
            extractor.sampling_rate,
            extractor.frame_length_ms,
            extractor.frame_shift_ms,
            extractor.round_to_power_of_two,
        )
        frames = 1 + (num_samples - frame) // shift if num_samples >= frame else 0
        patch, stride = config.time_patch_size, config.time_stride
        steps = max(0, math.ceil((frames - patch) / stride))
        frames = patch + steps * stride
        return None if frames >= config.max_length else frames

    def features(self, windows: Sequence[np.ndarray], max_length: int | None = None) -> torch.Tensor:
        """Features [B, frames, bins] of mono waveforms at `self.sampling_rate`, on the model's device: one
        zero-padded batch through the extractor's tensor entry point (`max_length`: AST frames, when cropped)."""
        batch, lengths = pad_batch(
            [torch.from_numpy(np.asarray(w, dtype=np.float32)) for w in windows], device=self.device
        )
        options = {} if max_length is None else {"max_length": max_length}
        return self.feature_extractor.extract(batch, lengths, **options)[self.input_name]

    def encode(self, features: torch.Tensor, *, interpolate_pos_encoding: bool = False):
        """The base model's output (`pooler_output`, `last_hidden_state`) for a batch of features."""
        inputs: dict[str, Any] = {self.input_name: features.to(device=self.device, dtype=self.dtype)}
        if interpolate_pos_encoding:
            inputs["interpolate_pos_encoding"] = True
        with torch.inference_mode():
            return self.model(**inputs)

    def run(
        self, windows: Sequence[np.ndarray], *, tokens: bool = False, crop: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(pooled (B, D), tokens (B, time, frequency, D) or None, prefix tokens (B, prefix, D) or None), float32,
        of B waveforms of one length. `crop`: windows shorter than the model's input are seen alone (AST / SSAST)."""
        max_length = self.cropped_frames(max(len(w) for w in windows)) if crop else None
        output = self.encode(self.features(windows, max_length), interpolate_pos_encoding=max_length is not None)
        pooled = output.pooler_output.float().cpu().numpy()
        if not tokens:
            return pooled, None, None
        prefix, grid = token_grid(self.config, output.last_hidden_state)
        return pooled, grid.float().cpu().numpy(), None if prefix is None else prefix.float().cpu().numpy()

    def token_hop_seconds(self, num_time_steps: int) -> float:
        """Seconds between two time steps of the tokens: AST / SSAST the time stride in frames; HTS-AT its input
        (stretched to `num_frames` and folded) divided into `num_time_steps` steps."""
        if self.config.model_type == "htsat":
            return self.input_samples / self.sampling_rate / num_time_steps
        return self.config.time_stride * self.feature_extractor.frame_shift_ms / 1000.0

    # -- embedding -----------------------------------------------------------------------------------------------

    def embed(
        self,
        waveform: np.ndarray,
        *,
        name: str = "<waveform>",
        window: float | None = None,
        hop: float | None = None,
        tokens: bool = False,
        short_clip: ShortClipMode = "pad",
        progress: bool | None = None,
    ) -> FileEmbedding:
        """Embeddings of a mono waveform at `self.sampling_rate`, by windows.

        Args:
            window: window length in seconds (default and maximum: the model's input duration).
            hop: seconds between window starts (default: half a window; at most one window).
            tokens: also return the token embeddings (memory: windows × tokens × hidden floats).
            short_clip: "pad" (default) or "crop" for windows shorter than the model's input (module docstring).
            progress: show a tqdm bar (default: when there is more than one batch of windows).
        """
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1 or len(waveform) == 0:
            raise InferenceError(f"{name}: expected a non-empty mono waveform, got shape {waveform.shape}")
        return self.embed_blocks(
            [waveform], name=name, window=window, hop=hop, tokens=tokens, short_clip=short_clip, progress=progress,
            expected_samples=len(waveform),
        )  # fmt: skip

    def embed_blocks(
        self,
        blocks: Iterable[np.ndarray],
        *,
        name: str = "<waveform>",
        window: float | None = None,
        hop: float | None = None,
        tokens: bool = False,
        short_clip: ShortClipMode = "pad",
        progress: bool | None = None,
        keep_windows: bool = True,
        expected_samples: int | None = None,
    ) -> FileEmbedding:
        """`embed` of audio given as consecutive mono blocks at `self.sampling_rate` (`stream` of a file): windows
        run as the blocks arrive, so memory does not grow with the audio, except what is asked to be kept: the
        window vectors (`keep_windows`; without them and without tokens, `window_embeddings` and `window_starts` are
        empty) and the tokens. The result is exactly `embed` of the concatenated blocks: the embedding is the window
        vectors summed in window order, row by row in float32 as numpy's `mean(axis=0)` adds them, over their count."""
        if short_clip not in SHORT_CLIP_MODES:
            raise InferenceError(f"short_clip must be one of {SHORT_CLIP_MODES}, got {short_clip!r}")
        if short_clip == "crop" and not self.can_crop:
            raise InferenceError(
                "short_clip='crop' needs AST or SSAST: HTS-AT's Swin windows need its whole input image; its feature "
                "extractor pads or repeats short clips (clip_pad_mode)"
            )
        window_samples, hop_samples = window_and_hop_samples(window, hop, self.input_samples, self.sampling_rate)
        if window_samples is None:  # a model without a fixed input and no window asked: the whole clip, one window
            whole = np.concatenate([np.asarray(block, dtype=np.float32) for block in blocks])
            blocks, window_samples, hop_samples = [whole], max(1, len(whole)), max(1, len(whole))
        stream = WindowStream(blocks, window_samples, hop_samples)
        total = None if expected_samples is None else num_windows(expected_samples, window_samples, hop_samples)
        vector_sum, count = None, 0
        starts: list[int] = []
        pooled, grids, prefixes = [], [], []
        batches = batches_of_windows(stream, self.batch_size, total_windows=total, progress=progress, name=name)
        for batch_starts, pieces in batches:
            vectors, grid, prefix = self.run(pieces, tokens=tokens, crop=short_clip == "crop")
            if vector_sum is None:
                vector_sum = np.zeros(vectors.shape[1], dtype=np.float32)
            for vector in vectors:  # row by row in float32, as numpy's mean over axis 0 adds them
                vector_sum += vector
            count += len(vectors)
            if keep_windows or tokens:  # the tokens' times need their windows' starts
                starts.extend(batch_starts)
                pooled.append(vectors)
            grids.append(grid)
            prefixes.append(prefix)
        num_samples = stream.num_samples
        if not num_samples or vector_sum is None:
            raise InferenceError(f"{name}: expected a non-empty mono waveform, got no samples")
        window_samples = min(window_samples, num_samples)  # a clip shorter than a window is one window: all of it
        hop_samples = min(hop_samples, window_samples)
        hidden = len(vector_sum)
        token_array = np.concatenate(grids) if tokens else None
        prefix_array = np.concatenate(prefixes) if tokens and prefixes[0] is not None else None
        return FileEmbedding(
            path=name,
            duration=num_samples / self.sampling_rate,
            embedding=np.true_divide(vector_sum, count),
            window_embeddings=np.concatenate(pooled) if pooled else np.zeros((0, hidden), dtype=np.float32),
            window_starts=np.asarray(starts, dtype=np.float64) / self.sampling_rate,
            window_s=window_samples / self.sampling_rate,
            hop_s=hop_samples / self.sampling_rate,
            short_clip=short_clip,
            tokens=token_array,
            prefix_tokens=prefix_array,
            token_hop_s=self.token_hop_seconds(token_array.shape[1]) if tokens else None,
        )

    def stream(self, path: str | os.PathLike, **kwargs: Any):
        """A file as `(header info, mono float32 blocks at self.sampling_rate)` (see `stream_decoded`)."""
        return stream_decoded(path, self.sampling_rate, **kwargs)

    def decode(self, path: str | os.PathLike) -> np.ndarray:
        """A file decoded to a mono waveform at `self.sampling_rate` (see `decode_audio`)."""
        return decode_audio(path, self.sampling_rate)

    def embed_file(self, path: str | os.PathLike, **kwargs: Any) -> FileEmbedding:
        """`embed` of a file, decoded as a stream while its windows run (memory does not grow with the file; pass
        `keep_windows=False` to keep no window vectors either)."""
        info, blocks = self.stream(path)
        try:
            expected = info.samples_at(self.sampling_rate)
            return self.embed_blocks(blocks, name=os.fspath(path), expected_samples=expected, **kwargs)
        finally:
            blocks.close()

    def embed_files(
        self, paths: Iterable[str | os.PathLike], **kwargs: Any
    ) -> Iterator[FileEmbedding | UnreadableFile]:
        """Embed files one after the other, each decoded as a stream (a background thread decodes ahead while the
        model runs); a file that cannot be decoded is yielded as an `UnreadableFile` and the others are still
        embedded."""
        for path in paths:
            path = os.fspath(path)
            try:
                yield self.embed_file(path, **kwargs)
            except (UnreadableAudioError, FileNotFoundError) as error:
                yield UnreadableFile(path, str(error))


def embed_files(
    paths: Sequence[str | os.PathLike],
    model: str | Path,
    *,
    window: float | None = None,
    hop: float | None = None,
    tokens: bool = False,
    short_clip: ShortClipMode = "pad",
    batch_size: int = 16,
    device: str = "cpu",
    dtype: DTypeName = "auto",
    progress: bool | None = None,
) -> list[FileEmbedding | UnreadableFile]:
    """Embed files with a model directory; unreadable files come back as `UnreadableFile`s in their place."""
    embedder = AudioEmbedder(model, device=device, batch_size=batch_size, dtype=dtype)
    return list(
        embedder.embed_files(paths, window=window, hop=hop, tokens=tokens, short_clip=short_clip, progress=progress)
    )
