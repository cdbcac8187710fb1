"""Self-Supervised Audio Spectrogram Transformer (SSAST): config, models and checkpoint conversion."""

from .configuration_ssast import SSASTConfig
from .masking import cluster_mask_indices, random_mask_indices
from .modeling_ssast import (
    SSASTForAudioClassification,
    SSASTForPreTraining,
    SSASTForPreTrainingOutput,
    SSASTMaskVisualization,
    SSASTModel,
    SSASTPreTrainedModel,
    adapt_ssast_state_dict_geometry,
)

__all__ = [
    "SSASTConfig",
    "SSASTForAudioClassification",
    "SSASTForPreTraining",
    "SSASTForPreTrainingOutput",
    "SSASTMaskVisualization",
    "SSASTModel",
    "SSASTPreTrainedModel",
    "adapt_ssast_state_dict_geometry",
    "cluster_mask_indices",
    "random_mask_indices",
]
