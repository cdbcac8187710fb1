"""Rows of a recipe dataset -> a model batch (`AudioClassificationCollator`).

decode -> labels -> one zero-padded waveform batch [B, S] with its lengths (the batch's only padding) -> features
from the feature extractor's tensor entry point `extract` (evaluation, in the loader), or the padded batch itself
for training, which `AugmentedFeaturizer` turns into features inside the training step, on the training device.
A clip that cannot be decoded is skipped with a warning and counted; the count travels with the batch
(`num_skipped_clips`) so that `Trainer` can report it even when collation runs in dataloader worker processes.
"""

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .audio_decoding import decode_example_audio, pad_waveforms
from .augment import AugmentationConfig
from .featurizer import AugmentedFeaturizer
from .label_encoding import LabelEncoder

__all__ = ["SKIPPED_CLIPS_KEY", "AudioClassificationCollator"]

# batch key carrying how many clips of the batch could not be decoded (popped by the Trainer before the model)
SKIPPED_CLIPS_KEY = "num_skipped_clips"


@dataclass
class AudioClassificationCollator:
    """Rows of a recipe dataset -> a model batch `{input name: features, "labels": ..., "num_skipped_clips": n}`,
    or (`return_waveforms`) the decoded clips padded once, for the training / evaluation step to featurize.

    Args:
        feature_extractor: the model's feature extractor (`ASTFeatureExtractor`, `HTSATFeatureExtractor`).
        label_encoder: turns label values into ids / multi-hot; None gives a batch without labels.
        audio_column, label_column: dataset columns.
        augmentation: training augmentation applied here through `AugmentedFeaturizer`; None for none (evaluation:
            no crop, the features keep the beginning of each clip).
        return_waveforms: give `waveforms` (B, samples) zero-padded and `waveform_lengths` (B,) instead of features,
            for the trainer to featurize on its device (what `train` does, for training and evaluation batches).
        soft_labels: give float label vectors even for single-label data (needed for mixup and for the BCE
            loss of AST's Speech Commands recipe); defaults to True when the augmentation mixes labels.
        generator: RNG of the augmentation; None uses torch's global RNG.
        input_name: key of the features; defaults to the feature extractor's first `model_input_names`.

    Decoding is deterministic, so the loader stage has no randomness. `num_skipped` counts the clips this
    collator (in this process) could not decode.
    """

    feature_extractor: Any
    label_encoder: LabelEncoder | None = None
    audio_column: str = "audio"
    label_column: str = "label"
    augmentation: AugmentationConfig | None = None
    return_waveforms: bool = False
    soft_labels: bool | None = None
    generator: torch.Generator | None = None
    input_name: str | None = None
    num_skipped: int = field(default=0, init=False)

    def __post_init__(self):
        if self.input_name is None:
            self.input_name = self.feature_extractor.model_input_names[0]
        if self.soft_labels is None:
            augmentation = self.augmentation
            self.soft_labels = bool(augmentation and augmentation.uses_mixup and augmentation.mixup_labels)
        self.sampling_rate = self.feature_extractor.sampling_rate
        self.featurizer = (
            AugmentedFeaturizer(self.feature_extractor, self.augmentation, self.generator, self.input_name)
            if self.augmentation is not None
            else None
        )

    def _decode(self, rows: list[dict]) -> tuple[list[np.ndarray], list[dict], int]:
        waveforms, kept = [], []
        for row in rows:
            try:
                waveforms.append(decode_example_audio(row[self.audio_column], self.sampling_rate))
                kept.append(row)
            except (ValueError, FileNotFoundError, RuntimeError, TypeError) as error:
                self.num_skipped += 1
                warnings.warn(
                    f"skipping a clip that cannot be decoded ({self.num_skipped} so far): {error}", stacklevel=2
                )
        # a batch of only undecodable clips is empty (never a copy of another clip): the trainer skips it
        return waveforms, kept, len(rows) - len(kept)

    def _labels(self, rows: list[dict]) -> torch.Tensor | None:
        if self.label_encoder is None:
            return None
        values = [row[self.label_column] for row in rows]
        if self.soft_labels or self.label_encoder.multi_label:
            if not values:
                return torch.zeros(0, self.label_encoder.num_labels)
            return self.label_encoder.multi_hot(values)
        return self.label_encoder.ids(values)

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        if not rows:
            raise ValueError("cannot collate an empty list of examples")
        waveforms, rows, skipped = self._decode(rows)
        labels = self._labels(rows)
        padded, lengths = pad_waveforms(waveforms)  # (B, longest), (B,): the batch's only padding
        batch: dict[str, Any] = {}
        if self.return_waveforms:
            batch["waveforms"], batch["waveform_lengths"] = padded, lengths
        elif not rows:
            batch[self.input_name] = padded.new_zeros(0, 0, self.feature_extractor.num_mel_bins)
        elif self.featurizer is not None:
            batch[self.input_name], labels = self.featurizer(padded, lengths, labels)
        else:
            batch[self.input_name] = self.feature_extractor.extract(padded, lengths)[self.input_name]
        if labels is not None:
            batch["labels"] = labels
        # a per-row tensor (the count in row 0) rather than an int: accelerate splits dispatched batches along
        # dim 0, and the total over the rows (and over processes) stays the count; one row for an empty batch
        skipped_per_row = torch.zeros(max(1, len(rows)), dtype=torch.long)
        skipped_per_row[0] = skipped
        batch[SKIPPED_CLIPS_KEY] = skipped_per_row
        return batch
