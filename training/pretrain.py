"""`spectrogram-transformers pretrain`: SSAST self-supervised pre-training on unlabeled audio, on `transformers.Trainer`.

    spectrogram-transformers pretrain --data /path/to/audio --model ssast-base-patch-400 --output_dir runs/ssast
    spectrogram-transformers pretrain --data some-org/some-audio-dataset --streaming --max_steps 100000 ...
    spectrogram-transformers pretrain --data DIR --model ssast-tiny-patch-400 \
        --config_overrides '{"max_length": 256, "num_masked_patches": 100}' --per_device_train_batch_size 8

Paper: Gong, Lai, Chung and Glass, "SSAST: Self-Supervised Audio Spectrogram Transformer", AAAI 2022; recipe of
https://github.com/YuanGongND/ssast (`src/pretrain/run_mask_{patch,frame}.sh`, `src/traintest_mask.py`).

Data: a local folder of audio files (searched recursively; any format soundfile reads) or a Hub dataset id
(`--streaming` to stream it; `--audio_column`, `--split`, `--dataset_config`). Clips are decoded with soundfile,
resampled to the feature extractor's rate, randomly cropped to the model's input length (shorter clips are
padded by the extractor), and turned into AST Kaldi fbank features. Labels are never read.

Defaults follow the original recipe: Adam (betas 0.95/0.999, weight decay 5e-7), learning rate 1e-4 with a
1000-step linear warm-up, batch 24, 10 epochs, no gradient clipping, 400 masked patches, the joint objective
nce + 10·mse with independent masks per objective (the original's `pretrain_joint`). The original halves the
rate when a held-out masked-patch accuracy plateaus; here the rate stays constant after warm-up unless
`--lr_scheduler_type` says otherwise. Any `TrainingArguments` field can be overridden on the command line.

The run saves the model (`SSASTForPreTraining`) and its feature extractor to `--output_dir`; fine-tune it with
`SSASTForAudioClassification.from_pretrained(output_dir, num_labels=..., frequency_stride=10, time_stride=10,
max_length=...)` or the `train` command. nce, mse and the masked-patch accuracy are logged next to the loss.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from ..errors import InvalidInputError
from ..feature_extraction import ASTFeatureExtractor
from ..modeling.ssast import SSASTConfig, SSASTForPreTraining
from .augment import AugmentationConfig, random_crop
from .datasets import (
    SKIPPED_CLIPS_KEY,
    AudioClassificationCollator,
    AugmentedFeaturizer,
)
from .trainer import AudioBatchMixin, EvalCollatorMixin, StreamSplitByNodeMixin

__all__ = [
    "PRETRAINING_DEFAULTS",
    "AudioFileDataset",
    "SSASTPreTrainer",
    "UnlabeledAudioCollator",
    "find_audio_files",
    "load_pretraining_model",
    "run_pretraining",
]

logger = logging.get_logger(__name__)

# The original recipe (run_mask_patch.sh / traintest_mask.py); every one can be overridden on the command line.
PRETRAINING_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 24,
    "per_device_eval_batch_size": 24,
    "learning_rate": 1e-4,
    "adam_beta1": 0.95,
    "adam_beta2": 0.999,
    "weight_decay": 5e-7,
    "warmup_steps": 1000,
    "lr_scheduler_type": "constant_with_warmup",
    "num_train_epochs": 10,
    "max_grad_norm": 0.0,  # the original does not clip
    "logging_steps": 100,
    "save_steps": 4000,  # the original saves every `epoch_iter` = 4000 steps
    "save_total_limit": 2,
    "remove_unused_columns": False,  # batches are built by the collator from the audio column
    "report_to": "none",
    "output_dir": "outputs/ssast-pretraining",
}
_OBJECTIVES = ("nce_loss", "mse_loss", "accuracy")


# -- data --------------------------------------------------------------------------------------------------------


def find_audio_files(folder: str | Path) -> list[Path]:
    """Every file below `folder` (recursively) whose extension is a format soundfile reads, sorted."""
    import soundfile

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"audio folder {folder} does not exist")
    extensions = {f".{name.lower()}" for name in soundfile.available_formats()} | {".oga", ".opus", ".aif"}
    files = sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in extensions)
    if not files:
        raise InvalidInputError(f"no audio files ({', '.join(sorted(extensions))}) found below {folder}")
    return files


class AudioFileDataset(torch.utils.data.Dataset):
    """Unlabeled audio files as rows `{"audio": path}`; decoding happens in the collator."""

    def __init__(self, files: Sequence[str | Path], audio_column: str = "audio"):
        self.files = [str(path) for path in files]
        self.audio_column = audio_column

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, str]:
        return {self.audio_column: self.files[index]}


@dataclass
class UnlabeledAudioCollator:
    """Rows with an audio column -> `{"input_values": (B, max_length, mel)}` AST features, or (`return_waveforms`)
    the clips padded once, `{"waveforms": (B, S), "waveform_lengths": (B,)}`, for the trainer to crop and featurize
    on its device (what `run_pretraining` does for training batches).

    Args:
        feature_extractor: the `ASTFeatureExtractor` (its `max_length` is the model's input length).
        audio_column: column holding a path, bytes, `{"bytes", "path"}` or `{"array", "sampling_rate"}`.
        random_crop: crop clips longer than the input at a random offset (training) or at 0 (evaluation).
        generator: RNG of the crop offsets (the global one when None).
        return_waveforms: give the padded waveforms instead of features.
    """

    feature_extractor: ASTFeatureExtractor
    audio_column: str = "audio"
    random_crop: bool = True
    generator: torch.Generator | None = None
    return_waveforms: bool = False

    def __post_init__(self):
        # decoding, skipping and counting undecodable clips, and the one padding: the classification collator's
        self._decoder = AudioClassificationCollator(
            self.feature_extractor, None, self.audio_column, return_waveforms=True
        )

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        decoded = self._decoder(rows)
        batch, lengths = decoded["waveforms"], decoded["waveform_lengths"]  # (B, S), (B,)
        skipped = {SKIPPED_CLIPS_KEY: decoded[SKIPPED_CLIPS_KEY]}
        if self.return_waveforms:  # an empty batch (no clip decodable) is skipped and counted by the trainer
            return {"waveforms": batch, "waveform_lengths": lengths, **skipped}
        if batch.shape[0] == 0:
            raise InvalidInputError("no clip of this batch could be decoded; check the data (see the warnings above)")
        crop = self.feature_extractor.input_samples
        if self.random_crop:
            batch, lengths = random_crop(batch, lengths, crop, self.generator)
        else:
            batch, lengths = batch[:, :crop], lengths.clamp_max(crop)
        return {"input_values": self.feature_extractor.extract(batch, lengths)["input_values"], **skipped}


def _load_data(
    source: str, split: str, streaming: bool, audio_column: str, dataset_config: str | None, seed: int, buffer: int
):
    """A local folder -> AudioFileDataset; anything else is a Hub dataset id (streamed with `streaming`)."""
    if Path(source).is_dir():
        return AudioFileDataset(find_audio_files(source), audio_column)
    from datasets import Audio, load_dataset

    dataset = load_dataset(source, dataset_config, split=split, streaming=streaming)
    if audio_column not in (dataset.column_names or []):
        raise InvalidInputError(
            f"dataset {source} has no column {audio_column!r} (columns: {dataset.column_names}); pass --audio_column"
        )
    dataset = dataset.cast_column(audio_column, Audio(decode=False)).select_columns([audio_column])
    if streaming:
        # each process reads its own share of the stream: `StreamSplitByNodeMixin` in the trainer
        dataset = dataset.shuffle(seed=seed, buffer_size=buffer)
    return dataset


# -- model -------------------------------------------------------------------------------------------------------


def load_pretraining_model(model: str, config_overrides: dict | None = None) -> SSASTForPreTraining:
    """A fresh `SSASTForPreTraining` of a shipped variant or config file, or one saved in a directory (resumed)."""
    config_overrides = dict(config_overrides or {})
    path = Path(model)
    if path.is_dir() and any((path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        return SSASTForPreTraining.from_pretrained(path, **config_overrides)
    if path.is_dir() or path.suffix == ".json":
        config = SSASTConfig.from_pretrained(path, **config_overrides)
    else:
        from ..hub_configs import load_config

        config = load_config(model, **config_overrides)
    if not isinstance(config, SSASTConfig):
        raise InvalidInputError(f"{model} is a {type(config).__name__}; pre-training needs an SSAST config")
    return SSASTForPreTraining(config)


def _load_feature_extractor(
    source: str | None, model: str, config: SSASTConfig, mean: float | None, std: float | None
):
    """The model's AST extractor (variant or directory), set to the model's input length and mel bins."""
    overrides = {
        "max_length": config.max_length,
        "num_mel_bins": config.num_mel_bins,
        "feature_size": config.num_mel_bins,
    }
    if mean is not None:
        overrides["mean"] = mean
    if std is not None:
        overrides["std"] = std
    for candidate in (source, model):
        if candidate is None:
            continue
        path = Path(candidate)
        if path.is_dir() and (path / "preprocessor_config.json").is_file():
            return ASTFeatureExtractor.from_pretrained(path, **overrides)
        if not path.exists():
            from ..hub_configs import list_variants, load_feature_extractor

            if candidate in list_variants():
                return load_feature_extractor(candidate, **overrides)
    return ASTFeatureExtractor(**overrides)  # AudioSet statistics, as the released models


# -- trainer -----------------------------------------------------------------------------------------------------


class SSASTPreTrainer(AudioBatchMixin, EvalCollatorMixin, StreamSplitByNodeMixin, Trainer):
    """`Trainer` that also logs the two objectives and the masked-patch accuracy (means since the last log).

    Evaluation draws its masks from a generator re-seeded with `args.seed` at every evaluation, so evaluation
    numbers are comparable across a run, and batches with `eval_data_collator` (e.g. without random crops) when
    given. The logged objectives are those of this process.
    """

    def __init__(self, *args, eval_data_collator=None, featurizer: AugmentedFeaturizer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.eval_data_collator = eval_data_collator
        self.featurizer = featurizer
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self._counts = {"train": 0, "eval": 0}
        self._eval_generator = torch.Generator()

    def _accumulate(self, split: str, outputs, weight: int = 1) -> None:
        sums = self._sums[split]
        for name in _OBJECTIVES:
            value = getattr(outputs, name, None)
            if value is not None:
                value = value.detach().float() * weight
                sums[name] = sums[name] + value if name in sums else value
        self._counts[split] += weight

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        if model.training:
            self._accumulate("train", outputs)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**inputs, generator=self._eval_generator)
        # weighted by clips, as Trainer averages eval_loss (training logs average steps, as its "loss")
        self._accumulate("eval", outputs, weight=inputs["input_values"].shape[0])
        return outputs.loss.detach(), None, None

    def evaluate(self, *args, **kwargs):
        self._eval_generator.manual_seed(self.args.seed)
        self._sums["eval"], self._counts["eval"] = {}, 0
        return super().evaluate(*args, **kwargs)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        split = "eval" if "eval_loss" in logs else "train" if "loss" in logs else None
        if split is not None and self._counts[split]:
            prefix = "eval_" if split == "eval" else ""
            for name, total in self._sums[split].items():
                logs[f"{prefix}{name}"] = round(total.item() / self._counts[split], 6)
            self._sums[split], self._counts[split] = {}, 0
        super().log(logs, *args, **kwargs)


def run_pretraining(
    data: str,
    model: str = "ssast-base-patch-400",
    *,
    config_overrides: dict | None = None,
    feature_extractor: str | None = None,
    mean: float | None = None,
    std: float | None = None,
    streaming: bool = False,
    split: str = "train",
    audio_column: str = "audio",
    dataset_config: str | None = None,
    eval_data: str | None = None,
    eval_split: str = "test",
    shuffle_buffer_size: int = 1000,
    training_overrides: dict | None = None,
) -> dict[str, Any]:
    """Pre-train and save to `output_dir`; returns the final training (and evaluation) metrics."""
    arguments = {**PRETRAINING_DEFAULTS, **(training_overrides or {})}
    if eval_data is not None:
        arguments.setdefault("eval_strategy", "steps")
        arguments.setdefault("eval_steps", arguments["save_steps"])
    if streaming and int(arguments.get("max_steps", -1)) <= 0:
        raise SystemExit("--streaming needs --max_steps (a stream has no length to count epochs in)")
    args = TrainingArguments(**arguments)

    pretraining_model = load_pretraining_model(model, config_overrides)
    config = pretraining_model.config
    extractor = _load_feature_extractor(feature_extractor, model, config, mean, std)
    train_dataset = _load_data(data, split, streaming, audio_column, dataset_config, args.seed, shuffle_buffer_size)
    eval_dataset = None
    if eval_data is not None:
        eval_dataset = _load_data(
            eval_data, eval_split, streaming, audio_column, dataset_config, args.seed, shuffle_buffer_size
        )

    optimizer = (
        torch.optim.Adam,
        {"lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon},
    )
    trainer = SSASTPreTrainer(
        model=pretraining_model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        # training batches are padded waveforms, randomly cropped and featurized on the training device
        data_collator=UnlabeledAudioCollator(extractor, audio_column, return_waveforms=True),
        eval_data_collator=UnlabeledAudioCollator(extractor, audio_column, random_crop=False),
        featurizer=AugmentedFeaturizer(extractor, AugmentationConfig(random_crop=True)),
        optimizer_cls_and_kwargs=optimizer,
    )
    result = trainer.train(resume_from_checkpoint=arguments.get("resume_from_checkpoint"))
    metrics = dict(result.metrics)
    metrics["train_skipped_clips"] = trainer.skipped_clips("train")
    trained = [entry for entry in trainer.state.log_history if "loss" in entry]
    if trained:
        metrics.update({f"last_{name}": trained[-1][name] for name in ("loss", *_OBJECTIVES) if name in trained[-1]})
    if eval_dataset is not None:
        metrics.update(trainer.evaluate())
    trainer.save_model(args.output_dir)
    trainer.save_state()  # trainer_state.json: the log history with nce, mse and accuracy per logging step
    if trainer.is_world_process_zero():
        extractor.save_pretrained(args.output_dir)
        with open(Path(args.output_dir) / "pretraining_metrics.json", "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2, sort_keys=True)
    return metrics
