"""Training-time augmentation and sampling for spectrogram transformers, as batched tensor operations.

What the papers' recipes do (read from the original code, re-implemented here batched):

* AST (Gong et al., Interspeech 2021; YuanGongND/ast `src/dataloader.py`): with probability `mixup` (0.5
  AudioSet, 0.6 Speech Commands, 0 ESC-50) a clip is mixed *as a waveform* with another random clip,
  λ ~ Beta(10, 10), and the label vectors are mixed with the same λ; then one frequency mask of width
  U[0, freqm) and one time mask of width U[0, timem) (torchaudio `FrequencyMasking`/`TimeMasking`, 48/192 for
  AudioSet, 48/48 Speech Commands, 24/96 ESC-50) are zeroed on the *unnormalised* log-fbank, so after the
  (x - mean) / (2 std) normalisation a masked bin holds (0 - mean) / (2 std); for Speech Commands ("noise")
  uniform noise U[0,1) · U[0,1)/10 is added to the normalised features and they are rolled by U{-10..9} frames.
  A balanced sampler draws full-AudioSet clips with weight Σ_labels 1000 / (count(label) + 0.01)
  (`egs/audioset/gen_weight_file.py`).
* HTS-AT (Chen et al., ICASSP 2022; RetroCirce/HTS-Audio-Transformer `model/htsat.py`, `sed_model.py`): on
  AudioSet every clip's *spectrogram* is mixed with the batch reversed, λ ~ Beta(0.5, 0.5) per clip, and the
  targets are *not* mixed; SpecAugment drops 2 time stripes up to 64 frames and 2 frequency stripes up to 8
  bins (torchlibrosa `SpecAugmentation`).

Every function takes an optional `torch.Generator`. Without one they draw from torch's global RNG, which
`Trainer` seeds from `--seed` and stores in every checkpoint, so a resumed run continues the same augmentation
stream. No per-example Python loops: widths, offsets, partners and λ are drawn as tensors.
"""

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Literal

import numpy as np
import torch

__all__ = [
    "AugmentationConfig",
    "BalancedSampler",
    "additive_noise",
    "label_frequency_weights",
    "mask_along_axis",
    "mix",
    "mix_waveforms",
    "random_crop",
    "random_crop_offsets",
    "random_roll",
    "sample_mixup",
    "spec_augment",
]


@dataclass
class AugmentationConfig:
    """Training augmentation of one recipe (all off by default, so an empty dict means "none").

    Args:
        random_crop: crop training clips longer than the model input at a random offset (evaluation always
            keeps the beginning, as the original code does).
        mixup_prob: probability that a clip is mixed with a partner (AST `mixup`; HTS-AT mixes every clip: 1.0).
        mixup_alpha: λ ~ Beta(alpha, alpha) (AST 10, HTS-AT 0.5).
        mixup_domain: mix raw waveforms before feature extraction (AST) or the features (HTS-AT).
        mixup_partner: a random clip of the batch (AST picks a random clip of the dataset) or the batch
            reversed (HTS-AT `torch.flip(x, dims=[0])`).
        mixup_labels: mix the label vectors with the same λ (AST) or keep the first clip's labels (HTS-AT).
        freq_mask / time_mask: maximum mask width in mel bins / frames (0 disables).
        num_freq_masks / num_time_masks: masks per example (AST 1, HTS-AT 2).
        mask_value: what masked bins hold: a number, `"unnormalized_zero"` (AST: 0 in log-fbank units, i.e.
            (0 - mean) / (2 std) after normalisation) or `"mean"` (each example's mean; used for HTS-AT, whose
            original masks after its BatchNorm where 0 is the running mean).
        noise_max_scale: add U[0,1) noise scaled by U[0, noise_max_scale) per example (AST Speech Commands 0.1).
        time_shift_frames: roll each example by U{-n..n} frames (AST Speech Commands 10).
    """

    random_crop: bool = True
    mixup_prob: float = 0.0
    mixup_alpha: float = 10.0
    mixup_domain: Literal["waveform", "features"] = "waveform"
    mixup_partner: Literal["random", "flip"] = "random"
    mixup_labels: bool = True
    freq_mask: int = 0
    time_mask: int = 0
    num_freq_masks: int = 1
    num_time_masks: int = 1
    mask_value: float | Literal["unnormalized_zero", "mean"] = 0.0
    noise_max_scale: float = 0.0
    time_shift_frames: int = 0

    def __post_init__(self):
        if not 0.0 <= self.mixup_prob <= 1.0:
            raise ValueError(f"mixup_prob must be in [0, 1], got {self.mixup_prob}")
        if self.mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0, got {self.mixup_alpha}")
        if self.mixup_domain not in ("waveform", "features"):
            raise ValueError(f"mixup_domain must be 'waveform' or 'features', got {self.mixup_domain!r}")
        if self.mixup_partner not in ("random", "flip"):
            raise ValueError(f"mixup_partner must be 'random' or 'flip', got {self.mixup_partner!r}")
        for name in ("freq_mask", "time_mask", "num_freq_masks", "num_time_masks", "time_shift_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.noise_max_scale < 0:
            raise ValueError(f"noise_max_scale must be >= 0, got {self.noise_max_scale}")
        if isinstance(self.mask_value, str) and self.mask_value not in ("unnormalized_zero", "mean"):
            raise ValueError(f"mask_value must be a number, 'unnormalized_zero' or 'mean', got {self.mask_value!r}")

    @classmethod
    def from_dict(cls, values: dict | None) -> "AugmentationConfig":
        values = dict(values or {})
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown augmentation settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def uses_mixup(self) -> bool:
        return self.mixup_prob > 0


def _uniform(shape: Sequence[int], generator: torch.Generator | None, device=None) -> torch.Tensor:
    """U[0, 1) of `shape` on `device`, drawn from `generator` on its own device (a host generator can serve a GPU
    batch), or from torch's global RNG of `device` when None."""
    if generator is not None and torch.device(device or "cpu") != generator.device:
        return torch.rand(tuple(shape), generator=generator, device=generator.device).to(device)
    return torch.rand(tuple(shape), generator=generator, device=device)


def sample_mixup(
    batch_size: int,
    prob: float,
    alpha: float,
    partner: Literal["random", "flip"] = "random",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw mixup partners and weights for a batch.

    Returns `(partner_index, lam)`, both (B,): example i becomes lam[i]·x[i] + (1 − lam[i])·x[partner_index[i]].
    Examples that are not mixed (probability 1 − prob) get lam = 1, so `mix` leaves them unchanged.
    λ ~ Beta(alpha, alpha), drawn through the generator (via two Gamma draws, as torch's Beta sampler has no
    generator argument): X ~ Gamma(α), Y ~ Gamma(α), λ = X / (X + Y).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if partner == "flip":
        partner_index = torch.arange(batch_size - 1, -1, -1)
    elif partner == "random":
        partner_index = torch.randint(0, batch_size, (batch_size,), generator=generator)
    else:
        raise ValueError(f"partner must be 'random' or 'flip', got {partner!r}")
    concentration = torch.full((2, batch_size), float(alpha))
    gammas = torch._standard_gamma(concentration, generator=generator)  # (2, B)
    lam = gammas[0] / (gammas[0] + gammas[1]).clamp_min(torch.finfo(gammas.dtype).tiny)
    mixed = _uniform((batch_size,), generator) < prob
    lam = torch.where(mixed, lam, torch.ones_like(lam))
    return partner_index, lam


def mix(values: torch.Tensor, partner_index: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """lam·x + (1 − lam)·x[partner] for any (B, ...) tensor (waveforms, features or label vectors)."""
    if values.shape[0] != lam.shape[0]:
        raise ValueError(f"batch of {values.shape[0]} but {lam.shape[0]} mixup weights")
    weight = lam.to(values.dtype).reshape(-1, *([1] * (values.dim() - 1)))  # (B, 1, ...)
    return weight * values + (1 - weight) * values[partner_index]


def _span_masks(
    batch_size: int, length: int, max_width: int, num_masks: int, generator: torch.Generator | None, device=None
) -> torch.Tensor:
    """(B, length) bool: the union of `num_masks` spans per example, each of width ⌊U·max_width⌋ starting at
    ⌊U·(length − width)⌋ (torchaudio's `mask_along_axis` rule)."""
    widths = _uniform((batch_size, num_masks), generator, device) * min(max_width, length)  # (B, M)
    starts = _uniform((batch_size, num_masks), generator, device) * (length - widths)  # (B, M)
    begin, end = starts.long(), (starts + widths).long()
    positions = torch.arange(length, device=device).view(1, 1, length)  # (1, 1, L)
    inside = (positions >= begin.unsqueeze(-1)) & (positions < end.unsqueeze(-1))  # (B, M, L)
    return inside.any(dim=1)  # (B, L)


def mask_along_axis(
    features: torch.Tensor,
    axis: Literal["time", "frequency"],
    max_width: int,
    num_masks: int = 1,
    mask_value: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment-style masking of (B, frames, mel) features along time or frequency.

    `mask_value` is a number or a per-example (B,) tensor. Returns a new tensor; widths are < max_width + 1
    and never exceed the axis.
    """
    if features.dim() != 3:
        raise ValueError(f"features must be (batch, frames, mel bins), got {tuple(features.shape)}")
    if max_width <= 0 or num_masks <= 0:
        return features
    batch_size, num_frames, num_bins = features.shape
    if axis == "time":
        masked = _span_masks(batch_size, num_frames, max_width, num_masks, generator, features.device).unsqueeze(
            2
        )  # (B, T, 1)
    elif axis == "frequency":
        masked = _span_masks(batch_size, num_bins, max_width, num_masks, generator, features.device).unsqueeze(
            1
        )  # (B, 1, F)
    else:
        raise ValueError(f"axis must be 'time' or 'frequency', got {axis!r}")
    fill = torch.as_tensor(mask_value, dtype=features.dtype, device=features.device)
    if fill.dim() == 1:
        fill = fill.view(batch_size, 1, 1)
    return torch.where(masked, fill, features)


def spec_augment(
    features: torch.Tensor,
    freq_mask: int,
    time_mask: int,
    num_freq_masks: int = 1,
    num_time_masks: int = 1,
    mask_value: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Frequency masks then time masks (the AST order) on (B, frames, mel) features."""
    features = mask_along_axis(features, "frequency", freq_mask, num_freq_masks, mask_value, generator)
    return mask_along_axis(features, "time", time_mask, num_time_masks, mask_value, generator)


def additive_noise(features: torch.Tensor, max_scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + U[0,1)·s with one scale s ~ U[0, max_scale) per example (AST's Speech Commands "noise")."""
    if max_scale <= 0:
        return features
    scale = _uniform((features.shape[0],), generator, features.device) * max_scale  # (B,)
    noise = _uniform(features.shape, generator, features.device)
    return features + noise * scale.view(-1, *([1] * (features.dim() - 1))).to(features.dtype)


def random_roll(
    values: torch.Tensor, max_shift: int, dim: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Roll every example circularly along `dim` by its own shift in U{−max_shift..max_shift} (torch.roll
    semantics: a positive shift moves content towards later frames)."""
    if max_shift <= 0:
        return values
    length = values.shape[dim]
    shifts = torch.randint(-max_shift, max_shift + 1, (values.shape[0],), generator=generator).to(values.device)
    source = (torch.arange(length, device=values.device).unsqueeze(0) - shifts.unsqueeze(1)) % length  # (B, L)
    index_shape = [values.shape[0]] + [1] * (values.dim() - 1)
    index_shape[dim] = length
    index = source.view(index_shape).expand_as(values)
    return torch.gather(values, dim, index)


def random_crop_offsets(
    lengths: torch.Tensor, crop_length: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Start offsets of random crops: U{0..length − crop_length} for clips longer than crop_length, else 0.

    Drawn on the host (lengths are host tensors in the training step: no device synchronisation)."""
    lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
    room = (lengths - crop_length).clamp_min(0)  # (B,)
    return (_uniform(lengths.shape, generator) * (room + 1).to(torch.float64)).long().clamp_max(room)


def random_crop(
    waveforms: torch.Tensor, lengths: torch.Tensor, crop_length: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop every clip of a zero-padded batch [B, S] to at most `crop_length` samples at a random offset (one
    gather on the batch's device): returns [B, min(S, crop_length)] and the new lengths (on the lengths'
    device). Clips no longer than `crop_length` keep their start. Nothing is drawn when no clip is longer."""
    if waveforms.shape[1] <= crop_length:
        return waveforms, lengths
    offsets = random_crop_offsets(lengths, crop_length, generator).to(waveforms.device)  # (B,)
    positions = offsets.unsqueeze(1) + torch.arange(crop_length, device=waveforms.device).unsqueeze(0)  # (B, crop)
    return torch.gather(waveforms, 1, positions), torch.as_tensor(lengths).clamp_max(crop_length)


def mix_waveforms(
    waveforms: torch.Tensor, lengths: torch.Tensor, partner_index: torch.Tensor, lam: torch.Tensor
) -> torch.Tensor:
    """AST's waveform mixup on a zero-padded batch [B, S]: clip i becomes lam·x_i + (1 − lam)·x_partner, each
    clip keeping its own length (the partner is cut to it, or zero past its own end)."""
    device = waveforms.device
    valid = torch.arange(waveforms.shape[1], device=device).unsqueeze(0) < torch.as_tensor(lengths).to(
        device
    ).unsqueeze(1)  # (B, S)
    weight = lam.to(device=device, dtype=waveforms.dtype).unsqueeze(1)  # (B, 1)
    return weight * waveforms + (1 - weight) * waveforms[partner_index.to(device)] * valid


def label_frequency_weights(label_matrix: np.ndarray | torch.Tensor) -> np.ndarray:
    """Per-example sampling weight Σ_{labels of the example} 1000 / (count(label) + 0.01) (AST's balanced
    AudioSet sampler): rare classes are drawn as often as frequent ones. `label_matrix` is (N, classes) multi-hot
    (or (N,) class ids)."""
    labels = np.asarray(label_matrix, dtype=np.float64)
    if labels.ndim == 1:
        one_hot = np.zeros((labels.shape[0], int(labels.max()) + 1))
        one_hot[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1.0
        labels = one_hot
    counts = labels.sum(axis=0)  # (C,)
    label_weight = 1000.0 / (counts + 0.01)
    return (labels > 0).astype(np.float64) @ label_weight  # (N,)


class BalancedSampler(torch.utils.data.Sampler[int]):
    """Draw `num_samples` indices with replacement, proportionally to `weights`.

    Unlike `WeightedRandomSampler`, the draw of epoch e depends only on (seed, e) (`set_epoch`, which `Trainer`
    calls every epoch), so a run resumed from a checkpoint replays exactly the same order; every process of a
    distributed run draws the same sequence and accelerate hands each its own share of the batches.
    """

    def __init__(self, weights: Sequence[float] | np.ndarray, num_samples: int | None = None, seed: int = 0):
        weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if weights.dim() != 1 or len(weights) == 0:
            raise ValueError("weights must be a non-empty 1-D sequence")
        if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()) or float(weights.sum()) <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        self.weights = weights
        self.num_samples = len(weights) if num_samples is None else int(num_samples)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator).tolist()
