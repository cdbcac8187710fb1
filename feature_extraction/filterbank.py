"""Applying a triangular mel filterbank to a power spectrogram without multiplying by its zeros.

Mel filters are narrow bands: each FFT bin lies in at most two filters, so a dense [bins, filters] matrix is
mostly zeros (about 95% for AST's 128 Kaldi filters on 257 bins). `BandedFilterbank` splits the filters into
groups of neighbours and multiplies each group only with the bins its filters cover: the same sums of the
same products (to float32 rounding of the summation order), about an order of magnitude fewer operations
than the dense matmul, which was the largest cost of the whole front end.
"""

from __future__ import annotations

import torch

__all__ = ["BandedFilterbank", "power_spectrum"]

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
