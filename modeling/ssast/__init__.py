"""Self-Supervised Audio Spectrogram Transformer (SSAST): config, models and checkpoint conversion.

Names are imported on first access, so the config can be imported (and registered with AutoConfig)
without the modeling code and transformers' model machinery.
"""

import importlib
from typing import Any

# public name -> the module defining it
_EXPORTS: dict[str, str] = {
    "SSASTConfig": ".configuration_ssast",
    "cluster_mask_indices": ".masking",
    "random_mask_indices": ".masking",
    "SSASTForAudioClassification": ".modeling_ssast",
    "SSASTForPreTraining": ".modeling_ssast",
    "SSASTForPreTrainingOutput": ".modeling_ssast",
    "SSASTMaskVisualization": ".modeling_ssast",
    "SSASTModel": ".modeling_ssast",
    "SSASTPreTrainedModel": ".modeling_ssast",
    "adapt_ssast_state_dict_geometry": ".modeling_ssast",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
