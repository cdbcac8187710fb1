"""Loading a recipe's splits (`load_recipe_datasets`), with the audio left undecoded.

From the Hub (`recipe.dataset.hub_id`, optionally `streaming=True`) or from local files of the same schema
(`data_dir`): a `save_to_disk` directory, parquet shards (the Hub layout, or the recipe's `local_data_files` globs)
or an audio folder (split folders, class sub-folders and/or a metadata.csv, read here because `datasets`'
"audiofolder" builder needs TorchCodec). The audio column is cast to `Audio(decode=False)`, so `datasets` never
decodes (its decoder needs FFmpeg/TorchCodec): the collator decodes the raw bytes or files with soundfile.
Cross-validation folds and excluded labels (Speech Commands' `_silence_`) are filters on their columns.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, UserError
from .label_encoding import LabelEncoder
from .recipe import DatasetSpec, LabelMap, load_label_map

__all__ = ["AUDIO_EXTENSIONS", "PARQUET_CONVERSION_REVISION", "RecipeData", "load_recipe_datasets"]

_DEFAULT_SHUFFLE_BUFFER = 1000


class DatasetUnavailable(UserError, RuntimeError):
    """The Hub dataset could not be loaded (offline, a script dataset, a missing config)."""


@dataclass
class RecipeData:
    """What `load_recipe_datasets` returns: the splits, the classes and how labels are encoded."""

    train: Any
    eval: Any
    test: Any | None
    label_map: LabelMap
    label_encoder: LabelEncoder
    problem_type: str
    streaming: bool
    num_train_examples: int | None = None
    fold: int | None = None

    @property
    def id2label(self) -> dict[int, str]:
        return self.label_map.id2label

    @property
    def label2id(self) -> dict[str, int]:
        return self.label_map.label2id


def _as_list(splits: str | Sequence[str] | None) -> list[str]:
    if splits is None:
        return []
    return [splits] if isinstance(splits, str) else list(splits)


def _load_local(spec: DatasetSpec, data_dir: Path, streaming: bool) -> dict:
    """split name -> dataset, from a save_to_disk directory, parquet shards or an audio folder."""
    import datasets

    if not data_dir.exists():
        raise InvalidInputError(f"--data_dir {data_dir} does not exist")
    if (data_dir / "dataset_dict.json").is_file() or (data_dir / "state.json").is_file():
        loaded = datasets.load_from_disk(str(data_dir))
        if isinstance(loaded, datasets.Dataset):
            loaded = datasets.DatasetDict({"train": loaded})
        if streaming:
            return {name: split.to_iterable_dataset() for name, split in loaded.items()}
        return dict(loaded)
    if spec.local_data_files:
        data_files = {}
        for split, patterns in spec.local_data_files.items():
            matches = sorted(str(path) for pattern in _as_list(patterns) for path in data_dir.glob(pattern))
            if matches:
                data_files[split] = matches
        if data_files:
            builder = (
                "parquet"
                if all(name.endswith(".parquet") for files in data_files.values() for name in files)
                else None
            )
            if builder is None:
                raise InvalidInputError(f"local_data_files of the recipe must match parquet files, got {data_files}")
            return dict(datasets.load_dataset("parquet", data_files=data_files, streaming=streaming))
    if any(data_dir.rglob("*.parquet")):
        # the datasets library infers the splits from file/folder names (train-*.parquet, test/, ...)
        return dict(datasets.load_dataset(str(data_dir), streaming=streaming))
    if any(path.suffix.lower() in AUDIO_EXTENSIONS for path in data_dir.rglob("*")):
        return _load_audio_folder(data_dir, streaming)
    raise InvalidInputError(f"--data_dir {data_dir} holds no save_to_disk dataset, parquet shards or audio files")


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64")
_SPLIT_FOLDERS = ("train", "validation", "valid", "dev", "test", "eval")


def _load_audio_folder(data_dir: Path, streaming: bool) -> dict:
    """An audio folder, read without `datasets`' "audiofolder" builder (which needs TorchCodec even to store
    file paths): `<split>/<class>/<file>` (or `<class>/<file>`, then everything is "train"), labels from the
    class folder names as a `ClassLabel` named "label"; or a `metadata.csv` / `metadata.jsonl` per split with a
    `file_name` column (relative to the split folder) and any other columns (labels included)."""
    import datasets

    split_dirs = {
        path.name: path for path in sorted(data_dir.iterdir()) if path.is_dir() and path.name in _SPLIT_FOLDERS
    }
    if not split_dirs:
        split_dirs = {"train": data_dir}
    files = {
        name: sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS)
        for name, folder in split_dirs.items()
    }
    class_names = sorted(
        {
            path.relative_to(split_dirs[name]).parts[0]
            for name, paths in files.items()
            for path in paths
            if len(path.relative_to(split_dirs[name]).parts) > 1
        }
    )
    audio_storage = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    loaded = {}
    for name, folder in split_dirs.items():
        metadata = next(
            (folder / f"metadata.{ext}" for ext in ("csv", "jsonl") if (folder / f"metadata.{ext}").is_file()), None
        )
        if metadata is not None:
            table = datasets.load_dataset(
                "csv" if metadata.suffix == ".csv" else "json", data_files=str(metadata), split="train"
            )
            if "file_name" not in table.column_names:
                raise InvalidInputError(f"{metadata} needs a 'file_name' column")
            paths = [str((folder / file_name).resolve()) for file_name in table["file_name"]]
            split = table.remove_columns("file_name").add_column(
                "audio", [{"bytes": None, "path": path} for path in paths]
            )
            split = split.cast_column("audio", datasets.Features({"audio": audio_storage})["audio"])
        else:
            if not class_names:
                raise InvalidInputError(f"{folder}: put the clips in one sub-folder per class, or add a metadata.csv")
            rows = {
                "audio": [{"bytes": None, "path": str(path.resolve())} for path in files[name]],
                "label": [class_names.index(path.relative_to(folder).parts[0]) for path in files[name]],
            }
            features = datasets.Features({"audio": audio_storage, "label": datasets.ClassLabel(names=class_names)})
            split = datasets.Dataset.from_dict(rows, features=features)
        split = split.cast_column("audio", datasets.Audio(decode=False))
        loaded["validation" if name in ("valid", "dev") else name] = (
            split.to_iterable_dataset() if streaming else split
        )
    return loaded


# the branch where the Hub keeps its parquet conversion of every public dataset (script datasets included)
PARQUET_CONVERSION_REVISION = "refs/convert/parquet"


def _load_hub(spec: DatasetSpec, streaming: bool, dataset_id: str | None, dataset_config: str | None) -> dict:
    import datasets

    hub_id = dataset_id or spec.hub_id
    config = dataset_config if dataset_config is not None else spec.hub_config
    try:
        if spec.revision == PARQUET_CONVERSION_REVISION:
            # the Hub's parquet conversion of a (script) dataset: <config>/<split>/NNNN.parquet, no script to run
            loaded = datasets.load_dataset(hub_id, revision=spec.revision, data_dir=config, streaming=streaming)
        else:
            loaded = datasets.load_dataset(hub_id, config, revision=spec.revision, streaming=streaming)
    except Exception as error:  # the datasets library raises many types (connection, script, missing config)
        raise DatasetUnavailable(
            f"could not load {hub_id!r} (config {config!r}) from the Hub: {error}. Offline, or for script-based "
            "datasets (which datasets >= 4 no longer runs), pass --data_dir with local files of the same schema "
            "(parquet shards, a save_to_disk directory or an audio folder), or --dataset_id for a copy."
        ) from error
    return dict(loaded)


def _filter_values(dataset, column: str, values: Sequence, keep: bool):
    """Keep (or drop) the rows whose `column` is in `values`; reads only that column."""
    wanted = set(values)

    def predicate(batch_values):
        return [(value in wanted) == keep for value in batch_values]

    if column not in (dataset.column_names or []):
        raise InvalidInputError(f"column {column!r} is not in the dataset (columns: {dataset.column_names})")
    kwargs = {"keep_in_memory": True} if hasattr(dataset, "_data") else {}  # map-style: keep indices in memory
    return dataset.filter(predicate, input_columns=[column], batched=True, **kwargs)


def _concatenate(parts: list):
    import datasets

    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def load_recipe_datasets(
    spec: DatasetSpec,
    *,
    fold: int | None = None,
    data_dir: str | Path | None = None,
    streaming: bool = False,
    dataset_id: str | None = None,
    dataset_config: str | None = None,
    seed: int = 0,
    shuffle_buffer_size: int = _DEFAULT_SHUFFLE_BUFFER,
) -> RecipeData:
    """Load the train / eval / test splits of a recipe's dataset, filtered, with audio left undecoded.

    Args:
        spec: `recipe.dataset`.
        fold: for recipes with `folds` (ESC-50): the evaluation fold; training uses every other fold.
            Defaults to the first fold.
        data_dir: local files of the Hub schema instead of the Hub.
        streaming: `IterableDataset`s (the training split is shuffled with a buffer and `seed`); train with
            `max_steps`. Under several processes the Trainer splits the training stream by node.
        dataset_id, dataset_config: load another Hub dataset of the same schema.
    """
    import datasets

    raw = (
        _load_local(spec, Path(data_dir), streaming)
        if data_dir is not None
        else _load_hub(spec, streaming, dataset_id, dataset_config)
    )
    needed = {name for key in ("train", "eval", "test") for name in _as_list(spec.splits.get(key))}
    missing = sorted(needed - set(raw))
    if missing:
        raise InvalidInputError(
            f"the dataset has splits {sorted(raw)}, the recipe needs {sorted(needed)} (missing {missing})"
        )

    def prepared(names: list[str]):
        parts = []
        for name in names:
            part = raw[name]
            if spec.audio_column not in (part.column_names or []):
                raise InvalidInputError(
                    f"split {name!r} has no audio column {spec.audio_column!r} (columns: {part.column_names})"
                )
            if spec.label_column not in part.column_names:
                raise InvalidInputError(
                    f"split {name!r} has no label column {spec.label_column!r} (columns: {part.column_names})"
                )
            part = part.cast_column(spec.audio_column, datasets.Audio(decode=False))
            if spec.exclude is not None:
                part = _filter_values(part, spec.exclude["column"], spec.exclude["values"], keep=False)
            parts.append(part)
        return _concatenate(parts) if parts else None

    train, evaluation = prepared(_as_list(spec.splits["train"])), prepared(_as_list(spec.splits["eval"]))
    test = prepared(_as_list(spec.splits.get("test")))

    if spec.folds is not None:
        folds = list(spec.folds["values"])
        fold = folds[0] if fold is None else fold
        if fold not in folds:
            raise InvalidInputError(f"fold must be one of {folds}, got {fold}")
        train = _filter_values(train, spec.folds["column"], [fold], keep=False)
        evaluation = _filter_values(evaluation, spec.folds["column"], [fold], keep=True)
    elif fold is not None:
        raise InvalidInputError("this recipe has no folds; leave --fold out")

    features = train.features
    label_map = load_label_map(spec.labels, spec.label_key, features, spec.label_column)
    label_feature = features[spec.label_column] if features is not None else None
    dataset_names = getattr(getattr(label_feature, "feature", label_feature), "names", None)
    encoder = LabelEncoder(spec.label_format, label_map, dataset_names)

    num_train = None
    if streaming:
        train = train.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
        if spec.num_examples:
            counts = [spec.num_examples.get(name) for name in _as_list(spec.splits["train"])]
            if all(count is not None for count in counts) and spec.folds is None:
                num_train = int(sum(counts))
    else:
        num_train = len(train)
    return RecipeData(
        train=train,
        eval=evaluation,
        test=test,
        label_map=label_map,
        label_encoder=encoder,
        problem_type=spec.problem_type,
        streaming=streaming,
        num_train_examples=num_train,
        fold=fold,
    )
