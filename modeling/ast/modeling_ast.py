"""Audio Spectrogram Transformer (AST) models.

Paper: Gong, Chung and Glass, "AST: Audio Spectrogram Transformer", Interspeech 2021.
Original code: https://github.com/YuanGongND/ast (`src/models/ast_models.py`), a timm DeiT backbone.

The encoder modules here (patch embedding of any patch shape and stride, prefix tokens, learned
positional embedding with resizing, pre-norm blocks on the attention interface) are re-used by SSAST; the blocks
shared with HTS-AT are in `modeling/layers.py`.
"""

import copy
import dataclasses
from collections.abc import Callable

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.output_capturing import capture_outputs

from ..layers import AudioClassificationMixin, DropPath, check_input_values, eager_attention_forward
from ..linear import Linear, linear_then_activation
from ..loading import HUB_KWARGS, CheckedLoadingMixin
from ..pos_embed import resize_position_embeddings
from ..remote_code import RemoteCodeMixin
from .ast_state_dicts import ast_checkpoint_filter, ast_config_from_transformers
from .configuration_ast import ASTConfig

__all__ = [
    "ASTAttention",
    "ASTClassificationHead",
    "ASTEmbeddings",
    "ASTEncoder",
    "ASTForAudioClassification",
    "ASTLayer",
    "ASTModel",
    "ASTPatchEmbeddings",
    "ASTPreTrainedModel",
]

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


class ASTForAudioClassification(AudioClassificationMixin, ASTPreTrainedModel):
    """AST with the classification head; returns pre-activation `logits` (B, num_labels)."""

    def __init__(self, config: ASTConfig):
        super().__init__(config)
        self.ast = ASTModel(config)
        self.classifier = ASTClassificationHead(config)
        self.post_init()
