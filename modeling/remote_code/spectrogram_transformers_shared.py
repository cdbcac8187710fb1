# GENERATED FILE: DO NOT EDIT. Written by `python -m spectrogram_transformers.modeling.remote_code.generate`
# from the package source; change the package and regenerate (tests/models/test_remote_code.py checks it).
"""What the AST, SSAST and HTS-AT families of spectrogram-transformers share, for transformers'
`trust_remote_code=True`: the family modules beside this file import it.

From the package modules feature_extraction.audio, feature_extraction.base, feature_extraction.feature_extraction_ast, feature_extraction.filterbank, feature_extraction.kaldi, feature_extraction.streaming, modeling.ast.ast_state_dicts, modeling.ast.configuration_ast, modeling.ast.modeling_ast, modeling.checkpoint, modeling.configuration_utils, modeling.layers, modeling.linear, modeling.loading, modeling.pos_embed, modeling.remote_code, pipelines.
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


# ---- from spectrogram_transformers.modeling.configuration_utils ----------------------------------


class ConsistentLabelsMixin:
    """Keeps `label2id` the inverse of `id2label`.

    transformers 5 derives `label2id` only when `num_labels` is set: a config built or loaded with `id2label`
    alone (a converted transformers AST, a `config.json` without `label2id`) would keep `label2id=None`, and
    code that reads it (transformers' own export, pipelines' label mapping) fails. Here it is rebuilt whenever
    it is missing or names other labels than `id2label`.
    """

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and (self.label2id is None or set(self.label2id) != set(self.id2label.values())):
            self.label2id = {label: index for index, label in self.id2label.items()}


class PackagePipelineMixin:
    """The package's own config classes drop `custom_pipelines` when they load a config.json.

    A classifier's saved config.json names the generated pipeline in `custom_pipelines`, for users without this
    package (`pipeline(..., trust_remote_code=True)`). transformers' `pipeline()` insists on `trust_remote_code` for
    any config that lists custom pipelines; with the package installed the pipeline comes from transformers'
    registry instead (registered at import), so the package's classes forget the entry: no prompt, no remote
    code. The generated copy of this class (module `transformers_modules...`) keeps it.
    """

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if type(self).__module__.startswith("spectrogram_transformers."):
            self.__dict__.pop("custom_pipelines", None)


# ---- from spectrogram_transformers.modeling.ast.configuration_ast --------------------------------


@strict
class ASTConfig(ConsistentLabelsMixin, PackagePipelineMixin, PreTrainedConfig):
    r"""Configuration of [`ASTModel`] and [`ASTForAudioClassification`].

    The defaults give the released AudioSet model (DeiT-base backbone, 10×10 patch stride on
    1024 frames × 128 mel bins, 12×101 = 1212 patches, 527 labels when `num_labels=527`).

    Args:
        hidden_size (`int`, defaults to 768): width D of every token.
        num_hidden_layers (`int`, defaults to 12): number of transformer blocks.
        num_attention_heads (`int`, defaults to 12): heads per block; `hidden_size` must divide by it.
        intermediate_size (`int`, defaults to 3072): hidden width of the block MLP (4·D in DeiT).
        hidden_act (`str`, defaults to `"gelu"`): MLP activation; the original uses exact (erf) GELU.
        hidden_dropout_prob (`float`, defaults to 0.0): dropout after attention and MLP (training only).
        attention_probs_dropout_prob (`float`, defaults to 0.0): dropout on attention weights.
        drop_path_rate (`float`, defaults to 0.0): stochastic depth, linearly increasing over blocks as in timm.
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal weight initialisation.
        layer_norm_eps (`float`, defaults to 1e-6): eps of every backbone LayerNorm (timm DeiT uses 1e-6).
        classifier_layer_norm_eps (`float`, defaults to 1e-5): eps of the head LayerNorm; the original's
            `mlp_head` LayerNorm keeps torch's default 1e-5 (`transformers`' port uses 1e-12 for both).
        patch_size (`int` or `tuple[int, int]`, defaults to 16): patch height (frequency) and width (time);
            an int means a square patch. SSAST frame patches are `(128, 2)`.
        frequency_stride (`int`, defaults to 10): patch stride along the mel axis.
        time_stride (`int`, defaults to 10): patch stride along the time axis.
        max_length (`int`, defaults to 1024): number of input frames the positional embedding is built for.
        num_mel_bins (`int`, defaults to 128): number of mel bins of the input features.
        num_prefix_tokens (`int`, defaults to 2): learned tokens before the patches: 2 for the DeiT
            cls + distillation tokens, 1 for a plain ViT / SSAST "base_nokd" backbone.
        qkv_bias (`bool`, defaults to True): whether query/key/value projections have a bias.
        pooling (`"cls"` or `"mean"`, defaults to `"cls"`): what the classifier sees: the mean of the prefix
            tokens (`"cls"`; AST and SSAST `ft_cls`) or the mean of the patch tokens (`"mean"`; SSAST `ft_avgtok`).
    """

    model_type = "ast"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    classifier_layer_norm_eps: float = 1e-5
    patch_size: int | list[int] | tuple[int, int] = 16
    frequency_stride: int = 10
    time_stride: int = 10
    max_length: int = 1024
    num_mel_bins: int = 128
    num_prefix_tokens: int = 2
    qkv_bias: bool = True
    pooling: Literal["cls", "mean"] = "cls"

    @property
    def frequency_patch_size(self) -> int:
        return self.patch_size if isinstance(self.patch_size, int) else int(self.patch_size[0])

    @property
    def time_patch_size(self) -> int:
        return self.patch_size if isinstance(self.patch_size, int) else int(self.patch_size[1])

    @property
    def patch_grid(self) -> tuple[int, int]:
        """(frequency, time) number of patches: valid convolutions, so trailing frames that do not fill a patch drop."""
        return (
            (self.num_mel_bins - self.frequency_patch_size) // self.frequency_stride + 1,
            (self.max_length - self.time_patch_size) // self.time_stride + 1,
        )

    @property
    def num_patches(self) -> int:
        frequency_patches, time_patches = self.patch_grid
        return frequency_patches * time_patches

    def validate_architecture(self) -> None:
        """Cross-field checks that would otherwise surface as shape errors deep inside torch."""
        super().validate_architecture()
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )
        if not isinstance(self.patch_size, int) and len(self.patch_size) != 2:
            raise ValueError(f"patch_size must be an int or (frequency, time), got {self.patch_size}")
        if self.frequency_patch_size > self.num_mel_bins:
            raise ValueError(
                f"patch_size {self.frequency_patch_size} along frequency exceeds num_mel_bins ({self.num_mel_bins})"
            )
        if self.time_patch_size > self.max_length:
            raise ValueError(f"patch_size {self.time_patch_size} along time exceeds max_length ({self.max_length})")
        if min(self.frequency_stride, self.time_stride) < 1:
            raise ValueError("frequency_stride and time_stride must be >= 1")
        if self.num_prefix_tokens not in (1, 2):
            raise ValueError(
                f"num_prefix_tokens must be 1 (cls) or 2 (cls + distillation), got {self.num_prefix_tokens}"
            )


# ---- from spectrogram_transformers.modeling.layers -----------------------------------------------


def check_input_values(
    input_values: torch.Tensor | np.ndarray,
    num_mel_bins: int,
    name: str = "input_values",
    dtype: torch.dtype | None = None,
    min_frames: int = 1,
) -> torch.Tensor:
    """The features as the model can use them, or a clear error instead of a failure deep inside a convolution.

    Casts only where the meaning is unambiguous: a numpy array becomes a tensor, and floating-point features
    of another precision (float64 from numpy, float16/bfloat16) are cast to `dtype` (the model's). Integer or
    boolean features, a wrong layout, an empty batch and fewer than `min_frames` frames raise.
    """
    if isinstance(input_values, np.ndarray):
        input_values = torch.from_numpy(input_values)
    if not isinstance(input_values, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, frames, mel bins), got {type(input_values)}")
    if input_values.dim() != 3:
        raise ValueError(
            f"{name} must have shape (batch, frames, {num_mel_bins}); got {tuple(input_values.shape)}. "
            "Use the model's feature extractor to turn audio into features."
        )
    if input_values.shape[-1] != num_mel_bins:
        raise ValueError(
            f"{name} has {input_values.shape[-1]} mel bins in its last dimension, the model expects "
            f"{num_mel_bins}; features are laid out (batch, frames, mel bins)."
        )
    if not input_values.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor of log-mel features, got {input_values.dtype} "
            "(raw integer audio goes through the feature extractor first)"
        )
    if input_values.shape[0] == 0:
        raise ValueError(f"{name} holds no clips (batch size 0); pass at least one clip")
    if input_values.shape[1] == 0:
        raise ValueError(f"{name} has no frames (shape {tuple(input_values.shape)})")
    if input_values.shape[1] < min_frames:
        raise ValueError(
            f"{name} has {input_values.shape[1]} frames, fewer than one patch ({min_frames} frames); pad the "
            "features (the feature extractor pads every clip to the model's max_length)"
        )
    if dtype is not None and input_values.dtype != dtype:
        input_values = input_values.to(dtype)
    return input_values


def check_labels(labels: torch.Tensor | np.ndarray, logits: torch.Tensor, config: PreTrainedConfig) -> torch.Tensor:
    """Labels as `loss_function` needs them for `config.problem_type`, or one error saying what was expected.

    Multi-label targets are (batch, num_labels) multi-hot or soft values: integer or boolean ones, and floats
    of another precision, are cast to the logits' dtype. An integer (batch, num_labels) tensor under an unset
    `problem_type` is read as multi-hot (transformers would treat it as class ids and fail on the shape).
    Single-label targets are (batch,) integer class ids.
    """
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels)}")
    labels = labels.to(logits.device)
    batch_size, num_labels = logits.shape
    problem_type = config.problem_type
    multi_hot_shape = labels.dim() == 2 and tuple(labels.shape) == (batch_size, num_labels)
    if problem_type is None and num_labels > 1:
        # transformers' own inference (float -> multi-label, integer -> class ids), except that an integer
        # tensor of shape (batch, num_labels) can only be multi-hot
        multi_label = labels.is_floating_point() or multi_hot_shape
        problem_type = "multi_label_classification" if multi_label else "single_label_classification"
    if problem_type == "multi_label_classification":
        if not multi_hot_shape:
            raise ValueError(
                f"multi-label labels must have shape (batch={batch_size}, num_labels={num_labels}) of 0/1 or soft "
                f"targets, got {tuple(labels.shape)}"
            )
        return labels.to(logits.dtype)
    if problem_type == "single_label_classification":
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(
                f"single-label labels must be integer class ids of shape (batch={batch_size},), got {labels.dtype}; "
                "for multi-hot targets set config.problem_type='multi_label_classification'"
            )
        if labels.numel() != batch_size:
            raise ValueError(
                f"single-label labels must be one class id per clip, shape (batch={batch_size},), got {tuple(labels.shape)}"
            )
        return labels.long()
    return labels


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention; returns (B, N, H, d) outputs and (B, H, N, N) weights."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, H, N, N)
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()  # (B, N, H, d)
    return output, weights


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return hidden_states
        keep = 1.0 - self.drop_prob
        mask = hidden_states.new_empty((hidden_states.shape[0],) + (1,) * (hidden_states.dim() - 1)).bernoulli_(keep)
        return hidden_states * mask / keep


class AudioClassificationMixin:
    """The classifier `forward` shared by AST and SSAST: encoder (`self.base_model`) -> pooled -> head -> loss.

    The loss (when `labels` are given) follows `config.problem_type` through `loss_function`, which
    `transformers` picks from the class-name suffix `ForAudioClassification`: cross-entropy for single-label,
    BCE-with-logits for `"multi_label_classification"` (AudioSet), MSE for regression.
    """

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput | tuple:
        """`kwargs` (`output_attentions`, `output_hidden_states`, ...) go to the encoder and the loss."""
        outputs = self.base_model(input_values, interpolate_pos_encoding=interpolate_pos_encoding, **kwargs)
        logits = self.classifier(outputs.pooler_output)  # (B, labels)
        loss = None
        if labels is not None:
            loss = self.loss_function(check_labels(labels, logits, self.config), logits, self.config, **kwargs)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# ---- from spectrogram_transformers.modeling.linear -----------------------------------------------


_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


_FAST_DTYPES = (torch.float32, torch.bfloat16)


@functools.cache
def _bf16_matmul_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def onednn_linear_applies(inputs: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `Linear` would run `inputs` on oneDNN (see the module doc for the conditions)."""
    if _ONEDNN_LINEAR is None or not torch.backends.mkldnn.enabled:
        return False
    if inputs.device.type != "cpu" or weight.device.type != "cpu" or inputs.dtype != weight.dtype:
        return False
    if inputs.dtype not in _FAST_DTYPES or (inputs.dtype == torch.bfloat16 and not _bf16_matmul_supported()):
        return False
    if torch.is_grad_enabled() or torch.is_autocast_enabled("cpu"):
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    return not torch.onnx.is_in_onnx_export() and inputs.dim() >= 2 and inputs.numel() > 0


class Linear(nn.Linear):
    """`nn.Linear` with oneDNN CPU inference (see the module doc); identical parameters and training path."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if onednn_linear_applies(inputs, self.weight):
            return _ONEDNN_LINEAR(inputs.contiguous(), self.weight, self.bias, "none", [], "")
        return super().forward(inputs)


def _hooked(module: nn.Module) -> bool:
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or nn.modules.module._global_forward_hooks
        or nn.modules.module._global_forward_pre_hooks
    )


def _is_exact_gelu(activation: nn.Module) -> bool:
    return type(activation) is GELUActivation and activation.act is nn.functional.gelu


def linear_then_activation(layer: nn.Module, activation: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """`activation(layer(inputs))`; with our `Linear` and exact (erf) GELU on the oneDNN path, one fused call.

    Nothing is fused when either module was replaced (a PEFT/LoRA wrapper, a quantised layer, another
    activation) or carries a forward hook that the fused call would skip.
    """
    if (
        type(layer) is Linear
        and _is_exact_gelu(activation)
        and onednn_linear_applies(inputs, layer.weight)
        and not (_hooked(layer) or _hooked(activation))
    ):
        return _ONEDNN_LINEAR(inputs.contiguous(), layer.weight, layer.bias, "gelu", [], "none")
    return activation(layer(inputs))


# ---- from spectrogram_transformers.modeling.checkpoint -------------------------------------------


_WEIGHT_FILE_NAMES = ("model.safetensors", "pytorch_model.bin")


_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


# containers that training frameworks wrap the weights in (Lightning, generic trainers)
_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module")


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, another format, or a pickle holding objects other
    than tensors (refused, never run); the message names the file."""


class CheckpointKeyError(KeyError):
    """A checkpoint whose keys do not fit the target model; the message names every offending key."""

    def __str__(self) -> str:  # KeyError would print the message repr-quoted
        return str(self.args[0])


def _find_weight_file(directory: Path) -> Path:
    for name in _WEIGHT_FILE_NAMES:
        if (directory / name).is_file():
            return directory / name
    candidates = sorted(p for p in directory.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
    if len(candidates) != 1:
        raise FileNotFoundError(
            f"{directory} must hold exactly one checkpoint file ({', '.join(_WEIGHT_SUFFIXES)}); found "
            f"{[p.name for p in candidates] or 'none'}"
        )
    return candidates[0]


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Take the tensors out of training-framework containers (`{'state_dict': ...}`, `{'model': ...}`)."""
    while not any(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        inner = next((checkpoint[key] for key in _CONTAINER_KEYS if isinstance(checkpoint.get(key), Mapping)), None)
        if inner is None:
            raise ValueError(f"no tensors found in checkpoint; top-level keys are {sorted(map(str, checkpoint))}")
        checkpoint = inner
    return {key: value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}


def load_checkpoint(checkpoint: str | Path | Mapping) -> dict[str, torch.Tensor]:
    """A flat `{name: tensor}` from a file, a directory holding one, or an in-memory (possibly wrapped) dict."""
    if isinstance(checkpoint, Mapping):
        return unwrap_state_dict(checkpoint)
    path = Path(checkpoint)
    if path.is_dir():
        path = _find_weight_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused an object: never run a file's code
        refused = re.search(r"Unsupported (?:global|operand)[^\n.]*", str(error))
        raise CheckpointReadError(
            f"refused to unpickle {path}: it holds objects other than tensors"
            f"{f' ({refused.group(0).strip()})' if refused else ''}, and checkpoints are read with "
            "torch.load(weights_only=True), which never runs a file's code; re-save its state_dict (tensors only) "
            "or convert it to safetensors where you trust it"
        ) from None
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file: say which file and why
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointReadError(
            f"could not read {path} as a PyTorch checkpoint ({first_line}); the file is truncated, corrupt or in "
            "another format"
        ) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointReadError(f"{path} holds a {type(loaded).__name__}, expected a state dict")
    return unwrap_state_dict(loaded)


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a `.safetensors` file; a truncated or foreign file raises a ValueError naming it."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise CheckpointReadError(
            f"could not read {path} as safetensors ({error}); the file is truncated, corrupt or in another format "
            "(a pickled .pth/.bin renamed to .safetensors?)"
        ) from error


def drop_keys(state_dict: Mapping[str, torch.Tensor], patterns: Iterable[str]) -> dict[str, torch.Tensor]:
    """The state dict without the keys that fully match any of `patterns` (regexes): keys dropped on purpose."""
    compiled = [re.compile(pattern) for pattern in patterns]
    return {key: value for key, value in state_dict.items() if not any(p.fullmatch(key) for p in compiled)}


def split_fused_qkv(
    state_dict: Mapping[str, torch.Tensor], fused_names: tuple[str, ...] = ("qkv",)
) -> dict[str, torch.Tensor]:
    """Split every `<...>.<fused>.{weight,bias}` (3·D rows: query, key, value in turn) into q_proj/k_proj/v_proj.

    timm, the original AST/SSAST/HTS-AT and this package's saves before the separate projections all stack
    q, k, v along dim 0.
    """
    pattern = re.compile(rf"(.*\.)(?:{'|'.join(map(re.escape, fused_names))})\.(weight|bias)")
    split = {}
    for key, value in state_dict.items():
        match = pattern.fullmatch(key)
        if match is None:
            split[key] = value
            continue
        if value.shape[0] % 3:
            raise ValueError(f"{key} has {value.shape[0]} rows, not 3 equal query/key/value parts")
        for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
            split[f"{match.group(1)}{name}.{match.group(2)}"] = part.clone()
    return split


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` from the keys that carry it (DataParallel's `module.`, Lightning's `sed_model.`)."""
    return {(key[len(prefix) :] if key.startswith(prefix) else key): value for key, value in state_dict.items()}


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename keys with the first matching `(regex, replacement)` rule; returns (renamed, unmatched keys)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    renamed, unmatched = {}, []
    for key, value in state_dict.items():
        for pattern, replacement in compiled:
            if pattern.fullmatch(key):
                renamed[pattern.sub(replacement, key)] = value
                break
        else:
            unmatched.append(key)
    return renamed, unmatched


# ---- from spectrogram_transformers.modeling.loading ----------------------------------------------


logger = logging.get_logger(__name__)


# keyword arguments of `from_pretrained` that locate files rather than configure the model
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")


_WEIGHT_FILES = (
    ("model.safetensors", "model.safetensors.index.json"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json"),
)


def read_saved_state_dict(name_or_path, **hub_kwargs) -> dict[str, torch.Tensor]:
    """All weights of a saved model (directory or Hub id): single-file or sharded safetensors, else `.bin`."""
    from transformers.utils import cached_file

    def resolve(filename: str):
        return cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False, **hub_kwargs)

    for single, index in _WEIGHT_FILES:
        path = resolve(single)
        if path is not None:
            return load_checkpoint(path)
        index_path = resolve(index)
        if index_path is not None:
            with open(index_path, encoding="utf-8") as handle:
                shards = sorted(set(json.load(handle)["weight_map"].values()))
            state_dict = {}
            for shard in shards:
                state_dict.update(load_checkpoint(resolve(shard)))
            return state_dict
    raise FileNotFoundError(f"{name_or_path} has no model.safetensors or pytorch_model.bin (single or sharded)")


def select_checkpoint_keys(
    state_dict: dict[str, torch.Tensor],
    expected: dict[str, torch.Size],
    prefix: str,
    is_base_model: bool,
    ignore_mismatched_sizes: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """The part of `state_dict` the target model takes, in its key names; raises for any encoder mismatch.

    Args:
        state_dict: checkpoint in this package's names, with or without the encoder prefix.
        expected: the target model's state-dict shapes.
        prefix: the encoder's `base_model_prefix` followed by "." (keys of a head model carry it).
        is_base_model: the target IS the encoder (keys without prefix).
        ignore_mismatched_sizes: re-initialise heads whose shape differs (other `num_labels`).

    Returns:
        (state dict to load, {"fresh": head keys left to initialisation, "dropped": checkpoint keys of other
        heads, "mismatched": re-initialised head keys}).
    """
    has_prefix = any(key.startswith(prefix) for key in state_dict)
    if is_base_model:
        selected = {
            key.removeprefix(prefix): v for key, v in state_dict.items() if key.startswith(prefix) or not has_prefix
        }
        dropped = sorted(key for key in state_dict if has_prefix and not key.startswith(prefix))
        encoder_keys = set(expected)
    else:
        selected = dict(state_dict) if has_prefix else {prefix + key: value for key, value in state_dict.items()}
        encoder_keys = {key for key in expected if key.startswith(prefix)}
        dropped = sorted(key for key in selected if key not in expected and not key.startswith(prefix))
        for key in dropped:
            selected.pop(key)

    problems = []
    missing = sorted(encoder_keys - set(selected))
    if missing:
        problems.append(f"encoder weights missing from the checkpoint: {missing}")
    unexpected = sorted(key for key in selected if key not in expected)
    if unexpected:
        problems.append(f"unexpected encoder weights in the checkpoint: {unexpected}")
    mismatched = sorted(key for key in set(selected) & set(expected) if selected[key].shape != expected[key])
    encoder_mismatched = [key for key in mismatched if key in encoder_keys]
    if encoder_mismatched:
        problems.append(
            "encoder weights of another shape: "
            + "; ".join(
                f"{k}: checkpoint {tuple(selected[k].shape)} vs model {tuple(expected[k])}" for k in encoder_mismatched
            )
        )
    if problems:
        raise CheckpointKeyError(
            "; ".join(problems) + ". The checkpoint does not fit this architecture (a checkpoint of another format "
            "needs `spectrogram_transformers.convert`; see SUPPORTED_SOURCES)"
        )
    head_mismatched = [key for key in mismatched if key not in encoder_keys]
    if head_mismatched and not ignore_mismatched_sizes:
        raise CheckpointKeyError(
            "head weights of another shape: "
            + "; ".join(
                f"{k}: checkpoint {tuple(selected[k].shape)} vs model {tuple(expected[k])}" for k in head_mismatched
            )
            + ". Pass ignore_mismatched_sizes=True to initialise a new head (e.g. another num_labels)"
        )
    for key in head_mismatched:
        selected.pop(key)
    fresh = sorted(set(expected) - set(selected))
    return selected, {"fresh": fresh, "dropped": dropped, "mismatched": head_mismatched}


class CheckedLoadingMixin:
    """`from_pretrained` through `select_checkpoint_keys`; subclasses adapt configs and checkpoints by hooks."""

    @classmethod
    def _loading_configs(cls, pretrained_model_name_or_path, kwargs: dict) -> tuple:
        """(config to build, config the checkpoint was saved with, remaining kwargs)."""
        config = kwargs.pop("config", None)
        hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
        if config is None:
            config, kwargs = cls.config_class.from_pretrained(
                pretrained_model_name_or_path, return_unused_kwargs=True, **kwargs
            )
            kwargs.update(hub_kwargs)
        elif not isinstance(config, PreTrainedConfig):  # a path or Hub id of a config
            config = cls.config_class.from_pretrained(config, **hub_kwargs)
        saved_config = cls.config_class.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return config, saved_config, kwargs

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config, config) -> dict[str, torch.Tensor]:
        """The checkpoint in this class's key names and geometry (identity by default)."""
        return state_dict

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        if pretrained_model_name_or_path is None or kwargs.get("state_dict") is not None:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        output_loading_info = kwargs.pop("output_loading_info", False)
        ignore_mismatched_sizes = kwargs.pop("ignore_mismatched_sizes", False)
        hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
        config, saved_config, kwargs = cls._loading_configs(pretrained_model_name_or_path, kwargs)
        state_dict = cls._adapt_checkpoint(
            read_saved_state_dict(pretrained_model_name_or_path, **hub_kwargs), saved_config, config
        )
        # shapes only: built on the meta device as transformers does (its linspace/arange stay on the CPU)
        with torch.device("meta"), init.meta_device_safe_creation_ops(), init.no_init_weights():
            expected = {key: value.shape for key, value in cls(config).state_dict().items()}
        prefix = cls.base_model_prefix + "."
        is_base_model = not any(key.startswith(prefix) for key in expected)
        state_dict, report = select_checkpoint_keys(
            state_dict, expected, prefix, is_base_model, ignore_mismatched_sizes
        )
        if report["dropped"]:
            logger.info(f"{cls.__name__}: checkpoint weights of other heads not used: {report['dropped']}")
        if report["fresh"]:
            logger.warning(
                f"{cls.__name__}: newly initialised (not in the checkpoint {pretrained_model_name_or_path}): "
                f"{report['fresh']}; train the model before using it for predictions"
            )
        for name in HUB_KWARGS:
            kwargs.pop(name, None)
        model = super().from_pretrained(None, *model_args, config=config, state_dict=state_dict, **kwargs)
        # as transformers does: PEFT writes `model.name_or_path` into adapters as `base_model_name_or_path`
        model.config.name_or_path = model.name_or_path = str(pretrained_model_name_or_path)
        if output_loading_info:
            info = {
                "missing_keys": report["fresh"],
                "unexpected_keys": report["dropped"],
                "mismatched_keys": report["mismatched"],
                "error_msgs": [],
            }
            return model, info
        return model


# ---- from spectrogram_transformers.modeling.pos_embed --------------------------------------------


def middle_cut(length: int, keep: int) -> slice:
    """Slice keeping `keep` middle entries of `length`, computed with integer halves as the original."""
    start = length // 2 - keep // 2
    return slice(start, start + keep)


def split_prefix(position_embeddings: torch.Tensor, num_prefix_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, prefix + F·T, D) -> prefix (1, prefix, D) and patch part (1, F·T, D)."""
    return position_embeddings[:, :num_prefix_tokens], position_embeddings[:, num_prefix_tokens:]


def resize_patch_position_embeddings(
    patch_embeddings: torch.Tensor,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    *,
    cut_when_equal: bool = True,
    time_interpolation_rows: int | None = None,
) -> torch.Tensor:
    """Adapt patch positional embeddings (1, F·T, D), frequency-major, from `old_grid` to `new_grid`.

    Args:
        patch_embeddings: (1, old_F·old_T, D) without prefix tokens.
        old_grid, new_grid: (frequency, time) patch counts.
        cut_when_equal: whether an axis of unchanged length takes the (identity) cut branch. AST does;
            SSAST's fine-tuning constructor interpolates instead, which matters only together with
            `time_interpolation_rows`.
        time_interpolation_rows: frequency rows the time interpolation resizes to. `None` keeps the current
            rows (AST). SSAST's fine-tuning constructor hard-codes 8; passing 8 reproduces it bit for bit
            (for 128×2 frame models that up-samples 1 row to 8 and the frequency step brings it back to 1).

    Returns:
        (1, new_F·new_T, D), frequency-major (index = f·new_T + t).
    """
    old_f, old_t = old_grid
    new_f, new_t = new_grid
    _, num_patches, dim = patch_embeddings.shape
    if num_patches != old_f * old_t:
        raise ValueError(
            f"positional embedding has {num_patches} patches, but the grid {old_grid} needs {old_f * old_t}"
        )
    grid = patch_embeddings.transpose(1, 2).reshape(1, dim, old_f, old_t)  # (1, D, F, T)
    if new_t < old_t or (cut_when_equal and new_t == old_t):
        grid = grid[:, :, :, middle_cut(old_t, new_t)]
    else:
        rows = grid.shape[2] if time_interpolation_rows is None else time_interpolation_rows
        grid = F.interpolate(grid, size=(rows, new_t), mode="bilinear", align_corners=False)
    # the frequency decision and cut offsets use the source rows, as the originals do, even when SSAST's
    # time step has resized the rows to `time_interpolation_rows` (1-row frame grids interpolate 8 -> 1, not cut)
    if new_f < old_f or (cut_when_equal and new_f == old_f):
        grid = grid[:, :, middle_cut(old_f, new_f), :]
    else:
        grid = F.interpolate(grid, size=(new_f, new_t), mode="bilinear", align_corners=False)
    return grid.reshape(1, dim, new_f * new_t).transpose(1, 2)  # (1, F·T, D)


def resize_position_embeddings(
    position_embeddings: torch.Tensor,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    num_prefix_tokens: int,
    **resize_options,
) -> torch.Tensor:
    """(1, prefix + old_F·old_T, D) -> (1, prefix + new_F·new_T, D): prefix tokens kept, patch part adapted.

    The one split -> resize -> concat used by the model at run time, geometry-aware loading (AST and SSAST) and
    the converters; `resize_options` are `resize_patch_position_embeddings`'s keyword arguments.
    """
    prefix, patches = split_prefix(position_embeddings, num_prefix_tokens)
    patches = resize_patch_position_embeddings(patches, old_grid, new_grid, **resize_options)
    return torch.cat([prefix, patches], dim=1)


# ---- from spectrogram_transformers.modeling.remote_code ------------------------------------------


# model_type -> {Auto class: class name in the family's generated module}
REMOTE_CODE_CLASSES: dict[str, dict[str, str]] = {
    "ast": {
        "AutoConfig": "ASTConfig",
        "AutoModel": "ASTModel",
        "AutoModelForAudioClassification": "ASTForAudioClassification",
        "AutoFeatureExtractor": "ASTFeatureExtractor",
    },
    "ssast": {
        "AutoConfig": "SSASTConfig",
        "AutoModel": "SSASTModel",
        "AutoModelForAudioClassification": "SSASTForAudioClassification",
        "AutoModelForPreTraining": "SSASTForPreTraining",
        "AutoFeatureExtractor": "ASTFeatureExtractor",
    },
    "htsat": {
        "AutoConfig": "HTSATConfig",
        "AutoModel": "HTSATModel",
        "AutoModelForAudioClassification": "HTSATForAudioClassification",
        "AutoFeatureExtractor": "HTSATFeatureExtractor",
    },
}


# the package's pipeline for "audio-classification", generated into the shared module: a saved classifier's
# config.json names it in `custom_pipelines`, so `pipeline(..., trust_remote_code=True)` without the package
# windows long audio and resamples any rate as the package does
REMOTE_CODE_PIPELINE = "SpectrogramAudioClassificationPipeline"


# False inside the generated copies of this code (their module is transformers_modules....)
_IS_PACKAGE = __name__.startswith("spectrogram_transformers.")


# the generated module every family module imports (a sibling relative import, which transformers copies along)
SHARED_MODULE = "spectrogram_transformers_shared"


def module_name(model_type: str) -> str:
    return f"spectrogram_transformers_{model_type}"


def remote_code_files(model_type: str) -> list[Path]:
    """The generated modules a family's directory carries: the shared one and the family's (beside this file, or
    beside the generated module running this code)."""
    if model_type not in REMOTE_CODE_CLASSES:
        raise ValueError(f"no remote code for model_type {model_type!r}; known: {sorted(REMOTE_CODE_CLASSES)}")
    paths = [Path(__file__).with_name(f"{name}.py") for name in (SHARED_MODULE, module_name(model_type))]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: regenerate it with `python -m spectrogram_transformers.modeling.remote_code.generate`"
            )
    return paths


def remote_code_auto_map(model_type: str) -> dict[str, str]:
    """`auto_map` for config.json: Auto class -> "module.Class" in the family's generated module."""
    return {auto: f"{module_name(model_type)}.{name}" for auto, name in REMOTE_CODE_CLASSES[model_type].items()}


def remote_code_custom_pipelines(model_type: str) -> dict[str, dict]:
    """`custom_pipelines` for config.json: transformers' public mechanism for a pipeline shipped with a model."""
    return {
        "audio-classification": {
            "impl": f"{module_name(model_type)}.{REMOTE_CODE_PIPELINE}",
            "pt": ["AutoModelForAudioClassification"],
            "type": "audio",
        }
    }


def add_remote_code(target, save_directory, model_type: str, copy_file: bool = True, classifier: bool = False) -> None:
    """Set `target.auto_map` (a config or a feature extractor), and `custom_pipelines` for a classifier's config,
    and copy the generated modules into `save_directory`.

    A feature extractor gets only its own `AutoFeatureExtractor` entry.
    """
    auto_map = remote_code_auto_map(model_type)
    if not hasattr(target, "model_type"):  # a feature extractor
        auto_map = {"AutoFeatureExtractor": auto_map["AutoFeatureExtractor"]}
    target.auto_map = {**(getattr(target, "auto_map", None) or {}), **auto_map}
    if classifier:
        target.custom_pipelines = remote_code_custom_pipelines(model_type)
    if copy_file:
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        for source in remote_code_files(model_type):
            destination = Path(save_directory) / source.name
            if not (destination.exists() and destination.samefile(source)):
                shutil.copyfile(source, destination)


class RemoteCodeMixin:
    """`save_pretrained` (and so `push_to_hub`, which saves through it) also writes the family's custom code."""

    def save_pretrained(self, save_directory, *args, **kwargs):
        add_remote_code(
            self.config,
            save_directory,
            self.config.model_type,
            copy_file=kwargs.get("is_main_process", True),
            classifier=type(self).__name__.endswith("ForAudioClassification"),
        )
        try:
            result = super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if _IS_PACKAGE:  # the entry is for config.json only: this process's pipeline() uses the registered one
                self.config.__dict__.pop("custom_pipelines", None)
        give_weights_umask_permissions(save_directory)
        return result


def give_weights_umask_permissions(directory) -> None:
    """safetensors writes its files through a private temporary file (mode 0600): give the weights the mode every
    other saved file gets from the process umask (usually 0644), so others who can read the model can load it."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for path in Path(directory).glob("*.safetensors"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)


# ---- from spectrogram_transformers.modeling.ast.ast_state_dicts ----------------------------------


def original_encoder_rules(prefix: str) -> list[tuple[str, str]]:
    """Regex table from the timm DeiT backbone names (`v.` in the original AST/SSAST) to this package's encoder.

    `prefix` is where the encoder lives in the target model (`ast.` for AST, `ssast.` for SSAST). timm's fused
    `qkv` projection (rows q, k, v) is renamed `attention.qkv` here and split by `ast_checkpoint_filter`.
    """
    return [
        (r"v\.cls_token", f"{prefix}embeddings.cls_token"),
        (r"v\.dist_token", f"{prefix}embeddings.distillation_token"),
        (r"v\.pos_embed", f"{prefix}embeddings.position_embeddings"),
        (r"v\.patch_embed\.proj\.(weight|bias)", rf"{prefix}embeddings.patch_embeddings.projection.\1"),
        (r"v\.blocks\.(\d+)\.norm1\.(weight|bias)", rf"{prefix}encoder.layers.\1.layernorm_before.\2"),
        (r"v\.blocks\.(\d+)\.norm2\.(weight|bias)", rf"{prefix}encoder.layers.\1.layernorm_after.\2"),
        (r"v\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)", rf"{prefix}encoder.layers.\1.attention.qkv.\2"),
        (r"v\.blocks\.(\d+)\.attn\.proj\.(weight|bias)", rf"{prefix}encoder.layers.\1.attention.o_proj.\2"),
        (r"v\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", rf"{prefix}encoder.layers.\1.mlp.\2.\3"),
        (r"v\.norm\.(weight|bias)", rf"{prefix}layernorm.\1"),
    ]


_ORIGINAL_AST_RULES = original_encoder_rules("ast.") + [
    (r"mlp_head\.0\.(weight|bias)", r"classifier.layernorm.\1"),
    (r"mlp_head\.1\.(weight|bias)", r"classifier.dense.\1"),
]


# the DeiT backbone's 1000-class ImageNet heads: always present in original checkpoints, never used
_ORIGINAL_AST_DROPPED = (r"v\.head\..*", r"v\.head_dist\..*")


_HF_AST_RULES = [
    (
        r"audio_spectrogram_transformer\.embeddings\.(cls_token|distillation_token|position_embeddings)",
        r"ast.embeddings.\1",
    ),
    (
        r"audio_spectrogram_transformer\.embeddings\.patch_embeddings\.projection\.(weight|bias)",
        r"ast.embeddings.patch_embeddings.projection.\1",
    ),
    # transformers 4.x / Hub layout
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.attention\.query\.(weight|bias)",
        r"ast.encoder.layers.\1.attention.q_proj.\2",
    ),
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.attention\.key\.(weight|bias)",
        r"ast.encoder.layers.\1.attention.k_proj.\2",
    ),
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.attention\.value\.(weight|bias)",
        r"ast.encoder.layers.\1.attention.v_proj.\2",
    ),
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)",
        r"ast.encoder.layers.\1.attention.o_proj.\2",
    ),
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)",
        r"ast.encoder.layers.\1.mlp.fc1.\2",
    ),
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)",
        r"ast.encoder.layers.\1.mlp.fc2.\2",
    ),
    (
        r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.(layernorm_before|layernorm_after)\.(weight|bias)",
        r"ast.encoder.layers.\1.\2.\3",
    ),
    # transformers 5.x in-memory layout
    (
        r"audio_spectrogram_transformer\.layers\.(\d+)\.attention\.(q_proj|k_proj|v_proj|o_proj)\.(weight|bias)",
        r"ast.encoder.layers.\1.attention.\2.\3",
    ),
    (
        r"audio_spectrogram_transformer\.layers\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)",
        r"ast.encoder.layers.\1.mlp.\2.\3",
    ),
    (
        r"audio_spectrogram_transformer\.layers\.(\d+)\.(layernorm_before|layernorm_after)\.(weight|bias)",
        r"ast.encoder.layers.\1.\2.\3",
    ),
    (r"audio_spectrogram_transformer\.layernorm\.(weight|bias)", r"ast.layernorm.\1"),
    (r"classifier\.(layernorm|dense)\.(weight|bias)", r"classifier.\1.\2"),
]


def infer_source_grid(num_patches: int, config: ASTConfig) -> tuple[int, int]:
    """(frequency, time) grid of a checkpoint's positional embedding with `num_patches` patches.

    Checkpoints do not store their input length or strides. The config's own frequency rows are tried
    first, then 12 rows (stride 10 on 128 mel bins: every released AST model).
    """
    config_rows = config.patch_grid[0]
    default_rows = (config.num_mel_bins - config.frequency_patch_size) // 10 + 1
    for rows in dict.fromkeys((config_rows, default_rows)):
        if rows > 0 and num_patches % rows == 0:
            return rows, num_patches // rows
    raise ValueError(
        f"cannot tell the patch grid of a positional embedding with {num_patches} patches for "
        f"num_mel_bins={config.num_mel_bins}, frequency_stride={config.frequency_stride}; pass a config whose "
        "strides and max_length match the checkpoint"
    )


_TIMM_HEADS = (r"head\..*", r"head_dist\..*", r"fc_norm\..*", r"pre_logits\..*")


_POSITION_KEY = "embeddings.position_embeddings"


# the checkpoint layouts `ast_checkpoint_filter` reads (see `checkpoint_layout`)
Layout = Literal["package", "original", "timm", "transformers"]


def checkpoint_layout(state_dict: Mapping[str, torch.Tensor]) -> Layout:
    """Which known AST layout a state dict is in (after `module.` is stripped).

    - "original": YuanGongND/ast (`v.*` DeiT backbone, `mlp_head.*`);
    - "timm": timm ViT/DeiT ImageNet weights (`patch_embed.*`, `blocks.*`, optionally under `model.`);
    - "transformers": transformers' own AST (`audio_spectrogram_transformer.*`, or a saved base model with its
      legacy `encoder.layer.N` or 5.x `layers.N` names);
    - "package": this package's names (`ast.*`, `classifier.*`, or a saved base model), with q/k/v stored as one
      fused `qkv` (directories saved before the separate projections) or as `q_proj`/`k_proj`/`v_proj`.
    """
    if any(key.startswith(("v.", "mlp_head.")) for key in state_dict):
        return "original"
    if any(key.startswith(("patch_embed.", "blocks.", "model.patch_embed.")) for key in state_dict):
        return "timm"
    if any(key.startswith(("audio_spectrogram_transformer.", "encoder.layer.", "layers.")) for key in state_dict):
        return "transformers"
    return "package"


def _to_package_names(state_dict: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, torch.Tensor]:
    """Rename a foreign layout to this package's keys (q/k/v possibly still fused); unknown keys raise."""
    if layout == "original":
        renamed, unknown = rename_keys(drop_keys(state_dict, _ORIGINAL_AST_DROPPED), _ORIGINAL_AST_RULES)
        if unknown:
            raise CheckpointKeyError(f"unexpected keys in the original AST checkpoint: {sorted(unknown)}")
        return renamed
    if layout == "timm":
        kept = drop_keys(strip_prefix(state_dict, "model."), _TIMM_HEADS)
        renamed, unknown = rename_keys(
            {f"v.{key}": value for key, value in kept.items()}, original_encoder_rules("ast.")
        )
        if unknown:
            raise CheckpointKeyError(f"unexpected keys in the timm ViT checkpoint: {sorted(k[2:] for k in unknown)}")
        projection_key = "ast.embeddings.patch_embeddings.projection.weight"
        if projection_key in renamed and renamed[projection_key].shape[1] == 3:
            # the original's ImageNet initialisation: RGB weights summed into one channel (bias kept)
            renamed[projection_key] = renamed[projection_key].sum(dim=1, keepdim=True)  # (D, 3, p, p) -> (D, 1, p, p)
        return renamed
    if layout == "transformers":
        if not any(key.startswith("audio_spectrogram_transformer.") for key in state_dict):  # a saved base model
            state_dict = {
                key if key.startswith("classifier.") else f"audio_spectrogram_transformer.{key}": value
                for key, value in state_dict.items()
            }
        renamed, unknown = rename_keys(state_dict, _HF_AST_RULES)
        if unknown:
            raise CheckpointKeyError(f"unexpected keys in the transformers AST checkpoint: {sorted(unknown)}")
        return renamed
    return dict(state_dict)


def _source_grid(num_patches: int, layout: Layout, config: ASTConfig) -> tuple[int, int]:
    if layout == "timm":  # ImageNet models: a square grid
        side = round(num_patches**0.5)
        if side * side != num_patches:
            raise ValueError(f"timm positional embedding has {num_patches} patches, not a square grid")
        return side, side
    return infer_source_grid(num_patches, config)


def ast_checkpoint_filter(
    state_dict: Mapping[str, torch.Tensor],
    config: ASTConfig,
    source_config: ASTConfig | None = None,
    layout: Layout | None = None,
    **resize_options,
) -> dict[str, torch.Tensor]:
    """Any known AST/SSAST-encoder checkpoint layout -> this package's keys at `config`'s geometry (timm's
    `checkpoint_filter_fn`): the one path by which `from_pretrained` and the converters read weights.

    Steps: unwrap (`module.`), rename from `layout` (detected by `checkpoint_layout` when not given), split a fused `qkv` into
    `q_proj`/`k_proj`/`v_proj` (rows q, k, v, as timm and the originals stack them), and resize every
    positional embedding from the source grid to `config.patch_grid`. The source grid is `source_config`'s
    (a saved directory's config), else inferred from the embedding's size (`infer_source_grid`; square for
    timm). `resize_options` select SSAST's resizing rule (`adapt_ssast_state_dict_geometry`). Key prefixes
    (`ast.`, `ssast.`, none for a saved base model) are kept; the model's strict key check comes after.
    """
    state_dict = strip_prefix(dict(state_dict), "module.")
    layout = layout or checkpoint_layout(state_dict)
    converted = split_fused_qkv(_to_package_names(state_dict, layout))
    if source_config is not None:
        if _geometry(source_config) != _geometry(config):
            converted = adapt_state_dict_geometry(converted, source_config, config, **resize_options)
        return converted
    for key in [key for key in converted if key.endswith(_POSITION_KEY)]:
        num_patches = converted[key].shape[1] - config.num_prefix_tokens
        if num_patches != config.num_patches:
            source_grid = _source_grid(num_patches, layout, config)
            converted[key] = resize_position_embeddings(
                converted[key], source_grid, config.patch_grid, config.num_prefix_tokens, **resize_options
            )
    return converted


def _geometry(config: ASTConfig) -> tuple:
    return (config.patch_grid, config.frequency_patch_size, config.time_patch_size)


def adapt_state_dict_geometry(
    state_dict: dict[str, torch.Tensor], source_config: ASTConfig, target_config: ASTConfig, **resize_options
) -> dict[str, torch.Tensor]:
    """Resize every `position_embeddings` of a state dict from the source patch grid to the target one.

    AST's rule by default; `resize_options` (see `resize_patch_position_embeddings`) give SSAST's.
    """
    source_patch = (source_config.frequency_patch_size, source_config.time_patch_size)
    target_patch = (target_config.frequency_patch_size, target_config.time_patch_size)
    if source_patch != target_patch:
        raise ValueError(
            f"cannot change the patch shape from {source_patch} to {target_patch} when loading (the patch projection "
            "is re-used as it is); strides, max_length and num_mel_bins can change"
        )
    adapted = dict(state_dict)
    for key, value in state_dict.items():
        if key.endswith(_POSITION_KEY):
            adapted[key] = resize_position_embeddings(
                value,
                source_config.patch_grid,
                target_config.patch_grid,
                source_config.num_prefix_tokens,
                **resize_options,
            )
    return adapted


def ast_config_from_transformers(source: Mapping | object) -> ASTConfig:
    """This package's ASTConfig equal to a `transformers` ASTConfig (object, dict or config.json path)."""
    if isinstance(source, (str, Path)):
        source = json.loads(Path(source).read_text())
    fields = source if isinstance(source, Mapping) else source.to_dict()
    eps = fields.get("layer_norm_eps", 1e-12)
    id2label = fields.get("id2label")
    return ASTConfig(
        hidden_size=fields.get("hidden_size", 768),
        num_hidden_layers=fields.get("num_hidden_layers", 12),
        num_attention_heads=fields.get("num_attention_heads", 12),
        intermediate_size=fields.get("intermediate_size", 3072),
        hidden_act=fields.get("hidden_act", "gelu"),
        layer_norm_eps=eps,
        classifier_layer_norm_eps=eps,  # transformers' port uses one eps for backbone and head
        patch_size=fields.get("patch_size", 16),
        frequency_stride=fields.get("frequency_stride", 10),
        time_stride=fields.get("time_stride", 10),
        max_length=fields.get("max_length", 1024),
        num_mel_bins=fields.get("num_mel_bins", 128),
        qkv_bias=fields.get("qkv_bias", True),
        id2label={int(k): v for k, v in id2label.items()} if id2label else None,
        problem_type=fields.get("problem_type"),
    )


# ---- from spectrogram_transformers.modeling.ast.modeling_ast -------------------------------------


# model_type of transformers' own AST port (`MIT/ast-finetuned-audioset-10-10-0.4593`), converted on load
TRANSFORMERS_AST_MODEL_TYPE = "audio-spectrogram-transformer"


# `from_pretrained` keywords that look like config fields but configure the loading
_LOADING_KWARGS = ("dtype", "torch_dtype", "attn_implementation", "device_map")


class ASTPatchEmbeddings(nn.Module):
    """(B, frames, mel) features -> (B, F·T, D) patch tokens, frequency-major (index = f·T + t)."""

    def __init__(self, config: ASTConfig):
        super().__init__()
        self.projection = nn.Conv2d(
            1,
            config.hidden_size,
            kernel_size=(config.frequency_patch_size, config.time_patch_size),
            stride=(config.frequency_stride, config.time_stride),
        )

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        image = input_values.unsqueeze(1).transpose(2, 3)  # (B, 1, mel, frames): height = frequency
        return self.projection(image).flatten(2).transpose(1, 2)  # (B, F·T, D)


class ASTEmbeddings(nn.Module):
    """Prefix tokens (cls [+ distillation]) + patch tokens + learned positional embedding."""

    def __init__(self, config: ASTConfig):
        super().__init__()
        self.config = config
        self.num_prefix_tokens = config.num_prefix_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        # DeiT's distillation token; absent for plain-ViT backbones (SSAST "base_nokd")
        self.distillation_token = (
            nn.Parameter(torch.zeros(1, 1, config.hidden_size)) if config.num_prefix_tokens == 2 else None
        )
        self.patch_embeddings = ASTPatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_patches + config.num_prefix_tokens, config.hidden_size)
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def prefix_tokens(self, batch_size: int) -> torch.Tensor:
        tokens = [self.cls_token] if self.distillation_token is None else [self.cls_token, self.distillation_token]
        return torch.cat(tokens, dim=1).expand(batch_size, -1, -1)  # (B, prefix, D)

    def patch_grid_of(self, num_frames: int) -> tuple[int, int]:
        config = self.config
        frequency_patches, _ = config.patch_grid
        return frequency_patches, (num_frames - config.time_patch_size) // config.time_stride + 1

    def position_embeddings_for(self, num_frames: int, interpolate_pos_encoding: bool) -> torch.Tensor:
        """Positional embedding for `num_frames` input frames: the stored one, or a resized one on request."""
        grid = self.patch_grid_of(num_frames)
        if grid == self.config.patch_grid:
            return self.position_embeddings
        if not interpolate_pos_encoding:
            raise ValueError(
                f"input has {num_frames} frames but the model was built for max_length={self.config.max_length}; "
                "pad or cut the features to max_length (the feature extractor does), or pass "
                "interpolate_pos_encoding=True to resize the positional embedding at run time"
            )
        return resize_position_embeddings(
            self.position_embeddings, self.config.patch_grid, grid, self.num_prefix_tokens
        )

    def embed_patches(self, input_values: torch.Tensor) -> torch.Tensor:
        """Patch tokens before prefix tokens and positions are added (SSAST masks them here)."""
        return self.patch_embeddings(input_values)

    def add_prefix_and_positions(
        self, patch_tokens: torch.Tensor, num_frames: int, interpolate_pos_encoding: bool = False
    ) -> torch.Tensor:
        tokens = torch.cat([self.prefix_tokens(patch_tokens.shape[0]), patch_tokens], dim=1)  # (B, prefix+P, D)
        tokens = tokens + self.position_embeddings_for(num_frames, interpolate_pos_encoding)
        return self.dropout(tokens)

    def forward(self, input_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        patch_tokens = self.embed_patches(input_values)
        return self.add_prefix_and_positions(patch_tokens, input_values.shape[1], interpolate_pos_encoding)


class ASTAttention(nn.Module):
    """Multi-head self-attention on `transformers`' attention interface (sdpa by default, eager for maps).

    Query, key and value are separate linears, `q_proj`/`k_proj`/`v_proj` as in transformers 5 (so PEFT's
    `target_modules=["q_proj", "v_proj"]` works as on transformers' AST); checkpoints with one fused `qkv`
    are split on load (`ast_checkpoint_filter`). `fuse_qkv_projections()` turns the three into one GEMM for a
    graph export (the ONNX export does, for one MatMul + one attention node per layer).
    """

    def __init__(self, config: ASTConfig):
        super().__init__()
        self.config = config
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.k_proj = Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.v_proj = Linear(config.hidden_size, config.hidden_size, bias=config.qkv_bias)
        self.o_proj = Linear(config.hidden_size, config.hidden_size)
        self.fused_qkv: nn.Linear | None = None  # set by `fuse_qkv_projections` only

    @torch.no_grad()
    def fuse_qkv_projections(self) -> None:
        """Compute q, k and v with ONE (3·D, D) linear (rows q, k, v) built from the current projections.

        For exporting a model that is done training (`onnx_export` calls it): the graph then holds one MatMul
        where it would hold three. The fused copy does not follow later changes to `q_proj`/`k_proj`/`v_proj`.
        """
        projections = (self.q_proj, self.k_proj, self.v_proj)
        weight = torch.cat([projection.weight for projection in projections])
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias=self.q_proj.bias is not None)
        fused = fused.to(device=weight.device, dtype=weight.dtype)
        fused.weight.copy_(weight)
        if fused.bias is not None:
            fused.bias.copy_(torch.cat([projection.bias for projection in projections]))
        self.fused_qkv = fused

    def project_qkv(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, N, D) -> query, key, value, each (B, H, N, d)."""
        batch_size, length, _ = hidden_states.shape
        if self.fused_qkv is not None:
            # (B, N, 3, H, d) -> three strided views; split before transposing, so that an exported graph holds
            # Split + one Transpose per tensor, which ONNX Runtime cancels against the attention's own
            qkv = self.fused_qkv(hidden_states).view(batch_size, length, 3, -1, self.head_dim)
            query, key, value = (tensor.transpose(1, 2) for tensor in qkv.unbind(2))
            return query, key, value
        shape = (batch_size, length, -1, self.head_dim)
        return tuple(
            projection(hidden_states).view(shape).transpose(1, 2)
            for projection in (self.q_proj, self.k_proj, self.v_proj)
        )

    def forward(
        self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, N, D) -> output (B, N, D) and, with `output_attentions=True`, weights (B, H, N, N) (the model
        records them through `_can_record_outputs`); `kwargs` go on to the attention function."""
        batch_size, length, _ = hidden_states.shape
        query, key, value = self.project_qkv(hidden_states)  # each (B, H, N, d)
        # attention maps need the eager function, whatever implementation the model runs
        implementation = "eager" if kwargs.get("output_attentions") else self.config._attn_implementation
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        output, weights = attention_interface(
            self,
            query,
            key,
            value,
            None,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        output = output.reshape(batch_size, length, -1)  # (B, N, D)
        return self.o_proj(output), weights


class ASTMLP(nn.Module):
    def __init__(self, config: ASTConfig):
        super().__init__()
        self.fc1 = Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(linear_then_activation(self.fc1, self.activation, hidden_states))


class ASTLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block (timm `Block`): x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, config: ASTConfig, drop_path: float = 0.0):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = ASTAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ASTMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.drop_path = DropPath(drop_path)

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        attention_output, _ = self.attention(self.layernorm_before(hidden_states), **kwargs)
        hidden_states = hidden_states + self.drop_path(self.dropout(attention_output))
        mlp_output = self.mlp(self.layernorm_after(hidden_states))
        hidden_states = hidden_states + self.drop_path(self.dropout(mlp_output))
        return hidden_states


class ASTEncoder(nn.Module):
    def __init__(self, config: ASTConfig):
        super().__init__()
        drop_rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers).tolist()
        self.layers = nn.ModuleList(ASTLayer(config, drop_rates[index]) for index in range(config.num_hidden_layers))

    def forward(self, hidden_states: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, **kwargs)
        return hidden_states


class ASTPreTrainedModel(RemoteCodeMixin, CheckedLoadingMixin, PreTrainedModel):
    """Weight initialisation, attention-implementation support, geometry-aware `from_pretrained`, and
    `save_pretrained` that writes the custom code `trust_remote_code=True` loads (`RemoteCodeMixin`)."""

    config_class = ASTConfig
    config: ASTConfig
    base_model_prefix = "ast"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["ASTEmbeddings", "ASTLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    # what `capture_outputs` records: every layer's output (after the embeddings) and every attention's weights
    _can_record_outputs = {"hidden_states": ASTLayer, "attentions": ASTAttention}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """timm ViT initialisation: truncated normal for weights and tokens, zero bias, unit LayerNorm.

        Through `transformers.initialization`, whose functions leave tensors alone that `from_pretrained` has
        already loaded (they carry `_is_hf_initialized`), so only missing weights are drawn.
        """
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, ASTEmbeddings):
            for token in (module.cls_token, module.distillation_token, module.position_embeddings):
                if token is not None:
                    init.trunc_normal_(token, std=std)

    def freeze_feature_encoder(self) -> None:
        """Freeze the spectrogram front end, the patch embedding (its projection gets no gradient).

        The method transformers' audio-classification example script calls by default
        (`--freeze_feature_encoder True`), as wav2vec2 freezes its convolutional waveform encoder: the
        transformer blocks, prefix tokens, positional embedding and head keep training.
        """
        self.base_model.embeddings.patch_embeddings.requires_grad_(False)

    @classmethod
    def _loading_configs(cls, pretrained_model_name_or_path, kwargs: dict) -> tuple:
        """(config to build, config as saved, remaining kwargs); a transformers-native AST config is translated."""
        hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
        saved_dict, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        if saved_dict.get("model_type") != TRANSFORMERS_AST_MODEL_TYPE:
            return super()._loading_configs(pretrained_model_name_or_path, kwargs)
        if cls.config_class.model_type != "ast":
            raise ValueError(
                f"{pretrained_model_name_or_path} is a transformers Audio Spectrogram Transformer checkpoint; load it "
                "with spectrogram_transformers.ASTForAudioClassification (or ASTModel), not an SSAST class"
            )
        saved_config = ast_config_from_transformers(saved_dict)
        config = kwargs.pop("config", None)
        if config is None:
            config = copy.deepcopy(saved_config)
            fields = {field.name for field in dataclasses.fields(config)} | {"num_labels", "id2label", "label2id"}
            for name in [name for name in kwargs if name in fields and name not in _LOADING_KWARGS]:
                setattr(config, name, kwargs.pop(name))
        return config, saved_config, kwargs

    @classmethod
    def _adapt_checkpoint(cls, state_dict: dict[str, torch.Tensor], saved_config: ASTConfig, config: ASTConfig):
        """Any known layout (transformers' AST, the fused `qkv` of older saves, ...) in this package's names, the
        positional embedding resized when the geometry changes: `ast_checkpoint_filter`."""
        return ast_checkpoint_filter(state_dict, config, saved_config)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained` that reads the checkpoint once and adapts it (`CheckedLoadingMixin`).

        - Another input geometry (`config=...` or overrides such as `max_length=512`, `time_stride=12`): the
          positional embedding is cut or bilinearly resized as the original AST does.
        - A directory or Hub id in transformers' own AST format (`model_type: "audio-spectrogram-transformer"`,
          e.g. `MIT/ast-finetuned-audioset-10-10-0.4593`) is converted exactly in memory, labels kept.
        - A missing, unexpected or mis-shaped encoder weight raises `CheckpointKeyError` naming it; only heads are
          ever initialised fresh (another `num_labels` needs `ignore_mismatched_sizes=True`).
        """
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)


class ASTModel(ASTPreTrainedModel):
    """AST encoder.

    Input `input_values` (B, frames, mel); outputs `last_hidden_state` (B, prefix + F·T, D) after the final
    LayerNorm and `pooler_output` (B, D): the mean of the prefix tokens (`pooling="cls"`) or of the patch
    tokens (`pooling="mean"`).
    """

    def __init__(self, config: ASTConfig):
        super().__init__(config)
        self.embeddings = ASTEmbeddings(config)
        self.encoder = ASTEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> ASTPatchEmbeddings:
        return self.embeddings.patch_embeddings

    def pool(self, sequence_output: torch.Tensor) -> torch.Tensor:
        prefix = self.config.num_prefix_tokens
        if self.config.pooling == "mean":
            return torch.mean(sequence_output[:, prefix:, :], dim=1)
        if prefix == 2:
            return (sequence_output[:, 0] + sequence_output[:, 1]) / 2
        return sequence_output[:, 0]

    @capture_outputs(tie_last_hidden_states=False)
    def encode(self, embeddings: torch.Tensor, **kwargs: Unpack[TransformersKwargs]) -> BaseModelOutputWithPooling:
        """Run the blocks, final LayerNorm and pooling on already embedded tokens (B, prefix + P, D).

        `output_hidden_states` / `output_attentions` (kwargs or config) are recorded by transformers'
        `capture_outputs` from the layers (`_can_record_outputs`): hidden states are the embeddings and every
        layer's output (before the final LayerNorm), attentions every layer's weights.
        """
        hidden_states = self.encoder(embeddings, **kwargs)
        sequence_output = self.layernorm(hidden_states)
        return BaseModelOutputWithPooling(last_hidden_state=sequence_output, pooler_output=self.pool(sequence_output))

    def forward(
        self,
        input_values: torch.Tensor,
        interpolate_pos_encoding: bool = False,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling | tuple:
        input_values = check_input_values(
            input_values, self.config.num_mel_bins, dtype=self.dtype, min_frames=self.config.time_patch_size
        )
        embeddings = self.embeddings(input_values, interpolate_pos_encoding=interpolate_pos_encoding)
        return self.encode(embeddings, **kwargs)


class ASTClassificationHead(nn.Module):
    """The original `mlp_head`: LayerNorm (torch default eps 1e-5) then Linear to the labels."""

    def __init__(self, config: ASTConfig):
        super().__init__()
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.classifier_layer_norm_eps)
        self.dense = Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layernorm(pooled_output))  # (B, labels)


# ---- from spectrogram_transformers.feature_extraction.audio --------------------------------------


# The largest channel count we expect in a 2-D waveform (7.1 surround). A 2-D input whose smaller dimension
# is at most this is read as [channels, samples] or [samples, channels]; anything else is ambiguous.
MAX_CHANNELS = 8


# Full-scale value of each PCM integer type: dividing by it maps the integer range onto [-1, 1), the same
# scaling soundfile/libsndfile and torchaudio use when they decode PCM to float.
_PCM_FULL_SCALE = {
    np.dtype(np.int8): 2.0**7,
    np.dtype(np.int16): 2.0**15,
    np.dtype(np.int32): 2.0**31,
}


# 8-bit PCM (WAV's only 8-bit format) is unsigned with its zero at 128.
_UINT8_OFFSET = 128.0


def _as_numpy(waveform: Any) -> np.ndarray:
    """numpy view/copy of a numpy array, torch tensor or (nested) list, without changing its dtype class."""
    if isinstance(waveform, torch.Tensor):
        tensor = waveform.detach().cpu()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            # numpy has no bfloat16; float32 holds both half types exactly.
            tensor = tensor.float()
        if tensor.is_complex():
            raise ValueError(f"audio must be real-valued, got a complex tensor of dtype {tensor.dtype}")
        return tensor.numpy()
    if isinstance(waveform, np.ndarray):
        return waveform
    if isinstance(waveform, (list, tuple)):
        return np.asarray(waveform)
    raise TypeError(f"audio must be a numpy array, a torch tensor or a list of samples, got {type(waveform).__name__}")


def _channel_axis(shape: tuple[int, int], channels_axis: int | None) -> int:
    """Which axis of a 2-D waveform holds the channels.

    The smaller dimension is the channel axis when it is at most `MAX_CHANNELS`: clips have far more samples
    than channels, whatever order the library that produced them prefers (torchaudio: [channels, samples];
    soundfile, scipy: [samples, channels]). On a tie (e.g. [2, 2]) the torch convention, channels first, wins.
    """
    if channels_axis is not None:
        if channels_axis not in (0, 1, -1, -2):
            raise ValueError(f"channels_axis must be 0 or 1 for a 2-D waveform, got {channels_axis}")
        return channels_axis % 2
    smaller_axis = 0 if shape[0] <= shape[1] else 1
    if shape[smaller_axis] > MAX_CHANNELS:
        raise ValueError(
            f"cannot tell channels from samples in a 2-D waveform of shape {tuple(shape)}: neither dimension is "
            f"<= {MAX_CHANNELS} channels. Pass one clip at a time, or pass channels_axis explicitly."
        )
    return smaller_axis


def to_mono_float32(waveform: Any, *, channels_axis: int | None = None, name: str | None = None) -> np.ndarray:
    """Turn one clip into a mono float32 waveform of shape [samples].

    Args:
        waveform: numpy array, torch tensor or list of samples. 1-D is mono; 2-D is multi-channel, either
            [channels, samples] or [samples, channels] (the smaller dimension, if <= `MAX_CHANNELS`, is taken
            as the channel axis; see `channels_axis`) and is down-mixed by the mean over channels.
            Integer PCM is scaled to [-1, 1): int16 / 2**15, int32 / 2**31, int8 / 2**7, uint8 (unsigned
            8-bit WAV) (x - 128) / 128. Floating-point input is taken as already scaled and only cast.
        channels_axis: force which axis of a 2-D input holds the channels, instead of guessing.
        name: how to refer to the clip in error messages (e.g. its file name).

    Returns:
        `np.ndarray` float32 of shape [samples] (a new array; the input is never modified).

    Raises:
        ValueError: empty audio, NaN or infinite samples, more than 2 dimensions, an ambiguous 2-D shape, or a
            dtype that is not audio (bool, complex, strings, int64 and other integer types with no PCM scale).
        TypeError: an input that is not an array, tensor or list.
    """
    label = f" ({name})" if name else ""
    array = _as_numpy(waveform)
    dtype = array.dtype

    if array.ndim > 2:
        raise ValueError(
            f"audio{label} must be 1-D [samples] or 2-D [channels, samples] / [samples, channels], "
            f"got {array.ndim} dimensions with shape {tuple(array.shape)}"
        )
    if array.size == 0:
        raise ValueError(f"audio{label} is empty (shape {tuple(array.shape)})")

    if dtype in _PCM_FULL_SCALE:
        # int32 has more precision than float32: scale in float64, then round once.
        samples = (array.astype(np.float64) / _PCM_FULL_SCALE[dtype]).astype(np.float32)
    elif dtype == np.uint8:
        samples = (array.astype(np.float32) - np.float32(_UINT8_OFFSET)) / np.float32(_UINT8_OFFSET)
    elif np.issubdtype(dtype, np.floating):
        with np.errstate(over="ignore"):  # values beyond float32's range become inf, rejected below
            samples = array.astype(np.float32)  # always a copy, so callers may modify the result
    else:
        raise ValueError(
            f"audio{label} has dtype {dtype}, which is not an audio sample type: use float32/float64, "
            "or PCM int16/int32/int8/uint8 (int64 has no PCM scale: cast it to the integer type it came from)"
        )

    if array.ndim == 2:
        axis = _channel_axis(array.shape, channels_axis)
        samples = samples.mean(axis=axis, dtype=np.float32)

    if not np.isfinite(samples).all():
        # Checked after the float32 cast: float64 values beyond float32's range become inf here too.
        bad = int((~np.isfinite(samples)).sum())
        raise ValueError(f"audio{label} contains {bad} NaN or infinite sample(s)")
    return np.ascontiguousarray(samples)


def _check_rate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number of samples per second, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive, finite sampling rate, got {value}")
    return float(value)


def resample(waveform: Any, orig_sr: float, target_sr: float) -> np.ndarray:
    """Resample a mono waveform from `orig_sr` to `target_sr` Hz (identity when they are equal).

    Uses soxr (libsoxr, the SoX resampler) at its "HQ" quality: a band-limited polyphase filter with ~-140 dB
    stop band and a linear-phase pass band up to ~95% of the new Nyquist, computed in C, typically 10-100x
    faster than FFT- or sinc-based Python resamplers, and maintained (it is also what librosa uses by default).
    Its output length is round(samples * target_sr / orig_sr), with no group delay to trim.

    Args:
        waveform: anything `to_mono_float32` accepts; multi-channel input is down-mixed first.
        orig_sr: sampling rate of `waveform` in Hz.
        target_sr: wanted sampling rate in Hz.

    Returns:
        `np.ndarray` float32 of shape [round(samples * target_sr / orig_sr)].
    """
    import soxr

    samples = to_mono_float32(waveform)
    orig = _check_rate(orig_sr, "orig_sr")
    target = _check_rate(target_sr, "target_sr")
    if orig == target:
        return samples
    return np.ascontiguousarray(soxr.resample(samples, orig, target, quality="HQ"), dtype=np.float32)


AudioSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | dict


def _describe_source(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes of audio>"
    return getattr(source, "name", None) or f"<{type(source).__name__} object>"


def load_audio(source: AudioSource, target_sr: float | None = None) -> tuple[np.ndarray, int | float]:
    """Decode an audio file to a mono float32 waveform, optionally resampled.

    Args:
        source: a path, the encoded bytes of a file, a binary file object, or a `datasets` audio dict
            (`{"bytes": ..., "path": ...}` as given by `Audio(decode=False)`; bytes win over the path).
        target_sr: resample to this rate (Hz); None keeps the file's own rate.

    Returns:
        `(waveform, sampling_rate)`: float32 [samples] (PCM scaled as soundfile does: int16 / 32768) and the
        rate of that waveform (`target_sr` when given, else the file's rate).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: input that soundfile cannot decode (corrupt, truncated or unknown format), or that decodes
            to empty / non-finite audio. The message names the file.
    """
    import soundfile

    if isinstance(source, dict):
        if source.get("bytes") is not None:
            source = source["bytes"]
        elif source.get("path") is not None:
            source = source["path"]
        else:
            raise ValueError(f"an audio dict needs 'bytes' or 'path', got keys {sorted(source)}")

    name = _describe_source(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"audio file not found: {name}")
    handle = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source

    try:
        # always_2d gives [frames, channels] for every file, so down-mixing is one code path.
        data, sampling_rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError) as error:
        raise ValueError(f"could not decode audio {name}: {error}") from error

    waveform = to_mono_float32(data, channels_axis=1, name=name)
    if target_sr is not None:
        waveform = resample(waveform, sampling_rate, target_sr)
        sampling_rate = target_sr
    return waveform, sampling_rate


def is_channels_last_clip(shape: tuple[int, ...]) -> bool:
    """Whether a 2-D array of `shape` is one clip in channels-last layout [samples, channels] rather than a
    batch of mono clips [batch, samples]: its trailing axis is at most `MAX_CHANNELS` and its leading axis is
    longer. (Clips of <= 8 samples are shorter than any analysis frame, so no real batch looks like this.)"""
    return len(shape) == 2 and shape[1] <= MAX_CHANNELS and shape[0] > shape[1]


_warned_channels_last = False


def _warn_channels_last_once(shape: tuple[int, ...]) -> None:
    global _warned_channels_last
    if not _warned_channels_last:
        _warned_channels_last = True
        logger.warning(
            f"a 2-D audio array of shape {tuple(shape)} was read as ONE clip in channels-last layout [samples, "
            f"channels] (as soundfile.read returns it) and down-mixed to mono, not as {shape[0]} clips of "
            f"{shape[1]} samples. A batch of mono clips is [batch, samples]; a channels-first clip goes in a list: "
            "[clip]. (This warning is shown once.)"
        )


def to_mono_batch(
    raw_speech: Any, sampling_rate: float | None = None, target_sr: float | None = None
) -> list[np.ndarray]:
    """Normalise what a feature extractor's `__call__` receives into a list of mono float32 clips.

    Args:
        raw_speech: one clip (1-D array/tensor, or a list of numbers), a batch of mono clips as a 2-D
            array/tensor [batch, samples] (the `transformers` convention), or a list/tuple of clips, each
            anything `to_mono_float32` accepts (a multi-channel clip goes in a list: `[stereo_clip]`).
            One exception to [batch, samples]: a 2-D array whose trailing axis is a handful of channels
            (<= `MAX_CHANNELS`) and whose leading axis is longer ([samples, channels], as `soundfile.read`
            returns a stereo file) is one channels-last clip, down-mixed with a one-time warning; read as a
            batch it would be thousands of clips shorter than any analysis frame.
        sampling_rate: rate of `raw_speech` in Hz; with `target_sr`, clips are resampled when they differ.
        target_sr: rate wanted by the caller.

    Returns:
        list of float32 [samples] arrays, one per clip.

    Raises:
        ValueError: an empty batch, a 3-D or larger array, or any clip `to_mono_float32` rejects (the message
            says which clip).
    """
    if isinstance(raw_speech, (np.ndarray, torch.Tensor)):
        if raw_speech.ndim == 1:
            clips = [raw_speech]
        elif raw_speech.ndim == 2 and is_channels_last_clip(raw_speech.shape):
            _warn_channels_last_once(raw_speech.shape)
            return to_mono_batch([to_mono_float32(raw_speech, channels_axis=1)], sampling_rate, target_sr)
        elif raw_speech.ndim == 2:
            clips = list(raw_speech)
        else:
            raise ValueError(
                f"audio arrays must be 1-D (one clip) or 2-D [batch, samples], got shape {tuple(raw_speech.shape)}; "
                "pass a multi-channel clip inside a list, e.g. [clip] with clip [channels, samples]"
            )
    elif isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("got an empty list of audio clips")
        if isinstance(raw_speech[0], (np.ndarray, torch.Tensor, list, tuple)):
            clips = list(raw_speech)
        else:
            clips = [raw_speech]  # a plain list of samples is one clip
    else:
        raise TypeError(
            f"audio must be a numpy array, a torch tensor, or a list of them, got {type(raw_speech).__name__}"
        )
    if len(clips) == 0:
        raise ValueError("got an empty batch of audio clips")

    waveforms = [
        to_mono_float32(clip, name=f"clip {index}" if len(clips) > 1 else None) for index, clip in enumerate(clips)
    ]
    if sampling_rate is not None and target_sr is not None and float(sampling_rate) != float(target_sr):
        waveforms = [resample(waveform, sampling_rate, target_sr) for waveform in waveforms]
    return waveforms


# ---- from spectrogram_transformers.feature_extraction.filterbank ---------------------------------


# Filters per group: small enough that a group covers a narrow bin range, large enough that each group is a
# reasonably sized matmul (8-32 measured within 30% of each other on CPU; 16 was the fastest).
_FILTERS_PER_GROUP = 16


class BandedFilterbank:
    """A filterbank matrix [bins, filters] stored as per-group dense blocks over each group's bin range.

    Args:
        weights: [num_bins, num_filters] filter weights (columns are filters, as torchlibrosa's `melW`).
        filters_per_group: filters multiplied together in one block.
    """

    def __init__(self, weights: torch.Tensor, filters_per_group: int = _FILTERS_PER_GROUP):
        if weights.ndim != 2:
            raise ValueError(f"weights must be [bins, filters], got shape {tuple(weights.shape)}")
        self.num_bins, self.num_filters = weights.shape
        self.blocks: list[tuple[int, int, torch.Tensor]] = []  # (first bin, end bin, [bins, group filters])
        for start in range(0, self.num_filters, filters_per_group):
            group = weights[:, start : start + filters_per_group]  # (bins, group)
            used = (group != 0).any(dim=1).nonzero().flatten()
            if used.numel() == 0:  # all filters of the group are empty (e.g. above Nyquist): zero output
                self.blocks.append((0, 0, group[:0].contiguous()))
                continue
            low, high = int(used[0]), int(used[-1]) + 1
            self.blocks.append((low, high, group[low:high].contiguous()))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> BandedFilterbank:
        moved = object.__new__(BandedFilterbank)
        moved.num_bins, moved.num_filters = self.num_bins, self.num_filters
        moved.blocks = [(low, high, block.to(device=device, dtype=dtype)) for low, high, block in self.blocks]
        return moved

    def __call__(self, power: torch.Tensor) -> torch.Tensor:
        """[..., bins] power -> [..., filters] filter energies (= power @ weights)."""
        if power.shape[-1] != self.num_bins:
            raise ValueError(f"expected {self.num_bins} frequency bins, got {power.shape[-1]}")
        return torch.cat([power[..., low:high] @ block for low, high, block in self.blocks], dim=-1)


def power_spectrum(spectrum: torch.Tensor) -> torch.Tensor:
    """|X|^2 of a complex spectrum as re^2 + im^2 (two passes; `abs().pow(2)` takes a square root first)."""
    return spectrum.real.square().addcmul_(spectrum.imag, spectrum.imag)


# ---- from spectrogram_transformers.feature_extraction.kaldi --------------------------------------


WindowType = Literal["hanning", "hamming", "povey", "rectangular"]


# Kaldi's mel scale constants: mel(f) = 1127 ln(1 + f / 700).
_MEL_FACTOR = 1127.0


_MEL_BREAK_HZ = 700.0


# Kaldi floors energies at the machine epsilon of the feature dtype before the log.
_FLOAT32_EPS = torch.finfo(torch.float32).eps


# Exponent of Kaldi's "povey" window (a Hann window raised to this power).
_POVEY_EXPONENT = 0.85


def kaldi_mel_scale(frequency_hz: float) -> float:
    """Kaldi's (HTK-style) mel scale, 1127 ln(1 + f / 700)."""
    return _MEL_FACTOR * math.log(1.0 + frequency_hz / _MEL_BREAK_HZ)


def kaldi_frame_sizes(
    sample_rate: float, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, round_to_power_of_two: bool = True
) -> tuple[int, int, int]:
    """(window, shift, FFT size) in samples, truncated to integers as Kaldi does (400, 160, 512 at 16 kHz)."""
    window = int(sample_rate * frame_length_ms * 0.001)
    hop = int(sample_rate * frame_shift_ms * 0.001)
    if window < 2 or hop < 1:
        raise ValueError(
            f"frame_length_ms={frame_length_ms} / frame_shift_ms={frame_shift_ms} at {sample_rate} Hz give a "
            f"window of {window} and a shift of {hop} samples; need a window >= 2 and a shift >= 1"
        )
    fft_size = 1 << (window - 1).bit_length() if round_to_power_of_two else window
    return window, hop, fft_size


def _own_copy(cached: torch.Tensor, device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    """`cached` on device/dtype, never the cached tensor itself (a caller's in-place edit must not reach the cache)."""
    moved = cached.to(device=device, dtype=dtype)
    return moved.clone() if moved is cached else moved


@lru_cache(maxsize=32)
def _mel_banks_cpu(num_mel_bins: int, fft_size: int, sample_rate: float, low_freq: float, high_freq: float):
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq = nyquist + high_freq
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(
            f"mel range must satisfy 0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz); got low_freq={low_freq}, "
            f"high_freq={high_freq} (high_freq <= 0 is an offset from Nyquist)"
        )
    num_fft_bins = fft_size // 2
    bin_width_hz = sample_rate / fft_size
    mel_low = kaldi_mel_scale(low_freq)
    mel_high = kaldi_mel_scale(high_freq)
    mel_step = (mel_high - mel_low) / (num_mel_bins + 1)

    # The edges and the FFT-bin mels are float32 tensors built exactly as torchaudio builds them (python-float
    # scalars times float32 tensors), so the triangles match it bit for bit.
    index = torch.arange(num_mel_bins, dtype=torch.float32).unsqueeze(1)  # (M, 1)
    left = mel_low + index * mel_step
    center = mel_low + (index + 1.0) * mel_step
    right = mel_low + (index + 2.0) * mel_step
    bin_hz = bin_width_hz * torch.arange(num_fft_bins, dtype=torch.float32)
    bin_mel = (_MEL_FACTOR * (1.0 + bin_hz / _MEL_BREAK_HZ).log()).unsqueeze(0)  # (1, F/2)
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)  # (M, F/2)
    # Kaldi's filters stop below the Nyquist bin; it gets a zero column so the bank matches the rfft size.
    return torch.nn.functional.pad(banks, (0, 1))  # (M, F/2 + 1)


def kaldi_mel_banks(
    num_mel_bins: int,
    fft_size: int,
    sample_rate: float,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Kaldi's triangular mel filters as a [num_mel_bins, fft_size // 2 + 1] matrix (cached per settings)."""
    banks = _mel_banks_cpu(int(num_mel_bins), int(fft_size), float(sample_rate), float(low_freq), float(high_freq))
    return _own_copy(banks, device, dtype)


@lru_cache(maxsize=32)
def _banded_mel_banks(
    num_mel_bins: int,
    fft_size: int,
    sample_rate: float,
    low_freq: float,
    high_freq: float,
    device: str,
    dtype: torch.dtype,
) -> BandedFilterbank:
    banks = _mel_banks_cpu(num_mel_bins, fft_size, sample_rate, low_freq, high_freq)  # (M, F)
    return BandedFilterbank(banks.T).to(device=device, dtype=dtype)


@lru_cache(maxsize=32)
def _window_cpu(window_type: str, size: int) -> torch.Tensor:
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False, dtype=torch.float32)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46, dtype=torch.float32)
    if window_type == "povey":
        return torch.hann_window(size, periodic=False, dtype=torch.float32).pow(_POVEY_EXPONENT)
    if window_type == "rectangular":
        return torch.ones(size, dtype=torch.float32)
    raise ValueError(f"window_type must be one of 'hanning', 'hamming', 'povey', 'rectangular'; got {window_type!r}")


def kaldi_window(
    window_type: WindowType, size: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Kaldi's analysis window of `size` samples (symmetric, as Kaldi's windows are; cached per settings)."""
    return _own_copy(_window_cpu(window_type, int(size)), device, dtype)


def pad_batch(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    lengths: torch.Tensor | Sequence[int] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-padded batch [B, max_samples] and the clip lengths [B] (int64) from any batch form.

    Accepts a list of 1-D clips, a 2-D padded batch (with `lengths`, or all full length), or one 1-D clip (B=1).
    """
    if isinstance(waveforms, (torch.Tensor, np.ndarray)):
        batch = torch.as_tensor(waveforms, device=device)
        if batch.ndim == 1:
            batch = batch.unsqueeze(0)
        if batch.ndim != 2:
            raise ValueError(f"waveforms must be [samples] or [batch, samples], got shape {tuple(batch.shape)}")
        if not (batch.is_floating_point()):
            raise ValueError(f"waveforms must be floating point (convert PCM with to_mono_float32), got {batch.dtype}")
        batch = batch.to(dtype)
        if lengths is None:
            lengths = torch.full((batch.shape[0],), batch.shape[1], dtype=torch.long)
    else:
        clips = [torch.as_tensor(clip) for clip in waveforms]
        if not clips:
            raise ValueError("waveforms is an empty list")
        for index, clip in enumerate(clips):
            if clip.ndim != 1 or not clip.is_floating_point():
                raise ValueError(
                    f"clip {index} must be a 1-D floating-point waveform, got shape {tuple(clip.shape)} {clip.dtype}"
                )
        if lengths is None:
            lengths = [clip.shape[0] for clip in clips]
        batch = torch.nn.utils.rnn.pad_sequence([clip.to(dtype) for clip in clips], batch_first=True).to(device)
    lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
    if lengths.shape != (batch.shape[0],) or bool((lengths < 0).any()) or bool((lengths > batch.shape[1]).any()):
        raise ValueError(f"lengths {lengths.tolist()} do not fit a batch of shape {tuple(batch.shape)}")
    return batch, lengths


@dataclass(frozen=True)
class KaldiFbankSettings:
    """The settings of a Kaldi fbank front end, travelling as one value from the feature extractor to the FFT.

    The defaults are AST's call: `fbank(wav, htk_compat=True, sample_frequency=sr, use_energy=False,
    window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)`. `ASTFeatureExtractor` saves each
    field as an attribute of its own (`preprocessor_config.json`) and builds this object from them.
    """

    num_mel_bins: int = 128  # triangular mel filters
    frame_length_ms: float = 25.0  # Kaldi's frame length
    frame_shift_ms: float = 10.0  # Kaldi's frame shift
    preemphasis: float = 0.97  # pre-emphasis coefficient (0 disables it)
    remove_dc_offset: bool = True  # subtract each frame's mean before pre-emphasis
    window_type: WindowType = "hanning"  # AST's; "povey" is Kaldi's default
    round_to_power_of_two: bool = True  # zero-pad each frame to the next power of two before the FFT
    low_freq: float = 20.0  # lower edge of the mel filterbank in Hz
    high_freq: float = 0.0  # upper edge in Hz; <= 0 is an offset from Nyquist
    padding_value: float = 0.0  # value of the frames past each clip's own frame count

    @classmethod
    def from_attributes(cls, source: Any) -> KaldiFbankSettings:
        """The settings held as same-named attributes of `source` (a feature extractor)."""
        return cls(**{field.name: getattr(source, field.name) for field in fields(cls)})

    def frame_sizes(self, sample_rate: float) -> tuple[int, int, int]:
        """(window, shift, FFT size) in samples at `sample_rate` (`kaldi_frame_sizes`)."""
        return kaldi_frame_sizes(sample_rate, self.frame_length_ms, self.frame_shift_ms, self.round_to_power_of_two)


AST_FBANK = KaldiFbankSettings()


def kaldi_fbank(
    waveforms: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    sample_rate: float = 16000,
    *,
    lengths: torch.Tensor | Sequence[int] | None = None,
    settings: KaldiFbankSettings = AST_FBANK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi fbank features of a batch of clips, as `torchaudio.compliance.kaldi.fbank` computes them.

    The default settings are AST's call (`KaldiFbankSettings`). The caller removes the waveform's mean first
    when it wants AST's behaviour (the AST dataloader does so before calling fbank).

    Args:
        waveforms: float waveforms: a list of 1-D clips of any lengths, a zero-padded batch [B, samples]
            (give `lengths`), or one clip [samples] (treated as B = 1). The arithmetic runs on the input's
            device in float32, the precision of the reference (within ~1e-6 of torchaudio on CPU; on GPU,
            cuFFT's rounding differs from pocketfft's, which was not measured here).
        sample_rate: sampling rate in Hz; sets the window (e.g. 400 samples at 16 kHz, 800 at 32 kHz).
        lengths: valid samples of each clip of a padded batch (default: all full length).
        settings: the front end's settings (frames, window, pre-emphasis, mel filterbank, padding value).

    Returns:
        `(features, num_frames)`: features [B, max_frames, num_mel_bins] (frames along dim 1, mel bins along
        dim 2, as AST expects), and num_frames [B] int64 with 1 + (samples - window) // shift per clip (0 for a
        clip shorter than one window, whose rows are all `padding_value`).
    """
    batch, lengths = pad_batch(waveforms, lengths)
    dtype, device = batch.dtype, batch.device
    window, hop, fft_size = settings.frame_sizes(sample_rate)
    num_mel_bins, padding_value, preemphasis = settings.num_mel_bins, settings.padding_value, settings.preemphasis

    num_frames = torch.where(lengths >= window, 1 + (lengths - window).div(hop, rounding_mode="floor"), 0)
    max_frames = int(num_frames.max())
    batch_size = batch.shape[0]
    if max_frames == 0:
        return batch.new_full((batch_size, 0, num_mel_bins), padding_value), num_frames

    # Per frame, in Kaldi's order and rounding: x <- x - mean(x); y[i] = x[i] - k x[i-1] with x[-1] = x[0];
    # y <- y * window. The order matters: the low mel bins hold little energy once DC is removed and
    # pre-emphasis has damped low frequencies, so any reassociation of these steps (e.g. pre-emphasising the
    # waveform first) moves them by ~1e-3 in the log. Speed comes instead from writing each step into the
    # zero-padded FFT buffer, rather than allocating a new (B, T, window) tensor per step.
    frames = batch[:, : (max_frames - 1) * hop + window].unfold(-1, window, hop)  # (B, T, window), a strided view
    buffer = batch.new_empty(batch_size, max_frames, fft_size)  # (B, T, fft_size): samples past the window = 0
    buffer[..., window:] = 0.0
    body = buffer[..., :window]
    centred = frames - frames.mean(dim=-1, keepdim=True) if settings.remove_dc_offset else frames  # (B, T, window)
    if preemphasis != 0.0:
        # (x[i-1] * k rounded, then subtracted: `sub(..., alpha=k)` may fuse to one FMA and round differently)
        torch.mul(centred[..., :-1], preemphasis, out=body[..., 1:])
        torch.sub(centred[..., 1:], body[..., 1:], out=body[..., 1:])
        body[..., 0] = centred[..., 0] - centred[..., 0] * preemphasis
    else:
        body.copy_(centred)
    body *= kaldi_window(settings.window_type, window, device=device, dtype=dtype)

    spectrum = torch.fft.rfft(buffer)  # (B, T, fft_size // 2 + 1)
    banks = _banded_mel_banks(
        int(num_mel_bins),
        int(fft_size),
        float(sample_rate),
        float(settings.low_freq),
        float(settings.high_freq),
        str(device),
        dtype,
    )
    features = banks(power_spectrum(spectrum))  # (B, T, M)
    features.clamp_(min=_FLOAT32_EPS).log_()

    if bool((num_frames < max_frames).any()):
        valid = torch.arange(max_frames, device=device).unsqueeze(0) < num_frames.to(device).unsqueeze(1)  # (B, T)
        features.masked_fill_(~valid.unsqueeze(-1), padding_value)
    return features, num_frames


# ---- from spectrogram_transformers.feature_extraction.base ---------------------------------------


RawAudio = np.ndarray | torch.Tensor | list[float] | list[np.ndarray] | list[torch.Tensor]


def model_input_samples(feature_extractor) -> int | None:
    """Samples of audio the model sees at once (the training crop, the inference window), or None if unbounded:
    the extractor's own `input_samples` (HTS-AT's `clip_samples`, AST's `max_length` Kaldi frames); None for
    extractors without it."""
    samples = getattr(feature_extractor, "input_samples", None)
    return None if samples is None else int(samples)


def to_batch_feature(tensors: dict[str, torch.Tensor], return_tensors: str | TensorType | None) -> BatchFeature:
    """BatchFeature in the requested format: torch ("pt"), one numpy array ("np"), or (None) a list of numpy
    arrays per key, one per clip, as `transformers`' audio feature extractors return them."""
    if return_tensors is not None:
        return_tensors = TensorType(return_tensors)
    if return_tensors == TensorType.PYTORCH:
        return BatchFeature(dict(tensors), tensor_type="pt")
    arrays = {key: value.cpu().numpy() for key, value in tensors.items()}
    if return_tensors == TensorType.NUMPY:
        return BatchFeature(arrays, tensor_type="np")
    if return_tensors is not None:
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
    return BatchFeature({key: list(value) for key, value in arrays.items()})


def frames_mask(num_frames: torch.Tensor, total_frames: int, device: torch.device) -> torch.Tensor:
    """[B, total_frames] int32 attention mask: 1 on the first `num_frames[b]` frames of row b, 0 after."""
    positions = torch.arange(total_frames, device=device).unsqueeze(0)  # (1, T)
    return (positions < num_frames.to(device).unsqueeze(1)).to(torch.int32)


class SpectrogramFeatureExtractor(SequenceFeatureExtractor):
    """Base of the package's feature extractors: one value per mel bin (`feature_size == num_mel_bins`), no
    "feature_extractor_type" in saved configs (see `to_dict`), and the tensor contract (`extract`,
    `input_samples`) behind the numpy/list adapter `__call__`.

    Subclasses implement `extract`, `input_samples` and `frames_of_samples` (the call's attention mask), and may
    name extra keyword arguments of `__call__` that are passed on to `extract` (`_extract_options`).
    """

    _extract_options: tuple[str, ...] = ()

    def __init__(
        self,
        feature_size: int,
        sampling_rate: int,
        num_mel_bins: int,
        padding_value: float,
        return_attention_mask: bool,
        **kwargs,
    ):
        # Saved configs name their class in "feature_extractor_type"; it is not an argument (see `to_dict`).
        kwargs.pop("feature_extractor_type", None)
        if feature_size != num_mel_bins:
            logger.info(f"feature_size={feature_size} replaced by num_mel_bins={num_mel_bins} (one value per mel bin)")
        super().__init__(
            feature_size=num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.num_mel_bins = num_mel_bins

    def to_dict(self) -> dict[str, Any]:
        # No "feature_extractor_type": `transformers.AutoFeatureExtractor` resolves that name among its own
        # classes *before* registered ones (`feature_extractor_class_from_name`), and transformers has its own
        # `ASTFeatureExtractor`, so writing our class name would load theirs. Without the key, the Auto class
        # reads config.json and picks the extractor registered for its `model_type` ("ast" -> ASTFeatureExtractor,
        # in `spectrogram_transformers.registration`).
        output = super().to_dict()
        output.pop("feature_extractor_type", None)
        return output

    # -- the tensor contract ----------------------------------------------------------------------------------------
    @property
    def input_samples(self) -> int | None:
        """Samples of a clip (from its start) that the features read; None when every sample is read."""
        raise NotImplementedError

    def extract(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        return_attention_mask: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Features of a zero-padded batch of mono waveforms [B, S] at `sampling_rate`, on their device."""
        raise NotImplementedError

    @staticmethod
    def _checked_batch(waveforms: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 [B, S] with zeros past each clip's length (whatever the caller left there), lengths [B] int64.

        Lengths stay where they are given (a host tensor costs no device synchronisation); the samples stay on
        their device.
        """
        if not isinstance(waveforms, torch.Tensor) or waveforms.ndim != 2 or not waveforms.is_floating_point():
            shape = tuple(waveforms.shape) if isinstance(waveforms, torch.Tensor) else type(waveforms).__name__
            raise ValueError(f"extract() takes a float tensor [batch, samples] of mono waveforms, got {shape}")
        batch_size, samples = waveforms.shape
        if lengths is None:
            lengths = torch.full((batch_size,), samples, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        if lengths.shape != (batch_size,):
            raise ValueError(f"lengths must be [{batch_size}], got shape {tuple(lengths.shape)}")
        batch = waveforms.to(torch.float32)
        if batch_size and bool((lengths < samples).any()):
            valid = torch.arange(samples, device=batch.device).unsqueeze(0) < lengths.to(batch.device).unsqueeze(1)
            batch = batch.masked_fill(~valid, 0.0)  # (B, S): a new tensor, the caller's is never modified
        elif batch is waveforms:
            batch = batch.clone()  # extract may work in place
        return batch, lengths

    # -- the numpy / list adapter -------------------------------------------------------------------------------------
    def frames_of_samples(self, lengths: torch.Tensor) -> torch.Tensor:
        """[B] output frames that a clip of `lengths[b]` samples fills by itself (the rest are padding): the
        attention mask of a call that pads the audio (`padding=...`) is 0 from there on."""
        raise NotImplementedError

    def _features_of(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None,
        return_tensors: str | TensorType | None,
        return_attention_mask: bool | None,
        kwargs: dict[str, Any],
        *,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> BatchFeature:
        """`__call__`'s body: any accepted audio -> mono float32 clips at `sampling_rate` -> cut/padded in samples
        as the call arguments ask -> one padded batch on the requested device -> `extract`."""
        allowed = ("device", *self._extract_options)
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"{type(self).__name__}.__call__() got unexpected keyword argument(s) {unknown}")
        plan = _SampleLengthPlan.from_call(padding, truncation, max_length, pad_to_multiple_of)
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{type(self).__name__}()`. "
                f"Without it the audio is assumed to be at {self.sampling_rate} Hz, which gives wrong features "
                "silently when it is not."
            )
        clips = [torch.from_numpy(clip) for clip in to_mono_batch(raw_speech, sampling_rate, self.sampling_rate)]
        clips, audio_lengths = plan.apply(clips)
        batch, lengths = pad_batch(clips, device=kwargs.get("device"))
        options = {name: kwargs[name] for name in self._extract_options if kwargs.get(name) is not None}
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        features = self.extract(batch, lengths, return_attention_mask=return_attention_mask, **options)
        if return_attention_mask and plan.pads:
            # Frames that read the zeros this call appended are padding too, whatever `extract` saw.
            mask = features["attention_mask"]
            own = frames_mask(self.frames_of_samples(audio_lengths), mask.shape[1], mask.device)
            features["attention_mask"] = mask * own
        return to_batch_feature(features, return_tensors)


class _SampleLengthPlan:
    """What the standard call arguments of `transformers`' sequence feature extractors (`padding`,
    `truncation`, `max_length`, `pad_to_multiple_of`) do to the clips, all counted in samples at the extractor's
    `sampling_rate`: cut each clip to `max_length` (truncation), then append zeros up to the longest clip
    ("longest") or to `max_length` ("max_length"), rounded up to a multiple of `pad_to_multiple_of`."""

    def __init__(self, strategy: PaddingStrategy, truncate: bool, max_length: int | None, multiple: int | None):
        self.strategy, self.truncate, self.max_length, self.multiple = strategy, truncate, max_length, multiple

    @property
    def pads(self) -> bool:
        return self.strategy != PaddingStrategy.DO_NOT_PAD

    @classmethod
    def from_call(cls, padding, truncation, max_length, pad_to_multiple_of) -> _SampleLengthPlan:
        if padding is None or padding is False:
            strategy = PaddingStrategy.DO_NOT_PAD
        elif padding is True:
            strategy = PaddingStrategy.LONGEST
        else:
            try:
                strategy = PaddingStrategy(padding)
            except ValueError:
                raise ValueError(
                    f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}"
                ) from None
        if truncation is None:
            truncation = False
        if not isinstance(truncation, bool):
            raise ValueError(f"truncation must be True or False, got {truncation!r}")
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
            ):
                raise ValueError(f"{name} counts samples and must be an integer >= 1, got {value!r}")
        if truncation and max_length is None:
            raise ValueError("truncation=True needs max_length (in samples) to cut the audio to")
        if strategy == PaddingStrategy.MAX_LENGTH and max_length is None:
            raise ValueError("padding='max_length' needs max_length (in samples) to pad the audio to")
        if max_length is not None and not truncation and strategy != PaddingStrategy.MAX_LENGTH:
            logger.warning(
                f"max_length={max_length} (samples) has no effect without truncation=True or padding='max_length'; "
                "the model's frame count is a setting of the feature extractor, not of the call"
            )
        if pad_to_multiple_of is not None and strategy == PaddingStrategy.DO_NOT_PAD and not truncation:
            logger.warning("pad_to_multiple_of has no effect without padding or truncation")
        max_length = None if max_length is None else int(max_length)
        multiple = None if pad_to_multiple_of is None else int(pad_to_multiple_of)
        return cls(strategy, truncation, max_length, multiple)

    def _rounded(self, samples: int) -> int:
        return samples if self.multiple is None else -(-samples // self.multiple) * self.multiple

    def apply(self, clips: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The clips cut and zero-padded as planned, and [B] samples of each clip's own audio (after cutting)."""
        if self.truncate:
            clips = [clip[: self._rounded(self.max_length)] for clip in clips]
        audio_lengths = torch.tensor([clip.shape[0] for clip in clips], dtype=torch.long)
        if self.strategy == PaddingStrategy.LONGEST:
            target = self._rounded(max((clip.shape[0] for clip in clips), default=0))
        elif self.strategy == PaddingStrategy.MAX_LENGTH:
            target = self._rounded(self.max_length)
        else:
            return clips, audio_lengths
        # A clip longer than the target (padding='max_length' without truncation) keeps its length.
        clips = [torch.nn.functional.pad(clip, (0, max(target - clip.shape[0], 0))) for clip in clips]
        return clips, audio_lengths


# ---- from spectrogram_transformers.feature_extraction.feature_extraction_ast ---------------------


_WINDOW_TYPES = ("hanning", "hamming", "povey", "rectangular")


class ASTFeatureExtractor(SpectrogramFeatureExtractor):
    r"""Kaldi fbank features for AST / SSAST: [batch, max_length, num_mel_bins], time along dim 1.

    Every constant of the original front end is a saved argument, so one class covers the AudioSet, ESC-50
    and Speech Commands recipes (they differ in `max_length`, `mean` and `std`) and 32 kHz variants.

    Args:
        feature_size (`int`, defaults to 128): kept equal to `num_mel_bins` (features have one value per mel
            bin); `transformers`' AST configs store 1 here, which is accepted and overridden.
        sampling_rate (`int`, defaults to 16000): rate the features are computed at; input at another rate is
            resampled to it. Kaldi's window is in milliseconds, so the window length follows this rate.
        num_mel_bins (`int`, defaults to 128): number of Kaldi mel filters.
        max_length (`int`, defaults to 1024): frames per example after padding/cutting (AudioSet 1024 = 10.24 s;
            ESC-50 512; Speech Commands 128).
        padding_value (`float`, defaults to 0.0): fbank value of padded frames, before normalisation (the
            original pads with zeros, so padded frames end up as `(0 - mean) / (2 * std)`).
        do_normalize (`bool`, defaults to True): apply `(x - mean) / (2 * std)`.
        mean (`float`, defaults to -4.2677393), std (`float`, defaults to 4.5689974): dataset statistics of the
            fbank (AudioSet defaults; ESC-50 -6.6268077 / 5.358466; Speech Commands -6.845978 / 5.5654526).
        return_attention_mask (`bool`, defaults to False): also return `attention_mask` [batch, max_length],
            1 on frames computed from audio and 0 on padding. AST itself takes no mask.
        frame_length_ms (`float`, defaults to 25.0), frame_shift_ms (`float`, defaults to 10.0): Kaldi framing.
        preemphasis (`float`, defaults to 0.97): Kaldi pre-emphasis coefficient.
        remove_dc_offset (`bool`, defaults to True): subtract each frame's mean (Kaldi default).
        window_type (`str`, defaults to `"hanning"`): Kaldi window; AST uses the symmetric Hann window.
        round_to_power_of_two (`bool`, defaults to True): FFT size = next power of two of the window.
        low_freq (`float`, defaults to 20.0), high_freq (`float`, defaults to 0.0): mel filterbank edges in Hz;
            `high_freq <= 0` is an offset from Nyquist (0 = Nyquist).
        subtract_waveform_mean (`bool`, defaults to True): remove each clip's mean over the whole waveform
            before the fbank, as the original dataloader does.

    Tensor contract: [`~ASTFeatureExtractor.extract`] on a padded batch, `input_samples` samples per clip read.
    Numpy / list adapter (pipelines): [`~ASTFeatureExtractor.__call__`].
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 128,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        max_length: int = 1024,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        mean: float = -4.2677393,
        std: float = 4.5689974,
        return_attention_mask: bool = False,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        preemphasis: float = 0.97,
        remove_dc_offset: bool = True,
        window_type: WindowType = "hanning",
        round_to_power_of_two: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        subtract_waveform_mean: bool = True,
        **kwargs,
    ):
        super().__init__(feature_size, sampling_rate, num_mel_bins, padding_value, return_attention_mask, **kwargs)
        self.max_length = max_length
        self.do_normalize = do_normalize
        self.mean = mean
        self.std = std
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.preemphasis = preemphasis
        self.remove_dc_offset = remove_dc_offset
        self.window_type = window_type
        self.round_to_power_of_two = round_to_power_of_two
        self.low_freq = low_freq
        self.high_freq = high_freq
        self.subtract_waveform_mean = subtract_waveform_mean
        self._validate()

    def _validate(self) -> None:
        if self.num_mel_bins < 1 or self.max_length < 1:
            raise ValueError(f"num_mel_bins and max_length must be >= 1, got {self.num_mel_bins}, {self.max_length}")
        if self.do_normalize and not self.std > 0:
            raise ValueError(f"std must be positive to normalise, got {self.std}")
        if self.window_type not in _WINDOW_TYPES:
            raise ValueError(f"window_type must be one of {_WINDOW_TYPES}, got {self.window_type!r}")
        # Both raise for settings that give no window or no mel range at this rate.
        _, _, fft_size = self.fbank_settings.frame_sizes(self.sampling_rate)
        kaldi_mel_banks(self.num_mel_bins, fft_size, self.sampling_rate, self.low_freq, self.high_freq)

    @property
    def fbank_settings(self) -> KaldiFbankSettings:
        """The Kaldi front end's settings, from this extractor's saved attributes."""
        return KaldiFbankSettings.from_attributes(self)

    @property
    def input_samples(self) -> int:
        """Samples that `max_length` frames read: (max_length - 1) frame shifts plus one window, in Kaldi's
        whole samples (225,611 at 22.05 kHz with 1024 frames). Samples past them never reach the features."""
        return self._samples_for(self.max_length)

    def _samples_for(self, max_length: int) -> int:
        window, hop, _ = self.fbank_settings.frame_sizes(self.sampling_rate)
        return (max_length - 1) * hop + window

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """The original's normalisation `(x - mean) / (2 * std)`, in place on `features`.

        The factor 2 is AST's own choice (src/dataloader.py, kept by SSAST and transformers): it makes the
        features' standard deviation about 0.5 rather than 1. Pretrained checkpoints expect it, so it stays.
        """
        return features.sub_(self.mean).div_(self.std * 2)

    def __call__(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None = None,
        return_tensors: str | TensorType | None = None,
        max_length: int | None = None,
        return_attention_mask: bool | None = None,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | None = None,
        pad_to_multiple_of: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Compute normalised fbank features of one clip or a batch of clips of any lengths.

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
            `BatchFeature` with `input_values` [batch, max_length, num_mel_bins] float32, and `attention_mask`
            [batch, max_length] int32 when asked for. The same as `extract` on the padded batch.
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
        """Kaldi frames (no edge padding) that lie wholly within `lengths` samples, at most `self.max_length`."""
        window, hop, _ = self.fbank_settings.frame_sizes(self.sampling_rate)
        frames = torch.where(lengths >= window, 1 + (lengths - window).div(hop, rounding_mode="floor"), 0)
        return frames.clamp(max=self.max_length)

    def extract(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        return_attention_mask: bool | None = None,
        max_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Normalised fbank features of a zero-padded batch of mono waveforms, on the waveforms' device.

        Args:
            waveforms: [batch, samples] float, at `self.sampling_rate`; values past a clip's length are ignored.
            lengths: [batch] samples of each clip (default: all `samples`); a host tensor avoids a device sync.
            return_attention_mask: override `self.return_attention_mask`.
            max_length: frames per example (default `self.max_length`).

        Returns:
            `{"input_values": [batch, max_length, num_mel_bins] float32}` (plus `attention_mask` [batch,
            max_length] int32 when asked for). Each clip's features equal those of the clip alone.
        """
        max_length = self.max_length if max_length is None else int(max_length)
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        batch, lengths = self._checked_batch(waveforms, lengths)
        if self.subtract_waveform_mean:
            # Each clip's mean over its own samples (the batch is zero past each clip's end). The padding then
            # becomes -mean, which no frame of that clip reads (frames past its frame count are padding_value).
            clip_mean = batch.sum(dim=1, keepdim=True) / lengths.to(batch.device, batch.dtype).unsqueeze(1)  # (B, 1)
            batch.sub_(clip_mean)  # in place: _checked_batch gave a tensor of our own
        # Samples that only frames past max_length would read are dropped before the (costly) fbank.
        needed = self._samples_for(max_length)
        batch, lengths = batch[:, :needed], lengths.clamp(max=needed)
        features, num_frames = kaldi_fbank(
            batch, self.sampling_rate, lengths=lengths, settings=self.fbank_settings
        )  # (B, T <= max_length, M), rows past each clip's frame count = padding_value
        if bool((num_frames == 0).any()):
            logger.warning(
                f"{int((num_frames == 0).sum())} clip(s) are shorter than one {self.frame_length_ms} ms frame; "
                "their features are all padding"
            )

        # Pad with padding_value to max_length frames (the clips were cut above), THEN normalise: the
        # original's order, which makes padded frames (padding_value - mean) / (2 std), not 0.
        frames = features.shape[1]
        if frames < max_length:
            features = torch.nn.functional.pad(features, (0, 0, 0, max_length - frames), value=self.padding_value)
        if self.do_normalize:
            features = self.normalize(features)

        outputs = {"input_values": features.contiguous()}
        if return_attention_mask:
            outputs["attention_mask"] = frames_mask(num_frames, max_length, features.device)
        return outputs


# ---- from spectrogram_transformers.pipelines -----------------------------------------------------


# windows whose features are computed in one call of the feature extractor (then yielded one by one)
_FEATURE_GROUP = 16


class SpectrogramAudioClassificationPipeline(AudioClassificationPipeline, ChunkPipeline):
    """Audio classification with an AST, SSAST or HTS-AT model of this package.

    Inputs are those of `AudioClassificationPipeline`: a file path, the bytes of a file, a 1-D array at the
    model's rate, or `{"array" or "raw": array, "sampling_rate": rate}` at any rate (resampled with soxr, no
    torchaudio). Audio longer than the model's input is classified in windows of the input length every half
    window and the scores are the mean of the window probabilities (softmax, or sigmoid for multi-label models;
    `function_to_apply="none"` averages logits). Use `spectrogram-transformers classify` or
    `spectrogram_transformers.inference.AudioClassifier` for the scores of each window.
    """

    def _decode(self, inputs: Any) -> tuple[np.ndarray, float]:
        """(waveform, its sampling rate) of any input the parent pipeline accepts."""
        pass  # inlined: from .feature_extraction import load_audio, to_mono_float32

        rate = self.feature_extractor.sampling_rate
        if isinstance(inputs, str) and inputs.startswith(("http://", "https://")):
            from huggingface_hub.utils import httpx

            inputs = httpx.get(inputs, follow_redirects=True).content
        if isinstance(inputs, (bytes, bytearray)):
            try:
                return load_audio(bytes(inputs))
            except ValueError as soundfile_error:  # a format libsndfile does not read: ffmpeg, as the parent does
                try:
                    return ffmpeg_read(bytes(inputs), rate), rate
                except ValueError as ffmpeg_error:
                    raise ValueError(f"{soundfile_error}; ffmpeg: {ffmpeg_error}") from None
        torchcodec = sys.modules.get("torchcodec")  # an AudioDecoder input means torchcodec is imported already
        if torchcodec is not None and isinstance(inputs, torchcodec.decoders.AudioDecoder):
            samples = inputs.get_all_samples()
            inputs = {"array": samples.data, "sampling_rate": samples.sample_rate}
        if isinstance(inputs, dict):
            if not ("sampling_rate" in inputs and ("raw" in inputs or "array" in inputs)):
                raise ValueError(
                    "When passing a dictionary to AudioClassificationPipeline, the dict needs to contain a "
                    '"raw" or "array" key with the audio (numpy array or torch tensor) and a "sampling_rate" key '
                    "with its sampling rate"
                )
            array = inputs["raw"] if inputs.get("raw") is not None else inputs["array"]
            return to_mono_float32(array), inputs["sampling_rate"]
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            return to_mono_float32(inputs), rate  # raw audio is at the model's rate, as in the parent pipeline
        raise TypeError(
            f"expected a file path, bytes, an array or a dict with 'array' and 'sampling_rate', got {type(inputs).__name__}"
        )

    def _blocks(self, inputs: Any) -> list[np.ndarray] | Iterator[np.ndarray]:
        """Mono blocks at the model's rate: a file path is decoded as a stream (`stream_audio`: soundfile in blocks,
        ffmpeg read as it comes, never the whole file in memory); any other input is decoded whole, one block."""
        pass  # inlined: from .feature_extraction import resample
        pass  # inlined: from .feature_extraction.streaming import stream_audio

        target = self.feature_extractor.sampling_rate
        if isinstance(inputs, (str, os.PathLike)) and not str(inputs).startswith(("http://", "https://")):
            _, blocks = stream_audio(inputs, target)
            return blocks
        waveform, rate = self._decode(inputs)
        return [resample(waveform, rate, target)]  # soxr: the extractors' own resampler

    def preprocess(self, inputs: Any):
        pass  # inlined: from .feature_extraction import WindowStream, model_input_samples

        blocks = self._blocks(inputs)
        window = model_input_samples(self.feature_extractor)
        if window is None:  # an extractor without a fixed input: the whole clip is one window
            blocks = [np.concatenate(list(blocks))]
            window = len(blocks[0])
        windows = WindowStream(blocks, window, max(1, window // 2))
        input_name = self.feature_extractor.model_input_names[0]
        held = None  # the latest window's features: whether it is the last is known only when the next arrives
        for group in _groups(windows, _FEATURE_GROUP):
            features = self.feature_extractor(
                [piece for _, piece in group], sampling_rate=self.feature_extractor.sampling_rate, return_tensors="pt"
            )[input_name]
            if self.dtype is not None:
                features = features.to(dtype=self.dtype)
            for row in features:
                if held is not None:
                    yield {input_name: held, "is_last": False}
                held = row[None]
        yield {input_name: held, "is_last": True}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        is_last = model_inputs.pop("is_last")
        return {"logits": self.model(**model_inputs).logits, "is_last": is_last}

    def postprocess(self, model_outputs: list[dict[str, Any]], top_k: int = 5, function_to_apply: str | None = None):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a whole number >= 1 (labels to return), got {top_k!r}")
        top_k = min(top_k, len(self.model.config.id2label))
        if function_to_apply is None:
            problem_type = self.model.config.problem_type
            function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(
                problem_type, "softmax"
            )
        logits = torch.cat([output["logits"] for output in model_outputs]).float()  # (windows, labels)
        if function_to_apply == "softmax":
            scores = logits.softmax(-1)
        elif function_to_apply == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        values, ids = scores.mean(dim=0).topk(top_k)
        return [
            {"score": score, "label": self.model.config.id2label[index]}
            for score, index in zip(values.tolist(), ids.tolist())
        ]


def _groups(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    group = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


# ---- from spectrogram_transformers.feature_extraction.streaming ----------------------------------


# Seconds of audio per decoded block: large enough that per-block overhead is negligible, small enough that a
# block (at most 8 channels of float32) stays in the tens of MB.
DEFAULT_BLOCK_SECONDS = 10.0


# Seconds without a single byte from a stream before it counts as dead (a FIFO nobody writes to).
_DEFAULT_READ_TIMEOUT_S = 30.0


READ_TIMEOUT_ENV = "SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT"


_FFMPEG_HINT = "apt-get install ffmpeg / brew install ffmpeg / conda install ffmpeg"


def default_read_timeout() -> float:
    """Seconds a stream may stay silent: `$SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT`, else 30."""
    text = os.environ.get(READ_TIMEOUT_ENV)
    if not text:
        return _DEFAULT_READ_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"${READ_TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True)
class AudioInfo:
    """What is known about a file before decoding it.

    `sampling_rate`, `channels` and `frames` (samples per channel) come from the header; they are None where the
    header is not read first (pipes and FIFOs, which can be read only once) or does not say. `decoder` is the
    library that will decode the file.
    """

    path: str
    sampling_rate: int | None
    channels: int | None
    frames: int | None
    decoder: Literal["soundfile", "ffmpeg"]
    is_stream: bool = False  # a pipe, FIFO or device: readable once, handed to ffmpeg on its stdin

    @property
    def duration(self) -> float | None:
        """Seconds of audio according to the header (None when unknown)."""
        if self.frames is None or not self.sampling_rate:
            return None
        return self.frames / self.sampling_rate

    def samples_at(self, sampling_rate: int) -> int | None:
        """Samples the header announces once resampled to `sampling_rate` (None when it does not say): sizes
        progress bars and streamed windows before the audio is decoded."""
        if self.frames is None or not self.sampling_rate:
            return None
        return round(self.frames * sampling_rate / self.sampling_rate)


def _soundfile_info(path: str) -> AudioInfo | None:
    import soundfile

    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError):  # not a format libsndfile reads
        return None
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), "soundfile")


def _ffprobe_info(path: str, timeout: float) -> AudioInfo:
    """Rate, channels and duration of the first audio stream from ffprobe; unknown fields are None."""
    unknown = AudioInfo(path, None, None, None, "ffmpeg")
    if shutil.which("ffprobe") is None:
        return unknown
    command = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate,channels,duration:format=duration",
        "-of",
        "default=noprint_wrappers=1",
        path,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return unknown
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        fields.setdefault(key.strip(), value.strip())  # the stream's duration comes before the container's

    def number(key: str) -> float | None:
        try:
            value = float(fields.get(key, ""))
        except ValueError:
            return None
        return value if math.isfinite(value) and value > 0 else None

    rate, channels, duration = number("sample_rate"), number("channels"), number("duration")
    if rate is None:
        return unknown
    frames = None if duration is None else round(duration * rate)
    return AudioInfo(path, int(rate), None if channels is None else int(channels), frames, "ffmpeg")


def probe_audio(path: str | os.PathLike, *, read_timeout_s: float | None = None) -> AudioInfo:
    """The header of an audio file, read without decoding its samples.

    Regular files libsndfile reads are probed with soundfile; other regular files with ffprobe (when installed).
    Pipes, FIFOs and devices are not probed (a probe would consume what the decoder needs): they go to ffmpeg with
    every field None.

    Raises:
        FileNotFoundError: no such path.
        ValueError: a directory, or a file only ffmpeg could read when ffmpeg is not installed.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {name}") from None
    except OSError as error:  # a symlink loop, a path through a file, no permission to search a folder
        raise ValueError(f"cannot read {name}: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{name} is a directory, not an audio file")
    timeout = default_read_timeout() if read_timeout_s is None else read_timeout_s
    regular = stat.S_ISREG(mode)
    info = _soundfile_info(name) if regular else None
    if info is not None:
        return info
    if shutil.which("ffmpeg") is None:
        what = "a format libsndfile does not read" if regular else "not a regular file (a pipe, FIFO or device)"
        raise ValueError(
            f"could not decode audio {name}: {what}; formats libsndfile does not read (AAC/M4A, WMA, video) and "
            f"pipes need ffmpeg, which is not installed ({_FFMPEG_HINT})"
        )
    return _ffprobe_info(name, timeout) if regular else AudioInfo(name, None, None, None, "ffmpeg", is_stream=True)


def _stalled_message(path: str, timeout: float) -> str:
    return (
        f"could not decode audio {path}: no data for {timeout:g} s (a FIFO or pipe with no writer, or a stalled "
        f"device); set ${READ_TIMEOUT_ENV} to wait longer"
    )


def _soundfile_blocks(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at the file's own rate (PCM scaled as `soundfile.read` does)."""
    import soundfile

    try:
        with soundfile.SoundFile(info.path) as handle:
            while True:
                data = handle.read(block_frames, dtype="float32", always_2d=True)  # [frames, channels]
                if len(data) == 0:
                    return
                yield to_mono_float32(data, channels_axis=1, name=info.path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError) as error:
        raise ValueError(f"could not decode audio {info.path}: {error}") from error


def _ffmpeg_blocks(
    info: AudioInfo, output_rate: int | None, block_frames: int, timeout: float
) -> Iterator[np.ndarray]:
    """Mono float32 blocks from ffmpeg's stdout, read as they come (`-ac 1`: ffmpeg down-mixes). `output_rate`
    None keeps the stream's own rate. No output for `timeout` seconds kills ffmpeg and raises."""
    stdin = subprocess.DEVNULL
    if info.is_stream:
        # Opened here and given to ffmpeg as its stdin: a child process does not inherit our /dev/fd/N (`<(...)`),
        # and a FIFO opened without O_NONBLOCK would block until a writer comes. Wait for data (or its end).
        stdin = os.open(info.path, os.O_RDONLY | os.O_NONBLOCK)
        ready, _, _ = select.select([stdin], [], [], timeout)
        if not ready:
            os.close(stdin)
            raise ValueError(_stalled_message(info.path, timeout))
        os.set_blocking(stdin, True)
    command = ["ffmpeg", "-v", "error", "-i", "pipe:0" if info.is_stream else info.path, "-vn", "-ac", "1"]
    if output_rate is not None:
        command += ["-ar", str(output_rate)]
    command += ["-f", "f32le", "pipe:1"]
    block_bytes = 4 * block_frames
    # stderr to a file, not a pipe: a pipe nobody reads fills up on a corrupt stream and blocks ffmpeg
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=errors)
        finally:
            if info.is_stream:
                os.close(stdin)  # ffmpeg holds its own copy
        try:
            descriptor = process.stdout.fileno()
            pending = bytearray()
            while True:
                ready, _, _ = select.select([descriptor], [], [], timeout)
                if not ready:
                    raise ValueError(_stalled_message(info.path, timeout))
                chunk = os.read(descriptor, block_bytes - len(pending))
                if not chunk:
                    break
                pending += chunk
                if len(pending) == block_bytes:
                    yield to_mono_float32(np.frombuffer(pending, dtype=np.float32).copy(), name=info.path)
                    pending = bytearray()
            if process.wait(timeout=timeout) != 0:
                errors.seek(0)
                reason = errors.read().decode(errors="replace").strip().splitlines()
                raise ValueError(f"could not decode audio {info.path}: ffmpeg: {reason[-1] if reason else 'failed'}")
            usable = len(pending) - len(pending) % 4
            if usable:
                yield to_mono_float32(np.frombuffer(pending[:usable], dtype=np.float32).copy(), name=info.path)
        except subprocess.TimeoutExpired:
            raise ValueError(
                f"could not decode audio {info.path}: ffmpeg did not finish within {timeout:g} s"
            ) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


def resample_blocks(blocks: Iterable[np.ndarray], orig_sr: int, target_sr: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `orig_sr` resampled to `target_sr` with soxr's streaming resampler ("HQ", as
    `audio.resample`): the concatenated output equals `resample` of the concatenated input."""
    if orig_sr == target_sr:
        yield from blocks
        return
    import soxr

    resampler = soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32", quality="HQ")
    for block in blocks:
        resampled = resampler.resample_chunk(block, last=False)
        if len(resampled):
            yield np.ascontiguousarray(resampled, dtype=np.float32)
    tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if len(tail):
        yield np.ascontiguousarray(tail, dtype=np.float32)


def _checked_not_empty(blocks: Iterator[np.ndarray], name: str) -> Iterator[np.ndarray]:
    empty = True
    for block in blocks:
        if len(block):
            empty = False
            yield block
    if empty:
        raise ValueError(f"audio {name} is empty (no samples decoded)")


def stream_audio(
    path: str | os.PathLike,
    sampling_rate: int | None = None,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    *,
    read_timeout_s: float | None = None,
) -> tuple[AudioInfo, Iterator[np.ndarray]]:
    """Decode a file as a stream of mono float32 blocks at `sampling_rate` (None: the file's own rate).

    Args:
        path: an audio file, or a pipe / FIFO (`<(cat clip.m4a)`; decoded by ffmpeg).
        sampling_rate: rate of the blocks, Hz.
        block_seconds: seconds of the file's audio decoded at a time (resampled blocks vary slightly in length).
        read_timeout_s: seconds a pipe may deliver nothing before the stream is an error (default
            `default_read_timeout()`: 30, or `$SPECTROGRAM_TRANSFORMERS_READ_TIMEOUT`).

    Returns:
        `(info, blocks)`: the header (`probe_audio`, read now) and a generator of non-empty float32 [samples]
        blocks; decoding happens as the generator is consumed, and closing it stops an ffmpeg process. The
        concatenated blocks equal `load_audio(path, sampling_rate)` for files libsndfile reads.

    Raises:
        FileNotFoundError, ValueError: from `probe_audio` at once; while iterating, a `ValueError` naming the file
        for corrupt data, an ffmpeg failure, NaN or infinite samples, no samples at all, or a stalled stream.
    """
    if not (block_seconds > 0 and math.isfinite(block_seconds)):
        raise ValueError(f"block_seconds must be a positive number, got {block_seconds}")
    timeout = default_read_timeout() if read_timeout_s is None else read_timeout_s
    info = probe_audio(path, read_timeout_s=timeout)
    if info.sampling_rate is None:  # a pipe: its rate is unknown until decoded, so ffmpeg resamples
        block_frames = max(1, round(block_seconds * (sampling_rate or 48000)))
        blocks = _ffmpeg_blocks(info, sampling_rate, block_frames, timeout)
    else:
        block_frames = max(1, round(block_seconds * info.sampling_rate))
        if info.decoder == "soundfile":
            blocks = _soundfile_blocks(info, block_frames)
        else:
            blocks = _ffmpeg_blocks(info, None, block_frames, timeout)
        if sampling_rate is not None:
            blocks = resample_blocks(blocks, info.sampling_rate, int(sampling_rate))
    return info, _checked_not_empty(blocks, info.path)


class WindowStream:
    """The windows of a stream of mono blocks: `(start, samples)` pairs with exactly the starts and contents that
    `window_starts(len(whole), window, hop, pad_end=pad_end)` and slicing the whole waveform would give, holding
    at most about one window, one hop and one block in memory.

    `pad_end=False`: windows every `hop` while they fit, plus one flush with the end when the tail is not
    covered. `pad_end=True`: windows on the `hop` grid until one reaches the end, the last zero-padded to
    `window` samples. A stream no longer than one window gives one window: all of it, unpadded.
    `num_samples` (the stream's length) is set once the iteration has ended.
    """

    def __init__(self, blocks: Iterable[np.ndarray], window: int, hop: int, *, pad_end: bool = False):
        if window < 1 or hop < 1:
            raise ValueError(f"window and hop must be at least one sample, got {window} and {hop}")
        self.blocks = blocks
        self.window = int(window)
        self.hop = int(hop)
        self.pad_end = pad_end
        self.num_samples: int | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        window, hop = self.window, self.hop
        buffer = np.zeros(0, dtype=np.float32)
        offset = 0  # absolute index of buffer[0]
        next_start = 0  # the next grid start
        last_start = None  # the last start given out
        for block in self.blocks:
            block = np.asarray(block, dtype=np.float32)
            buffer = block if len(buffer) == 0 else np.concatenate([buffer, block])  # never modified in place
            while next_start + window <= offset + len(buffer):  # a full window: in both modes, part of the result
                begin = next_start - offset
                yield next_start, buffer[begin : begin + window].copy()
                last_start, next_start = next_start, next_start + hop
            # keep from the last start given out (a flush-with-the-end window starts after it) or the next start
            keep_from = min(next_start, last_start + 1) if last_start is not None else 0
            if keep_from > offset:
                buffer = buffer[keep_from - offset :].copy()
                offset = keep_from
        total = offset + len(buffer)
        self.num_samples = total
        if total == 0:
            return
        if last_start is None:  # no longer than one window: all of it
            yield 0, buffer.copy()
            return
        if self.pad_end:
            # grid starts whose previous window did not reach the end
            while next_start - hop + window < total:
                piece = buffer[next_start - offset :]
                yield next_start, np.pad(piece, (0, window - len(piece)))
                next_start += hop
        elif last_start + window < total:
            yield total - window, buffer[total - window - offset :].copy()
