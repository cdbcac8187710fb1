"""Model cards for trained models: README.md with Hub YAML metadata that `huggingface_hub.ModelCard.load` parses.

Metadata: `library_name: transformers` (the saved folder is a plain `transformers` model once
`spectrogram_transformers` is imported), `pipeline_tag: audio-classification`, tags naming the package, the
model family and the recipe, the dataset id, the metric names, a `model-index` with the evaluation results, and
`recipe` (its name; the body lists the recipe's settings and the main training arguments).
"""

import json
from pathlib import Path
from typing import Any

__all__ = ["usage_section", "write_conversion_model_card", "write_model_card"]

# metric key (without the eval_/test_ prefix) -> (model-index metric type, display name)
_REPORTED_METRICS = {
    "accuracy": ("accuracy", "Accuracy"),
    "mAP": ("mAP", "mean average precision"),
    "mAUC": ("roc_auc", "mean ROC AUC"),
    "d_prime": ("d_prime", "d-prime"),
}


def usage_section(model_name: str) -> str:
    """How to load the model: with plain transformers (the directory carries its code) and with the package."""
    return f"""## Use

With only `transformers` installed, the model's own code (saved beside the weights, see `auto_map` in
`config.json`) runs when you allow it:

```python
from transformers import pipeline

classifier = pipeline("audio-classification", model="{model_name}", trust_remote_code=True)
classifier("clip.wav")
```

With `pip install spectrogram-transformers`, the package's classes load it (no remote code runs):

```python
import spectrogram_transformers  # registers the model types with transformers' Auto classes
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

classifier = pipeline("audio-classification", model="{model_name}")
model = AutoModelForAudioClassification.from_pretrained("{model_name}")
feature_extractor = AutoFeatureExtractor.from_pretrained("{model_name}")
```

or `spectrogram-transformers classify clip.wav --model {model_name}` (sliding windows for long files).
"""


def write_conversion_model_card(
    output_dir: str | Path,
    *,
    model,
    source_format: str,
    checkpoint: str,
    base_model: str | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """`README.md` of a converted checkpoint: metadata for the Hub, where it came from, and how to load it."""
    from huggingface_hub import ModelCard, ModelCardData

    model_name = Path(output_dir).name or "model"
    is_classifier = type(model).__name__.endswith("ForAudioClassification")
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-classification" if is_classifier else None,
        tags=[
            "audio-classification",
            "spectrogram-transformers",
            model.config.model_type,
            f"converted-{source_format}",
        ],
        datasets=datasets or None,
        base_model=base_model if base_model and _is_hub_id(base_model) else None,
        model_name=model_name,
    )
    labels = getattr(model.config, "id2label", None) or {}
    body = f"""
# {model_name}

`{type(model).__name__}` converted by `spectrogram-transformers convert --source {source_format}` from
`{Path(checkpoint).name if Path(checkpoint).exists() else checkpoint}`: the same weights in this package's layout
({sum(p.numel() for p in model.parameters()):,} parameters, {len(labels)} labels).

{usage_section(model_name)}"""
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path


def _is_hub_id(source: str) -> bool:
    return "/" in source and not Path(source).exists() and source.count("/") == 1


def write_model_card(
    output_dir: str | Path,
    *,
    recipe,
    model_source: str,
    model_type: str,
    metrics: dict[str, Any],
    fold: int | None,
    dataset_id: str,
    training_arguments=None,
    family_name: str | None = None,
    num_train_examples: int | None = None,
) -> Path:
    """Write `<output_dir>/README.md`; returns its path."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    spec = recipe.dataset
    eval_results = []
    for prefix, split in (("eval", spec.splits.get("eval")), ("test", spec.splits.get("test"))):
        for key, (metric_type, metric_name) in _REPORTED_METRICS.items():
            value = metrics.get(f"{prefix}_{key}")
            if value is None:
                continue
            split_name = split if isinstance(split, str) else "+".join(split or [])
            if fold is not None:
                split_name = f"{split_name} (fold {fold})"
            eval_results.append(
                EvalResult(
                    task_type="audio-classification",
                    dataset_type=dataset_id,
                    dataset_name=dataset_id,
                    dataset_config=spec.hub_config,
                    dataset_split=split_name,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=float(value),
                )
            )
    model_name = Path(output_dir).name or "model"
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="audio-classification",
        tags=["audio-classification", "spectrogram-transformers", model_type, f"recipe-{recipe.name}"],
        datasets=[dataset_id],
        metrics=sorted({result.metric_type for result in eval_results}) or None,
        base_model=model_source if _is_hub_id(model_source) else None,
        model_name=model_name,
        eval_results=eval_results or None,
        recipe=recipe.name,
    )
    rows = "\n".join(
        f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |"
        for key, value in sorted(metrics.items())
        if key.startswith(("eval_", "test_", "train_skipped", "weight_averaged"))
    )
    family = recipe.families.get(family_name) if family_name else None
    settings = json.dumps(
        {
            "feature_extractor": family.feature_extractor,
            "model": family.model,
            "augmentation": family.augmentation_config.to_dict(),
            "loss": family.loss,
            "optimizer": family.optimizer,
            "schedule": family.schedule,
            "sampler": family.sampler,
            "weight_averaging": family.weight_averaging,
        }
        if family
        else {},
        indent=2,
    )
    arguments = ""
    if training_arguments is not None:
        keys = (
            "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
            "weight_decay", "adam_beta1", "adam_beta2", "warmup_steps", "seed",
        )  # fmt: skip
        arguments = "\n".join(f"- {key}: {getattr(training_arguments, key)}" for key in keys)
    fold_text = f", evaluation fold {fold}" if fold is not None else ""
    body = f"""
# {model_name}

An {model_type.upper()} audio classifier fine-tuned with the `spectrogram-transformers` package on `{dataset_id}` (recipe `{recipe.name}`{fold_text}), starting
from `{model_source}`.

{recipe.description}

{usage_section(model_name)}
## Results

| metric | value |
|---|---|
{rows}

## Training

Training examples: {num_train_examples if num_train_examples is not None else "unknown (streaming)"}.

{arguments}

Recipe settings for the `{family_name}` family:

```json
{settings}
```

References: {"; ".join(recipe.references) if recipe.references else "see the recipe file"}.
"""
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path
