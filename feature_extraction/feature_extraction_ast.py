"""Feature extractor of the Audio Spectrogram Transformer (AST) and SSAST.

Paper: Gong, Chung and Glass, "AST: Audio Spectrogram Transformer", Interspeech 2021.
Original code: https://github.com/YuanGongND/ast (`src/dataloader.py`, `AudiosetDataset`); SSAST
(https://github.com/YuanGongND/ssast) uses the same front end bit for bit.

Pipeline per clip, as the original dataloader runs it: subtract the waveform's mean, Kaldi fbank (see
`kaldi.py`), pad with zeros or cut to `max_length` frames, then normalise with the dataset statistics as
`(x - mean) / (2 * std)`. Here the whole batch goes through each step at once in torch.
"""

from __future__ import annotations

import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import PaddingStrategy, TensorType, logging

from .base import RawAudio, SpectrogramFeatureExtractor, frames_mask
from .kaldi import KaldiFbankSettings, WindowType, kaldi_fbank, kaldi_mel_banks

__all__ = ["ASTFeatureExtractor"]

logger = logging.get_logger(__name__)

_WINDOW_TYPES = ("hanning", "hamming", "povey", "rectangular")


class ASTFeatureExtractor(SpectrogramFeatureExtractor):
    r"""Kaldi fbank features for AST / SSAST: [batch, max_length, num_mel_bins], time along dim 1.

    Every constant of the original front end is a saved argument, so one class covers the AudioSet, ESC-50
    and Speech Commands recipes (they differ in `max_length`, `mean` and `std`) and 32 kHz variants.

    Args:
        feature_size (`int`, defaults to 128): kept equal to `num_mel_bins` (features have one value per mel
            bin); `transformers`' AST configs store 1 here, which is accepted and overridden.
        sampling_rate (`int`, defaults to 16000): rate the features are computed at; input at another rate is
            resampled to it. Kaldi's window is in milliseconds, so the window length follows this rate.
        num_mel_bins (`int`, defaults to 128): number of Kaldi mel filters.
        max_length (`int`, defaults to 1024): frames per example after padding/cutting (AudioSet 1024 = 10.24 s;
            ESC-50 512; Speech Commands 128).
        padding_value (`float`, defaults to 0.0): fbank value of padded frames, before normalisation (the
            original pads with zeros, so padded frames end up as `(0 - mean) / (2 * std)`).
        do_normalize (`bool`, defaults to True): apply `(x - mean) / (2 * std)`.
        mean (`float`, defaults to -4.2677393), std (`float`, defaults to 4.5689974): dataset statistics of the
            fbank (AudioSet defaults; ESC-50 -6.6268077 / 5.358466; Speech Commands -6.845978 / 5.5654526).
        return_attention_mask (`bool`, defaults to False): also return `attention_mask` [batch, max_length],
            1 on frames computed from audio and 0 on padding. AST itself takes no mask.
        frame_length_ms (`float`, defaults to 25.0), frame_shift_ms (`float`, defaults to 10.0): Kaldi framing.
        preemphasis (`float`, defaults to 0.97): Kaldi pre-emphasis coefficient.
        remove_dc_offset (`bool`, defaults to True): subtract each frame's mean (Kaldi default).
        window_type (`str`, defaults to `"hanning"`): Kaldi window; AST uses the symmetric Hann window.
        round_to_power_of_two (`bool`, defaults to True): FFT size = next power of two of the window.
        low_freq (`float`, defaults to 20.0), high_freq (`float`, defaults to 0.0): mel filterbank edges in Hz;
            `high_freq <= 0` is an offset from Nyquist (0 = Nyquist).
        subtract_waveform_mean (`bool`, defaults to True): remove each clip's mean over the whole waveform
            before the fbank, as the original dataloader does.

    Tensor contract: [`~ASTFeatureExtractor.extract`] on a padded batch, `input_samples` samples per clip read.
    Numpy / list adapter (pipelines): [`~ASTFeatureExtractor.__call__`].
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 128,
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        max_length: int = 1024,
        padding_value: float = 0.0,
        do_normalize: bool = True,
        mean: float = -4.2677393,
        std: float = 4.5689974,
        return_attention_mask: bool = False,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        preemphasis: float = 0.97,
        remove_dc_offset: bool = True,
        window_type: WindowType = "hanning",
        round_to_power_of_two: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        subtract_waveform_mean: bool = True,
        **kwargs,
    ):
        super().__init__(feature_size, sampling_rate, num_mel_bins, padding_value, return_attention_mask, **kwargs)
        self.max_length = max_length
        self.do_normalize = do_normalize
        self.mean = mean
        self.std = std
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.preemphasis = preemphasis
        self.remove_dc_offset = remove_dc_offset
        self.window_type = window_type
        self.round_to_power_of_two = round_to_power_of_two
        self.low_freq = low_freq
        self.high_freq = high_freq
        self.subtract_waveform_mean = subtract_waveform_mean
        self._validate()

    def _validate(self) -> None:
        if self.num_mel_bins < 1 or self.max_length < 1:
            raise ValueError(f"num_mel_bins and max_length must be >= 1, got {self.num_mel_bins}, {self.max_length}")
        if self.do_normalize and not self.std > 0:
            raise ValueError(f"std must be positive to normalise, got {self.std}")
        if self.window_type not in _WINDOW_TYPES:
            raise ValueError(f"window_type must be one of {_WINDOW_TYPES}, got {self.window_type!r}")
        # Both raise for settings that give no window or no mel range at this rate.
        _, _, fft_size = self.fbank_settings.frame_sizes(self.sampling_rate)
        kaldi_mel_banks(self.num_mel_bins, fft_size, self.sampling_rate, self.low_freq, self.high_freq)

    @property
    def fbank_settings(self) -> KaldiFbankSettings:
        """The Kaldi front end's settings, from this extractor's saved attributes."""
        return KaldiFbankSettings.from_attributes(self)

    @property
    def input_samples(self) -> int:
        """Samples that `max_length` frames read: (max_length - 1) frame shifts plus one window, in Kaldi's
        whole samples (225,611 at 22.05 kHz with 1024 frames). Samples past them never reach the features."""
        return self._samples_for(self.max_length)

    def _samples_for(self, max_length: int) -> int:
        window, hop, _ = self.fbank_settings.frame_sizes(self.sampling_rate)
        return (max_length - 1) * hop + window

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """The original's normalisation `(x - mean) / (2 * std)`, in place on `features`.

        The factor 2 is AST's own choice (src/dataloader.py, kept by SSAST and transformers): it makes the
        features' standard deviation about 0.5 rather than 1. Pretrained checkpoints expect it, so it stays.
        """
        return features.sub_(self.mean).div_(self.std * 2)

    def __call__(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None = None,
        return_tensors: str | TensorType | None = None,
        max_length: int | None = None,
        return_attention_mask: bool | None = None,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | None = None,
        pad_to_multiple_of: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Compute normalised fbank features of one clip or a batch of clips of any lengths.

        Args:
            raw_speech: one clip (1-D numpy/torch, or list of floats), a batch of mono clips [batch, samples],
                or a list of clips of different lengths; int16/int32/uint8 PCM or float. A 2-D array is a batch
                of mono clips ([batch, samples], the `transformers` convention), except an array whose trailing
                axis is a handful of channels (<= 8) and whose leading axis is longer: that is one channels-last
                clip as `soundfile.read` returns it ([samples, channels]); it is down-mixed, with a one-time
                warning. Pass a channels-first clip [channels, samples] inside a list: `[clip]`.
            sampling_rate: rate of `raw_speech` in Hz; resampled (soxr) when it differs from
                `self.sampling_rate`. Missing: a warning, and the audio is taken to be at `self.sampling_rate`.
            return_tensors: "pt" for torch, "np" for numpy, None for a list of numpy arrays (one per clip).
            padding: zero-pad the audio, in samples: True / "longest" to the longest clip of the batch,
                "max_length" to `max_length`, False / "do_not_pad" (default) not at all (each clip keeps its length
                and the extractor pads its features as it always does). The zeros are audio: the features equal
                those of the clip you padded with zeros yourself.
            truncation: True cuts each clip to its first `max_length` samples (needs `max_length`).
            max_length: samples (at `self.sampling_rate`, i.e. after any resampling), as in `transformers`' audio
                classification guide, never frames: the target of `truncation` and of `padding="max_length"`; on
                its own it has no effect (a warning). The model's frame count is the extractor's setting.
            pad_to_multiple_of: round the padded (or cut) length up to a multiple of this many samples.
            return_attention_mask: override `self.return_attention_mask`. The mask is 1 on frames computed from
                the clip, 0 on padding frames; with `padding`, 0 from the first frame that reaches past the clip's
                own audio into the appended zeros (`frames_of_samples`).
            device (keyword): torch device to compute on (e.g. "cuda"); "pt" outputs stay there.

        Returns:
            `BatchFeature` with `input_values` [batch, max_length, num_mel_bins] float32, and `attention_mask`
            [batch, max_length] int32 when asked for. The same as `extract` on the padded batch.
        """
        return self._features_of(
            raw_speech,
            sampling_rate,
            return_tensors,
            return_attention_mask,
            kwargs,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
        )

    def frames_of_samples(self, lengths: torch.Tensor) -> torch.Tensor:
        """Kaldi frames (no edge padding) that lie wholly within `lengths` samples, at most `self.max_length`."""
        window, hop, _ = self.fbank_settings.frame_sizes(self.sampling_rate)
        frames = torch.where(lengths >= window, 1 + (lengths - window).div(hop, rounding_mode="floor"), 0)
        return frames.clamp(max=self.max_length)

    def extract(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        return_attention_mask: bool | None = None,
        max_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Normalised fbank features of a zero-padded batch of mono waveforms, on the waveforms' device.

        Args:
            waveforms: [batch, samples] float, at `self.sampling_rate`; values past a clip's length are ignored.
            lengths: [batch] samples of each clip (default: all `samples`); a host tensor avoids a device sync.
            return_attention_mask: override `self.return_attention_mask`.
            max_length: frames per example (default `self.max_length`).

        Returns:
            `{"input_values": [batch, max_length, num_mel_bins] float32}` (plus `attention_mask` [batch,
            max_length] int32 when asked for). Each clip's features equal those of the clip alone.
        """
        max_length = self.max_length if max_length is None else int(max_length)
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        batch, lengths = self._checked_batch(waveforms, lengths)
        if self.subtract_waveform_mean:
            # Each clip's mean over its own samples (the batch is zero past each clip's end). The padding then
            # becomes -mean, which no frame of that clip reads (frames past its frame count are padding_value).
            clip_mean = batch.sum(dim=1, keepdim=True) / lengths.to(batch.device, batch.dtype).unsqueeze(1)  # (B, 1)
            batch.sub_(clip_mean)  # in place: _checked_batch gave a tensor of our own
        # Samples that only frames past max_length would read are dropped before the (costly) fbank.
        needed = self._samples_for(max_length)
        batch, lengths = batch[:, :needed], lengths.clamp(max=needed)
        features, num_frames = kaldi_fbank(
            batch, self.sampling_rate, lengths=lengths, settings=self.fbank_settings
        )  # (B, T <= max_length, M), rows past each clip's frame count = padding_value
        if bool((num_frames == 0).any()):
            logger.warning(
                f"{int((num_frames == 0).sum())} clip(s) are shorter than one {self.frame_length_ms} ms frame; "
                "their features are all padding"
            )

        # Pad with padding_value to max_length frames (the clips were cut above), THEN normalise: the
        # original's order, which makes padded frames (padding_value - mean) / (2 std), not 0.
        frames = features.shape[1]
        if frames < max_length:
            features = torch.nn.functional.pad(features, (0, 0, 0, max_length - frames), value=self.padding_value)
        if self.do_normalize:
            features = self.normalize(features)

        outputs = {"input_values": features.contiguous()}
        if return_attention_mask:
            outputs["attention_mask"] = frames_mask(num_frames, max_length, features.device)
        return outputs
