"""Blocks shared by the model families: stochastic depth, the eager attention function, input and label checks,
and the audio-classification `forward` of the ViT-style families (AST, SSAST).

They live here rather than in one family's file (as `timm/layers`) so that each family imports the building
blocks, never another family's model module.
"""

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedConfig
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple

__all__ = ["AudioClassificationMixin", "DropPath", "check_input_values", "check_labels", "eager_attention_forward"]


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
