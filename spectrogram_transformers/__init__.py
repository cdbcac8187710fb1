"""spectrogram-transformers: AST, HTS-AT and SSAST as Hugging Face `transformers` models.

Importing this package registers every config, model and feature extractor with the `Auto*` classes and this
package's pipeline for "audio-classification" (see `registration` for exactly what changes), so that
`AutoModelForAudioClassification`, `AutoFeatureExtractor`, `AutoProcessor` and
`pipeline("audio-classification")` load directories this package saved. The public names below are imported on
first use, so `import spectrogram_transformers` itself imports neither torch nor transformers.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .registration import register_with_transformers

__version__ = "0.1.0"

# public name -> the subpackage or module defining it (imported at first access)
_EXPORTS: dict[str, str] = {
    "ASTFeatureExtractor": "feature_extraction",
    "HTSATFeatureExtractor": "feature_extraction",
    "ASTConfig": "modeling.ast",
    "ASTForAudioClassification": "modeling.ast",
    "ASTModel": "modeling.ast",
    "ASTPreTrainedModel": "modeling.ast",
    "SUPPORTED_SOURCES": "modeling.convert",
    "convert": "modeling.convert",
    "HTSATAudioClassifierOutput": "modeling.htsat",
    "HTSATConfig": "modeling.htsat",
    "HTSATForAudioClassification": "modeling.htsat",
    "HTSATModel": "modeling.htsat",
    "HTSATPreTrainedModel": "modeling.htsat",
    "SSASTConfig": "modeling.ssast",
    "SSASTForAudioClassification": "modeling.ssast",
    "SSASTForPreTraining": "modeling.ssast",
    "SSASTForPreTrainingOutput": "modeling.ssast",
    "SSASTModel": "modeling.ssast",
    "SSASTPreTrainedModel": "modeling.ssast",
}

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

if TYPE_CHECKING:
    from .feature_extraction import ASTFeatureExtractor, HTSATFeatureExtractor
    from .modeling.ast import ASTConfig, ASTForAudioClassification, ASTModel, ASTPreTrainedModel
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


register_with_transformers()
