"""SSAST's masked patch modeling inputs: raw patch targets and the masks of the pre-training task.

Paper: Gong, Lai, Chung and Glass, "SSAST: Self-Supervised Audio Spectrogram Transformer", AAAI 2022.
Original code: https://github.com/YuanGongND/ssast (`src/models/ast_models.py`: `gen_maskid_patch`,
`gen_maskid_frame`, and the `nn.Unfold` targets).

Masks are drawn from a seedable `torch.Generator`, batched (the original loops over clips with Python's
global `random`); cluster masking keeps the original's exact stopping rule and id order (see
`cluster_mask_indices`). The model (`modeling_ssast`) only asks for (B, M) ids and checks given ones here.
"""

import math

import torch

__all__ = [
    "bool_mask_to_indices",
    "check_mask_indices",
    "cluster_mask_from_draws",
    "cluster_mask_indices",
    "gather_patches",
    "patchify_spectrogram",
    "random_mask_indices",
    "unpatchify_spectrogram",
]


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
