"""`spectrogram-transformers train`: fine-tune AST / SSAST / HTS-AT with a recipe, on `transformers.Trainer`.

    spectrogram-transformers train --recipe esc50 --model ast-base-f10-t10-512-esc50 --fold all
    spectrogram-transformers train --recipe speech-commands --model DIR --data_dir LOCAL --num_train_epochs 3
    torchrun --nproc_per_node 2 -m spectrogram_transformers train --recipe ... --ddp_backend gloo
    accelerate launch --multi_gpu --num_processes 2 -m spectrogram_transformers train --recipe ...

The recipe (`training/recipes/*.json`, or a JSON path) gives the dataset and, for the model's family, the
papers' hyper-parameters; every `TrainingArguments` field can be overridden on the command line
(`--learning_rate 1e-4`, `--max_steps 100`, `--push_to_hub --hub_model_id me/ast-esc50`, ...). The run ends by
evaluating (and testing, where the recipe has a test split), weight-averaging checkpoints where the recipe says
so, saving the model, its feature extractor and a model card to `--output_dir`, and printing the metrics.

Distributed runs: `torchrun` / `accelerate launch` set the process group environment that `TrainingArguments`
reads; nothing else is needed. Without GPUs several processes run CPU DDP over gloo (`use_cpu` is set for
them; `accelerate launch --multi_gpu --num_processes N` is accelerate's way to start N processes, also on CPU).
Streaming training data is split between processes with `datasets.distributed.split_dataset_by_node` (each
process decodes only its own share).
"""

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, TrainingArguments
from transformers.utils import logging

from ..errors import InvalidInputError
from .checkpoints import (
    RunIdentity,
    check_output_dir,
    checkpoint_step,
    clear_previous_run,
    read_trainer_state,
    remove_incomplete_checkpoints_after,
    resolve_resume_checkpoint,
    run_id_of,
)
from .datasets import (
    AudioClassificationCollator,
    AugmentedFeaturizer,
    RecipeData,
    load_recipe_datasets,
    training_label_weights,
)
from .lora import LoraSettings, apply_lora, is_lora_model, save_lora_model
from .metrics import build_compute_metrics
from .recipe import FamilySpec, Recipe, load_recipe
from .trainer import AudioClassificationTrainer

__all__ = [
    "AudioClassificationTrainer",
    "TrainingRun",
    "build_training_arguments",
    "load_model_and_feature_extractor",
    "run_cross_validation",
    "run_training",
    "split_global_batch",
]

logger = logging.get_logger(__name__)

# where a run goes without --output_dir: outputs/<recipe>-<model>[/fold<k>]
_DEFAULT_OUTPUT_ROOT = Path("outputs")


def _resolve_model_source(model: str) -> tuple[str, bool]:
    """(path or hub id, has_weights). A shipped variant name gives its config folder (random initialisation)."""
    from ..hub_configs import list_variants, variant_dir

    if model in list_variants():
        return str(variant_dir(model)), False
    path = Path(model)
    if path.is_dir():
        weights = any(
            (path / name).exists()
            for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
        )
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} has no config.json: not a model directory")
        return str(path), weights
    return model, True  # a Hub id


def load_model_and_feature_extractor(
    model: str,
    recipe: Recipe,
    label_map,
    family: FamilySpec | None = None,
):
    """The model to fine-tune and its feature extractor, set up for the recipe.

    `model` is a shipped variant (`hub_configs`, randomly initialised), a model directory or a Hub id. The
    classification head gets the recipe's labels (a new head when their number changes), the config the
    recipe's problem type and model overrides (e.g. AST `max_length`, whose positional embedding is then cut or
    interpolated), the feature extractor the recipe's settings. Returns (model, feature_extractor, family name).
    """
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModelForAudioClassification,
    )

    source, has_weights = _resolve_model_source(model)
    base_config = AutoConfig.from_pretrained(source)
    family_name, family_spec = recipe.family(base_config.model_type)
    family = family or family_spec
    label_kwargs = {
        "num_labels": len(label_map),
        "id2label": label_map.id2label,
        "label2id": label_map.label2id,
        "problem_type": recipe.dataset.problem_type,
    }
    for key in family.model:
        if not hasattr(base_config, key):
            raise ValueError(f"recipe model setting {key!r} is not a field of {type(base_config).__name__}")
    if has_weights:
        network = AutoModelForAudioClassification.from_pretrained(
            source, ignore_mismatched_sizes=True, **label_kwargs, **family.model
        )
    else:
        config = AutoConfig.from_pretrained(source, **label_kwargs, **family.model)
        network = AutoModelForAudioClassification.from_config(config)

    # (AutoFeatureExtractor cannot return unused kwargs: it hands return_unused_kwargs to AutoConfig too)
    extractor_class = type(AutoFeatureExtractor.from_pretrained(source))
    feature_extractor, unused = extractor_class.from_pretrained(
        source, return_unused_kwargs=True, **family.feature_extractor
    )
    if unused:
        raise ValueError(
            f"recipe feature-extractor settings {sorted(unused)} are not arguments of {type(feature_extractor).__name__}"
        )
    for name in ("max_length", "num_mel_bins"):
        expected = getattr(network.config, name, None)
        actual = getattr(feature_extractor, name, None)
        if expected is not None and actual is not None and expected != actual:
            raise ValueError(
                f"the feature extractor gives {name}={actual} but the model expects {expected}; set both in the recipe "
                f"(families.{family_name}.feature_extractor and .model) or override them together"
            )
    return network, feature_extractor, family_name


def _tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def split_global_batch(global_batch: int, processes: int, accumulation: int = 1) -> int:
    """Per-device batch that gives the papers' global batch over `processes` x `accumulation` (at least 1)."""
    per_device = max(1, global_batch // (processes * accumulation))
    if per_device * processes * accumulation != global_batch:
        logger.warning(
            f"global batch {global_batch} does not split evenly over {processes} process(es) x {accumulation} "
            f"accumulation step(s); using {per_device} per device"
        )
    return per_device


def build_training_arguments(
    family: FamilySpec,
    overrides: dict[str, Any],
    output_dir: str | Path,
    *,
    streaming: bool = False,
    num_train_examples: int | None = None,
) -> tuple[TrainingArguments, int | None]:
    """TrainingArguments = our defaults < the recipe's `training_arguments` < command-line `overrides`.

    The recipe's `global_train_batch_size` (the papers' batch over all GPUs) becomes the per-device batch size
    over `WORLD_SIZE` processes and gradient accumulation, unless `per_device_train_batch_size` is given.
    Streaming data has no epochs: evaluation/saving go by steps, and `max_steps` is derived from the recipe's
    epochs and `num_examples` when not given. Returns (arguments, steps per epoch or None).
    """
    values: dict[str, Any] = {
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_strategy": "steps",
        "logging_steps": 50,
        "remove_unused_columns": False,  # the collator needs the raw audio and label columns
        "label_names": ["labels"],
        "report_to": ["tensorboard"] if _tensorboard_available() else "none",
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
        "seed": 42,
    }
    if _world_size() > 1 and not torch.cuda.is_available():
        # several CPU processes (torchrun/accelerate without GPUs): accelerate only sets up multi-CPU DDP
        # (gloo) when told it runs on CPU; otherwise every process would silently train on its own
        values["use_cpu"] = True
    values.update(family.training_arguments)
    values.update(overrides)
    values["output_dir"] = str(output_dir)

    if "per_device_train_batch_size" not in overrides and family.global_train_batch_size:
        accumulation = int(values.get("gradient_accumulation_steps", 1))
        values["per_device_train_batch_size"] = split_global_batch(
            family.global_train_batch_size, _world_size(), accumulation
        )

    steps_per_epoch = None
    if streaming:
        batch = (
            int(values.get("per_device_train_batch_size", 8))
            * _world_size()
            * int(values.get("gradient_accumulation_steps", 1))
        )
        if num_train_examples:
            steps_per_epoch = max(1, math.ceil(num_train_examples / batch))
        if int(values.get("max_steps", -1)) <= 0:
            if steps_per_epoch is None:
                raise ValueError(
                    "streaming training needs --max_steps (the recipe does not give the training-set size)"
                )
            values["max_steps"] = int(math.ceil(float(values.get("num_train_epochs", 1)) * steps_per_epoch))
        if (
            overrides.get("eval_strategy", values["eval_strategy"]) == "epoch"
            or overrides.get("save_strategy", values["save_strategy"]) == "epoch"
        ):
            interval = steps_per_epoch or max(1, int(values["max_steps"]))
            for prefix in ("eval", "save"):
                if values.get(f"{prefix}_strategy") == "epoch":
                    values[f"{prefix}_strategy"] = "steps"
                    values.setdefault(f"{prefix}_steps", interval)
    return TrainingArguments(**values), steps_per_epoch


@dataclass(frozen=True)
class TrainingRun:
    """What one fine-tuning run is given, built once (`TrainingRun.of`, by `train` on the command line or by
    `run_training`'s keywords) and handed whole to the steps that need it, instead of threading its fields.

    `training_overrides` are `TrainingArguments` fields only: the output directory, overwriting and resuming are
    this object's (`output_dir`, `overwrite_output_dir`, and `resume_from_checkpoint` read by `run_training`).
    """

    recipe: Recipe
    model: str  # shipped variant name, model directory or Hub id
    output_dir: str | Path
    fold: int | None = None
    data_dir: str | Path | None = None  # local files of the recipe's schema instead of the Hub
    streaming: bool = False
    dataset_id: str | None = None  # another Hub dataset with the recipe's schema
    dataset_config: str | None = None
    sampler: str | None = None
    training_overrides: Mapping[str, Any] = field(default_factory=dict)
    overwrite_output_dir: bool = False
    lora: LoraSettings | None = None

    @property
    def seed(self) -> int:
        return int(self.training_overrides.get("seed", 42))

    @property
    def card_dataset_id(self) -> str | None:
        """The dataset the model card names: `dataset_id` or the recipe's Hub dataset."""
        return self.dataset_id or self.recipe.dataset.hub_id

    @classmethod
    def of(
        cls,
        recipe: str | Recipe,
        model: str,
        *,
        output_dir: str | Path | None = None,
        fold: int | None = None,
        data_dir: str | Path | None = None,
        streaming: bool = False,
        dataset_id: str | None = None,
        dataset_config: str | None = None,
        sampler: str | None = None,
        training_overrides: Mapping[str, Any] | None = None,
        overwrite_output_dir: bool = False,
        lora: LoraSettings | None = None,
    ) -> "TrainingRun":
        """The run of `run_training`'s arguments (see there): the recipe loaded, `output_dir` taken from the
        overrides or defaulted to outputs/<recipe>-<model>[/fold<k>]."""
        recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
        overrides = dict(training_overrides or {})
        if "overwrite_output_dir" in overrides:
            raise ValueError("overwrite_output_dir is not a TrainingArguments field: pass overwrite_output_dir=True")
        given_output_dir = overrides.pop("output_dir", None)
        if output_dir is None:
            output_dir = given_output_dir or _DEFAULT_OUTPUT_ROOT / f"{recipe.name}-{Path(model).name}" / (
                f"fold{fold}" if fold is not None else ""
            )
        return cls(
            recipe=recipe, model=model, output_dir=output_dir, fold=fold, data_dir=data_dir, streaming=streaming,
            dataset_id=dataset_id, dataset_config=dataset_config, sampler=sampler, training_overrides=overrides,
            overwrite_output_dir=overwrite_output_dir, lora=lora,
        )  # fmt: skip


@dataclass
class _FineTuningModel:
    """What `_load_model` gives the trainer: the network, its feature extractor and the recipe family's settings."""

    network: PreTrainedModel
    feature_extractor: Any
    family_name: str
    family: FamilySpec
    loss_type: str


def _load_data(run: TrainingRun) -> RecipeData:
    """The recipe's splits, with every split's labels checked against the label map before any training step."""
    from .label_check import check_split_labels

    data = load_recipe_datasets(
        run.recipe.dataset,
        fold=run.fold,
        data_dir=run.data_dir,
        streaming=run.streaming,
        dataset_id=run.dataset_id,
        dataset_config=run.dataset_config,
        seed=run.seed,
    )
    check_split_labels(data, run.recipe.dataset)
    _check_trainable(data, run.recipe)
    return data


def _check_trainable(data: RecipeData, recipe: Recipe) -> None:
    """Refuse data that can only train a meaningless model: an empty training split, or single-label data with
    one class (a 1-output softmax is always 1.0: loss 0 and accuracy 1 whatever the audio)."""
    if data.num_train_examples == 0:
        raise InvalidInputError("the training split has no examples; check --data_dir or the recipe's splits")
    if data.label_encoder.multi_label:
        return
    if len(data.label_map) < 2:
        raise InvalidInputError(
            f"the data has a single class ({', '.join(data.label_map.names)}): single-label training needs at least "
            "two classes (a one-class softmax scores 1.0 for any audio); add clips of other classes"
        )
    if not data.streaming:  # map-style: reading the label column is cheap
        column = recipe.dataset.label_column
        present = {str(value) for value in data.train.select_columns([column])[column]}
        if len(present) < 2:
            raise InvalidInputError(
                f"every training example has the same label ({', '.join(present)}): single-label training needs at "
                "least two classes in the training split"
            )


def _check_learning_rate(overrides: dict[str, Any]) -> None:
    """A NaN, infinite or non-positive --learning_rate is a user error, said before any data or model loads."""
    if "learning_rate" not in overrides:
        return
    value = float(overrides["learning_rate"])
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"--learning_rate must be a finite number > 0, got {overrides['learning_rate']!r}")


def _load_model(model: str, recipe: Recipe, data: RecipeData, seed: int) -> _FineTuningModel:
    """The network and feature extractor for the recipe's labels, and the loss its family and labels need."""
    # seed before the model exists: a new classification head is initialised randomly, and the run must
    # depend on --seed only, not on what the process did before (Trainer seeds again in its constructor)
    from transformers import set_seed

    set_seed(seed)
    network, feature_extractor, family_name = load_model_and_feature_extractor(model, recipe, data.label_map)
    family = recipe.family(network.config.model_type)[1]
    loss_type = family.loss or ("bce" if data.label_encoder.multi_label else "ce")
    if data.label_encoder.multi_label and loss_type != "bce":
        raise ValueError("multi-label recipes need loss 'bce'")
    return _FineTuningModel(network, feature_extractor, family_name, family, loss_type)


def _build_trainer(
    run: TrainingRun,
    data: RecipeData,
    loaded: _FineTuningModel,
    arguments: TrainingArguments,
    steps_per_epoch: int | None,
    callbacks: list | None,
) -> AudioClassificationTrainer:
    """Collators (decoding only for training; features for evaluation), sampler and the trainer."""
    recipe, family, feature_extractor = run.recipe, loaded.family, loaded.feature_extractor
    augmentation = family.augmentation_config
    sampler = run.sampler or family.sampler
    sample_weights = None
    if sampler == "balanced":
        if data.streaming:
            raise ValueError("the balanced sampler needs a map-style dataset; with --streaming use --sampler random")
        sample_weights = training_label_weights(data.train, recipe.dataset, data.label_encoder)

    # the loader only decodes; crops, mixup, features and masks happen in the training step (AugmentedFeaturizer)
    train_collator = AudioClassificationCollator(
        feature_extractor,
        data.label_encoder,
        recipe.dataset.audio_column,
        recipe.dataset.label_column,
        return_waveforms=True,
        soft_labels=(augmentation.uses_mixup and augmentation.mixup_labels) or loaded.loss_type == "bce",
    )
    # evaluation: the same decode -> pad once -> `extract`, in the loader: fixed-shape feature batches, which
    # accelerate can concatenate when it dispatches a streamed evaluation set over processes; undecodable clips
    # are dropped (never replaced), so metrics cover decodable clips only
    eval_collator = AudioClassificationCollator(
        feature_extractor,
        data.label_encoder,
        recipe.dataset.audio_column,
        recipe.dataset.label_column,
        augmentation=None,
    )
    return AudioClassificationTrainer(
        model=loaded.network,
        args=arguments,
        data_collator=train_collator,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=feature_extractor,
        compute_metrics=build_compute_metrics(data.problem_type),
        callbacks=callbacks,
        loss_type=loaded.loss_type,
        optimizer_name=family.optimizer,
        schedule=family.schedule,
        sample_weights=sample_weights,
        steps_per_epoch=steps_per_epoch,
        eval_data_collator=eval_collator,  # evaluation batches never get augmentation
        featurizer=AugmentedFeaturizer(feature_extractor, augmentation),
    )


def _finalise(
    trainer: AudioClassificationTrainer,
    train_metrics: dict[str, float],
    run: TrainingRun,
    data: RecipeData,
    loaded: _FineTuningModel,
    arguments: TrainingArguments,
) -> dict[str, float]:
    """After training: weight averaging, evaluation (and test), the saved model, model card and metrics."""
    recipe, output_dir = run.recipe, run.output_dir
    metrics = {f"train_{key}" if not key.startswith("train") else key: value for key, value in train_metrics.items()}
    metrics["train_skipped_clips"] = trainer.skipped_clips("train")
    if metrics["train_skipped_clips"]:
        logger.warning(f"{metrics['train_skipped_clips']} training clip(s) could not be decoded and were skipped")

    if loaded.family.weight_averaging is not None and arguments.save_strategy != "no":
        if is_lora_model(trainer.model):  # the checkpoints hold adapters, not models to average
            logger.warning("weight averaging skipped: the run trains a LoRA adapter")
        else:
            metrics.update(_weight_average(trainer, loaded.family, output_dir))

    metrics.update(trainer.evaluate(data.eval, metric_key_prefix="eval"))
    if data.test is not None:
        metrics.update(trainer.evaluate(data.test, metric_key_prefix="test"))

    if is_lora_model(trainer.model):  # the adapter under adapter/, the merged model where a full run's model goes
        save_lora_model(trainer, output_dir)
    else:
        trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        from .model_card import write_model_card

        trainer.save_state()
        write_model_card(
            output_dir,
            recipe=recipe,
            model_source=run.model,
            model_type=loaded.network.config.model_type,
            metrics=metrics,
            fold=data.fold,
            dataset_id=run.card_dataset_id,
            training_arguments=arguments,
            family_name=loaded.family_name,
            num_train_examples=data.num_train_examples,
        )
        with open(Path(output_dir) / "all_results.json", "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2, sort_keys=True)
    if arguments.push_to_hub:
        trainer.push_to_hub(commit_message=f"spectrogram-transformers train --recipe {recipe.name}")
    return metrics


def run_training(
    recipe: str | Recipe | TrainingRun,
    model: str | None = None,
    *,
    callbacks: list | None = None,
    **settings: Any,
) -> dict[str, float]:
    """Fine-tune a model with a recipe; returns the final metrics (also written to the run's `output_dir`).

    data -> model -> trainer -> train -> finalise (`_load_data`, `_load_model`, `_build_trainer`, `_finalise`).

    Args:
        recipe: a `TrainingRun` (then nothing else but `callbacks`), or a recipe name, JSON path or `Recipe`, with
            `model` and the keywords below, which build the `TrainingRun` (`TrainingRun.of`).
        model: shipped variant name, model directory or Hub id (see `load_model_and_feature_extractor`).
        callbacks: extra `TrainerCallback`s.

    Keywords (`TrainingRun` fields):
        output_dir: where checkpoints, the final model and the model card go (default outputs/<recipe>-<model>).
        fold: evaluation fold of cross-validation recipes (ESC-50); see `run_cross_validation` for all folds.
        data_dir: local files of the recipe's dataset schema instead of the Hub.
        streaming: stream the data (`IterableDataset`); needs `max_steps` or the recipe's `num_examples`.
        dataset_id, dataset_config: another Hub dataset with the recipe's schema.
        sampler: override the recipe's sampler ("random" / "balanced").
        training_overrides: TrainingArguments fields (command-line overrides).
        overwrite_output_dir: replace a previous run in `output_dir` (its checkpoints are removed first); without
            it such a directory is refused unless the run resumes it. `training_overrides["resume_from_checkpoint"]`
            is a checkpoint folder or "last" (the newest COMPLETE checkpoint of `output_dir`).
        lora: train a LoRA adapter instead of every weight (`training/lora.py`): the adapter is saved under
            `<output_dir>/adapter`, the merged model in `output_dir`.
    """
    if isinstance(recipe, TrainingRun):
        if model is not None or settings:
            raise TypeError("run_training(TrainingRun) takes no model or run settings besides the TrainingRun")
        run = recipe
    else:
        if model is None:
            raise TypeError("run_training needs a model with a recipe")
        run = TrainingRun.of(recipe, model, **settings)
    output_dir = run.output_dir
    overrides = dict(run.training_overrides)
    _check_learning_rate(overrides)
    resume = resolve_resume_checkpoint(overrides.pop("resume_from_checkpoint", None), output_dir)
    check_output_dir(output_dir, resuming=resume is not None, overwrite=run.overwrite_output_dir)  # removes nothing

    data = _load_data(run)
    loaded = _load_model(run.model, run.recipe, data, run.seed)
    if run.lora is not None:
        loaded.network = apply_lora(loaded.network, run.lora)
    arguments, steps_per_epoch = build_training_arguments(
        loaded.family, overrides, output_dir, streaming=run.streaming, num_train_examples=data.num_train_examples
    )
    # one id for the run, kept across resumptions: averaging uses only this run's checkpoints
    identity = RunIdentity(run_id_of(read_trainer_state(resume)) if resume is not None else None)
    trainer = _build_trainer(run, data, loaded, arguments, steps_per_epoch, [identity, *(callbacks or [])])
    if resume is not None:
        logger.warning(f"resuming from {resume}")
        if trainer.is_world_process_zero() and Path(resume).parent.resolve() == Path(output_dir).resolve():
            remove_incomplete_checkpoints_after(output_dir, checkpoint_step(resume) or 0)
    if run.overwrite_output_dir and resume is None and trainer.is_world_process_zero():
        # every check has passed and the trainer is built: only now is the previous run replaced
        clear_previous_run(output_dir)
    train_result = trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    trainer.run_id = identity.run_id
    return _finalise(trainer, train_result.metrics, run, data, loaded, arguments)


def _weight_average(trainer: AudioClassificationTrainer, family: FamilySpec, output_dir) -> dict[str, float]:
    """Average the checkpoints of the recipe's epochs into the trainer's model (AST's WA) and evaluate it."""
    from transformers import AutoModelForAudioClassification

    from .averaging import average_state_dicts, select_checkpoints

    window = family.weight_averaging
    trainer.accelerator.wait_for_everyone()
    try:
        checkpoints = select_checkpoints(
            output_dir,
            start_epoch=window["start_epoch"],
            end_epoch=window["end_epoch"],
            run_id=getattr(trainer, "run_id", None),
        )
    except ValueError as error:
        logger.warning(f"weight averaging skipped: {error}")
        return {}
    states = [AutoModelForAudioClassification.from_pretrained(str(path)).state_dict() for path in checkpoints]
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.load_state_dict(average_state_dicts(states))
    logger.warning(
        f"weight-averaged {len(checkpoints)} checkpoints of this run: {[path.name for path in checkpoints]}"
    )
    return {
        "weight_averaged_checkpoints": len(checkpoints),
        "weight_averaged_from": [path.name for path in checkpoints],
    }


def run_cross_validation(
    recipe: str | Recipe | TrainingRun, model: str | None = None, *, callbacks: list | None = None, **settings: Any
) -> dict[str, Any]:
    """Train and evaluate every fold of a cross-validation recipe (ESC-50: 5 folds); report mean ± std of each
    evaluation metric (population std over folds, as the AST scripts' numpy std). Arguments as `run_training`;
    the run's `output_dir` gets one `fold<k>` folder per fold (its `fold` is ignored)."""
    if isinstance(recipe, TrainingRun):
        if model is not None or settings:
            raise TypeError("run_cross_validation(TrainingRun) takes no model or run settings besides the TrainingRun")
        run = recipe
    else:
        if model is None:
            raise TypeError("run_cross_validation needs a model with a recipe")
        recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
        settings["output_dir"] = (
            settings.get("output_dir") or _DEFAULT_OUTPUT_ROOT / f"{recipe.name}-{Path(model).name}"
        )
        run = TrainingRun.of(recipe, model, **settings)
    if run.recipe.dataset.folds is None:
        raise ValueError(f"recipe {run.recipe.name!r} has no folds")
    output_dir = Path(run.output_dir)
    per_fold = {}
    for fold in run.recipe.dataset.folds["values"]:
        per_fold[fold] = run_training(
            replace(run, output_dir=output_dir / f"fold{fold}", fold=fold), callbacks=callbacks
        )
    summary: dict[str, Any] = {"folds": {str(fold): metrics for fold, metrics in per_fold.items()}}
    keys = [
        key
        for key in per_fold[next(iter(per_fold))]
        if key.startswith("eval_") and isinstance(per_fold[next(iter(per_fold))][key], (int, float))
    ]
    for key in keys:
        values = np.array([metrics[key] for metrics in per_fold.values()], dtype=np.float64)
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std())
    if int(os.environ.get("RANK", "0")) == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        with open(output_dir / "cv_results.json", "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
    return summary
