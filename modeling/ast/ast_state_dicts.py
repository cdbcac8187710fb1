"""AST's checkpoint filter (`ast_checkpoint_filter`): every known checkpoint layout -> this package's keys, pure
state-dict work (no model is built here, so `from_pretrained` can use it); `convert_ast` wraps it into ready
models, SSAST's filter builds on it."""

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

from ..checkpoint import (
    CheckpointKeyError,
    drop_keys,
    rename_keys,
    split_fused_qkv,
    strip_prefix,
)
from ..pos_embed import resize_position_embeddings
from .configuration_ast import ASTConfig

__all__ = [
    "adapt_state_dict_geometry",
    "ast_checkpoint_filter",
    "ast_config_from_transformers",
    "checkpoint_layout",
    "convert_hf_ast_state_dict",
    "convert_original_ast_state_dict",
    "convert_timm_vit_state_dict",
    "infer_ast_config",
    "infer_source_grid",
    "original_encoder_rules",
]

# heads per width of the DeiT/ViT sizes the original code builds (tiny, small, base); the checkpoint can't tell
_HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12, 1024: 16}


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


def _architecture_of(converted: Mapping[str, torch.Tensor], prefix: str = "ast.") -> dict:
    """Config fields the tensors determine, from a state dict already in this package's names."""
    projection = converted[f"{prefix}embeddings.patch_embeddings.projection.weight"]  # (D, 1, pf, pt)
    hidden_size = projection.shape[0]
    layer_ids = {
        int(m.group(1)) for key in converted if (m := re.match(rf"{re.escape(prefix)}encoder\.layers\.(\d+)\.", key))
    }
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


def _input_length_fields(
    num_patches: int, patch_size: tuple[int, int], num_mel_bins: int = 128, stride: int = 10
) -> dict:
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
        fields.setdefault(
            "num_attention_heads", _HEADS_BY_WIDTH.get(fields["hidden_size"], max(1, fields["hidden_size"] // 64))
        )
        if "intermediate_size" not in fields:
            fields["intermediate_size"] = 4 * fields["hidden_size"]
        return config_class(**fields)
    disagreements = []
    for name, value in fields.items():
        current = (
            (config.frequency_patch_size, config.time_patch_size) if name == "patch_size" else getattr(config, name)
        )
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


def infer_ast_config(state_dict: Mapping[str, torch.Tensor], layout: Layout | None = None, **fields) -> ASTConfig:
    """The ASTConfig a checkpoint's tensors determine (width, depth, heads by width, patch, prefix tokens,
    labels; for original checkpoints the input length at the original stride 10), plus `fields`."""
    state_dict = strip_prefix(dict(state_dict), "module.")
    layout = layout or checkpoint_layout(state_dict)
    converted = _to_package_names(state_dict, layout)
    architecture = _architecture_of(converted)
    if layout == "original" and "ast.embeddings.position_embeddings" in converted:
        num_patches = converted["ast.embeddings.position_embeddings"].shape[1] - architecture["num_prefix_tokens"]
        architecture.update(_input_length_fields(num_patches, architecture["patch_size"]))
    if layout == "timm":
        architecture.pop("num_labels", None)
    return _reconcile_config(None, {**architecture, **fields})


def _checked_config(
    state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None, layout: Layout, **fields
) -> ASTConfig:
    """`config` checked against the tensors (naming every disagreeing field), or the one they determine."""
    if config is None:
        return infer_ast_config(state_dict, layout, **fields)
    state_dict = strip_prefix(dict(state_dict), "module.")
    architecture = _architecture_of(_to_package_names(state_dict, layout))
    if layout == "timm":  # the classification head is new
        architecture.pop("num_labels", None)
    return _reconcile_config(config, architecture)


def convert_original_ast_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None = None
) -> tuple[dict[str, torch.Tensor], ASTConfig]:
    """YuanGongND/ast state dict -> (this package's state dict, config), through `ast_checkpoint_filter`.

    Drops the ImageNet heads `v.head*` on purpose; any other unknown key raises `CheckpointKeyError`.
    When the config's patch grid differs from the checkpoint's, the positional embedding is resized with
    the original AudioSet-branch rule (fixtures §5 D): middle cut of a shrinking axis, bilinear otherwise.
    """
    config = _checked_config(state_dict, config, "original")
    return ast_checkpoint_filter(state_dict, config, layout="original"), config


def convert_timm_vit_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: ASTConfig | None = None
) -> tuple[dict[str, torch.Tensor], ASTConfig]:
    """timm ViT/DeiT (ImageNet) state dict -> AST initialisation (encoder only; the head stays fresh).

    As the original `imagenet_pretrain=True` branch: the 3-channel patch projection becomes a 1-channel one
    by SUMMING the RGB weights (bias kept); the square positional grid is adapted time first, then
    frequency, each by a middle cut when the target is not longer, else bilinear (fixtures §5 C).
    """
    config = _checked_config(state_dict, config, "timm")
    return ast_checkpoint_filter(state_dict, config, layout="timm"), config


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
    """`transformers` ASTForAudioClassification state dict (legacy or 5.x names) -> this package's, through
    `ast_checkpoint_filter`."""
    # transformers' AST uses one LayerNorm eps (1e-12) everywhere: keep it, or outputs drift
    config = _checked_config(state_dict, config, "transformers", layer_norm_eps=1e-12, classifier_layer_norm_eps=1e-12)
    return ast_checkpoint_filter(state_dict, config, layout="transformers"), config
