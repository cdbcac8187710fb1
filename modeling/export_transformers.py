"""Export an AST (or a fine-tuned SSAST patch model) into `transformers`' own Audio Spectrogram Transformer format.

`transformers.ASTForAudioClassification` (`model_type: "audio-spectrogram-transformer"`) can express a subset of
this package's AST: square patches, the DeiT cls + distillation tokens averaged for pooling, one LayerNorm eps.
Where a model fits, `export_to_transformers` writes a directory that plain `transformers` loads with no remote
code; where it does not, it raises `NotExpressibleError` naming the field. The one approximation is reported
as parity (max abs logits difference): the original's classifier LayerNorm keeps torch's eps 1e-5 while the
backbone uses 1e-6, and `transformers` has a single `layer_norm_eps` (the backbone's is written).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel

__all__ = [
    "ExportReport",
    "NotExpressibleError",
    "export_to_transformers",
    "refuse_non_empty_output",
    "transformers_ast_state_dict",
]

# feature-extractor settings transformers' ASTFeatureExtractor hard-codes (Kaldi fbank defaults)
_FIXED_FRONT_END = {
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "preemphasis": 0.97,
    "remove_dc_offset": True,
    "window_type": "hanning",
    "round_to_power_of_two": True,
    "low_freq": 20.0,
    "high_freq": 0.0,
}


class NotExpressibleError(ValueError):
    """The model (or its feature extractor) uses something `transformers`' AST cannot express; names the field."""


@dataclass
class ExportReport:
    """What `export_to_transformers` wrote and how close the exported model is to the source."""

    output: Path
    architecture: str
    max_abs_logits_difference: float
    notes: list[str]

    def summary(self) -> str:
        lines = [
            f"wrote {self.architecture} (transformers' own model_type 'audio-spectrogram-transformer') to {self.output}",
            f"parity: max |logits difference| = {self.max_abs_logits_difference:.3g} on random features",
        ]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def _check_expressible(config, has_classifier: bool = True) -> list[str]:
    """Raise for fields transformers' AST cannot express; return notes on what changes slightly."""
    if config.model_type not in ("ast", "ssast"):
        raise NotExpressibleError(
            f"model_type {config.model_type!r}: only AST and fine-tuned SSAST patch models have a transformers format"
        )
    problems = []
    if config.frequency_patch_size != config.time_patch_size:
        problems.append(
            f"patch_size={tuple(config.patch_size)}: transformers' AST has square patches only (frame patches are not)"
        )
    if config.num_prefix_tokens != 2:
        problems.append(
            f"num_prefix_tokens={config.num_prefix_tokens}: transformers' AST always has cls + distillation tokens"
        )
    if config.pooling != "cls":
        problems.append(
            f"pooling={config.pooling!r}: transformers' AST pools the mean of its two prefix tokens ('cls')"
        )
    if problems:
        raise NotExpressibleError("cannot export to transformers' AST format: " + "; ".join(problems))
    notes = []
    if has_classifier and config.classifier_layer_norm_eps != config.layer_norm_eps:
        notes.append(
            f"classifier LayerNorm eps {config.classifier_layer_norm_eps:g} becomes {config.layer_norm_eps:g} "
            "(transformers has one layer_norm_eps)"
        )
    return notes


def transformers_ast_state_dict(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """This package's AST/SSAST state dict in the key names of transformers' (5.x, in-memory) AST models."""
    is_base = model.base_model is model
    prefix = model.base_model_prefix + "."
    renamed = {}
    for key, value in model.state_dict().items():
        if is_base or key.startswith(prefix):
            inner = re.sub(r"^encoder\.layers\.", "layers.", key if is_base else key[len(prefix) :])
            key = inner if is_base else f"audio_spectrogram_transformer.{inner}"
        renamed[key] = value.detach().clone()
    return renamed


def _transformers_config(config):
    from transformers import ASTConfig as TransformersASTConfig

    return TransformersASTConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        initializer_range=config.initializer_range,
        layer_norm_eps=config.layer_norm_eps,
        patch_size=config.frequency_patch_size,
        qkv_bias=config.qkv_bias,
        frequency_stride=config.frequency_stride,
        time_stride=config.time_stride,
        max_length=config.max_length,
        num_mel_bins=config.num_mel_bins,
        id2label=dict(config.id2label),
        label2id=dict(config.label2id),
        problem_type=config.problem_type,
    )


def _write_feature_extractor(source_dir: Path | None, config, output: Path) -> list[str]:
    """transformers' ASTFeatureExtractor settings from the saved one (or the defaults sized to the model)."""
    from transformers import ASTFeatureExtractor as TransformersASTFeatureExtractor

    saved = {}
    if source_dir is not None and (source_dir / "preprocessor_config.json").is_file():
        saved = json.loads((source_dir / "preprocessor_config.json").read_text())
    for name, value in _FIXED_FRONT_END.items():
        if name in saved and saved[name] != value:
            raise NotExpressibleError(
                f"cannot export the feature extractor: {name}={saved[name]!r}, transformers' ASTFeatureExtractor "
                f"always uses {value!r}"
            )
    notes = []
    if saved.get("subtract_waveform_mean", True):
        notes.append(
            "transformers' ASTFeatureExtractor does not subtract the waveform mean before the fbank as the original "
            "dataloader does: features differ slightly (per-frame DC removal makes it small)"
        )
    extractor = TransformersASTFeatureExtractor(
        sampling_rate=saved.get("sampling_rate", 16000),
        num_mel_bins=config.num_mel_bins,
        max_length=config.max_length,
        padding_value=saved.get("padding_value", 0.0),
        do_normalize=saved.get("do_normalize", True),
        mean=saved.get("mean", -4.2677393),
        std=saved.get("std", 4.5689974),
        return_attention_mask=saved.get("return_attention_mask", False),
    )
    extractor.save_pretrained(output)
    return notes


def refuse_non_empty_output(output: Path, overwrite: bool) -> None:
    """An export never replaces what is at `output` (a file, or a directory with anything in it) unasked."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise FileExistsError(f"{output} exists and is not empty; pass overwrite=True (--overwrite) to replace it")


def export_to_transformers(
    model: str | Path | PreTrainedModel, output: str | Path, overwrite: bool = False
) -> ExportReport:
    """Write `model` (a package-saved directory or an AST/SSAST model) in transformers' native AST format.

    The result loads with `transformers.ASTForAudioClassification.from_pretrained(output)` (or `ASTModel` for a
    base model) without this package. Raises `NotExpressibleError` naming the field where the architecture does
    not fit, and `FileExistsError` for a non-empty `output` unless `overwrite=True`.
    """
    from transformers import (
        ASTForAudioClassification as TransformersASTForAudioClassification,
    )
    from transformers import ASTModel as TransformersASTModel

    output = Path(output)
    refuse_non_empty_output(output, overwrite)
    source_dir = None
    if not isinstance(model, PreTrainedModel):
        from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification

        source_dir = Path(model)
        config = AutoConfig.from_pretrained(model)
        architectures = config.architectures or []
        is_classifier = any(name.endswith("ForAudioClassification") for name in architectures)
        notes = _check_expressible(config, has_classifier=is_classifier)
        loader = AutoModelForAudioClassification if is_classifier else AutoModel
        model = loader.from_pretrained(model)
    else:
        notes = _check_expressible(model.config, has_classifier=model.base_model is not model)
    model = model.float().eval()
    is_base = model.base_model is model
    target_class = TransformersASTModel if is_base else TransformersASTForAudioClassification
    if not is_base and not type(model).__name__.endswith("ForAudioClassification"):
        raise NotExpressibleError(f"{type(model).__name__}: only base and audio-classification models can be exported")
    target = target_class(_transformers_config(model.config)).eval()
    target.load_state_dict(transformers_ast_state_dict(model), strict=True)

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, model.config.max_length, model.config.num_mel_bins, generator=generator)
    with torch.no_grad():
        ours, theirs = model(features), target(features)
    key = "last_hidden_state" if is_base else "logits"
    difference = (ours[key] - theirs[key]).abs().max().item()

    output.mkdir(parents=True, exist_ok=True)
    target.save_pretrained(output)
    notes += _write_feature_extractor(source_dir, model.config, output)
    return ExportReport(output, target_class.__name__, difference, notes)
