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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from .augment import BalancedSampler
from .datasets import (
    SKIPPED_CLIPS_KEY,
    AudioClassificationCollator,
    AugmentedFeaturizer,
    load_recipe_datasets,
    training_label_weights,
)
from .metrics import build_compute_metrics
from .recipe import FamilySpec, Recipe, load_recipe

__all__ = [
    "AudioClassificationTrainer",
    "build_training_arguments",
    "classification_loss",
    "epoch_schedule_factor",
    "load_model_and_feature_extractor",
    "run_cross_validation",
    "run_training",
    "split_global_batch",
]

logger = logging.get_logger(__name__)

# Our own flags; everything else on the command line is a TrainingArguments field.
_DEFAULT_OUTPUT_ROOT = Path("outputs")


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Cross-entropy ("ce") or BCE-with-logits ("bce") for class ids (B,) or (soft / multi-hot) targets (B, C).

    Soft single-label targets (mixup) use cross-entropy against the target distribution; AST's Speech Commands
    recipe uses BCE on one-hot targets; multi-label targets need BCE.
    """
    if labels.dim() == 1:
        if loss_type == "bce":
            return F.binary_cross_entropy_with_logits(logits, F.one_hot(labels, logits.shape[-1]).to(logits.dtype))
        return F.cross_entropy(logits, labels)
    if labels.shape != logits.shape:
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape)}")
    labels = labels.to(logits.dtype)
    if loss_type == "bce":
        return F.binary_cross_entropy_with_logits(logits, labels)
    return F.cross_entropy(logits, labels)


def epoch_schedule_factor(schedule: dict, epoch: int) -> float:
    """Learning-rate multiplier of an (0-based) epoch.

    `epoch_step` (AST: `MultiStepLR(milestones=range(start, 1000, every), gamma)` stepped after each epoch):
    gamma ** (number of milestones <= epoch). `epoch_table` (HTS-AT's `lr_foo`): the scale of the last row whose
    first epoch is <= epoch.
    """
    name = schedule["name"]
    if name == "epoch_step":
        start, every = schedule["start_epoch"], schedule["every_epochs"]
        decays = 0 if epoch < start else (epoch - start) // every + 1
        return float(schedule["gamma"]) ** decays
    if name == "epoch_table":
        scale = schedule["table"][0][1]
        for first_epoch, value in schedule["table"]:
            if epoch >= first_epoch:
                scale = value
        return float(scale)
    raise ValueError(f"not an epoch schedule: {name!r}")


class AudioClassificationTrainer(Trainer):
    """`Trainer` with the recipes' loss, optimiser, per-epoch schedules, balanced sampler, streaming data split
    by node, and a count of undecodable clips.

    Args (besides `Trainer`'s):
        loss_type: "ce" or "bce" (see `classification_loss`).
        optimizer_name: "adam" (AST: torch Adam, L2 weight decay on every parameter), "adamw" (HTS-AT: AdamW on
            every parameter) or "trainer" (`args.optim`, Trainer's parameter groups).
        schedule: the recipe schedule; `epoch_step` / `epoch_table` are per-epoch multipliers with a linear
            warm-up over `args.warmup_steps`, `trainer` uses `args.lr_scheduler_type`.
        sample_weights: per-example weights for the balanced sampler (None: Trainer's random sampler).
        steps_per_epoch: optimiser steps per epoch for per-epoch schedules when the training set has no length.
        eval_data_collator: collator of evaluation/test batches (no augmentation); defaults to `data_collator`.
        featurizer: turns the training collator's waveform batches (`waveforms`, `waveform_lengths`) into
            augmented features inside the training step (see `AugmentedFeaturizer` for why there).
    """

    def __init__(
        self,
        *args,
        loss_type: str = "ce",
        optimizer_name: str = "trainer",
        schedule: dict | None = None,
        sample_weights: np.ndarray | None = None,
        steps_per_epoch: int | None = None,
        eval_data_collator=None,
        featurizer: AugmentedFeaturizer | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.featurizer = featurizer
        self.loss_type = loss_type
        self.optimizer_name = optimizer_name
        self.schedule = schedule or {"name": "trainer"}
        self.sample_weights = sample_weights
        self.steps_per_epoch = steps_per_epoch
        # our compute_loss returns a per-batch mean, so gradient accumulation must scale it (Trainer skips that
        # when it believes the model normalised by num_items_in_batch)
        self.model_accepts_loss_kwargs = False
        self._skipped_clips = {"train": 0, "eval": 0}

    # -- loss and inputs ------------------------------------------------------------------------------------------
    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = dict(inputs)
        skipped = inputs.pop(SKIPPED_CLIPS_KEY, None)
        if skipped is not None:
            self._skipped_clips["train" if self.model.training else "eval"] += int(torch.as_tensor(skipped).sum())
        return super()._prepare_inputs(inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "waveforms" in inputs:
            if self.featurizer is None:
                raise ValueError("waveform batches need the trainer's `featurizer` to become features")
            inputs = self.featurizer.from_batch(inputs, device=self.args.device)
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        if labels is None:
            raise ValueError("the batch has no 'labels'; the collator needs a label encoder to train or evaluate")
        loss = classification_loss(outputs.logits, labels, self.loss_type)
        return (loss, outputs) if return_outputs else loss

    def skipped_clips(self, phase: str = "train") -> int:
        """Undecodable clips met so far in `phase`, summed over processes (a collective call under DDP)."""
        count = torch.tensor(self._skipped_clips[phase], dtype=torch.long, device=self.args.device)
        if self.args.world_size > 1:
            count = self.accelerator.reduce(count, reduction="sum")
        return int(count.item())

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"):
        before = self._skipped_clips["eval"]
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        local = torch.tensor(self._skipped_clips["eval"] - before, dtype=torch.long, device=self.args.device)
        if self.args.world_size > 1:
            local = self.accelerator.reduce(local, reduction="sum")
        output.metrics[f"{metric_key_prefix}_skipped_clips"] = int(local.item())
        return output

    # -- optimiser and schedule -----------------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        if self.optimizer is None and self.optimizer_name in ("adam", "adamw"):
            model = self.model if model is None else model
            parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
            optimizer_class = torch.optim.Adam if self.optimizer_name == "adam" else torch.optim.AdamW
            self.optimizer = optimizer_class(
                parameters,
                lr=self.args.learning_rate,
                betas=(self.args.adam_beta1, self.args.adam_beta2),
                eps=self.args.adam_epsilon,
                weight_decay=self.args.weight_decay,
            )
            return self.optimizer
        return super().create_optimizer(model)

    def _epoch_length(self, num_training_steps: int) -> int:
        if self.steps_per_epoch:
            return self.steps_per_epoch
        if self.args.max_steps <= 0 and self.args.num_train_epochs > 0:
            # Trainer derived num_training_steps = epochs x optimiser steps per epoch
            return max(1, round(num_training_steps / self.args.num_train_epochs))
        if self.train_dataset is not None and hasattr(self.train_dataset, "__len__"):
            batches = math.ceil(len(self.train_dataset) / (self.args.per_device_train_batch_size * self.args.world_size))
            return max(1, math.ceil(batches / self.args.gradient_accumulation_steps))
        logger.warning("per-epoch schedule without a known epoch length: the whole run counts as one epoch")
        return max(1, num_training_steps)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None and self.schedule["name"] in ("epoch_step", "epoch_table"):
            optimizer = self.optimizer if optimizer is None else optimizer
            steps_per_epoch = self._epoch_length(num_training_steps)
            warmup_steps = self.args.get_warmup_steps(num_training_steps)
            schedule = self.schedule

            def factor(step: int) -> float:
                scale = epoch_schedule_factor(schedule, step // steps_per_epoch)
                if warmup_steps > 0 and step < warmup_steps:
                    scale *= step / warmup_steps
                return scale

            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    # -- data ------------------------------------------------------------------------------------------------------
    def _with_eval_collator(self, method, *args, **kwargs):
        if self.eval_data_collator is None:
            return method(*args, **kwargs)
        saved = self.data_collator
        self.data_collator = self.eval_data_collator
        try:
            return method(*args, **kwargs)
        finally:
            self.data_collator = saved

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)

    def _get_train_sampler(self, train_dataset=None):
        if self.sample_weights is not None:
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if len(self.sample_weights) != len(dataset):
                raise ValueError(f"{len(self.sample_weights)} sampling weights for {len(dataset)} training examples")
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return BalancedSampler(self.sample_weights, num_samples=len(dataset), seed=seed)
        return super()._get_train_sampler(train_dataset)

    def get_train_dataloader(self):
        import datasets

        dataset = self.train_dataset
        if self.args.world_size > 1 and isinstance(dataset, datasets.IterableDataset):
            # Each process reads only its share of the stream (whole shards when they divide evenly, else every
            # world_size-th example), instead of accelerate's default of reading everything on rank 0 and
            # dispatching batches. The loader is then wrapped for device placement only (no second sharding).
            from accelerate.data_loader import prepare_data_loader
            from datasets.distributed import split_dataset_by_node
            from torch.utils.data import DataLoader

            shard = split_dataset_by_node(dataset, rank=self.args.process_index, world_size=self.args.world_size)
            loader = DataLoader(
                shard,
                batch_size=self._train_batch_size,
                collate_fn=self.data_collator,
                num_workers=self.args.dataloader_num_workers,
                pin_memory=self.args.dataloader_pin_memory,
                persistent_workers=self.args.dataloader_persistent_workers and self.args.dataloader_num_workers > 0,
                drop_last=self.args.dataloader_drop_last,
            )
            return prepare_data_loader(
                loader, device=self.args.device, num_processes=1, process_index=0, put_on_device=True, dispatch_batches=False
            )
        return super().get_train_dataloader()


def _resolve_model_source(model: str) -> tuple[str, bool]:
    """(path or hub id, has_weights). A shipped variant name gives its config folder (random initialisation)."""
    from ..hub_configs import list_variants, variant_dir

    if model in list_variants():
        return str(variant_dir(model)), False
    path = Path(model)
    if path.is_dir():
        weights = any((path / name).exists() for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"))
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
    feature_extractor, unused = extractor_class.from_pretrained(source, return_unused_kwargs=True, **family.feature_extractor)
    if unused:
        raise ValueError(f"recipe feature-extractor settings {sorted(unused)} are not arguments of {type(feature_extractor).__name__}")
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
        values["per_device_train_batch_size"] = split_global_batch(family.global_train_batch_size, _world_size(), accumulation)

    steps_per_epoch = None
    if streaming:
        batch = int(values.get("per_device_train_batch_size", 8)) * _world_size() * int(values.get("gradient_accumulation_steps", 1))
        if num_train_examples:
            steps_per_epoch = max(1, math.ceil(num_train_examples / batch))
        if int(values.get("max_steps", -1)) <= 0:
            if steps_per_epoch is None:
                raise ValueError("streaming training needs --max_steps (the recipe does not give the training-set size)")
            values["max_steps"] = int(math.ceil(float(values.get("num_train_epochs", 1)) * steps_per_epoch))
        if overrides.get("eval_strategy", values["eval_strategy"]) == "epoch" or overrides.get("save_strategy", values["save_strategy"]) == "epoch":
            interval = steps_per_epoch or max(1, int(values["max_steps"]))
            for prefix in ("eval", "save"):
                if values.get(f"{prefix}_strategy") == "epoch":
                    values[f"{prefix}_strategy"] = "steps"
                    values.setdefault(f"{prefix}_steps", interval)
    return TrainingArguments(**values), steps_per_epoch


def run_training(
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
    training_overrides: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> dict[str, float]:
    """Fine-tune `model` with `recipe`; returns the final metrics (also written to `output_dir`).

    Args:
        recipe: a recipe name, JSON path or `Recipe`.
        model: shipped variant name, model directory or Hub id (see `load_model_and_feature_extractor`).
        output_dir: where checkpoints, the final model and the model card go (default outputs/<recipe>-<model>).
        fold: evaluation fold of cross-validation recipes (ESC-50); see `run_cross_validation` for all folds.
        data_dir: local files of the recipe's dataset schema instead of the Hub.
        streaming: stream the data (`IterableDataset`); needs `max_steps` or the recipe's `num_examples`.
        dataset_id, dataset_config: another Hub dataset with the recipe's schema.
        sampler: override the recipe's sampler ("random" / "balanced").
        training_overrides: TrainingArguments fields (command-line overrides).
        callbacks: extra `TrainerCallback`s.
    """
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    overrides = dict(training_overrides or {})
    if output_dir is None:
        output_dir = overrides.pop("output_dir", None) or _DEFAULT_OUTPUT_ROOT / f"{recipe.name}-{Path(model).name}" / (f"fold{fold}" if fold is not None else "")
    overrides.pop("output_dir", None)
    resume = overrides.pop("resume_from_checkpoint", None)
    seed = int(overrides.get("seed", 42))

    data = load_recipe_datasets(
        recipe.dataset,
        fold=fold,
        data_dir=data_dir,
        streaming=streaming,
        dataset_id=dataset_id,
        dataset_config=dataset_config,
        seed=seed,
    )
    # seed before the model exists: a new classification head is initialised randomly, and the run must
    # depend on --seed only, not on what the process did before (Trainer seeds again in its constructor)
    from transformers import set_seed

    set_seed(seed)
    network, feature_extractor, family_name = load_model_and_feature_extractor(model, recipe, data.label_map)
    family = recipe.family(network.config.model_type)[1]
    augmentation = family.augmentation_config
    loss_type = family.loss or ("bce" if data.label_encoder.multi_label else "ce")
    if data.label_encoder.multi_label and loss_type != "bce":
        raise ValueError("multi-label recipes need loss 'bce'")

    arguments, steps_per_epoch = build_training_arguments(
        family, overrides, output_dir, streaming=streaming, num_train_examples=data.num_train_examples
    )
    sampler = sampler or family.sampler
    sample_weights = None
    if sampler == "balanced":
        if streaming:
            raise ValueError("the balanced sampler needs a map-style dataset; with --streaming use --sampler random")
        sample_weights = training_label_weights(data.train, recipe.dataset, data.label_encoder)

    # the loader only decodes; crops, mixup, features and masks happen in the training step (AugmentedFeaturizer)
    train_collator = AudioClassificationCollator(
        feature_extractor,
        data.label_encoder,
        recipe.dataset.audio_column,
        recipe.dataset.label_column,
        return_waveforms=True,
        soft_labels=(augmentation.uses_mixup and augmentation.mixup_labels) or loss_type == "bce",
    )
    eval_collator = AudioClassificationCollator(
        feature_extractor, data.label_encoder, recipe.dataset.audio_column, recipe.dataset.label_column, augmentation=None
    )
    trainer = AudioClassificationTrainer(
        model=network,
        args=arguments,
        data_collator=train_collator,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=feature_extractor,
        compute_metrics=build_compute_metrics(data.problem_type),
        callbacks=callbacks,
        loss_type=loss_type,
        optimizer_name=family.optimizer,
        schedule=family.schedule,
        sample_weights=sample_weights,
        steps_per_epoch=steps_per_epoch,
        eval_data_collator=eval_collator,  # evaluation batches never get augmentation
        featurizer=AugmentedFeaturizer(feature_extractor, augmentation),
    )

    train_result = trainer.train(resume_from_checkpoint=resume)
    metrics = {f"train_{key}" if not key.startswith("train") else key: value for key, value in train_result.metrics.items()}
    metrics["train_skipped_clips"] = trainer.skipped_clips("train")
    if metrics["train_skipped_clips"]:
        logger.warning(f"{metrics['train_skipped_clips']} training clip(s) could not be decoded and were skipped")

    if family.weight_averaging is not None and arguments.save_strategy != "no":
        metrics.update(_weight_average(trainer, family, output_dir))

    metrics.update(trainer.evaluate(data.eval, metric_key_prefix="eval"))
    if data.test is not None:
        metrics.update(trainer.evaluate(data.test, metric_key_prefix="test"))

    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        from .model_card import write_model_card

        trainer.save_state()
        write_model_card(
            output_dir,
            recipe=recipe,
            model_source=model,
            model_type=network.config.model_type,
            metrics=metrics,
            fold=data.fold,
            dataset_id=dataset_id or recipe.dataset.hub_id,
            training_arguments=arguments,
            family_name=family_name,
            num_train_examples=data.num_train_examples,
        )
        with open(Path(output_dir) / "all_results.json", "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2, sort_keys=True)
    if arguments.push_to_hub:
        trainer.push_to_hub(commit_message=f"spectrogram-transformers train --recipe {recipe.name}")
    return metrics


def _weight_average(trainer: AudioClassificationTrainer, family: FamilySpec, output_dir) -> dict[str, float]:
    """Average the checkpoints of the recipe's epochs into the trainer's model (AST's WA) and evaluate it."""
    from transformers import AutoModelForAudioClassification

    from .averaging import average_state_dicts, select_checkpoints

    window = family.weight_averaging
    trainer.accelerator.wait_for_everyone()
    try:
        checkpoints = select_checkpoints(output_dir, start_epoch=window["start_epoch"], end_epoch=window["end_epoch"])
    except ValueError as error:
        logger.warning(f"weight averaging skipped: {error}")
        return {}
    states = [AutoModelForAudioClassification.from_pretrained(str(path)).state_dict() for path in checkpoints]
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.load_state_dict(average_state_dicts(states))
    logger.warning(f"weight-averaged {len(checkpoints)} checkpoints: {[path.name for path in checkpoints]}")
    return {"weight_averaged_checkpoints": len(checkpoints)}


def run_cross_validation(recipe: str | Recipe, model: str, *, output_dir: str | Path | None = None, **kwargs) -> dict[str, Any]:
    """Train and evaluate every fold of a cross-validation recipe (ESC-50: 5 folds); report mean ± std of each
    evaluation metric (population std over folds, as the AST scripts' numpy std)."""
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if recipe.dataset.folds is None:
        raise ValueError(f"recipe {recipe.name!r} has no folds")
    output_dir = Path(output_dir or _DEFAULT_OUTPUT_ROOT / f"{recipe.name}-{Path(model).name}")
    per_fold = {}
    for fold in recipe.dataset.folds["values"]:
        per_fold[fold] = run_training(recipe, model, output_dir=output_dir / f"fold{fold}", fold=fold, **kwargs)
    summary: dict[str, Any] = {"folds": {str(fold): metrics for fold, metrics in per_fold.items()}}
    keys = [key for key in per_fold[next(iter(per_fold))] if key.startswith("eval_") and isinstance(per_fold[next(iter(per_fold))][key], (int, float))]
    for key in keys:
        values = np.array([metrics[key] for metrics in per_fold.values()], dtype=np.float64)
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std())
    if int(os.environ.get("RANK", "0")) == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        with open(output_dir / "cv_results.json", "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)
    return summary
