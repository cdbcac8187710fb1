"""HTS-AT (Hierarchical Token-Semantic Audio Transformer): config, models and checkpoint conversion."""

from .configuration_htsat import HTSATConfig
from .modeling_htsat import (
    HTSATAudioClassifierOutput,
    HTSATForAudioClassification,
    HTSATModel,
    HTSATPreTrainedModel,
)

__all__ = [
    "HTSATAudioClassifierOutput",
    "HTSATConfig",
    "HTSATForAudioClassification",
    "HTSATModel",
    "HTSATPreTrainedModel",
]
