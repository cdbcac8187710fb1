"""Audio Spectrogram Transformer (AST): config, models and checkpoint conversion."""

from .configuration_ast import ASTConfig
from .modeling_ast import (
    ASTForAudioClassification,
    ASTModel,
    ASTPreTrainedModel,
    adapt_state_dict_geometry,
)

__all__ = ["ASTConfig", "ASTForAudioClassification", "ASTModel", "ASTPreTrainedModel", "adapt_state_dict_geometry"]
