"""`evaluate`: a model's metrics on a whole split (a recipe's, a local dataset's or a Hub dataset's), scored the way
`classify` scores files, on every rank of a `torchrun` / `accelerate launch` job.

Each clip gets the mean window probabilities of `AudioClassifier.classify` (one window, the model on the clip
itself, for clips no longer than the model's input), so the accuracy equals what `classify --output` rows on the
same files give. Ranks score their share through the archive runner (`spectrogram_transformers.archive`); the
probabilities are gathered and the metrics (`metrics.py`: accuracy; mAP, mean AUC, d-prime) computed once on rank
0 over the clips in dataset order, equal to a single-process run. Undecodable clips are counted, not scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..archive import ArchiveInput, DatasetSource, DistributedContext, run_archive
from ..archive.inputs import load_dataset_split
from ..inference import AudioClassifier, InferenceError
from .metrics import multi_label_metrics, single_label_metrics

__all__ = ["PAPER_RESULTS", "evaluate_model", "paper_result"]

# (family, recipe) -> (metric, the paper's single-model figure): AST (Gong et al., Interspeech 2021) Tables 1-3,
# HTS-AT (Chen et al., ICASSP 2022) Tables 1-2
PAPER_RESULTS: dict[tuple[str, str], tuple[str, float]] = {
    ("ast", "esc50"): ("accuracy", 0.956),
    ("ast", "speech-commands"): ("accuracy", 0.981),
    ("ast", "audioset-full"): ("mAP", 0.459),
    ("htsat", "esc50"): ("accuracy", 0.970),
    ("htsat", "speech-commands"): ("accuracy", 0.980),
    ("htsat", "audioset-full"): ("mAP", 0.471),
}


def paper_result(model_type: str | None, recipe_name: str | None) -> dict[str, Any] | None:
    found = PAPER_RESULTS.get((model_type or "", recipe_name or ""))
    if found is None:
        return None
    return {
        "metric": found[0],
        "value": found[1],
        "source": {"ast": "AST (Gong et al., 2021)", "htsat": "HTS-AT (Chen et al., 2022)"}[model_type],
    }


class ClipProbabilities:
    """Archive task: a clip's mean window probabilities (all classes, float32)."""

    def __init__(self, classifier: AudioClassifier, window: float | None, hop: float | None):
        self.classifier, self.window, self.hop = classifier, window, hop
        self.sampling_rate = classifier.sampling_rate

    def __call__(self, waveform: np.ndarray, item: ArchiveInput) -> dict[str, Any]:
        prediction = self.classifier.classify(
            waveform, name=item.name, top_k=1, window=self.window, hop=self.hop, progress=False
        )
        return {"probabilities": prediction.probabilities.mean(axis=0).astype(np.float32)}


def _split_and_targets(
    classifier: AudioClassifier, recipe, fold, data_dir, dataset_id, dataset_config, split, audio_column, label_column
):
    """(dataset split, audio column, targets: class ids (N,) or multi-hot (N, C), multi_label, recipe name)."""
    names = classifier.label_names
    if recipe is not None:
        from .dataset_loading import load_recipe_datasets
        from .recipe import Recipe, load_recipe

        recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
        data = load_recipe_datasets(
            recipe.dataset, fold=fold, data_dir=data_dir, dataset_id=dataset_id, dataset_config=dataset_config
        )
        split = split or ("test" if data.test is not None else "eval")
        dataset = {"eval": data.eval, "test": data.test}.get(split)
        if dataset is None:
            raise InferenceError(f"recipe {recipe.name!r} has no {split!r} split (use --split eval or test)")
        if names != list(data.label_map.names):
            raise InferenceError(
                f"{classifier.model.name_or_path} predicts other labels than recipe {recipe.name!r}'s {len(data.label_map.names)} classes"
            )
        labels = dataset.select_columns([recipe.dataset.label_column])[recipe.dataset.label_column]
        encoder = data.label_encoder
        targets = (encoder.multi_hot(labels) if encoder.multi_label else encoder.ids(labels)).numpy()
        return dataset, recipe.dataset.audio_column, targets, encoder.multi_label, recipe.name
    if fold is not None:
        raise InferenceError("--fold applies to a --recipe with folds")
    source = data_dir if data_dir is not None else dataset_id
    if source is None:
        raise InferenceError("give --recipe, --data-dir or --dataset")
    dataset = load_dataset_split(source, split or "test", config=dataset_config)
    if label_column not in dataset.column_names:
        raise InferenceError(
            f"the dataset has no label column {label_column!r} (columns: {dataset.column_names}); name it with --label-column"
        )
    feature = dataset.features[label_column]
    feature_names = getattr(getattr(feature, "feature", feature), "names", None)
    index_of = {name: index for index, name in enumerate(names)}

    def class_id(value) -> int:
        name = feature_names[value] if feature_names is not None and isinstance(value, (int, np.integer)) else value
        if isinstance(name, str):
            if name not in index_of:
                raise InferenceError(
                    f"label {name!r} is not one of the model's labels {names[:10]}{' ...' if len(names) > 10 else ''}"
                )
            return index_of[name]
        return int(name)

    values = dataset.select_columns([label_column])[label_column]
    multi_label = bool(values) and isinstance(values[0], (list, tuple))
    if multi_label:
        targets = np.zeros((len(values), len(names)), dtype=np.float32)
        for row, value in enumerate(values):
            targets[row, [class_id(v) for v in value]] = 1.0
    else:
        targets = np.array([class_id(value) for value in values], dtype=np.int64)
    return dataset, audio_column, targets, multi_label, None


def evaluate_model(
    model: str | Path,
    *,
    recipe=None,
    fold: int | None = None,
    data_dir: str | Path | None = None,
    dataset_id: str | None = None,
    dataset_config: str | None = None,
    split: str | None = None,
    audio_column: str = "audio",
    label_column: str = "label",
    batch_size: int = 16,
    device: str = "cpu",
    dtype: str = "auto",
    window: float | None = None,
    hop: float | None = None,
    num_workers: int = 1,
    progress: bool | None = None,
    context: DistributedContext | None = None,
) -> dict[str, Any] | None:
    """Metrics of `model` on a split: `accuracy` (single-label) or `mAP`, `mAUC`, `d_prime` (multi-label), with
    `num_clips`, `skipped_clips` and `paper` (the paper's figure for this recipe and family, or None). Returns the
    dict on rank 0 and None on the other ranks."""
    context = context or DistributedContext.from_environment()
    classifier = AudioClassifier(model, device=context.device_for(device), batch_size=batch_size, dtype=dtype)
    dataset, audio_column, targets, multi_label, recipe_name = _split_and_targets(
        classifier, recipe, fold, data_dir, dataset_id, dataset_config, split, audio_column, label_column
    )
    scores: dict[int, np.ndarray] = {}
    skipped: list[int] = []

    def collect(row: dict) -> None:
        if "error" in row:
            skipped.append(row["index"])
        else:
            scores[row["index"]] = row["probabilities"]

    run_archive(
        DatasetSource(dataset, audio_column), ClipProbabilities(classifier, window, hop), None,
        num_workers=num_workers, progress=progress, on_row=collect, context=context,
    )  # fmt: skip
    gathered = context.all_gather((scores, skipped))
    if not context.is_main:
        return None
    for rank_scores, _ in gathered[1:]:
        scores.update(rank_scores)
    skipped = sorted(index for _, rank_skipped in gathered for index in rank_skipped)
    order = sorted(scores)
    if not order:
        raise InferenceError(f"none of the {len(skipped)} clips could be decoded")
    probabilities = np.stack([scores[index] for index in order])
    metric_fn = multi_label_metrics if multi_label else single_label_metrics
    result: dict[str, Any] = dict(metric_fn(probabilities, targets[order]))
    result.update(
        num_clips=len(order), skipped_clips=len(skipped), recipe=recipe_name, model_type=classifier.config.model_type
    )
    result["paper"] = paper_result(classifier.config.model_type, recipe_name)
    return result
