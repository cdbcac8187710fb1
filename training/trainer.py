"""The fine-tuning trainer (`AudioClassificationTrainer`: the recipes' loss, optimiser, per-epoch schedules and
balanced sampler) and what it shares with `pretrain.SSASTPreTrainer`, written once as mixins: package batches
featurized on the device with undecodable clips counted (`AudioBatchMixin`), evaluation batches from their own
collator (`EvalCollatorMixin`), a streamed training set split between processes (`StreamSplitByNodeMixin`).
"""

import errno
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer
from transformers.trainer_pt_utils import find_batch_size
from transformers.utils import logging

from ..errors import UserError
from .augment import BalancedSampler
from .datasets import SKIPPED_CLIPS_KEY, AugmentedFeaturizer

__all__ = [
    "AudioBatchMixin",
    "CheckpointWriteError",
    "TrainingDiverged",
    "check_finite_weights",
    "write_failure",
    "AudioClassificationTrainer",
    "EvalCollatorMixin",
    "StreamSplitByNodeMixin",
    "classification_loss",
    "epoch_schedule_factor",
]

logger = logging.get_logger(__name__)


class EvalCollatorMixin:
    """Evaluation and test batches built by `self.eval_data_collator` (no augmentation, no random crop) when it is
    set, the training batches by `data_collator`. Mixed into a `Trainer` subclass before `Trainer`."""

    eval_data_collator = None

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


class StreamSplitByNodeMixin:
    """A streamed (`IterableDataset`) training set read in shares by the processes of a distributed run (mixed
    into a `Trainer` subclass before `Trainer`)."""

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
                loader,
                device=self.args.device,
                num_processes=1,
                process_index=0,
                put_on_device=True,
                dispatch_batches=False,
            )
        return super().get_train_dataloader()


class TrainingDiverged(UserError):
    """The loss, the gradient norm or the weights stopped being finite: nothing more is trained or saved."""


class CheckpointWriteError(UserError):
    """A checkpoint or model could not be written (the disk is full, the file system refused the write)."""


def check_finite_weights(model: torch.nn.Module, what: str) -> None:
    """Raise `TrainingDiverged` naming the tensors that hold NaN or infinity (never saved as a model)."""
    bad = [
        name
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    if bad:
        raise TrainingDiverged(
            f"{len(bad)} weight tensor(s) hold NaN or infinity ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}), "
            f"so {what} is not saved: training diverged; lower --learning_rate"
        )


def write_failure(error: BaseException, directory: str | Path) -> CheckpointWriteError | None:
    """A user-facing error for a failed write into `directory` that the disk caused, or None (a bug: re-raise).

    torch's zip writer reports a full disk as `RuntimeError: ... unexpected pos A vs B`, with no errno."""
    text = str(error)
    full = (
        getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        or "No space left" in text
        or "unexpected pos" in text
    )
    if not full:
        return None
    try:
        free = f"{shutil.disk_usage(directory).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return CheckpointWriteError(
        f"no space left on device while writing to {directory} ({free}): free some space or choose another "
        "--output_dir, then continue with --resume_from_checkpoint last (the half-written checkpoint is skipped)"
    )


class AudioBatchMixin:
    """Batches as the package's collators build them, in a `Trainer` subclass (mixed in before `Trainer`): the
    count of undecodable clips (`num_skipped_clips`) is taken out and added to the phase's total, and padded
    waveform batches (`waveforms`, `waveform_lengths`) become features on the device with `self.featurizer`
    (augmented in training, plain in evaluation). The audio never goes back to the host; only the clip lengths
    (B integers) are read there."""

    featurizer = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._skipped_clips = {"train": 0, "eval": 0}

    def _count_skipped(self, inputs: dict[str, Any], phase: str | None = None) -> dict[str, Any]:
        """The batch without its count of undecodable clips, which is added to this phase's total."""
        inputs = dict(inputs)
        skipped = inputs.pop(SKIPPED_CLIPS_KEY, None)
        if skipped is not None:
            phase = phase or ("train" if self.model.training else "eval")
            self._skipped_clips[phase] += int(torch.as_tensor(skipped).sum())
        return inputs

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = self._count_skipped(inputs)
        lengths = inputs.pop("waveform_lengths", None)
        inputs = super()._prepare_inputs(inputs)
        if "waveforms" in inputs:
            if self.featurizer is None:
                raise ValueError("waveform batches need the trainer's `featurizer` to become features")
            if lengths is None:
                raise ValueError("a waveform batch needs its 'waveform_lengths'")
            inputs["waveform_lengths"] = torch.as_tensor(lengths).cpu()
            inputs = self.featurizer.from_batch(inputs, augment=self.model.training)
        return inputs

    def training_step(self, model, inputs, num_items_in_batch=None):
        """Skip a batch in which no clip could be decoded (counted, never replaced by another clip), and stop at a
        loss that is not finite instead of training on (and saving) NaN weights."""
        if find_batch_size({key: value for key, value in inputs.items() if key != SKIPPED_CLIPS_KEY}) == 0:
            self._count_skipped(inputs, "train")  # the model may not be in train mode yet (Trainer sets it here)
            logger.warning(f"step {self.state.global_step + 1}: no clip of the batch could be decoded; skipped")
            if self.args.world_size > 1:  # every process must take part in the gradient all-reduce: zero gradients
                zero = sum(parameter.sum() for parameter in model.parameters() if parameter.requires_grad) * 0.0
                self.accelerator.backward(zero)
            return torch.zeros((), device=self.args.device)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise TrainingDiverged(
                f"training diverged at step {self.state.global_step + 1}: the loss is {loss.float().mean().item()}; "
                f"lower --learning_rate (now {self.args.learning_rate:g}) or check the data"
            )
        return loss

    def _get_grad_norm(self, model, grad_norm=None):
        # checked before the optimiser step, so that a non-finite gradient never reaches the weights
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        if grad_norm is not None and not math.isfinite(float(grad_norm)):
            raise TrainingDiverged(
                f"training diverged at step {self.state.global_step + 1}: the gradient norm is {float(grad_norm)}; "
                f"lower --learning_rate (now {self.args.learning_rate:g}) or set --max_grad_norm"
            )
        return grad_norm

    def _save(self, output_dir=None, state_dict=None):
        check_finite_weights(self.model, f"the model in {output_dir or self.args.output_dir}")
        try:
            return super()._save(output_dir, state_dict)
        except (OSError, RuntimeError) as error:
            failure = write_failure(error, output_dir or self.args.output_dir)
            if failure is None:
                raise
            raise failure from None

    def _save_checkpoint(self, model, trial):
        try:
            return super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError) as error:
            failure = write_failure(error, self.args.output_dir)
            if failure is None:
                raise
            raise failure from None

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # a batch in which no clip could be decoded: nothing to predict or score (its clips are counted)
        if find_batch_size({key: value for key, value in inputs.items() if key != SKIPPED_CLIPS_KEY}) == 0:
            self._count_skipped(inputs)
            return None, None, None
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)

    def skipped_clips(self, phase: str = "train") -> int:
        """Undecodable clips met so far in `phase`, summed over processes (a collective call under DDP)."""
        count = torch.tensor(self._skipped_clips[phase], dtype=torch.long, device=self.args.device)
        if self.args.world_size > 1:
            count = self.accelerator.reduce(count, reduction="sum")
        return int(count.item())

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        before = self._skipped_clips["eval"]
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        local = torch.tensor(self._skipped_clips["eval"] - before, dtype=torch.long, device=self.args.device)
        if self.args.world_size > 1:
            local = self.accelerator.reduce(local, reduction="sum")
        output.metrics[f"{metric_key_prefix}_skipped_clips"] = int(local.item())
        return output


class AudioClassificationTrainer(AudioBatchMixin, EvalCollatorMixin, StreamSplitByNodeMixin, Trainer):
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

    # -- loss and inputs ------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        if labels is None:
            raise ValueError("the batch has no 'labels'; the collator needs a label encoder to train or evaluate")
        loss = classification_loss(outputs.logits, labels, self.loss_type)
        return (loss, outputs) if return_outputs else loss

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
            batches = math.ceil(
                len(self.train_dataset) / (self.args.per_device_train_batch_size * self.args.world_size)
            )
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
    def _get_train_sampler(self, train_dataset=None):
        if self.sample_weights is not None:
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if len(self.sample_weights) != len(dataset):
                raise ValueError(f"{len(self.sample_weights)} sampling weights for {len(dataset)} training examples")
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return BalancedSampler(self.sample_weights, num_samples=len(dataset), seed=seed)
        return super()._get_train_sampler(train_dataset)
