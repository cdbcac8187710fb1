# GENERATED FILE: DO NOT EDIT. Written by `python -m spectrogram_transformers.modeling.remote_code.generate`
# from the package source; change the package and regenerate (tests/models/test_remote_code.py checks it).
"""The AST family of spectrogram-transformers for transformers' `trust_remote_code=True`
(the Auto classes and pipeline load a saved directory without the package); what the families share
is in `spectrogram_transformers_shared.py`, copied beside it.

From the package modules modeling.ast.modeling_ast.
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


# ---- from spectrogram_transformers.modeling.ast.modeling_ast -------------------------------------


class ASTForAudioClassification(AudioClassificationMixin, ASTPreTrainedModel):
    """AST with the classification head; returns pre-activation `logits` (B, num_labels)."""

    def __init__(self, config: ASTConfig):
        super().__init__(config)
        self.ast = ASTModel(config)
        self.classifier = ASTClassificationHead(config)
        self.post_init()
