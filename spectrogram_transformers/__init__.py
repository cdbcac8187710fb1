"""spectrogram-transformers: AST, HTS-AT and SSAST as Hugging Face `transformers` models.

Importing this package registers every config, model and feature extractor with the `Auto*` classes
(in `_register_auto_classes`, the one place that does so), so that `AutoModelForAudioClassification`,
`AutoFeatureExtractor` and `pipeline("audio-classification")` load directories this package saved; the
pipeline of these models accepts audio at any sampling rate and classifies long audio in windows.
"""

from .feature_extraction import ASTFeatureExtractor, HTSATFeatureExtractor
from .modeling.ast import (
    ASTConfig,
    ASTForAudioClassification,
    ASTModel,
    ASTPreTrainedModel,
)
from .modeling.convert import SUPPORTED_SOURCES, convert
from .modeling.htsat import (
    HTSATAudioClassifierOutput,
    HTSATConfig,
    HTSATForAudioClassification,
    HTSATModel,
    HTSATPreTrainedModel,
)
from .modeling.ssast import (
    SSASTConfig,
    SSASTForAudioClassification,
    SSASTForPreTraining,
    SSASTForPreTrainingOutput,
    SSASTModel,
    SSASTPreTrainedModel,
)

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    """Register configs, models and feature extractors with transformers' Auto classes (idempotent)."""
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForAudioClassification,
        AutoModelForPreTraining,
    )

    families = [
        # (config, base model, classification model, pre-training model or None, feature extractor or None)
        (ASTConfig, ASTModel, ASTForAudioClassification, None, ASTFeatureExtractor),
        (HTSATConfig, HTSATModel, HTSATForAudioClassification, None, HTSATFeatureExtractor),
        # SSAST shares AST's front end (the original dataloaders are bit-identical)
        (SSASTConfig, SSASTModel, SSASTForAudioClassification, SSASTForPreTraining, ASTFeatureExtractor),
    ]
    for config_class, base_model, classifier, pretraining_model, feature_extractor in families:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, base_model, exist_ok=True)
        AutoModelForAudioClassification.register(config_class, classifier, exist_ok=True)
        if pretraining_model is not None:
            AutoModelForPreTraining.register(config_class, pretraining_model, exist_ok=True)
        if feature_extractor is not None:
            AutoFeatureExtractor.register(config_class, feature_extractor, exist_ok=True)

    # pipeline("audio-classification"): any sampling rate without torchaudio, long audio in windows, for these
    # models; transformers' own pipeline for every other model (see pipelines.py for why a pipeline class)
    from .pipelines import register_pipeline

    register_pipeline()

    # pipeline("audio-feature-extraction"): embeddings (the audio counterpart of transformers' text and image tasks)
    from .embedding_pipeline import register_embedding_pipeline

    register_embedding_pipeline()


_register_auto_classes()

__all__ = [
    "ASTConfig",
    "ASTFeatureExtractor",
    "ASTForAudioClassification",
    "ASTModel",
    "ASTPreTrainedModel",
    "HTSATAudioClassifierOutput",
    "HTSATConfig",
    "HTSATFeatureExtractor",
    "HTSATForAudioClassification",
    "HTSATModel",
    "HTSATPreTrainedModel",
    "SSASTConfig",
    "SSASTForAudioClassification",
    "SSASTForPreTraining",
    "SSASTForPreTrainingOutput",
    "SSASTModel",
    "SSASTPreTrainedModel",
    "SUPPORTED_SOURCES",
    "convert",
]
