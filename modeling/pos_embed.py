"""Positional-embedding surgery shared by AST and SSAST (cut or bilinear-resize a patch grid).

The original AST/SSAST constructors adapt a learned positional embedding to a new patch grid with
one rule, applied time first and frequency second: an axis that shrinks (or stays) keeps its middle
rows/columns ("middle cut", integer halves), an axis that grows is resized with
`F.interpolate(mode="bilinear", align_corners=False)`. See the fixtures README §5 (AST ImageNet and
AudioSet branches) and §8 (SSAST fine-tuning).
"""

import torch
import torch.nn.functional as F

__all__ = ["middle_cut", "resize_patch_position_embeddings", "resize_position_embeddings", "split_prefix"]


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
