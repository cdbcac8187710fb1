"""Training recipes as data: `training/recipes/<name>.json`, loaded and validated into dataclasses.

A recipe says where a dataset lives and what its columns mean (`dataset`), and, per model family (`ast`,
`htsat`; SSAST fine-tuning falls back to `ast` unless a recipe has an `ssast` entry), how the papers trained on
it: feature-extractor settings, model-geometry overrides, augmentation, loss, optimiser, learning-rate
schedule, sampler, batch size, weight averaging, and any `TrainingArguments` field. Nothing about a dataset or
a paper's hyper-parameters is a code branch: a new dataset is a new JSON file (`--recipe path/to/file.json`).

JSON schema (keys starting with "_" are comments and ignored):

```
{
  "name": str, "description": str, "references": [str, ...],
  "dataset": {
    "hub_id": str, "hub_config": str | null, "revision": str | null,
    "splits": {"train": str | [str, ...], "eval": str | [str, ...], "test": str | [str, ...] | null},
    "local_data_files": {split name: glob relative to --data_dir} | null,
    "audio_column": str, "label_column": str,
    "label_format": "id" | "name" | "ids" | "names",
    "labels": <label map in hub_configs/labels> | <CSV path> | "dataset" (the ClassLabel names),
    "label_key": "display_name" | "mid"   (label-map column that "name"/"names" values are matched against),
    "problem_type": "single_label_classification" | "multi_label_classification",
    "folds": {"column": str, "values": [int, ...]} | null,   (cross-validation: eval = one fold, train = rest)
    "exclude": {"column": str, "values": [...], "reason": str} | null,
    "num_examples": {split name: int} | null               (for per-epoch schedules when streaming)
  },
  "families": {
    "<family>": {
      "feature_extractor": {argument: value},   (passed to the feature extractor's from_pretrained)
      "model": {config field: value},           (e.g. max_length; AST adapts its positional embedding)
      "augmentation": {AugmentationConfig field: value},
      "loss": "ce" | "bce",
      "optimizer": "adam" | "adamw" | "trainer",
      "schedule": {"name": "epoch_step", "start_epoch": int, "every_epochs": int, "gamma": float}
                | {"name": "epoch_table", "table": [[first epoch, lr scale], ...]}
                | {"name": "trainer"},
      "sampler": "random" | "balanced",
      "global_train_batch_size": int | null,    (split over processes unless per_device_train_batch_size is set)
      "weight_averaging": {"start_epoch": int, "end_epoch": int} | null,
      "training_arguments": {TrainingArguments field: value}
    }
  }
}
```
"""

import csv
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from .augment import AugmentationConfig

__all__ = [
    "RECIPES_DIR",
    "DatasetSpec",
    "FamilySpec",
    "LabelMap",
    "Recipe",
    "family_of_model_type",
    "list_recipes",
    "load_label_map",
    "load_recipe",
]

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")
LABEL_FORMATS = ("id", "name", "ids", "names")
# model_type -> recipe family. SSAST fine-tunes like AST unless a recipe has its own "ssast" entry.
_FAMILY_FALLBACKS = {"ssast": ("ssast", "ast"), "ast": ("ast",), "htsat": ("htsat",)}


def _strip_comments(values: dict) -> dict:
    return {key: value for key, value in values.items() if not key.startswith("_")}


def _from_dict(cls, values: dict, where: str):
    values = _strip_comments(values)
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(known)}")
    return cls(**values)


@dataclass
class DatasetSpec:
    """Where a dataset lives and what its columns mean (see the module docstring for every key)."""

    hub_id: str
    splits: dict[str, str | list[str] | None]
    audio_column: str = "audio"
    label_column: str = "label"
    label_format: Literal["id", "name", "ids", "names"] = "id"
    labels: str = "dataset"
    label_key: str = "display_name"
    problem_type: Literal["single_label_classification", "multi_label_classification"] = "single_label_classification"
    hub_config: str | None = None
    revision: str | None = None
    local_data_files: dict[str, str | list[str]] | None = None
    folds: dict[str, Any] | None = None
    exclude: dict[str, Any] | None = None
    num_examples: dict[str, int] | None = None

    def __post_init__(self):
        for name in ("splits", "local_data_files", "folds", "exclude", "num_examples"):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, _strip_comments(getattr(self, name)))
        if "train" not in self.splits or "eval" not in self.splits:
            raise ValueError(f"dataset.splits needs 'train' and 'eval' entries, got {sorted(self.splits)}")
        if self.label_format not in LABEL_FORMATS:
            raise ValueError(f"dataset.label_format must be one of {LABEL_FORMATS}, got {self.label_format!r}")
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"dataset.problem_type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        multi = self.label_format in ("ids", "names")
        if multi != (self.problem_type == "multi_label_classification"):
            raise ValueError(
                f"label_format {self.label_format!r} does not fit problem_type {self.problem_type!r}: "
                "lists of labels ('ids'/'names') are multi-label, single values ('id'/'name') single-label"
            )
        if self.folds is not None and not {"column", "values"} <= set(self.folds):
            raise ValueError("dataset.folds needs 'column' and 'values'")
        if self.exclude is not None and not {"column", "values"} <= set(self.exclude):
            raise ValueError("dataset.exclude needs 'column' and 'values'")

    @property
    def multi_label(self) -> bool:
        return self.problem_type == "multi_label_classification"


@dataclass
class FamilySpec:
    """How one model family is trained on the recipe's dataset (see the module docstring)."""

    feature_extractor: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    augmentation: dict[str, Any] = field(default_factory=dict)
    loss: Literal["ce", "bce"] | None = None
    optimizer: Literal["adam", "adamw", "trainer"] = "trainer"
    schedule: dict[str, Any] = field(default_factory=lambda: {"name": "trainer"})
    sampler: Literal["random", "balanced"] = "random"
    global_train_batch_size: int | None = None
    weight_averaging: dict[str, int] | None = None
    training_arguments: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.feature_extractor = _strip_comments(self.feature_extractor)
        self.model = _strip_comments(self.model)
        self.training_arguments = _strip_comments(self.training_arguments)
        self.augmentation_config = AugmentationConfig.from_dict(_strip_comments(self.augmentation))
        if self.loss not in (None, "ce", "bce"):
            raise ValueError(f"loss must be 'ce' or 'bce', got {self.loss!r}")
        if self.optimizer not in ("adam", "adamw", "trainer"):
            raise ValueError(f"optimizer must be 'adam', 'adamw' or 'trainer', got {self.optimizer!r}")
        if self.sampler not in ("random", "balanced"):
            raise ValueError(f"sampler must be 'random' or 'balanced', got {self.sampler!r}")
        self.schedule = _strip_comments(self.schedule)
        name = self.schedule.get("name")
        if name == "epoch_step":
            missing = {"start_epoch", "every_epochs", "gamma"} - set(self.schedule)
            if missing:
                raise ValueError(f"schedule 'epoch_step' needs {sorted(missing)}")
        elif name == "epoch_table":
            table = self.schedule.get("table")
            if not table or any(len(row) != 2 for row in table) or table[0][0] != 0:
                raise ValueError("schedule 'epoch_table' needs 'table': [[0, scale], [first epoch, scale], ...]")
        elif name != "trainer":
            raise ValueError(f"schedule name must be 'epoch_step', 'epoch_table' or 'trainer', got {name!r}")
        if self.weight_averaging is not None:
            start, end = self.weight_averaging.get("start_epoch"), self.weight_averaging.get("end_epoch")
            if not (isinstance(start, int) and isinstance(end, int) and 1 <= start <= end):
                raise ValueError("weight_averaging needs integer 1 <= start_epoch <= end_epoch")


@dataclass
class Recipe:
    name: str
    dataset: DatasetSpec
    families: dict[str, FamilySpec]
    description: str = ""
    references: list[str] = field(default_factory=list)
    source: str | None = None  # the JSON file it came from

    def family(self, model_type: str) -> tuple[str, FamilySpec]:
        """The family entry for a model type (`ssast` falls back to `ast`)."""
        for candidate in family_of_model_type(model_type):
            if candidate in self.families:
                return candidate, self.families[candidate]
        raise ValueError(
            f"recipe {self.name!r} has no settings for model type {model_type!r}; it covers {sorted(self.families)}"
        )

    def to_dict(self) -> dict:
        with open(self.source, encoding="utf-8") as handle:
            return json.load(handle)


def family_of_model_type(model_type: str) -> tuple[str, ...]:
    return _FAMILY_FALLBACKS.get(model_type, (model_type,))


def list_recipes() -> list[str]:
    """Names of the shipped recipes (`training/recipes/*.json`)."""
    return sorted(path.stem for path in RECIPES_DIR.glob("*.json"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name (`esc50`, `speech-commands`, ...) or a recipe JSON file."""
    path = Path(name_or_path)
    if not path.is_file():
        path = RECIPES_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ValueError(f"unknown recipe {str(name_or_path)!r}: not a file, and shipped recipes are {list_recipes()}")
    with open(path, encoding="utf-8") as handle:
        values = _strip_comments(json.load(handle))
    unknown = sorted(set(values) - {"name", "description", "references", "dataset", "families"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}")
    if not values.get("families"):
        raise ValueError(f"{path}: a recipe needs at least one entry in 'families'")
    return Recipe(
        name=values.get("name", path.stem),
        description=values.get("description", ""),
        references=list(values.get("references", [])),
        dataset=_from_dict(DatasetSpec, values["dataset"], f"{path}: dataset"),
        families={
            name: _from_dict(FamilySpec, spec, f"{path}: families.{name}")
            for name, spec in _strip_comments(values["families"]).items()
        },
        source=str(path),
    )


@dataclass
class LabelMap:
    """Class ids and names, plus the key values (e.g. AudioSet MIDs) that dataset labels are written in."""

    names: list[str]
    keys: list[str]

    def __post_init__(self):
        if len(self.names) != len(self.keys) or not self.names:
            raise ValueError("a label map needs as many keys as names, and at least one class")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("label-map keys must be unique")

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.names)}

    @property
    def key2id(self) -> dict[str, int]:
        return {key: index for index, key in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.names)


def load_label_map(
    spec: str, label_key: str = "display_name", dataset_features=None, label_column: str | None = None
) -> LabelMap:
    """The recipe's label map.

    `spec` is a CSV in the original repos' `class_labels_indices.csv` layout (index,mid,display_name): a bare
    name looks in `hub_configs/labels/`. `"dataset"` takes the names of the label column's `ClassLabel` (for a
    list column, of its inner `ClassLabel`).
    """
    if spec == "dataset":
        if dataset_features is None or label_column not in dataset_features:
            raise ValueError(f"labels 'dataset' needs a ClassLabel column {label_column!r} in the dataset")
        feature = dataset_features[label_column]
        feature = getattr(feature, "feature", feature)  # Sequence/List(ClassLabel)
        names = getattr(feature, "names", None)
        if not names:
            raise ValueError(
                f"column {label_column!r} is {feature!r}, not a ClassLabel: give the recipe a label CSV in 'labels'"
            )
        return LabelMap(names=list(names), keys=list(names))

    from ..hub_configs import LABELS_DIR

    path = Path(spec)
    if not path.is_file():
        path = LABELS_DIR / f"{spec}.csv"
    if not path.is_file():
        hint = (
            " The AudioSet ontology's 527-class map is not shipped with this package: pass the "
            "class_labels_indices.csv from the AudioSet download page (or the original AST repository's "
            "egs/audioset/data/) with --labels."
            if spec == "audioset"
            else ""
        )
        raise ValueError(
            f"label map {spec!r} is neither a CSV file nor one of {sorted(p.stem for p in LABELS_DIR.glob('*.csv'))}.{hint}"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"index", label_key, "display_name"} <= set(rows[0]):
        raise ValueError(f"{path} must be a CSV with columns index,mid,display_name (needs {label_key!r})")
    rows.sort(key=lambda row: int(row["index"]))
    if [int(row["index"]) for row in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: label indices must be 0..{len(rows) - 1} without gaps")
    return LabelMap(names=[row["display_name"] for row in rows], keys=[row[label_key] for row in rows])
