"""Pure state-dict conversions into this package's AST names (no model is built here, so the model layer can
use them to load transformers-native checkpoints); `convert_ast` wraps them into ready models."""

import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ..checkpoint import (
    CheckpointKeyError,
    drop_keys,
    fuse_qkv_projections,
    rename_keys,
    strip_prefix,
)
from ..pos_embed import resize_position_embeddings
from .configuration_ast import ASTConfig

__all__ = [
    "ast_config_from_transformers",
    "convert_hf_ast_state_dict",
    "convert_original_ast_state_dict",
    "convert_timm_vit_state_dict",
    "infer_source_grid",
    "original_encoder_rules",
]

# heads per width of the DeiT/ViT sizes the original code builds (tiny, small, base); the checkpoint can't tell
_HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16}


def original_encoder_rules(prefix: str) -> list[tuple[str, str]]:
    """Regex table from the timm DeiT backbone names (`v.` in the original AST/SSAST) to this package's encoder.

    `prefix` is where the encoder lives in the target model (`ast.` for AST, `ssast.` for SSAST). timm's fused
    `qkv` projection (rows q, k, v) is this package's `attention.qkv` as it is.
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
    (r"audio_spectrogram_transformer\.embeddings\.(cls_token|distillation_token|position_embeddings)", r"ast.embeddings.\1"),
    (
        r"audio_spectrogram_transformer\.embeddings\.patch_embeddings\.projection\.(weight|bias)",
        r"ast.embeddings.patch_embeddings.projection.\1",
    ),
    # transformers 4.x / Hub layout
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.attention\.query\.(weight|bias)", r"ast.encoder.layers.\1.attention.q_proj.\2"),
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.attention\.key\.(weight|bias)", r"ast.encoder.layers.\1.attention.k_proj.\2"),
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.attention\.value\.(weight|bias)", r"ast.encoder.layers.\1.attention.v_proj.\2"),
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"ast.encoder.layers.\1.attention.o_proj.\2"),
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"ast.encoder.layers.\1.mlp.fc1.\2"),
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"ast.encoder.layers.\1.mlp.fc2.\2"),
    (r"audio_spectrogram_transformer\.encoder\.layer\.(\d+)\.(layernorm_before|layernorm_after)\.(weight|bias)", r"ast.encoder.layers.\1.\2.\3"),
    # transformers 5.x in-memory layout
    (r"audio_spectrogram_transformer\.layers\.(\d+)\.attention\.(q_proj|k_proj|v_proj|o_proj)\.(weight|bias)", r"ast.encoder.layers.\1.attention.\2.\3"),
    (r"audio_spectrogram_transformer\.layers\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"ast.encoder.layers.\1.mlp.\2.\3"),
    (r"audio_spectrogram_transformer\.layers\.(\d+)\.(layernorm_before|layernorm_after)\.(weight|bias)", r"ast.encoder.layers.\1.\2.\3"),
    (r"audio_spectrogram_transformer\.layernorm\.(weight|bias)", r"ast.layernorm.\1"),
    (r"classifier\.(layernorm|dense)\.(weight|bias)", r"classifier.\1.\2"),
]


def _architecture_of(converted: Mapping[str, torch.Tensor], prefix: str = "ast.") -> dict:
    """Config fields the tensors determine, from a state dict already in this package's names."""
    projection = converted[f"{prefix}embeddings.patch_embeddings.projection.weight"]  # (D, 1, pf, pt)
    hidden_size = projection.shape[0]
    layer_ids = {int(m.group(1)) for key in converted if (m := re.match(rf"{re.escape(prefix)}encoder\.layers\.(\d+)\.", key))}
    fields = {
        "hidden_size": hidden_size,
        "num_hidden_layers": len(layer_ids),
        "patch_size": (projection.shape[2], projection.shape[3]),
        "num_prefix_tokens": 2 if f"{prefix}embeddings.distillation_token" in converted else 1,
    }
    if layer_ids:
        fields["intermediate_size"] = converted[f"{prefix}encoder.layers.0.mlp.fc1.weight"].shape[0]
    if "classifier.dense.weight" in converted:
        fields["num_labels"] = converted["classifier.dense.weight"].shape[0]
    return fields


# input lengths of the published recipes, preferred when several lengths give the same patch count
_KNOWN_MAX_LENGTHS = (1024, 512, 128, 100)


def _input_length_fields(num_patches: int, patch_size: tuple[int, int], num_mel_bins: int = 128, stride: int = 10) -> dict:
    """Strides and max_length for a checkpoint of `num_patches` patches, assuming the original's stride 10."""
    frequency_patches = (num_mel_bins - patch_size[0]) // stride + 1
    if num_patches % frequency_patches:
        return {}
    time_patches = num_patches // frequency_patches
    known = [n for n in _KNOWN_MAX_LENGTHS if (n - patch_size[1]) // stride + 1 == time_patches]
    max_length = known[0] if known else (time_patches - 1) * stride + patch_size[1]
    return {"frequency_stride": stride, "time_stride": stride, "max_length": max_length, "num_mel_bins": num_mel_bins}


def _reconcile_config(config: ASTConfig | None, fields: dict, config_class: type = ASTConfig) -> ASTConfig:
    """The given config checked against what the checkpoint determines, or a new one built from it."""
    if config is None:
        fields = dict(fields)
        fields.setdefault("num_attention_heads", _HEADS_BY_WIDTH.get(fields["hidden_size"], max(1, fields["hidden_size"] // 64)))
        if "intermediate_size" not in fields:
            fields["intermediate_size"] = 4 * fields["hidden_size"]
        return config_class(**fields)
    disagreements = []
    for name, value in fields.items():
        current = (config.frequency_patch_size, config.time_patch_size) if name == "patch_size" else getattr(config, name)
        if current != value:
            disagreements.append(f"{name}: config has {current}, checkpoint has {value}")
    if disagreements:
        raise ValueError("config does not match the checkpoint: " + "; ".join(disagreements))
    return config


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


def _fit_position_embeddings(converted: dict[str, torch.Tensor], config: ASTConfig, key: str) -> None:
    """Resize the positional embedding in place when the checkpoint's grid differs from the config's."""
    num_patches = converted[key].shape[1] - config.num_prefix_tokens
    if num_patches == config.num_patches:
        return
    source_grid = infer_source_grid(num_patches, config)
    converted[key] = resize_position_embeddings(converted[key], source_grid, config.patch_grid, config.num_prefix_tokens)


def convert_original_ast_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None = None
) -> tuple[dict[str, torch.Tensor], ASTConfig]:
    """YuanGongND/ast state dict -> (this package's state dict, config).

    Drops the ImageNet heads `v.head*` on purpose; any other unknown key raises `CheckpointKeyError`.
    When the config's patch grid differs from the checkpoint's, the positional embedding is resized with
    the original AudioSet-branch rule (fixtures §5 D): middle cut of a shrinking axis, bilinear otherwise.
    """
    state_dict = drop_keys(strip_prefix(state_dict, "module."), _ORIGINAL_AST_DROPPED)
    renamed, unknown = rename_keys(state_dict, _ORIGINAL_AST_RULES)
    if unknown:
        raise CheckpointKeyError(f"unexpected keys in the original AST checkpoint: {sorted(unknown)}")
    converted = renamed
    architecture = _architecture_of(converted)
    if config is None and "ast.embeddings.position_embeddings" in converted:
        num_patches = converted["ast.embeddings.position_embeddings"].shape[1] - architecture["num_prefix_tokens"]
        architecture.update(_input_length_fields(num_patches, architecture["patch_size"]))
    config = _reconcile_config(config, architecture)
    if "ast.embeddings.position_embeddings" in converted:
        _fit_position_embeddings(converted, config, "ast.embeddings.position_embeddings")
    return converted, config


def convert_timm_vit_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None = None
) -> tuple[dict[str, torch.Tensor], ASTConfig]:
    """timm ViT/DeiT (ImageNet) state dict -> AST initialisation (encoder only; the head stays fresh).

    As the original `imagenet_pretrain=True` branch: the 3-channel patch projection becomes a 1-channel one
    by SUMMING the RGB weights (bias kept); the square positional grid is adapted time first, then
    frequency, each by a middle cut when the target is not longer, else bilinear (fixtures §5 C).
    """
    state_dict = strip_prefix(strip_prefix(state_dict, "module."), "model.")
    imagenet_heads = (r"head\..*", r"head_dist\..*", r"fc_norm\..*", r"pre_logits\..*")
    state_dict = drop_keys(state_dict, imagenet_heads)
    prefixed = {f"v.{key}": value for key, value in state_dict.items()}
    renamed, unknown = rename_keys(prefixed, original_encoder_rules("ast."))
    if unknown:
        raise CheckpointKeyError(f"unexpected keys in the timm ViT checkpoint: {sorted(k[2:] for k in unknown)}")
    projection_key = "ast.embeddings.patch_embeddings.projection.weight"
    renamed[projection_key] = renamed[projection_key].sum(dim=1, keepdim=True)  # (D, 3, p, p) -> (D, 1, p, p)
    converted = renamed
    architecture = _architecture_of(converted)
    if config is None:
        config = _reconcile_config(None, architecture)
    else:
        _reconcile_config(config, {k: v for k, v in architecture.items() if k != "num_labels"})
    position_key = "ast.embeddings.position_embeddings"
    num_patches = converted[position_key].shape[1] - config.num_prefix_tokens
    side = round(num_patches**0.5)
    if side * side != num_patches:
        raise ValueError(f"timm positional embedding has {num_patches} patches, not a square grid")
    converted[position_key] = resize_position_embeddings(
        converted[position_key], (side, side), config.patch_grid, config.num_prefix_tokens
    )
    return converted, config


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


def convert_hf_ast_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None = None
) -> tuple[dict[str, torch.Tensor], ASTConfig]:
    """`transformers` ASTForAudioClassification state dict (legacy or 5.x names) -> this package's."""
    converted, unknown = rename_keys(state_dict, _HF_AST_RULES)
    if unknown:
        raise CheckpointKeyError(f"unexpected keys in the transformers AST checkpoint: {sorted(unknown)}")
    fuse_qkv_projections(converted)  # separate query/key/value -> this package's one `qkv` projection
    if config is None:
        # transformers' AST uses one LayerNorm eps (1e-12) everywhere: keep it, or outputs drift
        architecture = _architecture_of(converted)
        config = _reconcile_config(None, {**architecture, "layer_norm_eps": 1e-12, "classifier_layer_norm_eps": 1e-12})
    else:
        _reconcile_config(config, _architecture_of(converted))
    _fit_position_embeddings(converted, config, "ast.embeddings.position_embeddings")
    return converted, config
