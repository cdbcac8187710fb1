"""HTS-AT (Hierarchical Token-Semantic Audio Transformer): config, models and checkpoint conversion.

Names are imported on first access, so the config can be imported (and registered with AutoConfig)
without the modeling code and transformers' model machinery.
"""

import importlib
from typing import Any

# public name -> the module defining it
_EXPORTS: dict[str, str] = {
    "HTSATConfig": ".configuration_htsat",
    "HTSATAudioClassifierOutput": ".modeling_htsat",
    "HTSATForAudioClassification": ".modeling_htsat",
    "HTSATModel": ".modeling_htsat",
    "HTSATPreTrainedModel": ".modeling_htsat",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
