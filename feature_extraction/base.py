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
from transformers.utils import PaddingStrategy, TensorType, logging

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

    Subclasses implement `extract`, `input_samples` and `frames_of_samples` (the call's attention mask), and may
    name extra keyword arguments of `__call__` that are passed on to `extract` (`_extract_options`).
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
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        return_attention_mask: bool | None = None,
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
    def frames_of_samples(self, lengths: torch.Tensor) -> torch.Tensor:
        """[B] output frames that a clip of `lengths[b]` samples fills by itself (the rest are padding): the
        attention mask of a call that pads the audio (`padding=...`) is 0 from there on."""
        raise NotImplementedError

    def _features_of(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None,
        return_tensors: str | TensorType | None,
        return_attention_mask: bool | None,
        kwargs: dict[str, Any],
        *,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> BatchFeature:
        """`__call__`'s body: any accepted audio -> mono float32 clips at `sampling_rate` -> cut/padded in samples
        as the call arguments ask -> one padded batch on the requested device -> `extract`."""
        allowed = ("device", *self._extract_options)
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"{type(self).__name__}.__call__() got unexpected keyword argument(s) {unknown}")
        plan = _SampleLengthPlan.from_call(padding, truncation, max_length, pad_to_multiple_of)
        if sampling_rate is None:
            logger.warning(
                f"It is strongly recommended to pass the `sampling_rate` argument to `{type(self).__name__}()`. "
                f"Without it the audio is assumed to be at {self.sampling_rate} Hz, which gives wrong features "
                "silently when it is not."
            )
        clips = [torch.from_numpy(clip) for clip in to_mono_batch(raw_speech, sampling_rate, self.sampling_rate)]
        clips, audio_lengths = plan.apply(clips)
        batch, lengths = pad_batch(clips, device=kwargs.get("device"))
        options = {name: kwargs[name] for name in self._extract_options if kwargs.get(name) is not None}
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        features = self.extract(batch, lengths, return_attention_mask=return_attention_mask, **options)
        if return_attention_mask and plan.pads:
            # Frames that read the zeros this call appended are padding too, whatever `extract` saw.
            mask = features["attention_mask"]
            own = frames_mask(self.frames_of_samples(audio_lengths), mask.shape[1], mask.device)
            features["attention_mask"] = mask * own
        return to_batch_feature(features, return_tensors)


class _SampleLengthPlan:
    """What the standard call arguments of `transformers`' sequence feature extractors (`padding`,
    `truncation`, `max_length`, `pad_to_multiple_of`) do to the clips, all counted in samples at the extractor's
    `sampling_rate`: cut each clip to `max_length` (truncation), then append zeros up to the longest clip
    ("longest") or to `max_length` ("max_length"), rounded up to a multiple of `pad_to_multiple_of`."""

    def __init__(self, strategy: PaddingStrategy, truncate: bool, max_length: int | None, multiple: int | None):
        self.strategy, self.truncate, self.max_length, self.multiple = strategy, truncate, max_length, multiple

    @property
    def pads(self) -> bool:
        return self.strategy != PaddingStrategy.DO_NOT_PAD

    @classmethod
    def from_call(cls, padding, truncation, max_length, pad_to_multiple_of) -> _SampleLengthPlan:
        if padding is None or padding is False:
            strategy = PaddingStrategy.DO_NOT_PAD
        elif padding is True:
            strategy = PaddingStrategy.LONGEST
        else:
            try:
                strategy = PaddingStrategy(padding)
            except ValueError:
                raise ValueError(
                    f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}"
                ) from None
        if truncation is None:
            truncation = False
        if not isinstance(truncation, bool):
            raise ValueError(f"truncation must be True or False, got {truncation!r}")
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
            ):
                raise ValueError(f"{name} counts samples and must be an integer >= 1, got {value!r}")
        if truncation and max_length is None:
            raise ValueError("truncation=True needs max_length (in samples) to cut the audio to")
        if strategy == PaddingStrategy.MAX_LENGTH and max_length is None:
            raise ValueError("padding='max_length' needs max_length (in samples) to pad the audio to")
        if max_length is not None and not truncation and strategy != PaddingStrategy.MAX_LENGTH:
            logger.warning(
                f"max_length={max_length} (samples) has no effect without truncation=True or padding='max_length'; "
                "the model's frame count is a setting of the feature extractor, not of the call"
            )
        if pad_to_multiple_of is not None and strategy == PaddingStrategy.DO_NOT_PAD and not truncation:
            logger.warning("pad_to_multiple_of has no effect without padding or truncation")
        max_length = None if max_length is None else int(max_length)
        multiple = None if pad_to_multiple_of is None else int(pad_to_multiple_of)
        return cls(strategy, truncation, max_length, multiple)

    def _rounded(self, samples: int) -> int:
        return samples if self.multiple is None else -(-samples // self.multiple) * self.multiple

    def apply(self, clips: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The clips cut and zero-padded as planned, and [B] samples of each clip's own audio (after cutting)."""
        if self.truncate:
            clips = [clip[: self._rounded(self.max_length)] for clip in clips]
        audio_lengths = torch.tensor([clip.shape[0] for clip in clips], dtype=torch.long)
        if self.strategy == PaddingStrategy.LONGEST:
            target = self._rounded(max((clip.shape[0] for clip in clips), default=0))
        elif self.strategy == PaddingStrategy.MAX_LENGTH:
            target = self._rounded(self.max_length)
        else:
            return clips, audio_lengths
        # A clip longer than the target (padding='max_length' without truncation) keeps its length.
        clips = [torch.nn.functional.pad(clip, (0, max(target - clip.shape[0], 0))) for clip in clips]
        return clips, audio_lengths
