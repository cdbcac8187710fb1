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

__all__ = ["SUPPORTED_SOURCES", "convert"]

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
