"""Audio Spectrogram Transformer (AST): config, models and checkpoint conversion."""

from .ast_state_dicts import adapt_state_dict_geometry, ast_checkpoint_filter
from .configuration_ast import ASTConfig
from .modeling_ast import (
    ASTForAudioClassification,
    ASTModel,
    ASTPreTrainedModel,
)

__all__ = [
    "ASTConfig",
    "ASTForAudioClassification",
    "ASTModel",
    "ASTPreTrainedModel",
    "adapt_state_dict_geometry",
    "ast_checkpoint_filter",
]
