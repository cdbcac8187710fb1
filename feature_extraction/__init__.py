"""Feature extraction for the spectrogram transformers: audio input handling, Kaldi fbank (AST, SSAST),
librosa-style log-mel (HTS-AT), and the two `transformers` feature extractors built on them, which share one
tensor contract (`SpectrogramFeatureExtractor.extract(waveforms [B, S], lengths [B])`, `input_samples`)."""

from .audio import load_audio, resample, to_mono_batch, to_mono_float32
from .base import SpectrogramFeatureExtractor, model_input_samples
from .feature_extraction_ast import ASTFeatureExtractor
from .feature_extraction_htsat import HTSATFeatureExtractor
from .kaldi import kaldi_fbank, kaldi_mel_banks
from .mel import log_mel_spectrogram, slaney_mel_filterbank

__all__ = [
    "ASTFeatureExtractor",
    "HTSATFeatureExtractor",
    "SpectrogramFeatureExtractor",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "load_audio",
    "log_mel_spectrogram",
    "model_input_samples",
    "resample",
    "slaney_mel_filterbank",
    "to_mono_batch",
    "to_mono_float32",
]
