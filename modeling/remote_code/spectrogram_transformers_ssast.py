# GENERATED FILE: DO NOT EDIT. Written by `python -m spectrogram_transformers.modeling.remote_code.generate`
# from the package source; change the package and regenerate (tests/models/test_remote_code.py checks it).
"""The SSAST family of spectrogram-transformers for transformers' `trust_remote_code=True`
(the Auto classes and pipeline load a saved directory without the package); what the families share
is in `spectrogram_transformers_shared.py`, copied beside it.

From the package modules modeling.ssast.configuration_ssast, modeling.ssast.convert_ssast, modeling.ssast.masking, modeling.ssast.modeling_ssast.
"""

from __future__ import annotations

import copy
import dataclasses
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
import torch.nn.functional as F
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
from transformers.modeling_outputs import SequenceClassifierOutput
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
from typing import Literal

from .spectrogram_transformers_shared import (  # noqa: F401
    ASTAttention,
    ASTClassificationHead,
    ASTConfig,
    ASTEmbeddings,
    ASTEncoder,
    ASTFeatureExtractor,
    ASTLayer,
    ASTMLP,
    ASTModel,
    ASTPatchEmbeddings,
    ASTPreTrainedModel,
    AST_FBANK,
    AudioClassificationMixin,
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
    KaldiFbankSettings,
    Layout,
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
    TRANSFORMERS_AST_MODEL_TYPE,
    WindowStream,
    WindowType,
    _CONTAINER_KEYS,
    _DEFAULT_READ_TIMEOUT_S,
    _FAST_DTYPES,
    _FEATURE_GROUP,
    _FFMPEG_HINT,
    _FILTERS_PER_GROUP,
    _FLOAT32_EPS,
    _HF_AST_RULES,
    _IS_PACKAGE,
    _LOADING_KWARGS,
    _MEL_BREAK_HZ,
    _MEL_FACTOR,
    _ONEDNN_LINEAR,
    _ORIGINAL_AST_DROPPED,
    _ORIGINAL_AST_RULES,
    _PCM_FULL_SCALE,
    _POSITION_KEY,
    _POVEY_EXPONENT,
    _SampleLengthPlan,
    _TIMM_HEADS,
    _UINT8_OFFSET,
    _WEIGHT_FILES,
    _WEIGHT_FILE_NAMES,
    _WEIGHT_SUFFIXES,
    _WINDOW_TYPES,
    _as_numpy,
    _banded_mel_banks,
    _bf16_matmul_supported,
    _channel_axis,
    _check_rate,
    _checked_not_empty,
    _describe_source,
    _ffmpeg_blocks,
    _ffprobe_info,
    _find_weight_file,
    _geometry,
    _groups,
    _hooked,
    _is_exact_gelu,
    _mel_banks_cpu,
    _own_copy,
    _soundfile_blocks,
    _soundfile_info,
    _source_grid,
    _stalled_message,
    _to_package_names,
    _warn_channels_last_once,
    _warned_channels_last,
    _window_cpu,
    adapt_state_dict_geometry,
    add_remote_code,
    ast_checkpoint_filter,
    ast_config_from_transformers,
    check_input_values,
    check_labels,
    checkpoint_layout,
    default_read_timeout,
    drop_keys,
    eager_attention_forward,
    frames_mask,
    give_weights_umask_permissions,
    infer_source_grid,
    is_channels_last_clip,
    kaldi_fbank,
    kaldi_frame_sizes,
    kaldi_mel_banks,
    kaldi_mel_scale,
    kaldi_window,
    linear_then_activation,
    load_audio,
    load_checkpoint,
    logger,
    middle_cut,
    model_input_samples,
    module_name,
    onednn_linear_applies,
    original_encoder_rules,
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
    resize_patch_position_embeddings,
    resize_position_embeddings,
    select_checkpoint_keys,
    split_fused_qkv,
    split_prefix,
    stream_audio,
    strip_prefix,
    to_batch_feature,
    to_mono_batch,
    to_mono_float32,
    unwrap_state_dict,
)


# ---- from spectrogram_transformers.modeling.ssast.configuration_ssast ----------------------------


@strict
class SSASTConfig(ASTConfig):
    r"""Configuration of [`SSASTModel`], [`SSASTForPreTraining`] and [`SSASTForAudioClassification`].

    The defaults give the released SSAST-Base-Patch-400 pre-training geometry: DeiT-base width, 16×16
    patches with stride 16 (no overlap, as pre-training requires) on 1024 frames × 128 mel bins, 8×64 = 512
    patches, 400 of them masked. Frame models use `patch_size=(128, 2)` and strides (128, 2). Fine-tuning
    configs change the strides (the paper uses 10 for patches, time stride 1 for frames) and `max_length`;
    `SSASTForAudioClassification.from_pretrained` adapts the pre-trained weights to them.

    All fields of [`ASTConfig`] apply. The ones whose defaults differ:
        patch_size (`int` or `tuple[int, int]`, defaults to 16): (frequency, time) patch size.
        frequency_stride (`int`, defaults to 16), time_stride (`int`, defaults to 16): patch strides; must equal
            the patch size for pre-training (masking and targets assume non-overlapping patches).
        pooling (`"mean"` or `"cls"`, defaults to `"mean"`): clip representation for classification: the mean of
            the patch tokens (original `ft_avgtok`, SSAST's default because pre-training supervises every patch
            token and no prefix token) or the mean of the prefix tokens (original `ft_cls`).

    Args:
        num_masked_patches (`int`, defaults to 400): patches masked per clip in pre-training (the paper's 400 of
            512; the released "-250" models used 250). Every clip gets exactly this many.
        masking (`"auto"`, `"cluster"` or `"random"`, defaults to `"auto"`): how masked patches are drawn.
            `"cluster"` masks square groups of neighbouring patches (the original `gen_maskid_patch`), `"random"`
            samples patches uniformly (`gen_maskid_frame`). `"auto"` does what the original training script does:
            cluster unless the patch spans every mel bin (frame patches), where clustering hurt.
        mask_cluster_size_range (`tuple[int, int]`, defaults to `(3, 5)`): inclusive range of the cluster side;
            one side is drawn per clip (the original draws `randrange(3) + 3` per call, i.e. per clip).
        nce_weight (`float`, defaults to 1.0): weight of the discriminative (InfoNCE) loss; 0 skips it.
        mse_weight (`float`, defaults to 10.0): weight of the generative (MSE reconstruction) loss; 0 skips it.
            The paper's joint objective is `nce + 10 · mse`.
        joint_masking (`"separate"` or `"shared"`, defaults to `"separate"`): with both objectives on, the original
            (`pretrain_joint` in `traintest_mask.py`) runs the model twice per step, each objective on its own
            independently masked copy. `"separate"` reproduces that (both copies go through the encoder as one
            batch of 2·B); `"shared"` masks once and feeds one encoder pass to both heads, half the compute.
        prediction_size (`int`, defaults to 256): output width of the two pre-training heads. They predict raw
            input patches, so it must equal the number of spectrogram bins in a patch (16·16 = 128·2 = 256);
            the original hard-codes 256.
        pretraining_num_mel_bins (`int`, *optional*), pretraining_max_length (`int`, *optional*): input size the
            encoder was pre-trained on (the original's `p_input_fdim` / `p_input_tdim`), recorded when a
            pre-trained checkpoint is adapted to a fine-tuning geometry. `None` means this config's own
            `num_mel_bins` / `max_length`.
    """

    model_type = "ssast"

    patch_size: int | list[int] | tuple[int, int] = 16
    frequency_stride: int = 16
    time_stride: int = 16
    pooling: Literal["cls", "mean"] = "mean"

    num_masked_patches: int = 400
    masking: Literal["auto", "cluster", "random"] = "auto"
    mask_cluster_size_range: list[int] | tuple[int, int] = (3, 5)
    nce_weight: float | int = 1.0
    mse_weight: float | int = 10.0
    joint_masking: Literal["separate", "shared"] = "separate"
    prediction_size: int = 256
    pretraining_num_mel_bins: int | None = None
    pretraining_max_length: int | None = None

    @property
    def mask_strategy(self) -> Literal["cluster", "random"]:
        """The masking actually used: `"auto"` resolved as the original training script does."""
        if self.masking != "auto":
            return self.masking
        return "random" if self.frequency_patch_size == self.num_mel_bins else "cluster"

    @property
    def pretraining_input_size(self) -> tuple[int, int]:
        """(mel bins, frames) of the pre-training input."""
        return (
            self.num_mel_bins if self.pretraining_num_mel_bins is None else self.pretraining_num_mel_bins,
            self.max_length if self.pretraining_max_length is None else self.pretraining_max_length,
        )

    def validate_architecture(self) -> None:
        super().validate_architecture()
        cluster_range = tuple(self.mask_cluster_size_range)
        if len(cluster_range) != 2 or not 1 <= cluster_range[0] <= cluster_range[1]:
            raise ValueError(
                f"mask_cluster_size_range must be (low, high) with 1 <= low <= high, got {self.mask_cluster_size_range}"
            )
        if self.num_masked_patches < 1:
            raise ValueError(f"num_masked_patches must be >= 1, got {self.num_masked_patches}")
        if self.nce_weight < 0 or self.mse_weight < 0 or self.nce_weight + self.mse_weight == 0:
            raise ValueError(
                f"nce_weight ({self.nce_weight}) and mse_weight ({self.mse_weight}) must be >= 0 and not both 0"
            )
        if (self.pretraining_num_mel_bins is None) != (self.pretraining_max_length is None):
            raise ValueError("set both pretraining_num_mel_bins and pretraining_max_length, or neither")

    def pretraining_errors(self) -> list[str]:
        """Why this config cannot be pre-trained (empty when it can); `SSASTForPreTraining` raises on any.

        These are not part of the always-run validation: a fine-tuning config legitimately has overlapping
        strides, a short input with fewer patches than `num_masked_patches`, or a patch of another size.
        """
        errors = []
        patch = (self.frequency_patch_size, self.time_patch_size)
        if (self.frequency_stride, self.time_stride) != patch:
            errors.append(
                f"pre-training needs non-overlapping patches: strides ({self.frequency_stride}, {self.time_stride}) "
                f"must equal patch_size {patch}"
            )
        if patch[0] * patch[1] != self.prediction_size:
            errors.append(
                f"the pre-training heads predict raw patches of {patch[0]}×{patch[1]} = {patch[0] * patch[1]} bins, "
                f"but prediction_size is {self.prediction_size}; set prediction_size={patch[0] * patch[1]} "
                "(the original only supports 256-bin patches)"
            )
        if self.pretraining_input_size != (self.num_mel_bins, self.max_length):
            errors.append(
                f"pretraining_num_mel_bins/pretraining_max_length {self.pretraining_input_size} differ from "
                f"num_mel_bins/max_length ({self.num_mel_bins}, {self.max_length}): this config was adapted for fine-tuning"
            )
        num_patches = self.num_patches
        # cluster masking never masks patch 0 and stops only once MORE than num_masked_patches ids are collected
        limit = num_patches - 2 if self.mask_strategy == "cluster" else num_patches
        if self.num_masked_patches > limit:
            errors.append(
                f"num_masked_patches ({self.num_masked_patches}) must be at most {limit} for {self.mask_strategy} masking "
                f"of {num_patches} patches (patch grid {self.patch_grid})"
            )
        return errors


# ---- from spectrogram_transformers.modeling.ssast.masking ----------------------------------------


def patchify_spectrogram(input_values: torch.Tensor, patch_size: tuple[int, int]) -> torch.Tensor:
    """(B, frames, mel) features -> (B, F·T, pf·pt) raw non-overlapping patches, the pre-training targets.

    Equal to the original's `nn.Unfold(kernel=patch, stride=patch)` on the (mel, frames) image: patches are
    ordered frequency-major (index = f·T + t) and flattened frequency-major inside the patch (element = i·pt + j
    for mel row i and frame j; for 128×2 frames the two frames interleave). Trailing bins that do not fill a
    patch are dropped, as the convolution drops them.
    """
    frequency_patch, time_patch = patch_size
    batch_size, frames, mel_bins = input_values.shape
    rows, columns = mel_bins // frequency_patch, frames // time_patch
    image = input_values.transpose(1, 2)[:, : rows * frequency_patch, : columns * time_patch]  # (B, mel, frames)
    patches = image.reshape(batch_size, rows, frequency_patch, columns, time_patch)  # (B, F, pf, T, pt)
    patches = patches.permute(0, 1, 3, 2, 4)  # (B, F, T, pf, pt)
    return patches.reshape(batch_size, rows * columns, frequency_patch * time_patch)  # (B, F·T, pf·pt)


def unpatchify_spectrogram(
    patches: torch.Tensor, patch_size: tuple[int, int], input_size: tuple[int, int]
) -> torch.Tensor:
    """Inverse of `patchify_spectrogram`: (B, F·T, pf·pt) -> (B, 1, mel, frames) image, zeros where no patch lies.

    `input_size` is (mel bins, frames). Equal to the original's `nn.Fold` for non-overlapping patches.
    """
    frequency_patch, time_patch = patch_size
    mel_bins, frames = input_size
    rows, columns = mel_bins // frequency_patch, frames // time_patch
    batch_size = patches.shape[0]
    grid = patches.reshape(batch_size, rows, columns, frequency_patch, time_patch).permute(
        0, 1, 3, 2, 4
    )  # (B, F, pf, T, pt)
    image = patches.new_zeros(batch_size, 1, mel_bins, frames)
    image[:, 0, : rows * frequency_patch, : columns * time_patch] = grid.reshape(
        batch_size, rows * frequency_patch, columns * time_patch
    )
    return image


def gather_patches(sequence: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """(B, N, C) rows picked per sample by (B, M) indices -> (B, M, C), in index order."""
    return sequence.gather(1, indices.unsqueeze(-1).expand(-1, -1, sequence.shape[-1]))


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def cluster_mask_indices(
    batch_size: int,
    patch_grid: tuple[int, int],
    num_masked: int,
    cluster_size_range: tuple[int, int] = (3, 5),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Cluster masking (the original `gen_maskid_patch`), vectorised over the batch; returns (B, M) ascending ids.

    Per clip: draw a cluster side c in `cluster_size_range` (inclusive) once, then repeatedly draw a start patch
    s uniformly and add the ids s + T·i + j for i, j < c (T = time patches), keeping only 0 < id < F·T: patch 0
    is never masked and a cluster reaching past the last time column wraps into the next frequency row. Stop
    as soon as MORE than M distinct ids are collected and keep the M smallest (CPython's small-int set order,
    which the original's `list(set)[:M]` relies on).

    Instead of looping, draws a block of starts per clip, finds for every patch the first draw covering it
    (`scatter_reduce` amin), and counts distinct ids after each draw with a cumulative histogram. If a block is
    too short for some clip, more starts are appended (never redrawn, which would bias the stopping point).
    """
    frequency_patches, time_patches = patch_grid
    num_patches = frequency_patches * time_patches
    if num_masked > num_patches - 2:
        raise ValueError(
            f"cluster masking of {num_patches} patches can mask at most {num_patches - 2} (patch 0 is never masked and "
            f"one more id must be collected than kept), got num_masked={num_masked}"
        )
    low, high = cluster_size_range
    device = _generator_device(generator)
    sides = torch.randint(low, high + 1, (batch_size,), generator=generator, device=device)  # (B,)
    starts = torch.empty(batch_size, 0, dtype=torch.long, device=device)
    # enough draws for most clips at once (overlaps and the grid edges waste cells); more are appended if not
    num_draws = max(8, 3 * math.ceil((num_masked + 1) / low**2))
    while True:
        extra = torch.randint(
            0, num_patches, (batch_size, num_draws - starts.shape[1]), generator=generator, device=device
        )
        starts = torch.cat([starts, extra], dim=1)  # (B, K); appended, never redrawn
        indices = cluster_mask_from_draws(sides, starts, patch_grid, num_masked)
        if indices is not None:
            return indices
        num_draws *= 2


def cluster_mask_from_draws(
    sides: torch.Tensor, starts: torch.Tensor, patch_grid: tuple[int, int], num_masked: int
) -> torch.Tensor | None:
    """The deterministic part of cluster masking: (B,) cluster sides and (B, K) start draws -> (B, M) ids.

    Returns None when K draws do not collect more than `num_masked` ids for every clip.
    """
    batch_size, num_draws = starts.shape
    time_patches = patch_grid[1]
    num_patches = patch_grid[0] * time_patches
    largest = int(sides.max())
    row, column = torch.meshgrid(
        torch.arange(largest, device=starts.device), torch.arange(largest, device=starts.device), indexing="ij"
    )
    row, column = row.flatten(), column.flatten()  # (C,) with C = largest²
    in_cluster = (row < sides[:, None]) & (column < sides[:, None])  # (B, C)
    cells = starts[:, :, None] + row * time_patches + column  # (B, K, C)
    valid = in_cluster[:, None, :] & (cells > 0) & (cells < num_patches)
    draw_index = torch.arange(num_draws, device=starts.device).view(1, num_draws, 1).expand_as(cells)
    # first draw covering each patch; K means never; column num_patches collects the invalid cells
    first_draw = torch.full((batch_size, num_patches + 1), num_draws, dtype=torch.long, device=starts.device)
    first_draw.scatter_reduce_(
        1, torch.where(valid, cells, num_patches).reshape(batch_size, -1), draw_index.reshape(batch_size, -1), "amin"
    )
    first_draw = first_draw[:, :num_patches]  # (B, P)
    newly_covered = torch.zeros(batch_size, num_draws + 1, dtype=torch.long, device=starts.device)
    newly_covered.scatter_add_(1, first_draw, torch.ones_like(first_draw))
    collected = newly_covered[:, :num_draws].cumsum(dim=1)  # (B, K): distinct ids after draws 0..k
    finished = collected > num_masked
    if not bool(finished[:, -1].all()):
        return None
    last_draw = finished.int().argmax(dim=1)  # (B,) the draw after which the original's loop stops
    chosen = first_draw <= last_draw[:, None]  # (B, P), more than num_masked per row
    keep = chosen & (chosen.cumsum(dim=1) <= num_masked)  # the num_masked smallest ids
    return keep.nonzero()[:, 1].view(batch_size, num_masked)


def random_mask_indices(
    batch_size: int, num_patches: int, num_masked: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform masking without replacement (the original `gen_maskid_frame`): (B, M) ids in random order, 0 allowed."""
    if num_masked > num_patches:
        raise ValueError(f"cannot mask {num_masked} of {num_patches} patches")
    device = _generator_device(generator)
    scores = torch.rand(batch_size, num_patches, generator=generator, device=device)
    return scores.argsort(dim=1)[:, :num_masked]


def check_mask_indices(mask_indices: torch.Tensor, batch_size: int, num_patches: int, name: str) -> torch.Tensor:
    if not isinstance(mask_indices, torch.Tensor) or mask_indices.dim() != 2 or mask_indices.shape[0] != batch_size:
        shape = tuple(mask_indices.shape) if isinstance(mask_indices, torch.Tensor) else type(mask_indices).__name__
        raise ValueError(f"{name} must be a (batch={batch_size}, num_masked) integer tensor, got {shape}")
    if mask_indices.is_floating_point() or mask_indices.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer patch ids, got {mask_indices.dtype}")
    if mask_indices.shape[1] == 0:
        raise ValueError(f"{name} must mask at least one patch")
    mask_indices = mask_indices.long()
    if bool((mask_indices < 0).any()) or bool((mask_indices >= num_patches).any()):
        raise ValueError(f"{name} must lie in [0, {num_patches}) (the patch grid has {num_patches} patches)")
    ordered = mask_indices.sort(dim=1).values
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        raise ValueError(f"{name} holds a patch id twice in a row; every masked id must be distinct per sample")
    return mask_indices


def bool_mask_to_indices(bool_masked_pos: torch.Tensor, batch_size: int, num_patches: int) -> torch.Tensor:
    if bool_masked_pos.shape != (batch_size, num_patches):
        raise ValueError(
            f"bool_masked_pos must have shape ({batch_size}, {num_patches}), got {tuple(bool_masked_pos.shape)}"
        )
    bool_masked_pos = bool_masked_pos.bool()
    counts = bool_masked_pos.sum(dim=1)
    if bool((counts != counts[0]).any()) or int(counts[0]) == 0:
        raise ValueError(
            f"bool_masked_pos must mask the same, non-zero number of patches in every sample (got {counts.tolist()}) "
            "so that the batch's predictions stack"
        )
    return bool_masked_pos.nonzero()[:, 1].view(batch_size, int(counts[0]))  # ascending per row


# ---- from spectrogram_transformers.modeling.ssast.modeling_ssast ---------------------------------


# The original fine-tuning constructor resizes the time axis of the positional grid to (8, t) whatever the
# pre-training frequency rows were (8 for 16×16 patches on 128 mel bins). Kept for bit-exact parity.
ORIGINAL_TIME_INTERPOLATION_ROWS = 8


# value the original's `visualize_mask` paints masked patches with
_VISUALIZATION_MARK = 99.0


def masked_patch_info_nce(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE and accuracy of the discriminative objective, batched; computed in float32 as the original.

    predictions, targets: (B, M, S). For each clip, scores[i, j] = target_i · prediction_j; the loss is the mean
    over clips and masked patches of −log_softmax(scores, dim=−1)[i, i] (negatives are the other masked patches
    of the same clip). Accuracy keeps the original's mixed convention: softmax over the last dim, then argmax over
    the targets (dim 0 of each clip's M×M matrix); a prediction is correct when that argmax is its own patch.
    """
    scores = torch.bmm(targets.float(), predictions.float().transpose(1, 2))  # (B, M, M)
    nce = -torch.log_softmax(scores, dim=-1).diagonal(dim1=1, dim2=2).mean()
    with torch.no_grad():
        picked = torch.softmax(scores, dim=-1).argmax(dim=1)  # (B, M): target chosen for each prediction
        own = torch.arange(scores.shape[-1], device=scores.device)
        accuracy = (picked == own).float().mean()
    return nce, accuracy


def _is_pretraining_geometry(config: SSASTConfig) -> bool:
    return (config.frequency_stride, config.time_stride) == (config.frequency_patch_size, config.time_patch_size)


class SSASTPreTrainedModel(ASTPreTrainedModel):
    """Weight initialisation and a `from_pretrained` that adapts pre-trained checkpoints to fine-tuning geometry.

    All SSAST models keep the encoder under `ssast.`, so any of them loads from a directory saved by any other:
    `SSASTForAudioClassification.from_pretrained(<saved SSASTForPreTraining>)` takes the encoder, drops the
    pre-training heads and mask embedding, and initialises the classifier (both are logged).
    """

    config_class = SSASTConfig
    config: SSASTConfig
    base_model_prefix = "ssast"
    _no_split_modules = ["ASTEmbeddings", "ASTLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SSASTForPreTraining):
            # the original draws its mask embedding with Xavier-normal (BEiT-style learned mask token)
            init.xavier_normal_(module.mask_embedding)

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config: SSASTConfig, config: SSASTConfig):
        """`ssast_checkpoint_filter`: original or saved layouts (fused `qkv` included) in this package's names, and
        SSAST's resizing rules, exactly as the original fine-tuning constructor from a pre-training checkpoint; the
        pre-training input size is recorded in `pretraining_num_mel_bins` / `pretraining_max_length` of the new
        config."""
        pass  # inlined: from .convert_ssast import ssast_checkpoint_filter

        if _is_pretraining_geometry(saved_config) and config.pretraining_max_length is None:
            if saved_config.patch_grid != config.patch_grid:
                config.pretraining_num_mel_bins, config.pretraining_max_length = saved_config.pretraining_input_size
        return ssast_checkpoint_filter(state_dict, config, saved_config)


class SSASTModel(SSASTPreTrainedModel, ASTModel):
    """SSAST encoder (AST's): input `input_values` (B, frames, mel); outputs `last_hidden_state`
    (B, prefix + F·T, D) and `pooler_output` (B, D), the mean of the patch tokens by default (`pooling="mean"`).
    """


class SSASTPredictionHead(nn.Module):
    """Pre-training head (the original `cpredlayer` / `gpredlayer`): Linear(D, D), ReLU, Linear(D, prediction_size)."""

    def __init__(self, config: SSASTConfig):
        super().__init__()
        self.fc1 = Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.ReLU()
        self.fc2 = Linear(config.hidden_size, config.prediction_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(hidden_states)))  # (B, M, prediction_size)


@dataclass
class SSASTForPreTrainingOutput(ModelOutput):
    """Output of [`SSASTForPreTraining`].

    Args:
        loss: `nce_weight · nce_loss + mse_weight · mse_loss` (objectives with weight 0 are skipped).
        nce_loss: discriminative InfoNCE loss (scalar).
        mse_loss: generative reconstruction loss (scalar).
        accuracy: fraction of masked patches the discriminative head picks out correctly (scalar, no gradient).
        discriminative_predictions: (B, M, prediction_size) discriminative-head outputs at the masked patches,
            in `mask_indices` order.
        generative_predictions: (B, M, prediction_size) reconstructions, in `generative_mask_indices` order.
        mask_indices: (B, M) masked patch ids of the discriminative objective (or of the only one that runs).
        generative_mask_indices: (B, M) masked patch ids of the generative objective.
        last_hidden_state: (B, prefix + P, D) encoder output of the pass `mask_indices` was applied to.
        generative_last_hidden_state: (B, prefix + P, D) encoder output the generative head read (the same
            tensor as `last_hidden_state` when one mask serves both objectives).
        hidden_states, attentions: per layer, of the pass `mask_indices` was applied to.
    """

    loss: torch.Tensor | None = None
    nce_loss: torch.Tensor | None = None
    mse_loss: torch.Tensor | None = None
    accuracy: torch.Tensor | None = None
    discriminative_predictions: torch.Tensor | None = None
    generative_predictions: torch.Tensor | None = None
    mask_indices: torch.Tensor | None = None
    generative_mask_indices: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    generative_last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SSASTMaskVisualization(ModelOutput):
    """Output of [`SSASTForPreTraining.visualize_mask`] (the original's `visualize_mask` task, any batch size).

    Args:
        correct_map: (B, 1, mel, frames) the input with each masked patch set to 99 where the discriminative head
            identified it and 0 where it did not (the original's `pred`).
        masked_map: (B, 1, mel, frames) the input with every masked patch set to 99 (the original's `masked`).
        mask_indices: (B, M) masked patch ids.
        correct: (B, M) whether each masked patch was identified.
        discriminative_predictions: (B, M, prediction_size).
    """

    correct_map: torch.Tensor | None = None
    masked_map: torch.Tensor | None = None
    mask_indices: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    discriminative_predictions: torch.Tensor | None = None


class SSASTForPreTraining(SSASTPreTrainedModel):
    """SSAST with the masked spectrogram patch modeling heads (joint discriminative and generative objective).

    `forward(input_values)` draws masks itself (cluster masking for patches, uniform for frames; pass a seeded
    `torch.Generator` for reproducible masks) or takes them (`mask_indices` / `bool_masked_pos`), and returns
    the losses, the masked-patch accuracy and the predictions. The input must have `config.max_length` frames.
    """

    # the loss is a per-batch mean: let Trainer scale it for gradient accumulation
    accepts_loss_kwargs = False

    def __init__(self, config: SSASTConfig):
        errors = config.pretraining_errors()
        if errors:
            raise ValueError("config cannot be used for SSAST pre-training: " + "; ".join(errors))
        super().__init__(config)
        self.ssast = SSASTModel(config)
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.discriminative_head = SSASTPredictionHead(config)  # original `cpredlayer`
        self.generative_head = SSASTPredictionHead(config)  # original `gpredlayer`
        self.post_init()

    def draw_mask_indices(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, num_masked_patches) ids drawn with the config's masking strategy."""
        config = self.config
        if config.mask_strategy == "cluster":
            return cluster_mask_indices(
                batch_size,
                config.patch_grid,
                config.num_masked_patches,
                tuple(config.mask_cluster_size_range),
                generator,
            )
        return random_mask_indices(batch_size, config.num_patches, config.num_masked_patches, generator)

    def _check_input(self, input_values: torch.Tensor) -> torch.Tensor:
        input_values = check_input_values(input_values, self.config.num_mel_bins, dtype=self.dtype)
        if self.ssast.embeddings.patch_grid_of(input_values.shape[1]) != self.config.patch_grid:
            raise ValueError(
                f"pre-training input must have max_length={self.config.max_length} frames (patch grid "
                f"{self.config.patch_grid}), got {input_values.shape[1]}; pad or cut the features to max_length"
            )
        return input_values

    def _resolve_masks(
        self,
        batch_size: int,
        mask_indices: torch.Tensor | None,
        generative_mask_indices: torch.Tensor | None,
        bool_masked_pos: torch.Tensor | None,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(discriminative, generative) mask ids; the same tensor object when one mask serves both objectives."""
        num_patches = self.config.num_patches
        if bool_masked_pos is not None:
            if mask_indices is not None:
                raise ValueError("pass either mask_indices or bool_masked_pos, not both")
            mask_indices = bool_mask_to_indices(bool_masked_pos, batch_size, num_patches)
        if mask_indices is not None:
            mask_indices = check_mask_indices(mask_indices, batch_size, num_patches, "mask_indices").to(device)
            if generative_mask_indices is None:
                return mask_indices, mask_indices
            generative = check_mask_indices(
                generative_mask_indices, batch_size, num_patches, "generative_mask_indices"
            )
            return mask_indices, generative.to(device)
        if generative_mask_indices is not None:
            raise ValueError("generative_mask_indices needs mask_indices (or bool_masked_pos) as well")
        first = self.draw_mask_indices(batch_size, generator).to(device)
        both = self.config.nce_weight > 0 and self.config.mse_weight > 0
        if both and self.config.joint_masking == "separate":
            return first, self.draw_mask_indices(batch_size, generator).to(device)
        return first, first

    def _encode_masked(
        self,
        input_values: torch.Tensor,
        masks: list[torch.Tensor],
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ):
        """Run the encoder once on len(masks) masked copies of the batch stacked along the batch dimension."""
        batch_size, num_frames = input_values.shape[:2]
        patch_tokens = self.ssast.embeddings.embed_patches(input_values)  # (B, P, D)
        copies = len(masks)
        tokens = patch_tokens.repeat(copies, 1, 1)  # (copies·B, P, D)
        is_masked = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # (copies·B, P)
        for index, mask in enumerate(masks):
            is_masked[index * batch_size : (index + 1) * batch_size].scatter_(1, mask, True)
        # the original's exact 0/1 blend x·keep + (1 − keep)·mask_embed, as a select
        tokens = torch.where(is_masked.unsqueeze(-1), self.mask_embedding.to(tokens.dtype), tokens)
        embeddings = self.ssast.embeddings.add_prefix_and_positions(tokens, num_frames)
        flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        return self.ssast.encode(
            embeddings, return_dict=True, **{name: flag for name, flag in flags.items() if flag is not None}
        )

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        mask_indices: torch.Tensor | None = None,
        generative_mask_indices: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> SSASTForPreTrainingOutput | tuple:
        r"""
        Args:
            input_values: (B, max_length, num_mel_bins) normalised features.
            mask_indices: (B, M) distinct patch ids to mask (frequency-major ids, f·T + t), used by the
                discriminative objective and, unless `generative_mask_indices` is given, by the generative one.
                Drawn with `config.masking` when omitted.
            generative_mask_indices: (B, M') ids for the generative objective only.
            bool_masked_pos: (B, P) boolean alternative to `mask_indices` (same count in every row).
            generator: `torch.Generator` for the masks drawn here (CPU or the generator's device).
        """
        config = self.config
        input_values = self._check_input(input_values)
        batch_size = input_values.shape[0]
        discriminative_mask, generative_mask = self._resolve_masks(
            batch_size, mask_indices, generative_mask_indices, bool_masked_pos, generator, input_values.device
        )
        run_nce, run_mse = config.nce_weight > 0, config.mse_weight > 0
        masks = [discriminative_mask] if run_nce else []
        if run_mse and not (run_nce and generative_mask is discriminative_mask):
            masks.append(generative_mask)

        encoded = self._encode_masked(input_values, masks, output_attentions, output_hidden_states)
        passes = encoded.last_hidden_state.split(batch_size)  # copies × (B, prefix + P, D)
        targets = patchify_spectrogram(
            input_values, (config.frequency_patch_size, config.time_patch_size)
        )  # (B, P, S)
        prefix = config.num_prefix_tokens

        loss = nce_loss = mse_loss = accuracy = discriminative_predictions = generative_predictions = None
        if run_nce:
            discriminative_predictions = self.discriminative_head(
                gather_patches(passes[0], discriminative_mask + prefix)
            )
            nce_loss, accuracy = masked_patch_info_nce(
                discriminative_predictions, gather_patches(targets, discriminative_mask)
            )
            loss = config.nce_weight * nce_loss
        if run_mse:
            generative_predictions = self.generative_head(gather_patches(passes[-1], generative_mask + prefix))
            mse_loss = torch.mean(
                (generative_predictions.float() - gather_patches(targets, generative_mask).float()) ** 2
            )
            loss = config.mse_weight * mse_loss if loss is None else loss + config.mse_weight * mse_loss

        def first_pass(values: tuple[torch.Tensor, ...] | None):
            return None if values is None else tuple(value[:batch_size] for value in values)

        # hidden states and attentions of the masked pass(es) are recorded by `capture_outputs` inside `encode`
        return SSASTForPreTrainingOutput(
            loss=loss,
            nce_loss=nce_loss,
            mse_loss=mse_loss,
            accuracy=accuracy,
            discriminative_predictions=discriminative_predictions,
            generative_predictions=generative_predictions,
            mask_indices=discriminative_mask if run_nce else generative_mask,
            generative_mask_indices=generative_mask if run_mse else None,
            last_hidden_state=passes[0],
            generative_last_hidden_state=passes[-1] if run_mse else None,
            hidden_states=first_pass(encoded.hidden_states),
            attentions=first_pass(encoded.attentions),
        )

    @torch.no_grad()
    def visualize_mask(
        self,
        input_values: torch.Tensor,
        mask_indices: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> SSASTMaskVisualization:
        """Which masked patches the discriminative head identifies, painted onto the input (any batch size).

        The original `visualize_mask` task, without its side effect (it registered a new Parameter on the model).
        """
        input_values = self._check_input(input_values)
        batch_size = input_values.shape[0]
        if mask_indices is None:
            mask_indices = self.draw_mask_indices(batch_size, generator).to(input_values.device)
        else:
            mask_indices = check_mask_indices(mask_indices, batch_size, self.config.num_patches, "mask_indices")
            mask_indices = mask_indices.to(input_values.device)
        hidden = self._encode_masked(input_values, [mask_indices]).last_hidden_state
        predictions = self.discriminative_head(gather_patches(hidden, mask_indices + self.config.num_prefix_tokens))
        patch_size = (self.config.frequency_patch_size, self.config.time_patch_size)
        patches = patchify_spectrogram(input_values, patch_size)  # (B, P, S)
        scores = torch.bmm(gather_patches(patches, mask_indices).float(), predictions.float().transpose(1, 2))
        correct = torch.softmax(scores, dim=-1).argmax(dim=1) == torch.arange(scores.shape[-1], device=scores.device)
        index = mask_indices.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        marks = (correct.to(patches.dtype) * _VISUALIZATION_MARK).unsqueeze(-1).expand(-1, -1, patches.shape[-1])
        input_size = (input_values.shape[2], input_values.shape[1])
        return SSASTMaskVisualization(
            correct_map=unpatchify_spectrogram(patches.scatter(1, index, marks), patch_size, input_size),
            masked_map=unpatchify_spectrogram(patches.scatter(1, index, _VISUALIZATION_MARK), patch_size, input_size),
            mask_indices=mask_indices,
            correct=correct,
            discriminative_predictions=predictions,
        )


class SSASTForAudioClassification(AudioClassificationMixin, SSASTPreTrainedModel):
    """SSAST with the classification head (the original `mlp_head`: LayerNorm eps 1e-5, Linear).

    Returns pre-activation `logits` (B, num_labels); the pooled vector is the mean of the patch tokens
    (`pooling="mean"`, original `ft_avgtok`) or of the prefix tokens (`pooling="cls"`, original `ft_cls`).
    The loss (when `labels` are given) follows `config.problem_type`: cross-entropy for single-label,
    BCE-with-logits for `"multi_label_classification"`.
    """

    def __init__(self, config: SSASTConfig):
        super().__init__(config)
        self.ssast = SSASTModel(config)
        self.classifier = ASTClassificationHead(config)
        self.post_init()


# ---- from spectrogram_transformers.modeling.ssast.convert_ssast ----------------------------------


_PRETRAINING_RULES = [
    (r"cpredlayer\.0\.(weight|bias)", r"discriminative_head.fc1.\1"),
    (r"cpredlayer\.2\.(weight|bias)", r"discriminative_head.fc2.\1"),
    (r"gpredlayer\.0\.(weight|bias)", r"generative_head.fc1.\1"),
    (r"gpredlayer\.2\.(weight|bias)", r"generative_head.fc2.\1"),
    (r"mask_embed", "mask_embedding"),
]


_CLASSIFIER_RULES = [
    (r"mlp_head\.0\.(weight|bias)", r"classifier.layernorm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"classifier.dense.\1"),
]


_RULES = original_encoder_rules("ssast.") + _PRETRAINING_RULES + _CLASSIFIER_RULES


# dropped on purpose: the DeiT's ImageNet heads (never used) and the input size, which goes into the config
_DROPPED = (r"v\.head\..*", r"v\.head_dist\..*", r"p_input_fdim", r"p_input_tdim")


def _unwrap(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return strip_prefix(state_dict, "module.")


def _is_original_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(
        key.startswith(("v.", "cpredlayer.", "gpredlayer.", "mlp_head.", "p_input_")) or key == "mask_embed"
        for key in state_dict
    )


def ssast_checkpoint_filter(
    state_dict: Mapping[str, torch.Tensor], config: SSASTConfig, source_config: SSASTConfig | None = None
) -> dict[str, torch.Tensor]:
    """Any known SSAST checkpoint layout -> this package's keys at `config`'s geometry: the one path by which
    `from_pretrained` and the `original-ssast` converter read weights.

    The original layout (`v.*`, `cpredlayer`/`gpredlayer`, `mask_embed`, `mlp_head`; `module.` optional) is renamed
    (`v.head*` and `p_input_*` dropped on purpose, any other unknown key raises `CheckpointKeyError`); then
    `ast_checkpoint_filter` splits a fused `qkv` (the originals' and older saves') into `q_proj`/`k_proj`/`v_proj`
    and resizes the positional embedding from `source_config`'s grid with SSAST's rules
    (`adapt_ssast_state_dict_geometry`).
    """
    state_dict = _unwrap(state_dict)
    if _is_original_layout(state_dict):
        renamed, unknown = rename_keys(drop_keys(state_dict, _DROPPED), _RULES)
        if unknown:
            raise CheckpointKeyError(f"unexpected keys in the original SSAST checkpoint: {sorted(unknown)}")
        state_dict = renamed
    options = {}
    if source_config is not None:
        rows = ORIGINAL_TIME_INTERPOLATION_ROWS if _is_pretraining_geometry(source_config) else None
        options = {"cut_when_equal": False, "time_interpolation_rows": rows}
    return ast_checkpoint_filter(state_dict, config, source_config, layout="package", **options)
