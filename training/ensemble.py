"""Ensembles: average the class probabilities of several trained models on a recipe's evaluation data.

    spectrogram-transformers ensemble --models run1 run2 run3 --recipe audioset-balanced --data_dir LOCAL

Each model uses its own feature extractor (so models trained with different settings can be combined); their
label sets must be the recipe's. Probabilities are sigmoids for multi-label models and softmaxes otherwise, as
the AST and HTS-AT ensembles average model outputs. Prints every model's metrics and the ensemble's, and where
each model comes from (`provenance`: the run id and step of its trainer_state.json).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidInputError
from .checkpoints import (
    IncompleteCheckpointError,
    checkpoint_step,
    incomplete_reason,
    read_trainer_state,
    run_id_of,
)
from .datasets import AudioClassificationCollator, load_recipe_datasets
from .metrics import multi_label_metrics, single_label_metrics
from .recipe import Recipe, load_recipe

__all__ = ["ensemble_evaluate", "model_provenance", "predict_probabilities"]


def predict_probabilities(
    model, feature_extractor, dataset, collator_kwargs: dict, batch_size: int = 16, device: str = "cpu"
):
    """(probabilities (N, C), labels) of a model over a map-style or iterable dataset (no augmentation)."""
    from torch.utils.data import DataLoader

    collator = AudioClassificationCollator(feature_extractor, augmentation=None, **collator_kwargs)
    input_name = collator.input_name
    multi_label = model.config.problem_type == "multi_label_classification"
    model = model.to(device).eval()
    scores, labels = [], []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
            logits = model(**{input_name: batch[input_name].to(device)}).logits.float()
            scores.append((torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)).cpu().numpy())
            labels.append(batch["labels"].numpy())
    return np.concatenate(scores), np.concatenate(labels), collator.num_skipped


def model_provenance(path: str | Path) -> dict:
    """Which run and step a model folder comes from (its trainer_state.json), so an ensemble says what it used.
    A `checkpoint-<step>` folder of an interrupted save is refused."""
    path = Path(path)
    if checkpoint_step(path) is not None and (reason := incomplete_reason(path)) is not None:
        raise IncompleteCheckpointError(f"{path} is not a complete checkpoint: {reason}")
    state = read_trainer_state(path) if path.is_dir() else None
    if state is None:
        return {}
    return {"run_id": run_id_of(state), "global_step": state.get("global_step"), "epoch": state.get("epoch")}


def ensemble_evaluate(
    models: Sequence[str | Path],
    recipe: str | Recipe,
    *,
    split: str = "eval",
    fold: int | None = None,
    data_dir: str | Path | None = None,
    dataset_id: str | None = None,
    dataset_config: str | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> dict:
    """Metrics of each model and of the mean of their probabilities on the recipe's `split` ("eval"/"test")."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    if len(models) < 1:
        raise ValueError("give at least one model")
    provenance = {str(path): model_provenance(path) for path in models}  # before any data is read
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    data = load_recipe_datasets(
        recipe.dataset, fold=fold, data_dir=data_dir, dataset_id=dataset_id, dataset_config=dataset_config
    )
    dataset = data.eval if split == "eval" else data.test
    if dataset is None:
        raise ValueError(f"recipe {recipe.name!r} has no {split!r} split")
    metric_fn = multi_label_metrics if data.label_encoder.multi_label else single_label_metrics
    collator_kwargs = {
        "label_encoder": data.label_encoder,
        "audio_column": recipe.dataset.audio_column,
        "label_column": recipe.dataset.label_column,
    }
    results, all_scores, labels, skipped = {"models": {}, "provenance": provenance}, [], None, 0
    for path in models:
        model = AutoModelForAudioClassification.from_pretrained(str(path))
        names = [model.config.id2label[index] for index in range(model.config.num_labels)]
        if names != data.label_map.names:
            raise InvalidInputError(
                f"{path} predicts other labels than the recipe's {len(data.label_map)} classes ({len(names)} labels: "
                f"{', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); ensemble models trained on this recipe's labels"
            )
        feature_extractor = AutoFeatureExtractor.from_pretrained(str(path))
        scores, labels, skipped = predict_probabilities(
            model, feature_extractor, dataset, collator_kwargs, batch_size, device
        )
        all_scores.append(scores)
        results["models"][str(path)] = metric_fn(scores, labels)
    results["ensemble"] = metric_fn(np.mean(all_scores, axis=0), labels)
    results["num_models"] = len(models)
    results["skipped_clips"] = skipped
    return results
