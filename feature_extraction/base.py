"""What the AST and HTS-AT feature extractors share: argument handling, `to_dict`, the numpy/list adapter
`__call__`, and the tensor contract the training step, pre-training, evaluation and inference use.

The tensor contract: `extract(waveforms [B, S], lengths [B])` takes a zero-padded batch of mono float waveforms
at the extractor's `sampling_rate` (values past each clip's length are ignored) and returns the features on the
waveforms' device, computed in float32 (the precision of the reference implementations) whatever the input's
floating dtype. `input_samples` is the one definition of how many samples of a clip the features can read
(None: every sample); callers crop to it. `__call__` decodes what pipelines and users hand over (numpy, lists,
PCM integers, multi-channel arrays, other sampling rates) into such a batch and calls `extract`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, logging

from .audio import to_mono_batch
from .kaldi import pad_batch

__all__ = ["SpectrogramFeatureExtractor", "model_input_samples"]

logger = logging.get_logger(__name__)

RawAudio = np.ndarray | torch.Tensor | list[float] | list[np.ndarray] | list[torch.Tensor]


def model_input_samples(feature_extractor) -> int | None:
    """Samples of audio the model sees at once (the training crop, the inference window), or None if unbounded:
    the extractor's own `input_samples` (HTS-AT's `clip_samples`, AST's `max_length` Kaldi frames); None for
    extractors without it."""
    samples = getattr(feature_extractor, "input_samples", None)
    return None if samples is None else int(samples)


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


def frames_mask(num_frames: torch.Tensor, total_frames: int, device: torch.device) -> torch.Tensor:
    """[B, total_frames] int32 attention mask: 1 on the first `num_frames[b]` frames of row b, 0 after."""
    positions = torch.arange(total_frames, device=device).unsqueeze(0)  # (1, T)
    return (positions < num_frames.to(device).unsqueeze(1)).to(torch.int32)


class SpectrogramFeatureExtractor(SequenceFeatureExtractor):
    """Base of the package's feature extractors: one value per mel bin (`feature_size == num_mel_bins`), no
    "feature_extractor_type" in saved configs (see `to_dict`), and the tensor contract (`extract`,
    `input_samples`) behind the numpy/list adapter `__call__`.

    Subclasses implement `extract` and `input_samples`, and may name extra keyword arguments of `__call__`
    that are passed on to `extract` (`_extract_options`, e.g. AST's `max_length`).
    """

    _extract_options: tuple[str, ...] = ()

    def __init__(
        self,
        feature_size: int,
        sampling_rate: int,
        num_mel_bins: int,
        padding_value: float,
        return_attention_mask: bool,
        **kwargs,
    ):
        # Saved configs name their class in "feature_extractor_type"; it is not an argument (see `to_dict`).
        kwargs.pop("feature_extractor_type", None)
        if feature_size != num_mel_bins:
            logger.info(f"feature_size={feature_size} replaced by num_mel_bins={num_mel_bins} (one value per mel bin)")
        super().__init__(
            feature_size=num_mel_bins,
            sampling_rate=sampling_rate,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        self.num_mel_bins = num_mel_bins

    def to_dict(self) -> dict[str, Any]:
        # No "feature_extractor_type": `transformers.AutoFeatureExtractor` resolves that name among its own
        # classes *before* registered ones (`feature_extractor_class_from_name`), and transformers has its own
        # `ASTFeatureExtractor`, so writing our class name would load theirs. Without the key, the Auto class
        # reads config.json and picks the extractor registered for its `model_type` ("ast" -> ASTFeatureExtractor,
        # in `spectrogram_transformers.registration`).
        output = super().to_dict()
        output.pop("feature_extractor_type", None)
        return output

    # -- the tensor contract ----------------------------------------------------------------------------------------
    @property
    def input_samples(self) -> int | None:
        """Samples of a clip (from its start) that the features read; None when every sample is read."""
        raise NotImplementedError

    def extract(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None, *, return_attention_mask: bool | None = None
    ) -> dict[str, torch.Tensor]:
        """Features of a zero-padded batch of mono waveforms [B, S] at `sampling_rate`, on their device."""
        raise NotImplementedError

    @staticmethod
    def _checked_batch(waveforms: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 [B, S] with zeros past each clip's length (whatever the caller left there), lengths [B] int64.

        Lengths stay where they are given (a host tensor costs no device synchronisation); the samples stay on
        their device.
        """
        if not isinstance(waveforms, torch.Tensor) or waveforms.ndim != 2 or not waveforms.is_floating_point():
            shape = tuple(waveforms.shape) if isinstance(waveforms, torch.Tensor) else type(waveforms).__name__
            raise ValueError(f"extract() takes a float tensor [batch, samples] of mono waveforms, got {shape}")
        batch_size, samples = waveforms.shape
        if lengths is None:
            lengths = torch.full((batch_size,), samples, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        if lengths.shape != (batch_size,):
            raise ValueError(f"lengths must be [{batch_size}], got shape {tuple(lengths.shape)}")
        batch = waveforms.to(torch.float32)
        if batch_size and bool((lengths < samples).any()):
            valid = torch.arange(samples, device=batch.device).unsqueeze(0) < lengths.to(batch.device).unsqueeze(1)
            batch = batch.masked_fill(~valid, 0.0)  # (B, S): a new tensor, the caller's is never modified
        elif batch is waveforms:
            batch = batch.clone()  # extract may work in place
        return batch, lengths

    # -- the numpy / list adapter -------------------------------------------------------------------------------------
    def _features_of(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None,
        return_tensors: str | TensorType | None,
        return_attention_mask: bool | None,
        kwargs: dict[str, Any],
    ) -> BatchFeature:
        """`__call__`'s body: any accepted audio -> mono float32 clips at `sampling_rate` -> one padded batch on
        the requested device -> `extract`."""
        allowed = ("device", *self._extract_options)
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"{type(self).__name__}.__call__() got unexpected keyword argument(s) {unknown}")
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{type(self).__name__}()`. "
                f"Without it the audio is assumed to be at {self.sampling_rate} Hz, which gives wrong features "
                "silently when it is not."
            )
        clips = to_mono_batch(raw_speech, sampling_rate, self.sampling_rate)
        batch, lengths = pad_batch([torch.from_numpy(clip) for clip in clips], device=kwargs.get("device"))
        options = {name: kwargs[name] for name in self._extract_options if kwargs.get(name) is not None}
        features = self.extract(batch, lengths, return_attention_mask=return_attention_mask, **options)
        return to_batch_feature(features, return_tensors)
