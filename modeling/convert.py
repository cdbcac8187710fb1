"""One entry point for every checkpoint converter: `convert(checkpoint, source, config=None)`.

Each family's `convert_<family>.py` holds pure `convert_<source>_state_dict(state_dict, config)`
functions and a `BUILDERS` table mapping its source names to functions that return a ready model.
"""

from pathlib import Path

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from .ast.convert_ast import BUILDERS as AST_BUILDERS
from .ast.convert_ast import CONFIG_READERS as AST_CONFIG_READERS
from .checkpoint import load_checkpoint
from .htsat.convert_htsat import BUILDERS as HTSAT_BUILDERS
from .ssast.convert_ssast import BUILDERS as SSAST_BUILDERS

__all__ = ["SUPPORTED_SOURCES", "convert", "feature_extractor_for", "save_converted"]

_BUILDERS = {**AST_BUILDERS, **HTSAT_BUILDERS, **SSAST_BUILDERS}
# source -> function(config.json path) -> config, for formats whose directories carry their own config
_CONFIG_READERS = {**AST_CONFIG_READERS}
SUPPORTED_SOURCES: tuple[str, ...] = tuple(sorted(_BUILDERS))


def convert(
    checkpoint: str | Path | dict[str, torch.Tensor],
    source: str,
    config: PreTrainedConfig | None = None,
) -> PreTrainedModel:
    """Build a ready (eval-mode) model from a checkpoint in another format.

    Args:
        checkpoint: a file (`.pth`, `.pt`, `.ckpt`, `.bin`, `.safetensors`), a directory holding one, or a
            state dict already in memory.
        source: the checkpoint's format, one of `SUPPORTED_SOURCES`.
        config: what the checkpoint cannot tell (strides, input length, heads, labels); where it disagrees
            with the checkpoint's tensor shapes the error names the field.
    """
    if source not in _BUILDERS:
        raise ValueError(f"unknown source {source!r}; supported: {', '.join(SUPPORTED_SOURCES)}")
    if config is None and source in _CONFIG_READERS and not isinstance(checkpoint, dict):
        config_file = Path(checkpoint) / "config.json"
        if config_file.is_file():
            config = _CONFIG_READERS[source](config_file)
    state_dict = load_checkpoint(checkpoint)
    return _BUILDERS[source](state_dict, config).eval()


def feature_extractor_for(config: PreTrainedConfig, preprocessor_dir: Path | None = None):
    """The feature extractor matching a model config: the variant's saved one, else the family default
    sized to the model's input (frames and mel bins)."""
    from transformers import AutoFeatureExtractor
    from transformers.models.auto.feature_extraction_auto import (
        FEATURE_EXTRACTOR_MAPPING,
    )

    if preprocessor_dir is not None and (preprocessor_dir / "preprocessor_config.json").is_file():
        extractor = AutoFeatureExtractor.from_pretrained(preprocessor_dir)
    else:
        extractor = FEATURE_EXTRACTOR_MAPPING[type(config)]()
    if config.model_type in ("ast", "ssast"):  # the Kaldi front end must give the frames and bins the model reads
        extractor.max_length = config.max_length
        extractor.num_mel_bins = extractor.feature_size = config.num_mel_bins
    return extractor


def save_converted(model, output: str | Path, preprocessor_dir: Path | None = None) -> Path:
    """Write a converted model and the feature extractor matching it: a directory for `from_pretrained`."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    feature_extractor_for(model.config, preprocessor_dir).save_pretrained(output)
    return output
