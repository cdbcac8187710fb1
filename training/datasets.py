"""Datasets of the recipes (ESC-50, Speech Commands V2, AudioSet, or any recipe JSON) and the batch collator.

Loading (`load_recipe_datasets`): from the Hub (`recipe.dataset.hub_id`, optionally `streaming=True`) or from
local files of the same schema (`data_dir`): a `save_to_disk` directory, parquet shards (the Hub layout, or the
recipe's `local_data_files` globs) or an audio folder (split folders, class sub-folders and/or a metadata.csv,
read here because `datasets`' "audiofolder" builder needs TorchCodec). The audio column is cast to `Audio(decode=False)`, so `datasets` never decodes (its decoder
needs FFmpeg/TorchCodec): the collator decodes the raw bytes or files with soundfile and resamples them to the
feature extractor's rate. Cross-validation folds and excluded labels (Speech Commands' `_silence_`) are
filters on their columns. Label values are turned into class ids or multi-hot vectors by a `LabelEncoder`.

Collation (`AudioClassificationCollator`): decode -> labels -> one zero-padded waveform batch [B, S] with its
lengths (the batch's only padding) -> features from the feature extractor's tensor entry point `extract`
(evaluation, in the loader), or the padded batch itself for training, which `AugmentedFeaturizer` turns into
features inside the training step, on the training device: random crop to the extractor's `input_samples` ->
waveform mixup -> `extract` -> feature mixup, SpecAugment masks, noise, time shift (see `AugmentedFeaturizer`
for why there). A clip that cannot be decoded is skipped with a warning and counted; the count travels with the
batch (`num_skipped_clips`) so that `Trainer` can report it even when collation runs in dataloader worker
processes. An evaluation batch of only undecodable clips is empty (nothing is scored in their place).
"""

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..feature_extraction.audio import load_audio, resample, to_mono_float32
from ..feature_extraction.base import model_input_samples
from ..feature_extraction.kaldi import pad_batch
from .augment import (
    AugmentationConfig,
    additive_noise,
    label_frequency_weights,
    mix,
    mix_waveforms,
    random_crop,
    random_roll,
    sample_mixup,
    spec_augment,
)
from .recipe import DatasetSpec, LabelMap, load_label_map

__all__ = [
    "SKIPPED_CLIPS_KEY",
    "AudioClassificationCollator",
    "AugmentedFeaturizer",
    "LabelEncoder",
    "RecipeData",
    "decode_example_audio",
    "load_recipe_datasets",
    "model_input_samples",
    "pad_waveforms",
    "training_label_weights",
]

logger = logging.getLogger(__name__)

# batch key carrying how many clips of the batch could not be decoded (popped by the Trainer before the model)
SKIPPED_CLIPS_KEY = "num_skipped_clips"
_DEFAULT_SHUFFLE_BUFFER = 1000


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
        if label_format in ("id", "ids") and dataset_names is not None and list(dataset_names[: self.num_labels]) != list(label_map.names):
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
        raise FileNotFoundError(f"--data_dir {data_dir} does not exist")
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
            builder = "parquet" if all(name.endswith(".parquet") for files in data_files.values() for name in files) else None
            if builder is None:
                raise ValueError(f"local_data_files of the recipe must match parquet files, got {data_files}")
            return dict(datasets.load_dataset("parquet", data_files=data_files, streaming=streaming))
    if any(data_dir.rglob("*.parquet")):
        # the datasets library infers the splits from file/folder names (train-*.parquet, test/, ...)
        return dict(datasets.load_dataset(str(data_dir), streaming=streaming))
    if any(path.suffix.lower() in AUDIO_EXTENSIONS for path in data_dir.rglob("*")):
        return _load_audio_folder(data_dir, streaming)
    raise ValueError(f"--data_dir {data_dir} holds no save_to_disk dataset, parquet shards or audio files")


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64")
_SPLIT_FOLDERS = ("train", "validation", "valid", "dev", "test", "eval")


def _load_audio_folder(data_dir: Path, streaming: bool) -> dict:
    """An audio folder, read without `datasets`' "audiofolder" builder (which needs TorchCodec even to store
    file paths): `<split>/<class>/<file>` (or `<class>/<file>`, then everything is "train"), labels from the
    class folder names as a `ClassLabel` named "label"; or a `metadata.csv` / `metadata.jsonl` per split with a
    `file_name` column (relative to the split folder) and any other columns (labels included)."""
    import datasets

    split_dirs = {path.name: path for path in sorted(data_dir.iterdir()) if path.is_dir() and path.name in _SPLIT_FOLDERS}
    if not split_dirs:
        split_dirs = {"train": data_dir}
    files = {
        name: sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS)
        for name, folder in split_dirs.items()
    }
    class_names = sorted({path.relative_to(split_dirs[name]).parts[0] for name, paths in files.items() for path in paths if len(path.relative_to(split_dirs[name]).parts) > 1})
    audio_storage = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    loaded = {}
    for name, folder in split_dirs.items():
        metadata = next((folder / f"metadata.{ext}" for ext in ("csv", "jsonl") if (folder / f"metadata.{ext}").is_file()), None)
        if metadata is not None:
            table = datasets.load_dataset("csv" if metadata.suffix == ".csv" else "json", data_files=str(metadata), split="train")
            if "file_name" not in table.column_names:
                raise ValueError(f"{metadata} needs a 'file_name' column")
            paths = [str((folder / file_name).resolve()) for file_name in table["file_name"]]
            split = table.remove_columns("file_name").add_column("audio", [{"bytes": None, "path": path} for path in paths])
            split = split.cast_column("audio", datasets.Features({"audio": audio_storage})["audio"])
        else:
            if not class_names:
                raise ValueError(f"{folder}: put the clips in one sub-folder per class, or add a metadata.csv")
            rows = {
                "audio": [{"bytes": None, "path": str(path.resolve())} for path in files[name]],
                "label": [class_names.index(path.relative_to(folder).parts[0]) for path in files[name]],
            }
            features = datasets.Features({"audio": audio_storage, "label": datasets.ClassLabel(names=class_names)})
            split = datasets.Dataset.from_dict(rows, features=features)
        split = split.cast_column("audio", datasets.Audio(decode=False))
        loaded["validation" if name in ("valid", "dev") else name] = split.to_iterable_dataset() if streaming else split
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
        raise RuntimeError(
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
        raise ValueError(f"column {column!r} is not in the dataset (columns: {dataset.column_names})")
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

    raw = _load_local(spec, Path(data_dir), streaming) if data_dir is not None else _load_hub(spec, streaming, dataset_id, dataset_config)
    needed = {name for key in ("train", "eval", "test") for name in _as_list(spec.splits.get(key))}
    missing = sorted(needed - set(raw))
    if missing:
        raise ValueError(f"the dataset has splits {sorted(raw)}, the recipe needs {sorted(needed)} (missing {missing})")

    def prepared(names: list[str]):
        parts = []
        for name in names:
            part = raw[name]
            if spec.audio_column not in (part.column_names or []):
                raise ValueError(f"split {name!r} has no audio column {spec.audio_column!r} (columns: {part.column_names})")
            if spec.label_column not in part.column_names:
                raise ValueError(f"split {name!r} has no label column {spec.label_column!r} (columns: {part.column_names})")
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
            raise ValueError(f"fold must be one of {folds}, got {fold}")
        train = _filter_values(train, spec.folds["column"], [fold], keep=False)
        evaluation = _filter_values(evaluation, spec.folds["column"], [fold], keep=True)
    elif fold is not None:
        raise ValueError("this recipe has no folds; leave --fold out")

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


def training_label_weights(dataset, spec: DatasetSpec, encoder: LabelEncoder) -> np.ndarray:
    """AST's balanced-sampling weight of every training example (reads only the label column)."""
    if not hasattr(dataset, "__len__"):
        raise ValueError("the balanced sampler needs a map-style dataset (not --streaming): it weighs every example up front")
    labels = dataset.select_columns([spec.label_column])[spec.label_column]
    return label_frequency_weights(encoder.multi_hot(labels).numpy())


def decode_example_audio(value: Any, target_sr: float) -> np.ndarray:
    """One example's audio column -> mono float32 at `target_sr`.

    Accepts what `datasets` gives with `Audio(decode=False)` ({"bytes", "path"}), a path or bytes, or an
    already decoded {"array", "sampling_rate"}. Raises ValueError / FileNotFoundError for undecodable input.
    """
    if isinstance(value, dict) and value.get("array") is not None:
        if value.get("sampling_rate") is None:
            raise ValueError("a decoded audio dict needs its 'sampling_rate'")
        return resample(to_mono_float32(value["array"]), value["sampling_rate"], target_sr)
    waveform, _ = load_audio(value, target_sr=target_sr)
    return waveform


def pad_waveforms(waveforms: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """The one padding of a batch: zero-padded [B, longest] float32 and lengths [B] int64 (host tensors)."""
    if not waveforms:  # every clip of an evaluation batch undecodable: an empty batch, not an error
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return pad_batch([torch.as_tensor(waveform) for waveform in waveforms])


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

    def __init__(self, feature_extractor, augmentation: AugmentationConfig, generator: torch.Generator | None = None, input_name: str | None = None):
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
            partner, lam = sample_mixup(waveforms.shape[0], augmentation.mixup_prob, augmentation.mixup_alpha, augmentation.mixup_partner, self.generator)
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
                raise ValueError("mixup of labels needs soft (B, classes) labels: build the collator with soft_labels=True")
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
        repeat_last_clip_when_empty: when no clip of a batch decodes, repeat the last good clip instead of
            giving an empty batch (training, where an optimiser step needs data). Evaluation leaves it off, so
            every metric is computed on decodable clips only, each counted once.

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
    repeat_last_clip_when_empty: bool = False
    num_skipped: int = field(default=0, init=False)
    _fallback: dict | None = field(default=None, init=False, repr=False)

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
                warnings.warn(f"skipping a clip that cannot be decoded ({self.num_skipped} so far): {error}", stacklevel=2)
        skipped = len(rows) - len(kept)
        if not self.repeat_last_clip_when_empty:
            return waveforms, kept, skipped
        if kept:
            self._fallback = {"waveform": waveforms[-1], "row": kept[-1]}
        elif self._fallback is not None:
            # training: a batch of only corrupt clips repeats the last good clip rather than hand Trainer an
            # empty batch to step on
            waveforms, kept = [self._fallback["waveform"]], [self._fallback["row"]]
        else:
            raise ValueError(f"none of the {len(rows)} clips of the first batch could be decoded; check the audio column")
        return waveforms, kept, skipped

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
