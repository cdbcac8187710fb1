"""The label sets of every split checked against the label map before the first training step.

Without this, a label that only the evaluation or test data use fails the run after a whole training epoch (the
collator meets it at the first evaluation), and with a label map taken from the data itself (`labels: "dataset"`,
e.g. an audio folder's class sub-folders, collected over all splits) a class that only `test/` has becomes an
extra class without a single training example, silently.
"""

from collections.abc import Iterable
from typing import Any

from transformers.utils import logging

from ..errors import InvalidInputError
from .datasets import LabelEncoder, RecipeData
from .recipe import DatasetSpec

__all__ = ["LabelMismatch", "check_split_labels", "split_label_values"]

logger = logging.get_logger(__name__)
_SHOWN = 10


class LabelMismatch(InvalidInputError):
    """A split's labels do not fit the label map (found before training starts)."""


def split_label_values(split, spec: DatasetSpec, multi_label: bool) -> set:
    """The distinct label values of a map-style split (reads only the label column)."""
    values: Iterable[Any] = split.select_columns([spec.label_column])[spec.label_column]
    if multi_label:
        return {label for row in values for label in (row or [])}
    return set(values)


def _unknown(values: set, encoder: LabelEncoder) -> list:
    unknown = []
    for value in values:
        try:
            encoder._id(value)
        except (ValueError, TypeError, IndexError):
            unknown.append(value)
    return sorted(unknown, key=str)


def _class_names(split, spec: DatasetSpec) -> list[str] | None:
    """The dataset's own names of its label ids (a `ClassLabel` column), to show names instead of ids."""
    feature = (getattr(split, "features", None) or {}).get(spec.label_column)
    return getattr(getattr(feature, "feature", feature), "names", None)


def _named(values: list, names: list[str] | None) -> list:
    if not names:
        return values
    return [names[value] if isinstance(value, int) and 0 <= value < len(names) else value for value in values]


def _shown(values: list) -> str:
    return ", ".join(map(repr, values[:_SHOWN])) + (
        f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    )


def check_split_labels(data: RecipeData, spec: DatasetSpec) -> None:
    """Raise one `LabelMismatch` naming every split whose labels the label map cannot encode and, when the map comes
    from the data (`labels: "dataset"`), every class an evaluation/test split uses that training never shows.

    Multi-label rows may carry labels outside the map by design (AudioSet's ontology): those are counted in a
    warning instead. Streaming splits are checked as they are read (the collator raises on an unknown label).
    """
    encoder = data.label_encoder
    splits = {"train": data.train, "eval": data.eval, "test": data.test}
    problems, training_ids = [], None
    for name, split in splits.items():
        if split is None:
            continue
        if not hasattr(split, "__len__"):
            logger.info(f"split {name!r} is streamed: its labels are checked as it is read")
            continue
        values = split_label_values(split, spec, encoder.multi_label)
        unknown = _unknown(values, encoder)
        if unknown and encoder.multi_label:
            logger.warning(
                f"split {name!r}: {len(unknown)} label(s) not in the label map are ignored: {_shown(unknown)}"
            )
        elif unknown:
            problems.append(
                f"split {name!r} has label(s) {_shown(_named(unknown, _class_names(split, spec)))} that are not in the label map "
                f"({len(data.label_map)} classes from {spec.labels!r})"
            )
        ids = {encoder._id(value) for value in values if value not in unknown}
        if name == "train":
            training_ids = ids
        elif spec.labels == "dataset" and training_ids is not None and ids - training_ids:
            names = [data.label_map.names[index] for index in sorted(ids - training_ids)]
            problems.append(
                f"split {name!r} has class(es) {_shown(names)} with no training example (the label map is the "
                "dataset's own class list, over all splits: add training clips of them or remove them)"
            )
    if problems:
        raise LabelMismatch("labels do not match the label map: " + "; ".join(problems))
