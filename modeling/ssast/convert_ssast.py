"""Converter from the original SSAST checkpoints (YuanGongND/ssast) into this package's SSAST models.

Source `original-ssast`:
- pre-training checkpoints, as released (`SSAST-Base-Patch-400.pth`, ...) and as the original training script
  saves them: a DataParallel state dict (`module.` prefix) of the timm DeiT backbone `v.*`, the heads
  `cpredlayer.*` / `gpredlayer.*`, `mask_embed`, and the pre-training input size as two 0-dim int64 entries
  `p_input_fdim` / `p_input_tdim`. Converted into `SSASTForPreTraining`; the pre-training geometry is read from
  the checkpoint (stride = patch size, `max_length = p_input_tdim`).
- fine-tuned checkpoints (`v.*` + `mlp_head.*`, with or without `module.`), converted into
  `SSASTForAudioClassification`. Strides and input length are not stored, so these need a config.

In both, the DeiT's unused 1000-class ImageNet heads `v.head*` are dropped on purpose; any other unknown key, or
a missing one, raises `CheckpointKeyError` naming it. To fine-tune a converted pre-training checkpoint at another
geometry, save it and call `SSASTForAudioClassification.from_pretrained(dir, num_labels=..., frequency_stride=...,
time_stride=..., max_length=...)`: that applies the original fine-tuning constructor's positional-embedding rules.
"""

import re
from collections.abc import Mapping

import torch

from ..ast.ast_state_dicts import ast_checkpoint_filter, original_encoder_rules
from ..checkpoint import (
    CheckpointKeyError,
    check_state_dict_keys,
    drop_keys,
    rename_keys,
    strip_prefix,
)
from .configuration_ssast import SSASTConfig
from .modeling_ssast import (
    ORIGINAL_TIME_INTERPOLATION_ROWS,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    SSASTPreTrainedModel,
    _is_pretraining_geometry,
)

__all__ = [
    "BUILDERS",
    "build_original_ssast_model",
    "convert_original_ssast_state_dict",
    "infer_ssast_config",
    "ssast_checkpoint_filter",
]

# attention heads of the DeiT sizes SSAST builds (tiny, small, base / base_nokd); checkpoints do not store them
HEADS_BY_WIDTH = {192: 3, 384: 6, 768: 12}

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


def _is_pretraining_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(key.startswith(("cpredlayer.", "gpredlayer.", "mask_embed", "p_input_")) for key in state_dict)


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


def _required(state_dict: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state_dict:
        raise CheckpointKeyError(f"keys missing from the original SSAST checkpoint: ['{key}']")
    return state_dict[key]


def infer_ssast_config(state_dict: Mapping[str, torch.Tensor], **overrides) -> SSASTConfig:
    """The `SSASTConfig` an original SSAST state dict determines (with or without `module.`), plus `overrides`.

    Read from the tensors: width, depth, MLP width, patch shape, prefix tokens (2 with DeiT's distillation token,
    1 for "base_nokd"), labels of a fine-tuned head and, for pre-training checkpoints, the input size
    (`p_input_fdim` / `p_input_tdim`; strides = patch size). Not stored, so defaulted: the number of heads, by width
    as DeiT tiny/small/base (192 -> 3, 384 -> 6, 768 -> 12; other widths need `num_attention_heads=`), and for
    fine-tuned checkpoints the strides and input length (pass them as overrides).
    """
    state_dict = _unwrap(state_dict)
    projection = _required(state_dict, "v.patch_embed.proj.weight")  # (D, 1, pf, pt)
    hidden_size = projection.shape[0]
    layers = {int(m.group(1)) for key in state_dict if (m := re.match(r"v\.blocks\.(\d+)\.", key))}
    fields = {
        "hidden_size": hidden_size,
        "num_hidden_layers": len(layers),
        "intermediate_size": state_dict["v.blocks.0.mlp.fc1.weight"].shape[0] if layers else 4 * hidden_size,
        "patch_size": (projection.shape[2], projection.shape[3]),
        "num_prefix_tokens": 2 if "v.dist_token" in state_dict else 1,
    }
    if "num_attention_heads" not in overrides:
        if hidden_size not in HEADS_BY_WIDTH:
            raise ValueError(
                f"cannot tell the number of attention heads of a width-{hidden_size} checkpoint (known DeiT widths: "
                f"{HEADS_BY_WIDTH}); pass num_attention_heads= or a config"
            )
        fields["num_attention_heads"] = HEADS_BY_WIDTH[hidden_size]
    if "p_input_fdim" in state_dict and "p_input_tdim" in state_dict:
        fields.update(
            num_mel_bins=int(state_dict["p_input_fdim"].item()),
            max_length=int(state_dict["p_input_tdim"].item()),
            frequency_stride=fields["patch_size"][0],
            time_stride=fields["patch_size"][1],
        )
    if "mlp_head.1.weight" in state_dict:
        fields["num_labels"] = state_dict["mlp_head.1.weight"].shape[0]
    fields.update(overrides)
    return SSASTConfig(**fields)


def _check_config_against(state_dict: Mapping[str, torch.Tensor], config: SSASTConfig) -> None:
    """Name every config field the checkpoint contradicts (clearer than a list of shape mismatches)."""
    inferred = infer_ssast_config(state_dict, num_attention_heads=config.num_attention_heads)
    fields = ["hidden_size", "num_hidden_layers", "intermediate_size", "num_prefix_tokens"]
    disagreements = [
        f"{name}: config has {getattr(config, name)}, checkpoint has {getattr(inferred, name)}"
        for name in fields
        if getattr(config, name) != getattr(inferred, name)
    ]
    config_patch = (config.frequency_patch_size, config.time_patch_size)
    inferred_patch = (inferred.frequency_patch_size, inferred.time_patch_size)
    if config_patch != inferred_patch:
        disagreements.append(f"patch_size: config has {config_patch}, checkpoint has {inferred_patch}")
    state_dict = _unwrap(state_dict)
    if _is_pretraining_checkpoint(state_dict) and "p_input_tdim" in state_dict:
        checkpoint_input = (inferred.num_mel_bins, inferred.max_length)
        if (config.num_mel_bins, config.max_length) != checkpoint_input or config.patch_grid != inferred.patch_grid:
            disagreements.append(
                f"geometry: the checkpoint was pre-trained on (mel, frames) = {checkpoint_input} with stride = patch, "
                f"the config asks for (num_mel_bins, max_length) = ({config.num_mel_bins}, {config.max_length}) with "
                f"strides ({config.frequency_stride}, {config.time_stride}); convert at the pre-training geometry, save, "
                "then SSASTForAudioClassification.from_pretrained(dir, ...) with the fine-tuning geometry"
            )
    if "mlp_head.1.weight" in state_dict and config.num_labels != inferred.num_labels:
        disagreements.append(f"num_labels: config has {config.num_labels}, checkpoint has {inferred.num_labels}")
    if disagreements:
        raise ValueError("config does not match the original SSAST checkpoint: " + "; ".join(disagreements))


def convert_original_ssast_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: SSASTConfig
) -> dict[str, torch.Tensor]:
    """Original SSAST state dict (pre-training or fine-tuned, `module.` optional) -> this package's key names.

    Through `ssast_checkpoint_filter`: `v.*` -> `ssast.*` (the fused `qkv` split into q/k/v), `cpredlayer`/`gpredlayer` ->
    `discriminative_head`/`generative_head`, `mask_embed` -> `mask_embedding`, `mlp_head` -> `classifier`; drops
    `v.head*` and `p_input_*`. Raises `CheckpointKeyError` for unknown keys and ValueError where `config`
    contradicts the tensors.
    """
    _check_config_against(state_dict, config)
    return ssast_checkpoint_filter(state_dict, config)


def build_original_ssast_model(
    state_dict: Mapping[str, torch.Tensor], config: SSASTConfig | None = None
) -> SSASTPreTrainedModel:
    """`SSASTForPreTraining` from a pre-training checkpoint, `SSASTForAudioClassification` from a fine-tuned one.

    `config` supplies what the checkpoint cannot tell (heads of non-DeiT widths, eps, masking settings; for
    fine-tuned checkpoints the strides, `max_length` and `pooling`); it must agree with the tensors.
    """
    unwrapped = _unwrap(state_dict)
    if config is None:
        if not _is_pretraining_checkpoint(unwrapped):
            raise ValueError(
                "a fine-tuned SSAST checkpoint does not store its strides or input length: pass an SSASTConfig with "
                "frequency_stride, time_stride, max_length (and pooling) as used in fine-tuning"
            )
        config = infer_ssast_config(unwrapped)
    elif not isinstance(config, SSASTConfig):
        raise TypeError(f"config must be an SSASTConfig, got {type(config).__name__}")
    converted = convert_original_ssast_state_dict(unwrapped, config)
    model_class = SSASTForPreTraining if _is_pretraining_checkpoint(unwrapped) else SSASTForAudioClassification
    model = model_class(config)
    check_state_dict_keys(converted, model.state_dict(), source="original SSAST checkpoint")
    model.load_state_dict(converted, strict=True)
    return model.eval()


BUILDERS = {"original-ssast": build_original_ssast_model}
