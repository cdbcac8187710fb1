# GENERATED FILE: DO NOT EDIT. Written by `python -m spectrogram_transformers.modeling.remote_code.generate`
# from the package source; change the package and regenerate (tests/models/test_remote_code.py checks it).
"""The HTSAT family of spectrogram-transformers for transformers' `trust_remote_code=True`
(the Auto classes and pipeline load a saved directory without the package); what the families share
is in `spectrogram_transformers_shared.py`, copied beside it.

From the package modules feature_extraction.feature_extraction_htsat, feature_extraction.mel, modeling.htsat.configuration_htsat, modeling.htsat.convert_htsat, modeling.htsat.modeling_htsat.
"""

from __future__ import annotations

import functools
import io
import json
import math
import numpy as np
import os
import pickle
import re
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import torch
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields
from functools import lru_cache
from huggingface_hub.dataclasses import strict
from pathlib import Path
from safetensors.torch import load_file
from torch import nn
from transformers import AudioClassificationPipeline
from transformers import PreTrainedConfig
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.activations import GELUActivation
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.pipelines.audio_classification import ffmpeg_read
from transformers.pipelines.base import ChunkPipeline
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput
from transformers.utils import PaddingStrategy
from transformers.utils import TensorType
from transformers.utils import TransformersKwargs
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs
from typing import Any
from typing import BinaryIO
from typing import ClassVar
from typing import Literal

from .spectrogram_transformers_shared import (  # noqa: F401
    AudioInfo,
    AudioSource,
    BandedFilterbank,
    CheckedLoadingMixin,
    CheckpointKeyError,
    CheckpointReadError,
    ConsistentLabelsMixin,
    DEFAULT_BLOCK_SECONDS,
    DropPath,
    HUB_KWARGS,
    Linear,
    MAX_CHANNELS,
    PackagePipelineMixin,
    READ_TIMEOUT_ENV,
    REMOTE_CODE_CLASSES,
    REMOTE_CODE_PIPELINE,
    RawAudio,
    RemoteCodeMixin,
    SHARED_MODULE,
    SpectrogramAudioClassificationPipeline,
    SpectrogramFeatureExtractor,
    WindowStream,
    _CONTAINER_KEYS,
    _DEFAULT_READ_TIMEOUT_S,
    _FAST_DTYPES,
    _FEATURE_GROUP,
    _FFMPEG_HINT,
    _FILTERS_PER_GROUP,
    _IS_PACKAGE,
    _ONEDNN_LINEAR,
    _PCM_FULL_SCALE,
    _SampleLengthPlan,
    _UINT8_OFFSET,
    _WEIGHT_FILES,
    _WEIGHT_FILE_NAMES,
    _WEIGHT_SUFFIXES,
    _as_numpy,
    _bf16_matmul_supported,
    _channel_axis,
    _check_rate,
    _checked_not_empty,
    _describe_source,
    _ffmpeg_blocks,
    _ffprobe_info,
    _find_weight_file,
    _groups,
    _hooked,
    _is_exact_gelu,
    _soundfile_blocks,
    _soundfile_info,
    _stalled_message,
    _warn_channels_last_once,
    _warned_channels_last,
    add_remote_code,
    check_input_values,
    check_labels,
    default_read_timeout,
    drop_keys,
    eager_attention_forward,
    frames_mask,
    give_weights_umask_permissions,
    is_channels_last_clip,
    linear_then_activation,
    load_audio,
    load_checkpoint,
    logger,
    model_input_samples,
    module_name,
    onednn_linear_applies,
    pad_batch,
    power_spectrum,
    probe_audio,
    read_safetensors,
    read_saved_state_dict,
    remote_code_auto_map,
    remote_code_custom_pipelines,
    remote_code_files,
    rename_keys,
    resample,
    resample_blocks,
    select_checkpoint_keys,
    split_fused_qkv,
    stream_audio,
    strip_prefix,
    to_batch_feature,
    to_mono_batch,
    to_mono_float32,
    unwrap_state_dict,
)


# ---- from spectrogram_transformers.modeling.htsat.configuration_htsat ----------------------------


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """An int or a 2-sequence as (frequency/height, time/width)."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


@strict
class HTSATConfig(ConsistentLabelsMixin, PackagePipelineMixin, PreTrainedConfig):
    r"""Configuration of [`HTSATModel`] and [`HTSATForAudioClassification`].

    The defaults are the paper's model (HTS-AT "tiny": 31M parameters, Swin-T layout) on 64 mel bins; set
    `num_labels` (527 for AudioSet, 50 for ESC-50, 35 for Speech Commands).

    How the geometry fits together: a log-mel spectrogram of up to `num_frames` = `spec_size` ·
    `freq_ratio` frames (1024) × `num_mel_bins` (64) is stretched to `num_frames` frames and folded into a
    `spec_size` × `spec_size` image (256 × 256) by cutting time into `freq_ratio` = `spec_size // num_mel_bins`
    chunks (4) stacked along the image height. The Swin stages then see token grids of 64², 32², 16² and 8².

    Args:
        spec_size (`int`, defaults to 256): side of the square image the spectrogram is folded into.
        num_mel_bins (`int`, defaults to 64): mel bins of the input features; `spec_size` must be a multiple,
            the ratio being the number of time chunks stacked in the image.
        patch_size (`int` or `tuple[int, int]`, defaults to 4): kernel of the patch-embedding convolution.
        patch_stride (`int` or `tuple[int, int]`, defaults to `(4, 4)`): its stride (image height, width);
            the convolution is padded by `(patch_size - patch_stride) // 2` as in the original.
        embed_dim (`int`, defaults to 96): token width of the first stage; it doubles at every patch merging.
        depths (`tuple[int, ...]`, defaults to `(2, 2, 6, 2)`): Swin blocks per stage.
        num_heads (`tuple[int, ...]`, defaults to `(4, 8, 16, 32)`): attention heads per stage.
        window_size (`int`, defaults to 8): side of the attention windows; odd blocks shift them by half. A
            stage whose token grid is not larger than the window attends over the whole grid, unshifted.
        mlp_ratio (`float`, defaults to 4.0): MLP hidden width over token width.
        qkv_bias (`bool`, defaults to True): whether query/key/value projections have a bias.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation (exact erf GELU in the original).
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after patch embedding, attention and MLP.
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on attention weights.
        drop_path_rate (`float`, defaults to 0.1): stochastic depth, rising linearly over all blocks.
        patch_norm (`bool`, defaults to True): LayerNorm after the patch-embedding convolution.
        layer_norm_eps (`float`, defaults to 1e-5): eps of every LayerNorm (torch's default in the original).
        batch_norm_eps (`float`, defaults to 1e-5): eps of the mel-bin BatchNorm (`bn0`).
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal weight initialisation.
        use_token_semantic_head (`bool`, defaults to True): the token-semantic CNN head (`enable_tscam`), which
            gives frame-level logits; False gives the plain Swin head (linear layer on the mean token).
        token_semantic_kernel_size (`int`, defaults to 3): time extent of the token-semantic convolution (odd,
            padded to keep the length); its frequency extent is derived: the final token rows per time chunk.
        infer_mode (`bool`, defaults to False): the original's `infer_mode`: tile inputs shorter than
            `num_frames` floor(num_frames / frames) times before the stretch, instead of only stretching them.
            `forward(infer_mode=...)` overrides it per call.
    """

    model_type = "htsat"
    # `Trainer` evaluation/prediction hands `compute_metrics` the clip logits alone and never gathers the frame
    # outputs (B × 1024 × labels per batch, ~2 MB per AudioSet clip); `trainer.predict(data, ignore_keys=[])`
    # returns them as well, as a tuple (logits, framewise_logits, latent_output).
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["framewise_logits", "latent_output"]

    spec_size: int = 256
    num_mel_bins: int = 64
    patch_size: int | list[int] | tuple[int, int] = 4
    patch_stride: int | list[int] | tuple[int, int] = (4, 4)
    embed_dim: int = 96
    depths: list[int] | tuple[int, ...] = (2, 2, 6, 2)
    num_heads: list[int] | tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    mlp_ratio: float | int = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.1
    patch_norm: bool = True
    layer_norm_eps: float = 1e-5
    batch_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    use_token_semantic_head: bool = True
    token_semantic_kernel_size: int = 3
    infer_mode: bool = False

    # Derived geometry. Properties rather than attributes set in __post_init__: `from_pretrained(dir,
    # embed_dim=...)` applies overrides after construction, and stored copies would then go stale. Values
    # found in older config.json files are accepted when they agree and rejected when they do not.
    @property
    def num_layers(self) -> int:
        return len(self.depths)

    @property
    def hidden_size(self) -> int:
        """Width of the final tokens (what the heads see); `hidden_size` is the name transformers looks for."""
        return int(self.embed_dim * 2 ** max(self.num_layers - 1, 0))

    @property
    def freq_ratio(self) -> int:
        """Time chunks stacked in the image (4)."""
        return self.spec_size // self.num_mel_bins if self.num_mel_bins > 0 else 0

    @property
    def num_frames(self) -> int:
        """Frames on the stretched time axis (1024)."""
        return self.spec_size * self.freq_ratio

    def _check_derived(name: str):
        def setter(self, value) -> None:
            if value != getattr(self, name):
                raise ValueError(f"{name}={value} contradicts the geometry it is derived from ({getattr(self, name)})")

        return setter

    num_layers = num_layers.setter(_check_derived("num_layers"))
    hidden_size = hidden_size.setter(_check_derived("hidden_size"))
    freq_ratio = freq_ratio.setter(_check_derived("freq_ratio"))
    num_frames = num_frames.setter(_check_derived("num_frames"))
    del _check_derived

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(rows, columns) of the first stage's token grid: 64 × 64."""
        stride_h, stride_w = _pair(self.patch_stride)
        return self.spec_size // stride_h, self.spec_size // stride_w

    @property
    def patch_padding(self) -> tuple[int, int]:
        (kernel_h, kernel_w), (stride_h, stride_w) = _pair(self.patch_size), _pair(self.patch_stride)
        return (kernel_h - stride_h) // 2, (kernel_w - stride_w) // 2

    def stage_resolution(self, stage: int) -> tuple[int, int]:
        """(rows, columns) of the token grid of `stage` (each patch merging halves both)."""
        rows, columns = self.patch_grid
        return rows // 2**stage, columns // 2**stage

    def stage_window(self, stage: int) -> tuple[int, int]:
        """(window side, shift of the odd blocks) in `stage`: grids not larger than the window are one unshifted window."""
        smallest = min(self.stage_resolution(stage))
        if smallest <= self.window_size:
            return smallest, 0
        return self.window_size, self.window_size // 2

    @property
    def token_semantic_kernel(self) -> tuple[int, int]:
        """(frequency, time) kernel of the token-semantic convolution: final token rows per time chunk × kernel size."""
        final_rows, _ = self.stage_resolution(self.num_layers - 1)
        return final_rows // max(self.freq_ratio, 1), self.token_semantic_kernel_size

    @property
    def frames_per_step(self) -> int:
        """Stretched frames covered by one output time step (32): the time downsampling of patches and merges."""
        _, final_columns = self.stage_resolution(self.num_layers - 1)
        return self.spec_size // final_columns

    def validate_architecture(self) -> None:
        """Cross-field checks on the image geometry; each would otherwise be a shape error deep inside torch."""
        super().validate_architecture()
        if len(self.depths) == 0 or len(self.depths) != len(self.num_heads):
            raise ValueError(
                f"depths {tuple(self.depths)} and num_heads {tuple(self.num_heads)} must be non-empty and equally long "
                "(one entry per stage)"
            )
        if min(self.depths) < 1:
            raise ValueError(f"every stage needs at least one block; depths = {tuple(self.depths)}")
        if self.num_mel_bins < 1 or self.spec_size % self.num_mel_bins != 0:
            raise ValueError(
                f"spec_size ({self.spec_size}) must be a positive multiple of num_mel_bins ({self.num_mel_bins}): the "
                "spectrogram is folded into the square image as spec_size // num_mel_bins stacked time chunks"
            )
        for name in ("patch_size", "patch_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) and len(value) != 2:
                raise ValueError(f"{name} must be an int or (height, width), got {value}")
            if min(_pair(value)) < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        kernel, stride, padding = _pair(self.patch_size), _pair(self.patch_stride), self.patch_padding
        for axis in (0, 1):
            convolved = (self.spec_size + 2 * padding[axis] - kernel[axis]) // stride[axis] + 1
            if self.spec_size % stride[axis] != 0 or convolved != self.patch_grid[axis]:
                raise ValueError(
                    f"patch_size {self.patch_size} with patch_stride {self.patch_stride} does not tile spec_size "
                    f"({self.spec_size}) into spec_size // patch_stride patches; spec_size must be a multiple of the "
                    "stride and patch_size - patch_stride even"
                )
        merges = 2 ** (self.num_layers - 1)
        if any(side % merges != 0 for side in self.patch_grid):
            raise ValueError(
                f"the patch grid {self.patch_grid} must be divisible by 2**(stages - 1) = {merges}: each of the "
                f"{self.num_layers - 1} patch mergings halves it"
            )
        if self.window_size < 1:
            raise ValueError(f"window_size must be positive, got {self.window_size}")
        for stage in range(self.num_layers):
            resolution = self.stage_resolution(stage)
            window, _ = self.stage_window(stage)
            if any(side % window != 0 for side in resolution):
                raise ValueError(
                    f"stage {stage} has a {resolution[0]}x{resolution[1]} token grid that {window}x{window} windows "
                    "do not tile; choose window_size dividing every stage's grid"
                )
            dim = self.embed_dim * 2**stage
            if dim % self.num_heads[stage] != 0:
                raise ValueError(
                    f"stage {stage} width {dim} (embed_dim * 2**{stage}) is not divisible by num_heads[{stage}] = "
                    f"{self.num_heads[stage]}"
                )
        final_rows, _ = self.stage_resolution(self.num_layers - 1)
        if final_rows % self.freq_ratio != 0:
            raise ValueError(
                f"the final token grid has {final_rows} rows, which must split evenly into the {self.freq_ratio} "
                "stacked time chunks (spec_size // num_mel_bins) for the token-semantic regrouping"
            )
        if self.token_semantic_kernel_size < 1 or self.token_semantic_kernel_size % 2 == 0:
            raise ValueError(
                f"token_semantic_kernel_size must be odd (it is padded to keep the length), got "
                f"{self.token_semantic_kernel_size}"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {self.mlp_ratio}")


# ---- from spectrogram_transformers.modeling.htsat.modeling_htsat ---------------------------------


# additive mask between tokens of different regions after the cyclic shift: the original's -100, not -inf
# (softmax weights of e^-100 are not exactly 0, and parity needs the same value)
SHIFT_MASK_VALUE = -100.0


def tile_short_spectrogram(spectrogram: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The original `infer_mode`: repeat a (B, T, mel) spectrogram floor(num_frames / T) times along time."""
    repeats = num_frames // spectrogram.shape[1]
    if repeats <= 1:
        return spectrogram
    return spectrogram.repeat(1, repeats, 1)  # (B, repeats·T, mel)


def crop_long_spectrogram(spectrogram: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The original's evaluation crops of a (B, T, mel) spectrogram longer than `num_frames`: (crops, B, size, mel).

    Crops are (T - 1) // 2 frames long and start every (T - 1) // 4 frames, at positions
    `range(0, T - size - 1, hop)` exactly as the original iterates (so the last possible crop may be skipped).
    """
    frames = spectrogram.shape[1]
    size, hop = (frames - 1) // 2, (frames - 1) // 4
    if size > num_frames:
        raise ValueError(
            f"input has {frames} frames; the original's evaluation crops ((frames - 1) // 2 = {size} frames) only fit "
            f"the model's {num_frames} frames for inputs up to {2 * num_frames + 2} frames. Split longer audio into "
            "windows (spectrogram_transformers.detection.detect_file does) and run them separately."
        )
    starts = range(0, frames - size - 1, hop)
    return torch.stack([spectrogram[:, start : start + size] for start in starts])  # (crops, B, size, mel)


def stretch_time_axis(spectrogram: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Bicubic (align_corners=True) stretch of a (B, T ≤ num_frames, mel) spectrogram to (B, num_frames, mel).

    Done on the (B, 1, T, mel) image with the mel size kept, exactly as the original: with align_corners the
    mel axis is sampled at its own integer positions, an identity.
    """
    batch_size, frames, mel_bins = spectrogram.shape
    if frames == num_frames:
        return spectrogram
    image = spectrogram.unsqueeze(1)  # (B, 1, T, mel)
    image = nn.functional.interpolate(image, size=(num_frames, mel_bins), mode="bicubic", align_corners=True)
    return image.squeeze(1)  # (B, num_frames, mel)


def fold_time_into_image(spectrogram: torch.Tensor, freq_ratio: int) -> torch.Tensor:
    """(B, num_frames, mel) -> (B, 1, freq_ratio·mel, num_frames // freq_ratio): the original `reshape_wav2img`.

    Time is cut into `freq_ratio` chunks stacked along the image height:
    image[c·mel + m, t] = spectrogram[c·chunk + t, m], so rows are chunk-major then mel, columns time in the chunk.
    """
    batch_size, frames, mel_bins = spectrogram.shape
    chunk = frames // freq_ratio
    image = spectrogram.reshape(batch_size, freq_ratio, chunk, mel_bins)  # (B, chunks, t, mel)
    image = image.permute(0, 1, 3, 2)  # (B, chunks, mel, t)
    return image.reshape(batch_size, 1, freq_ratio * mel_bins, chunk)  # (B, 1, chunks·mel, t)


def window_partition(hidden_states: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, windows, window², C), windows in row-major order of the window grid."""
    batch_size, height, width, channels = hidden_states.shape
    grid = hidden_states.view(batch_size, height // window, window, width // window, window, channels)
    grid = grid.permute(0, 1, 3, 2, 4, 5)  # (B, H/w, W/w, w, w, C)
    return grid.reshape(batch_size, (height // window) * (width // window), window * window, channels)


def window_token_order(resolution: tuple[int, int], window: int, shift: int) -> torch.Tensor:
    """(2, H·W) int64 permutations of the row-major tokens: [order, inverse].

    `order` lists, for each position of the windowed sequence, the token it holds: after the cyclic shift of
    the grid by (-shift, -shift), windows in row-major order and tokens row-major inside each window, i.e.
    `window_partition(torch.roll(grid, (-shift, -shift)))`. `inverse` puts every token back, undoing the shift.
    One `index_select` with each replaces the roll, the window partition and their inverses (several copies).
    """
    height, width = resolution
    grid = torch.arange(height * width).view(1, height, width, 1)
    if shift:
        grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
    order = window_partition(grid, window).reshape(-1)  # (H·W,)
    return torch.stack([order, torch.argsort(order)])


def relative_position_index(window: int) -> torch.Tensor:
    """(window², window²) index into the ((2·window - 1)², heads) bias table, for every query/key pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2): (Δrow, Δcol)
    relative = relative + (window - 1)  # both offsets from 0 to 2·window - 2
    return relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]  # (N, N)


def shifted_window_mask(resolution: tuple[int, int], window: int, shift: int) -> torch.Tensor:
    """(windows, window², window²) additive mask of the shifted-window blocks: 0 within a region, -100 across.

    After the cyclic shift by `shift`, windows on the bottom/right border hold tokens from up to 3×3 regions that
    were not neighbours in the image; attention between different regions is masked.
    """
    height, width = resolution

    def regions(size: int) -> torch.Tensor:  # 0, 1, 2 for [0, size - window), [size - window, size - shift), rest
        index = torch.arange(size)
        return (index >= size - window).long() + (index >= size - shift).long()

    region_map = (regions(height)[:, None] * 3 + regions(width)[None, :]).float()  # (H, W)
    region_windows = window_partition(region_map[None, :, :, None], window)[0, :, :, 0]  # (windows, N)
    different = region_windows[:, None, :] != region_windows[:, :, None]  # (windows, N, N)
    return torch.zeros(different.shape).masked_fill(different, SHIFT_MASK_VALUE)


def regroup_tokens_by_time(tokens: torch.Tensor, resolution: tuple[int, int], freq_ratio: int) -> torch.Tensor:
    """Final tokens (B, rows·cols, C) -> (B, C, rows / chunks, chunks·cols): time chunks laid side by side again.

    The image stacked `freq_ratio` time chunks along its height; the final token rows are regrouped so that the
    last axis is time in order (chunk-major) and the middle axis frequency within one chunk.
    """
    batch_size, _, channels = tokens.shape
    rows, columns = resolution
    grid = tokens.transpose(1, 2).reshape(batch_size, channels, freq_ratio, rows // freq_ratio, columns)
    grid = grid.permute(0, 1, 3, 2, 4)  # (B, C, rows/chunks, chunks, cols)
    return grid.reshape(batch_size, channels, rows // freq_ratio, freq_ratio * columns)


def logit_of_mean_probability(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """logit(mean(sigmoid(logits))) along `dim`, computed stably in log space (never ±inf for finite logits).

    Used where the original averages sigmoid outputs (crops of long inputs), so that our pre-sigmoid logits
    still give the original's probabilities after a sigmoid.
    """
    log_p = torch.logsumexp(nn.functional.logsigmoid(logits), dim=dim)
    log_not_p = torch.logsumexp(nn.functional.logsigmoid(-logits), dim=dim)
    return log_p - log_not_p


def check_input_features(
    input_features: torch.Tensor, num_mel_bins: int, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """`check_input_values` for HTS-AT: any number of frames from one (short inputs are stretched or tiled)."""
    return check_input_values(input_features, num_mel_bins, name="input_features", dtype=dtype)


class HTSATEmbeddings(nn.Module):
    """Mel-bin BatchNorm (`bn0`), and the patch embedding of the folded image: conv + LayerNorm -> (B, 64², C)."""

    def __init__(self, config: HTSATConfig):
        super().__init__()
        self.config = config
        # BatchNorm over mel bins on (B, mel, frames): what the original's BatchNorm2d on (B, mel, frames, 1) computes
        self.mel_norm = nn.BatchNorm1d(config.num_mel_bins, eps=config.batch_norm_eps)
        self.projection = nn.Conv2d(
            1,
            config.embed_dim,
            kernel_size=config.patch_size,
            stride=config.patch_stride,
            padding=config.patch_padding,
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps) if config.patch_norm else nn.Identity()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def freeze(self) -> None:
        """No gradient for `bn0`, the patch projection and its LayerNorm; `bn0` then keeps its running statistics."""
        self.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "HTSATEmbeddings":
        """`bn0` stays in eval mode while its parameters are frozen (no `requires_grad`), whatever `mode` says.

        A frozen BatchNorm must not normalise with, nor update its statistics from, training batches: its running
        statistics are part of the frozen front end. This is what keeps a PEFT/LoRA adapter exact: PEFT freezes
        every base parameter and saves only the adapter, so statistics updated in train-mode steps would be lost
        on reload (the reloaded adapter would give other outputs). Decided here because Trainer (and every
        training loop) calls `train()` before its steps; `freeze_feature_encoder()` freezes it the same way.
        """
        super().train(mode)
        parameters = list(self.mel_norm.parameters())
        if parameters and not any(parameter.requires_grad for parameter in parameters):
            self.mel_norm.eval()
        return self

    def normalize(self, input_features: torch.Tensor) -> torch.Tensor:
        """(B, frames, mel) log-mel -> the same shape after `bn0` (running statistics in eval)."""
        return self.mel_norm(input_features.transpose(1, 2)).transpose(1, 2)

    def spectrogram_to_image(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """(B, frames ≤ num_frames, mel) -> (B, 1, spec_size, spec_size): bicubic stretch, then the time fold."""
        stretched = stretch_time_axis(spectrogram, self.config.num_frames)
        return fold_time_into_image(stretched, self.config.freq_ratio)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        patches = self.projection(image)  # (B, C, rows, cols)
        tokens = patches.flatten(2).transpose(1, 2)  # (B, rows·cols, C), row-major
        return self.dropout(self.norm(tokens))


class HTSATWindowAttention(nn.Module):
    """Multi-head attention inside windows, with a learned relative-position bias, on the attention interface.

    Windows are attention batches, (B·windows, heads, N, d). The relative-position bias (heads, N, N) and, in
    shifted blocks, the region mask (windows, N, N) are folded into one additive mask: the bias alone
    broadcasts over every window; with the region mask it is (B·windows, heads, N, N).
    """

    def __init__(self, config: HTSATConfig, dim: int, num_heads: int, window: int):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.window = window
        self.head_dim = dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = Linear(dim, dim, bias=config.qkv_bias)
        self.k_proj = Linear(dim, dim, bias=config.qkv_bias)
        self.v_proj = Linear(dim, dim, bias=config.qkv_bias)
        self.o_proj = Linear(dim, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        # derivable from the window size, so not saved (the converter drops the original's copy)
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        tokens = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]  # (N·N, heads)
        return bias.view(tokens, tokens, self.num_heads).permute(2, 0, 1)  # (heads, N, N)

    def attention_mask(self, batch_size: int, shift_mask: torch.Tensor | None) -> torch.Tensor:
        """Relative-position bias, plus the region mask in shifted blocks: (1 or B·windows, heads, N, N)."""
        bias = self.relative_position_bias()[None]  # (1, heads, N, N)
        if shift_mask is None:
            return bias
        mask = bias + shift_mask[:, None].to(bias.dtype)  # (windows, heads, N, N)
        return mask.repeat(batch_size, 1, 1, 1)  # (B·windows, heads, N, N), batch-major as the windows

    def forward(
        self, windows: torch.Tensor, shift_mask: torch.Tensor | None = None, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, windows, N, C) -> the same shape, and with `output_attentions=True` weights (B, windows, heads, N, N)
        (recorded by the model through `_can_record_outputs`); `kwargs` go on to the attention function."""
        batch_size, num_windows, tokens, dim = windows.shape
        shape = (batch_size * num_windows, tokens, self.num_heads, self.head_dim)
        query = self.q_proj(windows).view(shape).transpose(1, 2)  # (B·windows, heads, N, d)
        key = self.k_proj(windows).view(shape).transpose(1, 2)
        value = self.v_proj(windows).view(shape).transpose(1, 2)
        # attention maps need the eager function, whatever implementation the model runs
        implementation = "eager" if kwargs.get("output_attentions") else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        output, weights = attention_interface(
            self,
            query,
            key,
            value,
            self.attention_mask(batch_size, shift_mask).to(query.dtype),
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        output = output.reshape(batch_size, num_windows, tokens, dim)  # from (B·windows, N, heads, d)
        if weights is not None:
            weights = weights.view(batch_size, num_windows, self.num_heads, tokens, tokens)
        return self.dropout(self.o_proj(output)), weights


class HTSATMLP(nn.Module):
    def __init__(self, config: HTSATConfig, dim: int):
        super().__init__()
        hidden = int(dim * config.mlp_ratio)
        self.fc1 = Linear(dim, hidden)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = Linear(hidden, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(linear_then_activation(self.fc1, self.activation, hidden_states))
        return self.dropout(self.fc2(hidden_states))


class HTSATLayer(GradientCheckpointingLayer):
    """Swin block: x + attn(norm1(x)) in (shifted) windows, then x + mlp(norm2(x))."""

    def __init__(
        self,
        config: HTSATConfig,
        dim: int,
        num_heads: int,
        window: int,
        shift: int,
        drop_path: float,
    ):
        super().__init__()
        self.window = window
        self.shift = shift
        self.layernorm_before = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attention = HTSATWindowAttention(config, dim, num_heads, window)
        self.layernorm_after = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = HTSATMLP(config, dim)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        hidden_states: torch.Tensor,
        token_order: torch.Tensor,
        shift_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """`token_order`: `window_token_order` of this block's shift; `shift_mask`: used when the block is shifted."""
        batch_size, length, channels = hidden_states.shape
        order, inverse = token_order
        windows = self.layernorm_before(hidden_states).index_select(1, order)  # (B, H·W, C) in window order
        windows = windows.view(batch_size, -1, self.window * self.window, channels)  # (B, windows, N, C)
        windows, _ = self.attention(windows, shift_mask if self.shift else None, **kwargs)
        attended = windows.reshape(batch_size, length, channels).index_select(1, inverse)  # row-major, unshifted
        hidden_states = hidden_states + self.drop_path(attended)
        hidden_states = hidden_states + self.drop_path(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states


class HTSATPatchMerging(nn.Module):
    """2×2 token neighbourhoods -> one token of twice the width: concat, LayerNorm(4C), Linear(4C -> 2C, no bias).

    Concatenation order as the original: (even row, even col), (odd row, even col), (even row, odd col),
    (odd row, odd col), rows being the image height.
    """

    def __init__(self, config: HTSATConfig, dim: int, resolution: tuple[int, int]):
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim, eps=config.layer_norm_eps)
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, _, channels = hidden_states.shape
        height, width = self.resolution
        grid = hidden_states.view(batch_size, height, width, channels)
        quads = [grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]]
        merged = torch.cat(quads, dim=-1).view(batch_size, -1, 4 * channels)  # (B, H/2·W/2, 4C)
        return self.reduction(self.norm(merged))


class HTSATStage(nn.Module):
    """The blocks of one resolution (even ones in plain windows, odd ones shifted), then a patch merging."""

    def __init__(self, config: HTSATConfig, stage: int, drop_paths: list[float]):
        super().__init__()
        dim = config.embed_dim * 2**stage
        self.resolution = config.stage_resolution(stage)
        self.window, self.shift = config.stage_window(stage)
        self.blocks = nn.ModuleList(
            HTSATLayer(
                config,
                dim,
                config.num_heads[stage],
                self.window,
                self.shift if index % 2 == 1 else 0,
                drop_paths[index],
            )
            for index in range(config.depths[stage])
        )
        # derivable from the geometry, so not saved (the converter drops the original's `attn_mask` buffers)
        window_order, shifted_window_order, shift_mask = self.make_buffers()
        self.register_buffer("window_order", window_order, persistent=False)
        self.register_buffer("shifted_window_order", shifted_window_order, persistent=False)
        self.register_buffer("shift_mask", shift_mask, persistent=False)
        last = stage == config.num_layers - 1
        self.downsample = None if last else HTSATPatchMerging(config, dim, self.resolution)

    def make_buffers(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Token orders of the plain and shifted blocks and the shifted blocks' mask (None without a shift)."""
        plain = window_token_order(self.resolution, self.window, 0)
        if not self.shift:
            return plain, None, None
        shifted = window_token_order(self.resolution, self.window, self.shift)
        return plain, shifted, shifted_window_mask(self.resolution, self.window, self.shift)

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        for block in self.blocks:
            token_order = self.shifted_window_order if block.shift else self.window_order
            hidden_states = block(hidden_states, token_order, self.shift_mask, **kwargs)
        if self.downsample is not None:
            hidden_states = self.downsample(hidden_states)
        return hidden_states


class HTSATEncoder(nn.Module):
    def __init__(self, config: HTSATConfig):
        super().__init__()
        # stochastic depth rising linearly from 0 over all blocks (plain Python: also works on the meta device)
        total = sum(config.depths)
        drop_paths = [config.drop_path_rate * index / max(total - 1, 1) for index in range(total)]
        starts = [sum(config.depths[:stage]) for stage in range(config.num_layers)]
        self.layers = nn.ModuleList(
            HTSATStage(config, stage, drop_paths[start : start + config.depths[stage]])
            for stage, start in enumerate(starts)
        )

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        for stage in self.layers:
            hidden_states = stage(hidden_states, **kwargs)
        return hidden_states


class HTSATTokenSemanticHead(nn.Module):
    """The token-semantic CNN (`tscam_conv`): per-time-step class logits from the final token grid.

    The final tokens are regrouped to (B, C, rows per chunk, time steps) and a convolution spanning all the
    rows and `token_semantic_kernel_size` steps gives (B, labels, time steps) logits; the clip logits are their
    mean over time (the original's sigmoid comes after that mean, so they are averaged as logits).
    """

    def __init__(self, config: HTSATConfig):
        super().__init__()
        self.final_resolution = config.stage_resolution(config.num_layers - 1)
        self.freq_ratio = config.freq_ratio
        kernel = config.token_semantic_kernel
        self.conv = nn.Conv2d(config.hidden_size, config.num_labels, kernel_size=kernel, padding=(0, kernel[1] // 2))

    def forward(self, last_hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, tokens, C) -> clip logits (B, labels) and step logits (B, steps, labels)."""
        grid = regroup_tokens_by_time(last_hidden_state, self.final_resolution, self.freq_ratio)
        step_logits = self.conv(grid).flatten(2)  # (B, labels, steps): the kernel spans every row
        return step_logits.mean(dim=-1), step_logits.transpose(1, 2)


class HTSATLinearHead(nn.Module):
    """The original's head without the token-semantic module (`enable_tscam=False`): one linear layer.

    Clip logits come from the mean token; step logits from the same layer applied to the token rows of each
    time step *summed* over frequency (the original sums there, it does not average).
    """

    def __init__(self, config: HTSATConfig):
        super().__init__()
        self.final_resolution = config.stage_resolution(config.num_layers - 1)
        self.freq_ratio = config.freq_ratio
        self.dense = Linear(config.hidden_size, config.num_labels)

    def forward(self, last_hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grid = regroup_tokens_by_time(last_hidden_state, self.final_resolution, self.freq_ratio)
        step_features = grid.sum(dim=2).transpose(1, 2)  # (B, steps, C)
        return self.dense(last_hidden_state.mean(dim=1)), self.dense(step_features)


@dataclass
class HTSATAudioClassifierOutput(ModelOutput):
    """Output of [`HTSATForAudioClassification`].

    Args:
        loss: classification loss (cross-entropy, or BCE-with-logits for `multi_label_classification`) when
            `labels` are given.
        logits: (B, labels) clip logits, before any sigmoid/softmax.
        framewise_logits: (B, num_frames, labels) frame logits before the sigmoid, on the stretched
            `num_frames` (1024) axis: each time step repeated `frames_per_step` (32) times. 1024 frames span the
            whole input, whatever its real length (`detection.detect_events` maps them back to seconds).
        latent_output: (B, C) mean of the final tokens (absent for inputs cropped and averaged).
        hidden_states: patch embeddings and the output of every stage (after its patch merging).
        attentions: per block, (B, windows, heads, window², window²) attention weights.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    framewise_logits: torch.FloatTensor | None = None
    latent_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


class HTSATPreTrainedModel(RemoteCodeMixin, CheckedLoadingMixin, PreTrainedModel):
    """Weight initialisation (including the derived buffers), attention-implementation support, and
    `save_pretrained` that writes the custom code `trust_remote_code=True` loads (`RemoteCodeMixin`), and a
    `from_pretrained` that never leaves encoder weights random (`CheckedLoadingMixin`)."""

    config_class = HTSATConfig
    config: HTSATConfig
    base_model_prefix = "htsat"
    main_input_name = "input_features"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["HTSATStage"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    # what `capture_outputs` records: the patch embeddings and every stage's output (after its patch merging),
    # and every block's window-attention weights
    _can_record_outputs = {"hidden_states": HTSATStage, "attentions": HTSATWindowAttention}

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config: HTSATConfig, config: HTSATConfig):
        """The checkpoint in this package's names (an original Lightning layout converted): `htsat_checkpoint_filter`."""
        pass  # inlined: from .convert_htsat import htsat_checkpoint_filter

        return htsat_checkpoint_filter(state_dict, config)

    def freeze_feature_encoder(self) -> None:
        """Freeze the spectrogram front end: the mel-bin BatchNorm (`bn0`) and the patch embedding.

        The method transformers' audio-classification example script calls by default
        (`--freeze_feature_encoder True`). Frozen parameters get no gradient, and `bn0` normalises with its
        running statistics in training too (a BatchNorm is only frozen if its statistics are); the Swin
        stages and the head keep training.
        """
        self.base_model.embeddings.freeze()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Swin/timm initialisation: truncated normal weights, zero biases, unit norms; derived buffers recomputed.

        The buffers matter: `from_pretrained` builds the model on the meta device and only loads saved tensors,
        so the non-persistent index and mask buffers must be rebuilt here.
        """
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, HTSATWindowAttention):
            init.trunc_normal_(module.relative_position_bias_table, std=std)
            init.copy_(module.relative_position_index, relative_position_index(module.window))
        elif isinstance(module, HTSATStage):
            for name, value in zip(("window_order", "shifted_window_order", "shift_mask"), module.make_buffers()):
                if value is not None:
                    init.copy_(getattr(module, name), value)


class HTSATModel(HTSATPreTrainedModel):
    """HTS-AT encoder: log-mel features -> final tokens.

    Input `input_features` (B, frames ≤ num_frames, mel) log-mel (see `HTSATFeatureExtractor`). Outputs
    `last_hidden_state` (B, 64, C) after the final LayerNorm (row-major over the 8×8 final grid, rows being
    time chunk × frequency) and `pooler_output` (B, C), their mean (the original's `latent_output`).
    Longer inputs are cropped and averaged by [`HTSATForAudioClassification`], which has outputs to average.
    """

    def __init__(self, config: HTSATConfig):
        super().__init__(config)
        self.embeddings = HTSATEmbeddings(config)
        self.encoder = HTSATEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Conv2d:
        return self.embeddings.projection

    def prepare_spectrogram(self, input_features: torch.Tensor, infer_mode: bool | None = None) -> torch.Tensor:
        """Checks, `bn0`, and (in `infer_mode`) the tiling of short inputs: (B, frames, mel) -> (B, frames', mel)."""
        input_features = check_input_features(input_features, self.config.num_mel_bins, dtype=self.dtype)
        infer_mode = self.config.infer_mode if infer_mode is None else infer_mode
        spectrogram = self.embeddings.normalize(input_features)
        if infer_mode:
            spectrogram = tile_short_spectrogram(spectrogram, self.config.num_frames)
        return spectrogram

    @capture_outputs(tie_last_hidden_states=False)
    def encode_image(self, image: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutputWithPooling:
        """Everything after the fold: (B, 1, spec_size, spec_size) image -> tokens.

        `output_hidden_states` / `output_attentions` (kwargs or config) are recorded by transformers'
        `capture_outputs` (`_can_record_outputs`).
        """
        expected = (1, self.config.spec_size, self.config.spec_size)
        if image.dim() != 4 or tuple(image.shape[1:]) != expected:
            raise ValueError(
                f"image must have shape (batch, {', '.join(map(str, expected))}), got {tuple(image.shape)}"
            )
        hidden_states = self.encoder(self.embeddings(image), **kwargs)
        sequence_output = self.layernorm(hidden_states)
        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=sequence_output.mean(dim=1))

    def encode_spectrogram(self, spectrogram: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling | tuple:
        """A normalised (after `bn0`) (B, frames ≤ num_frames, mel) spectrogram -> tokens."""
        if spectrogram.shape[1] > self.config.num_frames:
            raise ValueError(
                f"input has {spectrogram.shape[1]} frames, more than the model's num_frames ({self.config.num_frames}). "
                "HTSATModel gives one output per clip; HTSATForAudioClassification crops longer inputs and averages "
                "its outputs, as the original does"
            )
        return self.encode_image(self.embeddings.spectrogram_to_image(spectrogram), **kwargs)

    def forward(
        self,
        input_features: torch.Tensor,
        infer_mode: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling | tuple:
        spectrogram = self.prepare_spectrogram(input_features, infer_mode)
        return self.encode_spectrogram(spectrogram, **kwargs)


class HTSATForAudioClassification(HTSATPreTrainedModel):
    """HTS-AT with its token-semantic head: clip `logits` (B, labels) and `framewise_logits` (B, 1024, labels).

    Both are pre-activation: the original's `clipwise_output` is `sigmoid(logits)` for its AudioSet config
    (`clip_bce`) and `logits` for its ESC-50 config (`clip_ce`); its `framewise_output` is
    `sigmoid(framewise_logits)`. The loss (when `labels` are given) follows `config.problem_type`.

    Inputs longer than `num_frames` are handled as the original evaluates them: crops of (T - 1) // 2 frames
    every (T - 1) // 4 frames, outputs averaged. The original averages its outputs, i.e. probabilities for
    the frames and for multi-label clips, and logits for single-label clips (`clip_ce`); the returned logits
    are the logits of those averages, so a sigmoid/softmax of them gives the original's numbers. The crops run
    in training mode too (the original draws one random crop there; random cropping belongs to the data
    pipeline). `hidden_states`/`attentions` of cropped inputs have crops × batch rows, crop-major.
    """

    def __init__(self, config: HTSATConfig):
        super().__init__(config)
        self.htsat = HTSATModel(config)
        self.classifier = HTSATTokenSemanticHead(config) if config.use_token_semantic_head else HTSATLinearHead(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_features: torch.Tensor,
        labels: torch.Tensor | None = None,
        infer_mode: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> HTSATAudioClassifierOutput | tuple:
        """`kwargs` (`output_attentions`, `output_hidden_states`, ...) go to the encoder and the loss."""
        spectrogram = self.htsat.prepare_spectrogram(input_features, infer_mode)
        batch_size = spectrogram.shape[0]
        if spectrogram.shape[1] <= self.config.num_frames:
            outputs = self.htsat.encode_spectrogram(spectrogram, return_dict=True, **kwargs)
            logits, step_logits = self.classifier(outputs.last_hidden_state)
            latent_output = outputs.pooler_output
        else:
            crops = crop_long_spectrogram(spectrogram, self.config.num_frames)  # (crops, B, size, mel)
            num_crops = crops.shape[0]
            outputs = self.htsat.encode_spectrogram(crops.flatten(0, 1), return_dict=True, **kwargs)
            crop_logits, crop_step_logits = self.classifier(outputs.last_hidden_state)
            crop_logits = crop_logits.view(num_crops, batch_size, -1)  # (crops, B, labels)
            if self.config.problem_type == "multi_label_classification":
                logits = logit_of_mean_probability(crop_logits, dim=0)
            else:
                logits = crop_logits.mean(dim=0)
            step_logits = logit_of_mean_probability(
                crop_step_logits.view(num_crops, batch_size, *crop_step_logits.shape[1:]), dim=0
            )
            latent_output = None
        # each time step covers frames_per_step (32) frames of the stretched axis
        framewise_logits = step_logits.repeat_interleave(self.config.frames_per_step, dim=1)  # (B, num_frames, labels)
        loss = None
        if labels is not None:
            loss = self.loss_function(check_labels(labels, logits, self.config), logits, self.config, **kwargs)
        return HTSATAudioClassifierOutput(
            loss=loss,
            logits=logits,
            framewise_logits=framewise_logits,
            latent_output=latent_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


# ---- from spectrogram_transformers.feature_extraction.mel ----------------------------------------


# Slaney's Auditory Toolbox mel scale (librosa's default, htk=False): linear at 200/3 Hz per mel up to
# 1 kHz (15 mel), then logarithmic with 27 mel per factor 6.4 in frequency.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0


_LOG_BREAK_HZ = 1000.0


_LOG_BREAK_MEL = _LOG_BREAK_HZ / _LINEAR_HZ_PER_MEL


_LOG_MEL_STEP = math.log(6.4) / 27.0


def hz_to_mel_slaney(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney mel of frequencies in Hz (float64), as librosa.hz_to_mel(htk=False)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    linear = frequencies / _LINEAR_HZ_PER_MEL
    # np.maximum keeps log() away from 0 Hz; those entries take the linear branch anyway.
    logarithmic = _LOG_BREAK_MEL + np.log(np.maximum(frequencies, _LOG_BREAK_HZ) / _LOG_BREAK_HZ) / _LOG_MEL_STEP
    return np.where(frequencies >= _LOG_BREAK_HZ, logarithmic, linear)


def mel_to_hz_slaney(mels: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz of Slaney mels (float64), as librosa.mel_to_hz(htk=False)."""
    mels = np.asarray(mels, dtype=np.float64)
    linear = mels * _LINEAR_HZ_PER_MEL
    logarithmic = _LOG_BREAK_HZ * np.exp(_LOG_MEL_STEP * (mels - _LOG_BREAK_MEL))
    return np.where(mels >= _LOG_BREAK_MEL, logarithmic, linear)


@lru_cache(maxsize=32)
def _slaney_filterbank_cpu(
    sample_rate: float, n_fft: int, num_mel_bins: int, fmin: float, fmax: float
) -> torch.Tensor:
    # Band edges: num_mel_bins + 2 points equally spaced in mel; filter i rises from edge i to edge i+1 and
    # falls to edge i+2. The weights are computed in float64 and stored in float32, then scaled by the Slaney
    # area normalisation 2 / (right - left) and stored in float32 again: librosa's exact sequence, which makes
    # this matrix equal to torchlibrosa's `melW` to the last bit.
    edges_hz = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), num_mel_bins + 2))
    fft_hz = np.arange(n_fft // 2 + 1) * (1.0 / (n_fft * (1.0 / sample_rate)))
    widths = np.diff(edges_hz)  # (M + 1,)
    distance = edges_hz[:, None] - fft_hz[None, :]  # (M + 2, F): edge minus bin frequency
    rising = -distance[:-2] / widths[:-1, None]  # (M, F)
    falling = distance[2:] / widths[1:, None]  # (M, F)
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    area_norm = 2.0 / (edges_hz[2:] - edges_hz[:-2])  # (M,)
    weights = (weights.astype(np.float64) * area_norm[:, None]).astype(np.float32)
    # Stored as [F, M] (torchlibrosa's melW layout): power [.., F] @ W gives mel energies [.., M].
    return torch.from_numpy(np.ascontiguousarray(weights.T))


@lru_cache(maxsize=32)
def _banded_slaney_filterbank(
    sample_rate: float, n_fft: int, num_mel_bins: int, fmin: float, fmax: float, device: str, dtype: torch.dtype
) -> BandedFilterbank:
    bank = _slaney_filterbank_cpu(sample_rate, n_fft, num_mel_bins, fmin, fmax)
    return BandedFilterbank(bank).to(device=device, dtype=dtype)


@lru_cache(maxsize=8)
def _periodic_hann(size: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    # float64 then float32, as scipy/librosa's window that torchlibrosa bakes into its STFT kernels
    return torch.hann_window(size, periodic=True, dtype=torch.float64).float().to(device=device, dtype=dtype)


def _reflect_pad_batch(batch: torch.Tensor, lengths: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad every clip of a zero-padded batch at its own ends (numpy/torch "reflect", edge not repeated).

    Returns [B, max_samples + 2 * pad]: row b holds pad reflected samples, the clip, pad reflected samples of
    the clip's own end, then whatever followed the clip in `batch` (only frames past the clip's frame count
    read it). Two small [B, pad] edge gathers for the batch instead of a per-clip loop.
    """
    batch_size, samples = batch.shape
    padded = batch.new_empty(batch_size, samples + 2 * pad)
    padded[:, pad : pad + samples] = batch
    padded[:, samples + pad :] = 0.0
    padded[:, :pad] = batch[:, 1 : pad + 1].flip(-1)  # x[pad], ..., x[1]: every clip starts at column 0
    offsets = torch.arange(1, pad + 1, device=batch.device).unsqueeze(0)  # (1, pad)
    last = (lengths.to(batch.device) - 1).unsqueeze(1)  # (B, 1)
    tail = torch.gather(batch, 1, last - offsets)  # (B, pad): x[L-2], ..., x[L-1-pad] of each clip's own end
    padded.scatter_(1, last + 1 + pad + offsets - 1, tail)  # written at padded columns L + pad, ...
    return padded


@dataclass(frozen=True)
class LogMelSettings:
    """The settings of HTS-AT's log-mel front end, travelling as one value from the feature extractor to the FFT.

    The defaults are HTS-AT's AudioSet/ESC-50 configuration at 32 kHz. `HTSATFeatureExtractor` saves each field
    as an attribute of its own (`preprocessor_config.json`) and builds this object from them.
    """

    n_fft: int = 1024  # FFT and window size (periodic Hann)
    hop_length: int = 320  # frame shift in samples
    num_mel_bins: int = 64  # Slaney mel filters from fmin to fmax
    fmin: float = 50.0
    fmax: float | None = 14000.0  # None is Nyquist
    amin: float = 1e-10  # floor of the mel power before the log (-100 dB)
    ref: float = 1.0  # reference power: 10 log10(max(x, amin)) - 10 log10(max(amin, ref))
    top_db: float | None = None  # if set, clip each clip's values to (its max - top_db); HTS-AT uses None
    # frames past each clip's own frame count; None is the log-mel of silence, 10 log10(amin) - 10 log10(max(amin,
    # ref)) (-100 dB by default), which is what zero-padding the waveform would give away from the clip's end
    padding_value: float | None = None

    @classmethod
    def from_attributes(cls, source: Any) -> LogMelSettings:
        """The settings held as same-named attributes of `source` (a feature extractor)."""
        return cls(**{field.name: getattr(source, field.name) for field in fields(cls)})


HTSAT_LOG_MEL = LogMelSettings()


def log_mel_spectrogram(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    sample_rate: float = 32000,
    *,
    lengths: torch.Tensor | Sequence[int] | None = None,
    settings: LogMelSettings = HTSAT_LOG_MEL,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel spectrogram (dB) of a batch of clips, as HTS-AT's torchlibrosa front end computes it.

    Args:
        waveforms: float waveforms: a list of 1-D clips of any lengths, a zero-padded batch [B, samples]
            (give `lengths`), or one clip [samples] (B = 1). Computed in float32 on the input's device.
        sample_rate: sampling rate in Hz (only the mel filterbank depends on it).
        lengths: valid samples of each clip of a padded batch (default: all full length).
        settings: the front end's settings (STFT, mel filterbank, dB scale, padding value).

    Returns:
        `(features, num_frames)`: features [B, max_frames, num_mel_bins] (time along dim 1), num_frames [B]
        int64 = 1 + samples // hop_length per clip (center=True framing).

    Raises:
        ValueError: a clip of n_fft // 2 samples or fewer (reflect padding needs more), or bad settings.
    """
    batch, lengths = pad_batch(waveforms, lengths)
    device = batch.device
    n_fft, hop_length, fmin, fmax = settings.n_fft, settings.hop_length, settings.fmin, settings.fmax
    amin, top_db, padding_value = settings.amin, settings.top_db, settings.padding_value
    if hop_length < 1 or n_fft < 2:
        raise ValueError(f"need n_fft >= 2 and hop_length >= 1, got n_fft={n_fft}, hop_length={hop_length}")
    fmax = sample_rate / 2.0 if fmax is None else fmax
    if not 0.0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative, got {top_db}")
    pad = n_fft // 2
    if bool((lengths <= pad).any()):
        shortest = int(lengths.min())
        raise ValueError(
            f"a clip of {shortest} samples is too short for a centred STFT with n_fft={n_fft}: reflect padding "
            f"needs more than {pad} samples ({pad / sample_rate * 1000:.1f} ms at {sample_rate} Hz)"
        )

    padded = _reflect_pad_batch(batch, lengths, pad)  # (B, S + n_fft)
    num_frames = 1 + lengths.div(hop_length, rounding_mode="floor")
    max_frames = int(num_frames.max())
    window = _periodic_hann(n_fft, str(device), batch.dtype)
    frames = padded[:, : (max_frames - 1) * hop_length + n_fft].unfold(-1, n_fft, hop_length)  # (B, T, n_fft)
    spectrum = torch.fft.rfft(frames * window, dim=-1)  # (B, T, n_fft // 2 + 1)

    mel_bank = _banded_slaney_filterbank(
        float(sample_rate), int(n_fft), int(settings.num_mel_bins), float(fmin), float(fmax), str(device), batch.dtype
    )
    features = mel_bank(power_spectrum(spectrum))  # (B, T, M) mel power
    offset = 10.0 * math.log10(max(amin, settings.ref))
    features = features.clamp_(min=amin).log10_().mul_(10.0).sub_(offset)

    valid = torch.arange(max_frames, device=device).unsqueeze(0) < num_frames.to(device).unsqueeze(1)  # (B, T)
    if top_db is not None:
        peak = features.masked_fill(~valid.unsqueeze(-1), -math.inf).amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        features = torch.maximum(features, peak - top_db)
    if padding_value is None:
        padding_value = 10.0 * math.log10(amin) - offset
    features = features.masked_fill(~valid.unsqueeze(-1), padding_value)
    return features, num_frames


# ---- from spectrogram_transformers.feature_extraction.feature_extraction_htsat -------------------


ClipPadMode = Literal["constant", "repeat"]


_CLIP_PAD_MODES = ("constant", "repeat")


# HTS-AT's Speech Commands V2 setting (original config.py: "sample_rate = 16000 for scv2", "hop_size = 160 for
# scv2"; window, mel bins, fmin and fmax are left at the AudioSet values; clip_samples = sample_rate * 10, and
# SCV2_Dataset repeats each 1 s clip until it fills those 10 s).
SPEECH_COMMANDS_SETTINGS: dict[str, Any] = {
    "sampling_rate": 16000,
    "n_fft": 1024,
    "hop_length": 160,
    "num_mel_bins": 64,
    "fmin": 50.0,
    "fmax": 14000.0,
    "clip_samples": 160000,
    "clip_pad_mode": "repeat",
}


def fit_to_clip_length(
    batch: torch.Tensor, lengths: torch.Tensor, clip_samples: int, mode: ClipPadMode = "constant"
) -> torch.Tensor:
    """Bring every clip of a zero-padded batch [B, S] to exactly `clip_samples` samples: [B, clip_samples].

    Longer clips keep their first `clip_samples` samples. Shorter ones are zero-padded ("constant", AudioSet /
    DESED) or repeated from the start until full ("repeat": the original's SCV2 dataset doubles the clip until it
    is long enough, and ESC-50 concatenates its 5 s clip with itself; both equal a periodic extension).
    """
    if mode == "constant":
        fitted = batch.new_zeros(batch.shape[0], clip_samples)
        kept = min(batch.shape[1], clip_samples)
        fitted[:, :kept] = batch[:, :kept]  # the batch is zero past each clip's length already
        return fitted
    if mode == "repeat":
        position = torch.arange(clip_samples, device=batch.device).unsqueeze(0)  # (1, clip_samples)
        source = position % lengths.to(batch.device).clamp(min=1).unsqueeze(1)  # (B, clip_samples)
        return torch.gather(batch, 1, source)
    raise ValueError(f"clip_pad_mode must be one of {_CLIP_PAD_MODES}, got {mode!r}")


class HTSATFeatureExtractor(SpectrogramFeatureExtractor):
    r"""torchlibrosa-style log-mel features for HTS-AT: [batch, frames, num_mel_bins] in dB, time along dim 1.

    With `center=True` framing a clip of N samples gives 1 + N // hop_length frames: 10 s at 32 kHz with hop 320
    gives 1001 (the model stretches them to its 1024-frame grid). For Speech Commands, see
    [`~HTSATFeatureExtractor.speech_commands`].

    Args:
        feature_size (`int`, defaults to 64): kept equal to `num_mel_bins`.
        sampling_rate (`int`, defaults to 32000): rate the features are computed at; other input is resampled.
        num_mel_bins (`int`, defaults to 64): Slaney mel filters.
        n_fft (`int`, defaults to 1024): FFT size = periodic Hann window length.
        hop_length (`int`, defaults to 320): frame shift in samples (10 ms at 32 kHz).
        fmin (`float`, defaults to 50.0), fmax (`float`, defaults to 14000.0): filterbank range in Hz (fmax
            None = Nyquist; above Nyquist the top filters are empty, as in librosa).
        amin (`float`, defaults to 1e-10): power floor before the log (-100 dB).
        ref (`float`, defaults to 1.0): reference power of 0 dB.
        top_db (`float`, *optional*): clip each example to its peak minus `top_db`; HTS-AT uses None.
        clip_samples (`int`, *optional*, defaults to 320000): waveform length every clip is brought to before
            the spectrogram (AudioSet: 10 s at 32 kHz). None keeps each clip's own length; a batch is then
            padded to its longest example with `padding_value` frames.
        clip_pad_mode (`str`, defaults to `"constant"`): how clips shorter than `clip_samples` are filled:
            "constant" (zeros, AudioSet) or "repeat" (the clip repeated, ESC-50 / Speech Commands).
        padding_value (`float`, defaults to -100.0): value of padded frames when `clip_samples` is None; -100 dB
            is the log-mel of digital silence with the default `amin` and `ref`.
        return_attention_mask (`bool`, defaults to False): also return `attention_mask` [batch, frames], 1 on
            frames of the clip and 0 on padding (all ones when `clip_samples` is set).
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 64,
        sampling_rate: int = 32000,
        num_mel_bins: int = 64,
        n_fft: int = 1024,
        hop_length: int = 320,
        fmin: float = 50.0,
        fmax: float | None = 14000.0,
        amin: float = 1e-10,
        ref: float = 1.0,
        top_db: float | None = None,
        clip_samples: int | None = 320000,
        clip_pad_mode: ClipPadMode = "constant",
        padding_value: float = -100.0,
        return_attention_mask: bool = False,
        **kwargs,
    ):
        super().__init__(feature_size, sampling_rate, num_mel_bins, padding_value, return_attention_mask, **kwargs)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.amin = amin
        self.ref = ref
        self.top_db = top_db
        self.clip_samples = clip_samples
        self.clip_pad_mode = clip_pad_mode
        self._validate()

    def _validate(self) -> None:
        if min(self.num_mel_bins, self.hop_length) < 1 or self.n_fft < 2:
            raise ValueError(
                f"need num_mel_bins >= 1, hop_length >= 1, n_fft >= 2; got {self.num_mel_bins}, {self.hop_length}, "
                f"{self.n_fft}"
            )
        if self.clip_pad_mode not in _CLIP_PAD_MODES:
            raise ValueError(f"clip_pad_mode must be one of {_CLIP_PAD_MODES}, got {self.clip_pad_mode!r}")
        if self.clip_samples is not None and self.clip_samples <= self.n_fft // 2:
            raise ValueError(f"clip_samples ({self.clip_samples}) must exceed n_fft // 2 ({self.n_fft // 2})")
        if not self.amin > 0:
            raise ValueError(f"amin must be positive, got {self.amin}")
        fmax = self.sampling_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax:
            raise ValueError(f"need 0 <= fmin < fmax, got fmin={self.fmin}, fmax={fmax}")

    @classmethod
    def speech_commands(cls, **kwargs) -> HTSATFeatureExtractor:
        """HTS-AT's Speech Commands V2 front end: 16 kHz, n_fft 1024, hop 160, 64 mel bins from 50 Hz to
        14 kHz, clips repeated to 10 s (160000 samples, 1001 frames).

        The original keeps fmax at 14 kHz although Nyquist is 8 kHz, so the top filters (9 of 64) are empty and
        always read -100 dB; that is kept, since checkpoints trained on these features expect it.
        Keyword arguments override any setting.
        """
        return cls(**{**SPEECH_COMMANDS_SETTINGS, **kwargs})

    @property
    def input_samples(self) -> int | None:
        """Samples of a clip the features read: `clip_samples` (the rest is cut); None when it is None."""
        return None if self.clip_samples is None else int(self.clip_samples)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`FeatureExtractionMixin.save_pretrained`, plus `auto_map` and the HTS-AT custom code (`remote_code`).

        The saved `feature_extractor_type` ("HTSATFeatureExtractor", a name transformers does not have) makes
        `AutoFeatureExtractor` pick this package's registered class when it is installed, and the remote code
        (with `trust_remote_code=True`) when it is not.
        """
        add_remote_code(self, save_directory, "htsat")
        return super().save_pretrained(save_directory, *args, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["feature_extractor_type"] = type(self).__name__  # unique name: see save_pretrained
        return output

    def __call__(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Compute log-mel features of one clip or a batch of clips of any lengths.

        Args:
            raw_speech: one clip (1-D numpy/torch, or list of floats), a batch of mono clips [batch, samples],
                or a list of clips of different lengths; int16/int32/uint8 PCM or float. A 2-D array is a batch
                of mono clips ([batch, samples], the `transformers` convention), except an array whose trailing
                axis is a handful of channels (<= 8) and whose leading axis is longer: that is one channels-last
                clip as `soundfile.read` returns it ([samples, channels]); it is down-mixed, with a one-time
                warning. Pass a channels-first clip [channels, samples] inside a list: `[clip]`.
            sampling_rate: rate of `raw_speech` in Hz; resampled (soxr) when it differs from
                `self.sampling_rate`. Missing: a warning, and the audio is taken to be at `self.sampling_rate`.
            return_tensors: "pt" for torch, "np" for numpy, None for a list of numpy arrays (one per clip).
            padding: zero-pad the audio, in samples: True / "longest" to the longest clip of the batch,
                "max_length" to `max_length`, False / "do_not_pad" (default) not at all (each clip keeps its length
                and the extractor pads its features as it always does). The zeros are audio: the features equal
                those of the clip you padded with zeros yourself.
            truncation: True cuts each clip to its first `max_length` samples (needs `max_length`).
            max_length: samples (at `self.sampling_rate`, i.e. after any resampling), as in `transformers`' audio
                classification guide, never frames: the target of `truncation` and of `padding="max_length"`; on
                its own it has no effect (a warning). The model's frame count is the extractor's setting.
            pad_to_multiple_of: round the padded (or cut) length up to a multiple of this many samples.
            return_attention_mask: override `self.return_attention_mask`. The mask is 1 on frames computed from
                the clip, 0 on padding frames; with `padding`, 0 from the first frame that reaches past the clip's
                own audio into the appended zeros (`frames_of_samples`).
            device (keyword): torch device to compute on (e.g. "cuda"); "pt" outputs stay there.

        Returns:
            `BatchFeature` with `input_features` [batch, frames, num_mel_bins] float32 (frames =
            1 + clip_samples // hop_length, or the longest clip's count when `clip_samples` is None), and
            `attention_mask` [batch, frames] int32 when asked for. The same as `extract` on the padded batch.
        """
        return self._features_of(
            raw_speech,
            sampling_rate,
            return_tensors,
            return_attention_mask,
            kwargs,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
        )

    def frames_of_samples(self, lengths: torch.Tensor) -> torch.Tensor:
        """Centred frames whose centre lies within `lengths` samples (1 + samples // hop_length, the count
        `extract` gives a clip of that length), at most the frames of `clip_samples` when it is set."""
        if self.clip_samples is not None:
            lengths = lengths.clamp(max=self.clip_samples)
        return 1 + lengths.div(self.hop_length, rounding_mode="floor")

    def extract(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        return_attention_mask: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Log-mel features of a zero-padded batch of mono waveforms, on the waveforms' device.

        Args:
            waveforms: [batch, samples] float, at `self.sampling_rate`; values past a clip's length are ignored.
            lengths: [batch] samples of each clip (default: all `samples`); a host tensor avoids a device sync.
            return_attention_mask: override `self.return_attention_mask`.

        Returns:
            `{"input_features": [batch, frames, num_mel_bins] float32}` (plus `attention_mask` [batch, frames]
            int32 when asked for). Each clip's features equal those of the clip alone (with `clip_samples` None,
            up to its own frame count; later frames are `padding_value`).
        """
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        batch, lengths = self._checked_batch(waveforms, lengths)
        if self.clip_samples is not None:
            batch = fit_to_clip_length(batch, lengths, self.clip_samples, self.clip_pad_mode)
            lengths = torch.full_like(lengths, self.clip_samples)
        features, num_frames = log_mel_spectrogram(
            batch, self.sampling_rate, lengths=lengths, settings=LogMelSettings.from_attributes(self)
        )  # (B, T, M)

        outputs = {"input_features": features.contiguous()}
        if return_attention_mask:
            outputs["attention_mask"] = frames_mask(num_frames, features.shape[1], features.device)
        return outputs


# ---- from spectrogram_transformers.modeling.htsat.convert_htsat ----------------------------------


# prefixes of the wrappers around the model: Lightning's `SEDWrapper.sed_model`, DataParallel's `module`
_WRAPPER_PREFIXES = ("sed_model.", "module.")


# keys dropped on purpose, with why:
DROPPED_KEYS: tuple[tuple[str, str], ...] = (
    # the front end is not part of the model (HTSATFeatureExtractor computes the log-mel): frozen STFT and mel kernels
    (r"spectrogram_extractor\.stft\.conv_(real|imag)\.weight", "frozen STFT kernels of the front end"),
    (r"logmel_extractor\.melW", "frozen mel filter bank of the front end"),
    # derivable from the geometry: rebuilt by the model as non-persistent buffers
    (r"layers\.\d+\.blocks\.\d+\.attn\.relative_position_index", "derivable relative-position index"),
    (r"layers\.\d+\.blocks\.\d+\.attn_mask", "derivable shifted-window mask"),
)


# `head.*` is created but never used when the token-semantic head is on (dropped only then)
_UNUSED_HEAD = r"head\.(weight|bias)"


_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."


_RENAMES: tuple[tuple[str, str], ...] = (
    (r"bn0\.(weight|bias|running_mean|running_var|num_batches_tracked)", r"htsat.embeddings.mel_norm.\1"),
    (r"patch_embed\.proj\.(weight|bias)", r"htsat.embeddings.projection.\1"),
    (r"patch_embed\.norm\.(weight|bias)", r"htsat.embeddings.norm.\1"),
    (_BLOCK + r"norm1\.(weight|bias)", r"htsat.encoder.layers.\1.blocks.\2.layernorm_before.\3"),
    (_BLOCK + r"norm2\.(weight|bias)", r"htsat.encoder.layers.\1.blocks.\2.layernorm_after.\3"),
    # fused qkv is split after renaming (see `split_fused_qkv`)
    (_BLOCK + r"attn\.qkv\.(weight|bias)", r"htsat.encoder.layers.\1.blocks.\2.attention.qkv.\3"),
    (_BLOCK + r"attn\.proj\.(weight|bias)", r"htsat.encoder.layers.\1.blocks.\2.attention.o_proj.\3"),
    (
        _BLOCK + r"attn\.relative_position_bias_table",
        r"htsat.encoder.layers.\1.blocks.\2.attention.relative_position_bias_table",
    ),
    (_BLOCK + r"mlp\.(fc1|fc2)\.(weight|bias)", r"htsat.encoder.layers.\1.blocks.\2.mlp.\3.\4"),
    (r"layers\.(\d+)\.downsample\.(norm|reduction)\.(weight|bias)", r"htsat.encoder.layers.\1.downsample.\2.\3"),
    (r"norm\.(weight|bias)", r"htsat.layernorm.\1"),
    (r"tscam_conv\.(weight|bias)", r"classifier.conv.\1"),
)


_LINEAR_HEAD_RENAME = (_UNUSED_HEAD, r"classifier.dense.\1")


def _unwrap(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if any(key.startswith(prefix) for key in state_dict):
            state_dict = strip_prefix(state_dict, prefix)
    return dict(state_dict)


def convert_original_htsat_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: HTSATConfig
) -> dict[str, torch.Tensor]:
    """Original `HTSAT_Swin_Transformer` keys (optionally `sed_model.`-prefixed) -> `HTSATForAudioClassification` keys.

    Drops the keys in `DROPPED_KEYS` (and the unused `head.*` when the token-semantic head is on), splits the
    fused qkv, and raises `CheckpointKeyError` naming any other key it does not know.
    """
    state_dict = _unwrap(state_dict)
    dropped = [pattern for pattern, _ in DROPPED_KEYS]
    rules = list(_RENAMES)
    if config.use_token_semantic_head:
        dropped.append(_UNUSED_HEAD)
    else:
        rules.append(_LINEAR_HEAD_RENAME)
    kept = drop_keys(state_dict, dropped)
    renamed, unknown = rename_keys(kept, rules)
    if unknown:
        raise CheckpointKeyError(f"unexpected keys in the original HTS-AT checkpoint: {sorted(unknown)}")
    return split_fused_qkv(renamed)


def htsat_checkpoint_filter(state_dict: Mapping[str, torch.Tensor], config: HTSATConfig) -> dict[str, torch.Tensor]:
    """Any known HTS-AT checkpoint layout -> this package's keys: the one path by which `from_pretrained` and the
    `original-htsat` converter read weights.

    The original layout (`sed_model.`/`module.` optional; recognised by its `bn0`/`patch_embed` keys) goes through
    `convert_original_htsat_state_dict`; this package's own layout is returned as it is.
    """
    unwrapped = _unwrap(state_dict)
    if any(key.startswith(("bn0.", "patch_embed.")) for key in unwrapped):
        return convert_original_htsat_state_dict(unwrapped, config)
    return dict(state_dict)
