"""Feature extractor of HTS-AT.

Paper: Chen, Du, Zhu, Ma, Berg-Kirkpatrick and Dubnov, "HTS-AT: A Hierarchical Token-Semantic Audio
Transformer for Sound Classification and Detection", ICASSP 2022.
Original code: https://github.com/RetroCirce/HTS-Audio-Transformer (`config.py`, `data_generator.py`, and the
torchlibrosa front end built in `model/htsat.py`).

Pipeline: each waveform is brought to a fixed clip length as the original datasets do (AudioSet: 10 s,
zero-padded; ESC-50 and Speech Commands: the clip repeated), then the torchlibrosa log-mel (see `mel.py`).
The model itself (batch norm over mel bins, stretching to 1024 frames, the 256x256 "image") is not here:
models take features.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import PaddingStrategy, TensorType, logging

from ..modeling.remote_code import add_remote_code
from .base import RawAudio, SpectrogramFeatureExtractor, frames_mask
from .mel import LogMelSettings, log_mel_spectrogram

__all__ = ["HTSATFeatureExtractor"]

logger = logging.get_logger(__name__)

ClipPadMode = Literal["constant", "repeat"]
_CLIP_PAD_MODES = ("constant", "repeat")

# HTS-AT's Speech Commands V2 setting (original config.py: "sample_rate = 16000 for scv2", "hop_size = 160 for
# scv2"; window, mel bins, fmin and fmax are left at the AudioSet values; clip_samples = sample_rate * 10, and
# SCV2_Dataset repeats each 1 s clip until it fills those 10 s).
SPEECH_COMMANDS_SETTINGS: dict[str, Any] = {
    "sampling_rate": 16000,
    "n_fft": 1024,
    "hop_length": 160,
    "num_mel_bins": 64,
    "fmin": 50.0,
    "fmax": 14000.0,
    "clip_samples": 160000,
    "clip_pad_mode": "repeat",
}


def fit_to_clip_length(
    batch: torch.Tensor, lengths: torch.Tensor, clip_samples: int, mode: ClipPadMode = "constant"
) -> torch.Tensor:
    """Bring every clip of a zero-padded batch [B, S] to exactly `clip_samples` samples: [B, clip_samples].

    Longer clips keep their first `clip_samples` samples. Shorter ones are zero-padded ("constant", AudioSet /
    DESED) or repeated from the start until full ("repeat": the original's SCV2 dataset doubles the clip until it
    is long enough, and ESC-50 concatenates its 5 s clip with itself; both equal a periodic extension).
    """
    if mode == "constant":
        fitted = batch.new_zeros(batch.shape[0], clip_samples)
        kept = min(batch.shape[1], clip_samples)
        fitted[:, :kept] = batch[:, :kept]  # the batch is zero past each clip's length already
        return fitted
    if mode == "repeat":
        position = torch.arange(clip_samples, device=batch.device).unsqueeze(0)  # (1, clip_samples)
        source = position % lengths.to(batch.device).clamp(min=1).unsqueeze(1)  # (B, clip_samples)
        return torch.gather(batch, 1, source)
    raise ValueError(f"clip_pad_mode must be one of {_CLIP_PAD_MODES}, got {mode!r}")


class HTSATFeatureExtractor(SpectrogramFeatureExtractor):
    r"""torchlibrosa-style log-mel features for HTS-AT: [batch, frames, num_mel_bins] in dB, time along dim 1.

    With `center=True` framing a clip of N samples gives 1 + N // hop_length frames: 10 s at 32 kHz with hop 320
    gives 1001 (the model stretches them to its 1024-frame grid). For Speech Commands, see
    [`~HTSATFeatureExtractor.speech_commands`].

    Args:
        feature_size (`int`, defaults to 64): kept equal to `num_mel_bins`.
        sampling_rate (`int`, defaults to 32000): rate the features are computed at; other input is resampled.
        num_mel_bins (`int`, defaults to 64): Slaney mel filters.
        n_fft (`int`, defaults to 1024): FFT size = periodic Hann window length.
        hop_length (`int`, defaults to 320): frame shift in samples (10 ms at 32 kHz).
        fmin (`float`, defaults to 50.0), fmax (`float`, defaults to 14000.0): filterbank range in Hz (fmax
            None = Nyquist; above Nyquist the top filters are empty, as in librosa).
        amin (`float`, defaults to 1e-10): power floor before the log (-100 dB).
        ref (`float`, defaults to 1.0): reference power of 0 dB.
        top_db (`float`, *optional*): clip each example to its peak minus `top_db`; HTS-AT uses None.
        clip_samples (`int`, *optional*, defaults to 320000): waveform length every clip is brought to before
            the spectrogram (AudioSet: 10 s at 32 kHz). None keeps each clip's own length; a batch is then
            padded to its longest example with `padding_value` frames.
        clip_pad_mode (`str`, defaults to `"constant"`): how clips shorter than `clip_samples` are filled:
            "constant" (zeros, AudioSet) or "repeat" (the clip repeated, ESC-50 / Speech Commands).
        padding_value (`float`, defaults to -100.0): value of padded frames when `clip_samples` is None; -100 dB
            is the log-mel of digital silence with the default `amin` and `ref`.
        return_attention_mask (`bool`, defaults to False): also return `attention_mask` [batch, frames], 1 on
            frames of the clip and 0 on padding (all ones when `clip_samples` is set).
    """

    model_input_names = ["input_features", "attention_mask"]

    def __init__(
        self,
        feature_size: int = 64,
        sampling_rate: int = 32000,
        num_mel_bins: int = 64,
        n_fft: int = 1024,
        hop_length: int = 320,
        fmin: float = 50.0,
        fmax: float | None = 14000.0,
        amin: float = 1e-10,
        ref: float = 1.0,
        top_db: float | None = None,
        clip_samples: int | None = 320000,
        clip_pad_mode: ClipPadMode = "constant",
        padding_value: float = -100.0,
        return_attention_mask: bool = False,
        **kwargs,
    ):
        super().__init__(feature_size, sampling_rate, num_mel_bins, padding_value, return_attention_mask, **kwargs)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.fmin = fmin
        self.fmax = fmax
        self.amin = amin
        self.ref = ref
        self.top_db = top_db
        self.clip_samples = clip_samples
        self.clip_pad_mode = clip_pad_mode
        self._validate()

    def _validate(self) -> None:
        if min(self.num_mel_bins, self.hop_length) < 1 or self.n_fft < 2:
            raise ValueError(
                f"need num_mel_bins >= 1, hop_length >= 1, n_fft >= 2; got {self.num_mel_bins}, {self.hop_length}, "
                f"{self.n_fft}"
            )
        if self.clip_pad_mode not in _CLIP_PAD_MODES:
            raise ValueError(f"clip_pad_mode must be one of {_CLIP_PAD_MODES}, got {self.clip_pad_mode!r}")
        if self.clip_samples is not None and self.clip_samples <= self.n_fft // 2:
            raise ValueError(f"clip_samples ({self.clip_samples}) must exceed n_fft // 2 ({self.n_fft // 2})")
        if not self.amin > 0:
            raise ValueError(f"amin must be positive, got {self.amin}")
        fmax = self.sampling_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax:
            raise ValueError(f"need 0 <= fmin < fmax, got fmin={self.fmin}, fmax={fmax}")

    @classmethod
    def speech_commands(cls, **kwargs) -> HTSATFeatureExtractor:
        """HTS-AT's Speech Commands V2 front end: 16 kHz, n_fft 1024, hop 160, 64 mel bins from 50 Hz to
        14 kHz, clips repeated to 10 s (160000 samples, 1001 frames).

        The original keeps fmax at 14 kHz although Nyquist is 8 kHz, so the top filters (9 of 64) are empty and
        always read -100 dB; that is kept, since checkpoints trained on these features expect it.
        Keyword arguments override any setting.
        """
        return cls(**{**SPEECH_COMMANDS_SETTINGS, **kwargs})

    @property
    def input_samples(self) -> int | None:
        """Samples of a clip the features read: `clip_samples` (the rest is cut); None when it is None."""
        return None if self.clip_samples is None else int(self.clip_samples)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`FeatureExtractionMixin.save_pretrained`, plus `auto_map` and the HTS-AT custom code (`remote_code`).

        The saved `feature_extractor_type` ("HTSATFeatureExtractor", a name transformers does not have) makes
        `AutoFeatureExtractor` pick this package's registered class when it is installed, and the remote code
        (with `trust_remote_code=True`) when it is not.
        """
        add_remote_code(self, save_directory, "htsat")
        return super().save_pretrained(save_directory, *args, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        output = super().to_dict()
        output["feature_extractor_type"] = type(self).__name__  # unique name: see save_pretrained
        return output

    def __call__(
        self,
        raw_speech: RawAudio,
        sampling_rate: int | None = None,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Compute log-mel features of one clip or a batch of clips of any lengths.

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
            `BatchFeature` with `input_features` [batch, frames, num_mel_bins] float32 (frames =
            1 + clip_samples // hop_length, or the longest clip's count when `clip_samples` is None), and
            `attention_mask` [batch, frames] int32 when asked for. The same as `extract` on the padded batch.
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
        """Centred frames whose centre lies within `lengths` samples (1 + samples // hop_length, the count
        `extract` gives a clip of that length), at most the frames of `clip_samples` when it is set."""
        if self.clip_samples is not None:
            lengths = lengths.clamp(max=self.clip_samples)
        return 1 + lengths.div(self.hop_length, rounding_mode="floor")

    def extract(
        self,
        waveforms: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        return_attention_mask: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Log-mel features of a zero-padded batch of mono waveforms, on the waveforms' device.

        Args:
            waveforms: [batch, samples] float, at `self.sampling_rate`; values past a clip's length are ignored.
            lengths: [batch] samples of each clip (default: all `samples`); a host tensor avoids a device sync.
            return_attention_mask: override `self.return_attention_mask`.

        Returns:
            `{"input_features": [batch, frames, num_mel_bins] float32}` (plus `attention_mask` [batch, frames]
            int32 when asked for). Each clip's features equal those of the clip alone (with `clip_samples` None,
            up to its own frame count; later frames are `padding_value`).
        """
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        batch, lengths = self._checked_batch(waveforms, lengths)
        if self.clip_samples is not None:
            batch = fit_to_clip_length(batch, lengths, self.clip_samples, self.clip_pad_mode)
            lengths = torch.full_like(lengths, self.clip_samples)
        features, num_frames = log_mel_spectrogram(
            batch, self.sampling_rate, lengths=lengths, settings=LogMelSettings.from_attributes(self)
        )  # (B, T, M)

        outputs = {"input_features": features.contiguous()}
        if return_attention_mask:
            outputs["attention_mask"] = frames_mask(num_frames, features.shape[1], features.device)
        return outputs
