"""Conversion of original HTS-AT checkpoints (RetroCirce/HTS-Audio-Transformer) into `HTSATForAudioClassification`.

The released checkpoints are PyTorch Lightning `.ckpt` files: a `torch.save` dict whose `state_dict` maps
`sed_model.<key>` to the tensors of `HTSAT_Swin_Transformer` (beside epoch, optimizer states, ...).
`load_checkpoint` unwraps the `state_dict`; plain state dicts (no prefix) are accepted too.
"""

import math
import re
from collections.abc import Mapping

import torch

from ..checkpoint import (
    CheckpointKeyError,
    check_state_dict_keys,
    drop_keys,
    rename_keys,
    split_fused_qkv,
    strip_prefix,
)
from .configuration_htsat import HTSATConfig
from .modeling_htsat import HTSATForAudioClassification

__all__ = [
    "BUILDERS",
    "DROPPED_KEYS",
    "build_from_original_htsat",
    "convert_original_htsat_state_dict",
    "htsat_checkpoint_filter",
    "infer_htsat_config",
]

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


def _window_from_table(rows: int) -> int:
    """Window side w of a ((2w - 1)², heads) relative-position table."""
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise ValueError(f"a relative_position_bias_table with {rows} rows is not ((2 * window - 1)^2, heads)")
    return (side + 1) // 2


def infer_htsat_config(state_dict: Mapping[str, torch.Tensor], **overrides) -> HTSATConfig:
    """An `HTSATConfig` read off the checkpoint's tensor shapes; everything else at the original defaults.

    Read: `embed_dim` and `patch_size` (patch conv), `depths` (blocks per stage), `num_heads` and `window_size`
    (relative-position tables), `num_mel_bins` (bn0), `num_labels`, `use_token_semantic_head` and
    `token_semantic_kernel_size` (tscam_conv, or head without it). Not in the weights: `patch_stride`,
    `spec_size`, labels and `problem_type` (pass them as `overrides`, e.g. from a hub config).
    """
    state_dict = _unwrap(state_dict)
    try:
        projection = state_dict["patch_embed.proj.weight"]
        mel_bins = state_dict["bn0.weight"].shape[0]
    except KeyError as error:
        raise ValueError(f"not an original HTS-AT state dict: {error.args[0]!r} is missing") from error
    blocks: dict[int, set[int]] = {}
    for key in state_dict:
        match = re.fullmatch(_BLOCK + r"attn\.relative_position_bias_table", key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise ValueError(f"original HTS-AT stages must be numbered 0..n-1; found stages {sorted(blocks)}")
    depths = tuple(len(blocks[stage]) for stage in sorted(blocks))
    tables = [state_dict[f"layers.{stage}.blocks.0.attn.relative_position_bias_table"] for stage in sorted(blocks)]
    use_token_semantic_head = "tscam_conv.weight" in state_dict
    head = state_dict["tscam_conv.weight" if use_token_semantic_head else "head.weight"]
    inferred = {
        "embed_dim": projection.shape[0],
        "patch_size": tuple(projection.shape[-2:])
        if projection.shape[-2] != projection.shape[-1]
        else projection.shape[-1],
        "depths": depths,
        "num_heads": tuple(table.shape[1] for table in tables),
        # stage 0 has the largest grid, so its window is never clamped to the grid
        "window_size": _window_from_table(tables[0].shape[0]),
        "num_mel_bins": mel_bins,
        "num_labels": head.shape[0],
        "use_token_semantic_head": use_token_semantic_head,
    }
    if use_token_semantic_head:
        inferred["token_semantic_kernel_size"] = head.shape[-1]
    return HTSATConfig(**{**inferred, **overrides})


def _check_config_against_checkpoint(config: HTSATConfig, inferred: HTSATConfig) -> None:
    """Name the config field a checkpoint disagrees with, before the shape check names tensors."""
    fields = ("embed_dim", "depths", "num_heads", "num_mel_bins", "num_labels", "use_token_semantic_head")
    fields += ("token_semantic_kernel_size",) if inferred.use_token_semantic_head else ()
    problems = [
        f"config.{name} = {getattr(config, name)!r} but the checkpoint has {getattr(inferred, name)!r}"
        for name in fields
        if _normalised(getattr(config, name)) != _normalised(getattr(inferred, name))
    ]
    # the window is clamped in stages whose grid is not larger; compare the window each stage really uses
    for stage in range(min(config.num_layers, inferred.num_layers)):
        if config.stage_window(stage)[0] != inferred.stage_window(stage)[0]:
            problems.append(
                f"config.window_size = {config.window_size} gives stage {stage} {config.stage_window(stage)[0]}-token "
                f"windows but the checkpoint's relative-position tables are for {inferred.stage_window(stage)[0]}"
            )
            break
    if problems:
        raise ValueError("the config does not fit the checkpoint: " + "; ".join(problems))


def _normalised(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


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


def build_from_original_htsat(
    state_dict: Mapping[str, torch.Tensor], config: HTSATConfig | None = None
) -> HTSATForAudioClassification:
    """A ready `HTSATForAudioClassification` from an original checkpoint; `config` defaults to `infer_htsat_config`."""
    inferred = infer_htsat_config(state_dict)
    if config is None:
        config = inferred
    elif not isinstance(config, HTSATConfig):
        raise TypeError(f"original-htsat checkpoints convert to an HTSATConfig model, got {type(config).__name__}")
    else:
        _check_config_against_checkpoint(config, inferred)
    converted = htsat_checkpoint_filter(state_dict, config)
    model = HTSATForAudioClassification(config)
    check_state_dict_keys(converted, model.state_dict(), source="original HTS-AT checkpoint")
    model.load_state_dict(converted, strict=True)
    return model.eval()


BUILDERS = {"original-htsat": build_from_original_htsat}
