"""Call-time helpers shared by the AST and HTS-AT feature extractors (not public API)."""

from __future__ import annotations

from typing import Any

import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, logging

logger = logging.get_logger(__name__)

_CALL_OPTIONS = ("device",)


def warn_missing_sampling_rate(extractor: SequenceFeatureExtractor) -> None:
    logger.warning(
        f"It is strongly recommended to pass the `sampling_rate` argument to `{type(extractor).__name__}()`. "
        f"Without it the audio is assumed to be at {extractor.sampling_rate} Hz, which gives wrong features "
        "silently when it is not."
    )


def to_batch_feature(tensors: dict[str, torch.Tensor], return_tensors: str | TensorType | None) -> BatchFeature:
    """BatchFeature in the requested format: torch ("pt"), one numpy array ("np"), or (None) a list of numpy
    arrays per key, one per clip, as `transformers`' audio feature extractors return them."""
    if return_tensors is not None:
        return_tensors = TensorType(return_tensors)
    if return_tensors == TensorType.PYTORCH:
        return BatchFeature(dict(tensors), tensor_type="pt")
    arrays = {key: value.cpu().numpy() for key, value in tensors.items()}
    if return_tensors == TensorType.NUMPY:
        return BatchFeature(arrays, tensor_type="np")
    if return_tensors is not None:
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
    return BatchFeature({key: list(value) for key, value in arrays.items()})


def check_call_kwargs(extractor: SequenceFeatureExtractor, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(_CALL_OPTIONS))
    if unknown:
        raise TypeError(f"{type(extractor).__name__}.__call__() got unexpected keyword argument(s) {unknown}")
