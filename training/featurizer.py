"""The training stage of a batch on the device (`AugmentedFeaturizer`): crop, mixup, features, SpecAugment, noise."""

from typing import Any

import torch

from ..feature_extraction.base import model_input_samples
from .augment import (
    AugmentationConfig,
    additive_noise,
    mix,
    mix_waveforms,
    random_crop,
    random_roll,
    sample_mixup,
    spec_augment,
)

__all__ = ["AugmentedFeaturizer"]


class AugmentedFeaturizer:
    """Training stage of a batch, on the padded waveform tensor where it lives (the training device): random
    crop -> waveform mixup -> `feature_extractor.extract` -> feature mixup, SpecAugment masks, noise, time
    shift; labels mixed alongside. Every step is a batched tensor operation (gathered offsets, no per-clip loop);
    the audio never goes back to the host.

    It runs inside the training step (`AudioClassificationTrainer._prepare_inputs`), not in the data loader, for
    two reasons: its randomness then comes from torch's global RNG *after* `Trainer` restores it on resume (a
    resumed run replays exactly the uninterrupted one; Trainer prefetches the first resumed batch before it
    restores the RNG), and the features are computed on the training device (batched fbank on the GPU).
    `AudioClassificationCollator(augmentation=...)` calls it directly when used outside a Trainer.

    Args:
        feature_extractor: the model's feature extractor (the package's: it has `extract` and `input_samples`).
        augmentation: what to do (`AugmentationConfig`).
        generator: RNG for every draw; None uses torch's global RNG.
        input_name: key of the features (default: the extractor's first `model_input_names`).
    """

    def __init__(
        self,
        feature_extractor,
        augmentation: AugmentationConfig,
        generator: torch.Generator | None = None,
        input_name: str | None = None,
    ):
        if not hasattr(feature_extractor, "extract"):
            raise TypeError(
                f"{type(feature_extractor).__name__} has no batched `extract(waveforms, lengths)`; training needs "
                "the package's ASTFeatureExtractor or HTSATFeatureExtractor"
            )
        self.feature_extractor = feature_extractor
        self.augmentation = augmentation
        self.generator = generator
        self.input_name = input_name or feature_extractor.model_input_names[0]
        self.sampling_rate = feature_extractor.sampling_rate
        self.crop_samples = model_input_samples(feature_extractor)

    def _mask_value(self, features: torch.Tensor) -> float | torch.Tensor:
        value = self.augmentation.mask_value
        if value == "mean":
            return features.mean(dim=(1, 2))  # (B,)
        if value == "unnormalized_zero":
            extractor = self.feature_extractor
            if getattr(extractor, "do_normalize", False) and hasattr(extractor, "normalize"):
                return float(extractor.normalize(torch.zeros(())))
            return 0.0
        return float(value)

    def __call__(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Augmented features (B, frames, bins) on the waveforms' device, and labels (mixed when mixup mixes
        labels; soft labels (B, C) are needed for that).

        Args:
            waveforms: zero-padded mono waveforms [B, S] at the extractor's rate, on any device.
            lengths: [B] samples of each clip; keep them on the host (no device synchronisation).
            labels: class ids (B,) or soft / multi-hot targets (B, C).
        """
        augmentation = self.augmentation
        if augmentation.random_crop and self.crop_samples is not None:
            waveforms, lengths = random_crop(waveforms, lengths, self.crop_samples, self.generator)
        partner = lam = None
        if augmentation.uses_mixup:
            partner, lam = sample_mixup(
                waveforms.shape[0],
                augmentation.mixup_prob,
                augmentation.mixup_alpha,
                augmentation.mixup_partner,
                self.generator,
            )
            if augmentation.mixup_domain == "waveform":
                waveforms = mix_waveforms(waveforms, lengths, partner, lam)
        features = self.feature_extractor.extract(waveforms, lengths)[self.input_name]
        if augmentation.uses_mixup and augmentation.mixup_domain == "features":
            features = mix(features, partner.to(features.device), lam.to(features.device))
        if augmentation.freq_mask or augmentation.time_mask:
            features = spec_augment(
                features,
                augmentation.freq_mask,
                augmentation.time_mask,
                augmentation.num_freq_masks,
                augmentation.num_time_masks,
                self._mask_value(features),
                self.generator,
            )
        features = additive_noise(features, augmentation.noise_max_scale, self.generator)
        features = random_roll(features, augmentation.time_shift_frames, dim=1, generator=self.generator)
        if labels is not None and lam is not None and augmentation.mixup_labels:
            if not labels.is_floating_point():
                raise ValueError(
                    "mixup of labels needs soft (B, classes) labels: build the collator with soft_labels=True"
                )
            labels = mix(labels, partner.to(labels.device), lam.to(labels.device))
        return features, labels

    def from_batch(self, batch: dict[str, Any], augment: bool = True) -> dict[str, Any]:
        """A collated waveform batch (`AudioClassificationCollator(return_waveforms=True)`: `waveforms` [B, S]
        on any device, `waveform_lengths` [B]) -> model inputs on the same device. `augment=False` (evaluation)
        gives the plain features: no crop (the extractor keeps each clip's beginning), no mixup, no masks."""
        batch = dict(batch)
        waveforms, lengths = batch.pop("waveforms"), batch.pop("waveform_lengths")
        if augment:
            batch[self.input_name], labels = self(waveforms, lengths, batch.get("labels"))
            if labels is not None:
                batch["labels"] = labels
        else:
            batch[self.input_name] = self.feature_extractor.extract(waveforms, lengths)[self.input_name]
        return batch
