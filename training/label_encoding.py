"""Dataset label values -> class ids or multi-hot targets (`LabelEncoder`), and AST's balanced-sampling weights."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from .augment import label_frequency_weights
from .recipe import DatasetSpec, LabelMap

__all__ = ["LabelEncoder", "training_label_weights"]

logger = logging.get_logger(__name__)


class LabelEncoder:
    """Dataset label values -> class ids (B,) int64, or multi-hot (B, C) float32 for multi-label recipes.

    Args:
        label_format: "id" (an int per example), "name" (a string), "ids" / "names" (lists: multi-label).
        label_map: the classes; names/keys of "name"/"names" values are looked up in `label_map.keys`.
        dataset_names: names of the dataset's `ClassLabel`, when its ids are not the label map's order: ids are
            then re-mapped by name (a dataset class missing from the label map is an error if it ever shows up).
    """

    def __init__(self, label_format: str, label_map: LabelMap, dataset_names: Sequence[str] | None = None):
        self.label_format = label_format
        self.label_map = label_map
        self.num_labels = len(label_map)
        self.key2id = label_map.key2id
        self.id_lookup = None
        if (
            label_format in ("id", "ids")
            and dataset_names is not None
            and list(dataset_names[: self.num_labels]) != list(label_map.names)
        ):
            name2id = label_map.label2id
            self.id_lookup = np.array([name2id.get(name, -1) for name in dataset_names], dtype=np.int64)
        self._warned_unknown: set = set()

    @property
    def multi_label(self) -> bool:
        return self.label_format in ("ids", "names")

    def _id(self, value) -> int:
        if self.label_format in ("name", "names"):
            if value not in self.key2id:
                raise ValueError(f"label {value!r} is not in the recipe's label map ({self.num_labels} classes)")
            return self.key2id[value]
        index = int(value)
        if self.id_lookup is not None:
            index = int(self.id_lookup[index]) if 0 <= index < len(self.id_lookup) else -1
        if not 0 <= index < self.num_labels:
            raise ValueError(f"label id {value!r} is outside the recipe's {self.num_labels} classes")
        return index

    def ids(self, values: Sequence[Any]) -> torch.Tensor:
        """Single-label: (B,) int64 class ids."""
        return torch.tensor([self._id(value) for value in values], dtype=torch.long)

    def multi_hot(self, values: Sequence[Any]) -> torch.Tensor:
        """(B, C) float32: 1 for every label of the example (single-label values give one-hot rows)."""
        target = torch.zeros(len(values), self.num_labels)
        for row, value in enumerate(values):
            labels = value if self.multi_label else [value]
            for label in labels:
                try:
                    target[row, self._id(label)] = 1.0
                except ValueError:
                    if not self.multi_label:
                        raise
                    # AudioSet rows may carry a label outside the 527-class map: ignore it, say so once
                    if label not in self._warned_unknown:
                        self._warned_unknown.add(label)
                        logger.warning(f"ignoring label {label!r}, which is not in the recipe's label map")
        return target

    def __call__(self, values: Sequence[Any]) -> torch.Tensor:
        return self.multi_hot(values) if self.multi_label else self.ids(values)


def training_label_weights(dataset, spec: DatasetSpec, encoder: LabelEncoder) -> np.ndarray:
    """AST's balanced-sampling weight of every training example (reads only the label column)."""
    if not hasattr(dataset, "__len__"):
        raise ValueError(
            "the balanced sampler needs a map-style dataset (not --streaming): it weighs every example up front"
        )
    labels = dataset.select_columns([spec.label_column])[spec.label_column]
    return label_frequency_weights(encoder.multi_hot(labels).numpy())
