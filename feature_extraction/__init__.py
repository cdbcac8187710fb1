"""Feature extraction for the spectrogram transformers: audio input handling, Kaldi fbank (AST, SSAST),
librosa-style log-mel (HTS-AT), and the two `transformers` feature extractors built on them, which share one
tensor contract (`SpectrogramFeatureExtractor.extract(waveforms [B, S], lengths [B])`, `input_samples`); files of
any length as streams of blocks and windows (`streaming`)."""

from .audio import load_audio, resample, to_mono_batch, to_mono_float32
from .base import SpectrogramFeatureExtractor, model_input_samples
from .feature_extraction_ast import ASTFeatureExtractor
from .feature_extraction_htsat import HTSATFeatureExtractor
from .kaldi import KaldiFbankSettings, kaldi_fbank, kaldi_mel_banks
from .mel import LogMelSettings, log_mel_spectrogram, slaney_mel_filterbank
from .streaming import AudioInfo, WindowStream, probe_audio, stream_audio

__all__ = [
    "ASTFeatureExtractor",
    "AudioInfo",
    "HTSATFeatureExtractor",
    "KaldiFbankSettings",
    "LogMelSettings",
    "SpectrogramFeatureExtractor",
    "WindowStream",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "load_audio",
    "log_mel_spectrogram",
    "model_input_samples",
    "probe_audio",
    "resample",
    "slaney_mel_filterbank",
    "stream_audio",
    "to_mono_batch",
    "to_mono_float32",
]
