"""HTS-AT feature extraction: Slaney mel filterbank, log-mel and HTSATFeatureExtractor against the original
torchlibrosa front end (htsat_e12_d2222 fixtures, README sections 7-8)."""

import json
import logging

import numpy as np
import pytest
import torch

from spectrogram_transformers.feature_extraction import (
    HTSATFeatureExtractor,
    LogMelSettings,
    log_mel_spectrogram,
    slaney_mel_filterbank,
)
from spectrogram_transformers.feature_extraction.feature_extraction_htsat import (
    SPEECH_COMMANDS_SETTINGS,
    fit_to_clip_length,
)
from spectrogram_transformers.feature_extraction.filterbank import (
    BandedFilterbank,
    power_spectrum,
)
from spectrogram_transformers.feature_extraction.mel import (
    hz_to_mel_slaney,
    mel_to_hz_slaney,
)
from testing_utils.fixtures import load_fixture

# Parity with torchlibrosa's conv-STFT log-mel (fixtures README sections 7-8; its section 10 asks ~5e-4 dB of
# another front end): measured 1.53e-4 dB on the 10 s scenes (float32 STFT by FFT vs by convolution), so
# 2e-4 dB. The README states the same number.
ATOL_DB = 2e-4
# Against a float64 reference of the same definition on quiet signals (mel power near amin = 1e-10, where the
# clamp matters): measured 7e-6 to 1.1e-5 dB.
QUIET_FLOAT64_ATOL_DB = 2e-5
SILENCE_DB = -100.0


@pytest.fixture(scope="module")
def io_fixture():
    return load_fixture("htsat_e12_d2222.io")


@pytest.fixture(scope="module")
def intermediates():
    return load_fixture("htsat_e12_d2222.intermediates")


@pytest.fixture(scope="module")
def arrays():
    return load_fixture("audio_arrays")


def _max_abs(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


# ---------------------------------------------------------------- mel scale and filterbank


def test_slaney_mel_scale_is_linear_then_logarithmic():
    assert hz_to_mel_slaney(1000.0) == pytest.approx(15.0)
    assert hz_to_mel_slaney(200.0 / 3.0) == pytest.approx(1.0)
    assert hz_to_mel_slaney(6400.0) == pytest.approx(15.0 + 27.0)  # 27 mel per factor 6.4 above 1 kHz
    frequencies = np.array([0.0, 50.0, 999.0, 1000.0, 5000.0, 14000.0])
    np.testing.assert_allclose(mel_to_hz_slaney(hz_to_mel_slaney(frequencies)), frequencies, rtol=1e-12, atol=1e-9)


def test_mel_filterbank_equals_torchlibrosa_melW():
    """The fixture's `logmel_extractor.melW` is librosa.filters.mel(32000, 1024, 64, 50, 14000).T in float32."""
    reference = load_fixture("htsat_e12_d2222.state_dict")["logmel_extractor.melW"]
    ours = slaney_mel_filterbank(32000, 1024, 64, 50.0, 14000.0)
    assert ours.shape == reference.shape == (513, 64) and ours.dtype == torch.float32
    assert _max_abs(ours, reference) <= 1e-7  # in practice bit-identical
    # slaney area normalisation: each triangle integrates (in Hz) to ~1
    bin_hz = 32000 / 1024
    np.testing.assert_allclose(ours.sum(dim=0).numpy() * bin_hz, 1.0, rtol=0.2)


def test_fmax_above_nyquist_leaves_empty_filters_as_librosa_does():
    bank = slaney_mel_filterbank(16000, 1024, 64, 50.0, 14000.0)
    empty = (bank.sum(dim=0) == 0).nonzero().flatten().tolist()
    assert empty == list(range(55, 64))  # the 9 filters whose band starts above 8 kHz
    with pytest.raises(ValueError, match="fmin"):
        slaney_mel_filterbank(16000, 1024, 64, 9000.0, 8000.0)


@pytest.mark.parametrize("sample_rate, filters_per_group", [(32000, 16), (16000, 16), (16000, 5), (32000, 64)])
def test_banded_filterbank_equals_the_dense_matmul(sample_rate, filters_per_group):
    """At 16 kHz the top 9 filters are empty: a group of only empty filters must still give zeros."""
    dense = slaney_mel_filterbank(sample_rate, 1024)  # (513, 64)
    banded = BandedFilterbank(dense, filters_per_group)
    power = torch.rand(3, 20, 513)
    torch.testing.assert_close(banded(power), power @ dense, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="513"):
        banded(torch.rand(3, 20, 512))


def test_power_spectrum_is_squared_magnitude():
    spectrum = torch.randn(4, 7, dtype=torch.complex64)
    torch.testing.assert_close(power_spectrum(spectrum), spectrum.abs() ** 2, rtol=1e-6, atol=0)


# ---------------------------------------------------------------- log_mel_spectrogram against the fixtures


def test_log_mel_matches_the_10s_batch(io_fixture, intermediates):
    waveforms = io_fixture["input_waveform_int16"].float() / 32768
    features, num_frames = log_mel_spectrogram(waveforms, 32000)
    reference = intermediates["logmel"][:, 0]  # [2, 1, 1001, 64] -> [2, 1001, 64]
    assert features.shape == reference.shape == (2, 1001, 64)
    assert num_frames.tolist() == [1001, 1001]
    assert _max_abs(features, reference) <= ATOL_DB


def test_log_mel_matches_the_3s_clip(io_fixture, intermediates):
    features, num_frames = log_mel_spectrogram(io_fixture["clip3s.input_waveform"], 32000)
    assert num_frames.tolist() == [301]  # 1 + 96000 // 320
    assert _max_abs(features, intermediates["short3s.logmel"][:, 0]) <= ATOL_DB


def test_log_mel_batch_of_different_lengths_equals_one_by_one(io_fixture):
    """Each clip is reflect-padded at its own end inside the batch."""
    clips = [io_fixture["input_waveform_int16"][0].float() / 32768, io_fixture["clip3s.input_waveform"][0]]
    clips.append(clips[0][:5000])
    batched, num_frames = log_mel_spectrogram(clips, 32000)
    assert num_frames.tolist() == [1001, 301, 16]
    for index, clip in enumerate(clips):
        alone, _ = log_mel_spectrogram(clip, 32000)
        frames = num_frames[index]
        torch.testing.assert_close(batched[index, :frames], alone[0], atol=1e-5, rtol=0)
        assert (batched[index, frames:] == SILENCE_DB).all()


def test_log_mel_equals_torch_stft_centre_reflect():
    """Cross-check of the batched framing against torch.stft(center=True, pad_mode='reflect')."""
    clip = torch.randn(7777) * 0.1
    features, _ = log_mel_spectrogram(clip, 32000)
    window = torch.hann_window(1024, periodic=True)
    spectrum = torch.stft(clip, 1024, 320, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spectrum.abs().square().T  # (frames, 513)
    expected = 10 * torch.log10(torch.clamp(power @ slaney_mel_filterbank(32000, 1024), min=1e-10))
    torch.testing.assert_close(features[0], expected, atol=1e-3, rtol=0)


def _float64_log_mel(clip: np.ndarray, amin: float = 1e-10) -> np.ndarray:
    """HTS-AT's log-mel in float64 with numpy: centred reflect-padded frames, periodic Hann, |rfft|^2, Slaney
    mel, 10 log10(max(x, amin))."""
    samples = np.asarray(clip, dtype=np.float64)
    padded = np.pad(samples, 512, mode="reflect")
    frames = 1 + len(samples) // 320
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    spectrum = np.fft.rfft(padded[np.arange(1024)[None, :] + 320 * np.arange(frames)[:, None]] * window, axis=-1)
    mel = (spectrum.real**2 + spectrum.imag**2) @ slaney_mel_filterbank(32000, 1024).double().numpy()
    return 10 * np.log10(np.maximum(mel, amin))


@pytest.mark.parametrize("noise_level", [1e-4, 3e-5, 1e-5])
def test_log_mel_of_quiet_signals_matches_a_float64_reference(noise_level):
    """White noise whose mel power lies around and below amin (1e-10): the floor must be a clamp (as
    torchlibrosa's power_to_db), which an offset such as log10(x + amin) would miss by 0.08-3 dB."""
    clip = (noise_level * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    features, _ = log_mel_spectrogram(torch.from_numpy(clip), 32000)
    reference = _float64_log_mel(clip)
    assert reference.min() < -95.0 if noise_level < 1e-4 else reference.min() < -80.0  # the quiet regime
    assert _max_abs(features[0].double(), reference) <= QUIET_FLOAT64_ATOL_DB


@pytest.mark.parametrize("samples", [513, 640, 641, 32000, 320000])
def test_frame_count_is_centred(samples):
    _, num_frames = log_mel_spectrogram(torch.randn(samples), 32000)
    assert num_frames.item() == 1 + samples // 320


def test_too_short_clip_for_reflect_padding_is_a_value_error():
    with pytest.raises(ValueError, match="too short"):
        log_mel_spectrogram([torch.randn(1000), torch.randn(512)], 32000)


def test_top_db_clips_below_each_examples_peak():
    clip = torch.randn(32000) * 0.1
    clip[16000:] = 0.0  # digital silence: -100 dB without clipping
    plain, _ = log_mel_spectrogram(clip, 32000)
    clipped, _ = log_mel_spectrogram(clip, 32000, settings=LogMelSettings(top_db=80.0))
    peak = plain.max()
    assert clipped.min() == pytest.approx(peak - 80.0)
    assert torch.equal(clipped.max(), peak)
    assert plain.min() == SILENCE_DB  # HTS-AT: no clipping


# ---------------------------------------------------------------- HTSATFeatureExtractor


def test_extractor_matches_the_10s_batch_from_int16(io_fixture, intermediates):
    """The int16 scenes as they are: int16 / 32768 happens in the extractor."""
    extractor = HTSATFeatureExtractor()
    outputs = extractor(io_fixture["input_waveform_int16"], sampling_rate=32000, return_tensors="pt")
    assert outputs["input_features"].shape == (2, 1001, 64)
    assert _max_abs(outputs["input_features"], intermediates["logmel"][:, 0]) <= ATOL_DB
    from_numpy = extractor(io_fixture["input_waveform_int16"].numpy(), sampling_rate=32000, return_tensors="pt")
    assert torch.equal(from_numpy["input_features"], outputs["input_features"])


def test_extractor_without_clip_length_matches_the_3s_clip(io_fixture, intermediates):
    extractor = HTSATFeatureExtractor(clip_samples=None)
    outputs = extractor(io_fixture["clip3s.input_waveform"][0], sampling_rate=32000, return_tensors="pt")
    assert outputs["input_features"].shape == (1, 301, 64)
    assert _max_abs(outputs["input_features"], intermediates["short3s.logmel"][:, 0]) <= ATOL_DB


def test_default_clip_length_zero_pads_to_10s(io_fixture, intermediates):
    """AudioSet: every clip becomes 320000 samples (1001 frames); past the 3 s clip is digital silence."""
    outputs = HTSATFeatureExtractor()(io_fixture["clip3s.input_waveform"][0], sampling_rate=32000, return_tensors="pt")
    features = outputs["input_features"][0]
    assert features.shape == (1001, 64)
    # frames whose window lies inside the clip are unchanged: t * 320 + 512 <= 96000, t <= 298
    assert _max_abs(features[:299], intermediates["short3s.logmel"][0, 0, :299]) <= ATOL_DB
    assert (features[302:] == SILENCE_DB).all()  # windows entirely in the zero padding


def test_longer_clips_are_cut_to_the_clip_length(io_fixture):
    extractor = HTSATFeatureExtractor(clip_samples=96000)
    scene = io_fixture["input_waveform_int16"][0]
    outputs = extractor(scene, sampling_rate=32000, return_tensors="pt")["input_features"]
    cut = HTSATFeatureExtractor(clip_samples=None)(scene[:96000], sampling_rate=32000, return_tensors="pt")
    assert torch.equal(outputs, cut["input_features"])


def test_repeat_mode_tiles_the_clip(arrays):
    clip = arrays["word_yes_16k"]
    repeated = fit_to_clip_length(clip[None, :5000], torch.tensor([5000]), 12000, "repeat")
    assert torch.equal(repeated[0], torch.cat([clip[:5000], clip[:5000], clip[:2000]]))
    extractor = HTSATFeatureExtractor.speech_commands()
    tiled = HTSATFeatureExtractor.speech_commands(clip_samples=None)(np.tile(clip.numpy(), 10), sampling_rate=16000)
    outputs = extractor(clip, sampling_rate=16000)
    np.testing.assert_array_equal(outputs["input_features"][0], tiled["input_features"][0])


def test_fit_to_clip_length_in_a_batch():
    batch = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 5.0, 6.0, 7.0]])
    lengths = torch.tensor([3, 4])
    assert fit_to_clip_length(batch, lengths, 6, "constant").tolist() == [[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 0, 0]]
    assert fit_to_clip_length(batch, lengths, 6, "repeat").tolist() == [[1, 2, 3, 1, 2, 3], [4, 5, 6, 7, 4, 5]]
    assert fit_to_clip_length(batch, lengths, 2, "repeat").tolist() == [[1, 2], [4, 5]]
    with pytest.raises(ValueError, match="clip_pad_mode"):
        fit_to_clip_length(batch, lengths, 6, "reflect")


def test_speech_commands_preset(arrays):
    """The original config.py: 16000 Hz and hop 160 for SCV2; window 1024, 64 mel, 50-14000 Hz unchanged;
    clip_samples = sample_rate * 10, filled by repeating the 1 s clip (SCV2_Dataset)."""
    extractor = HTSATFeatureExtractor.speech_commands()
    assert extractor.sampling_rate == 16000 and extractor.hop_length == 160 and extractor.n_fft == 1024
    assert extractor.fmin == 50.0 and extractor.fmax == 14000.0 and extractor.num_mel_bins == 64
    assert extractor.clip_samples == 160000 and extractor.clip_pad_mode == "repeat"
    assert {key: getattr(extractor, key) for key in SPEECH_COMMANDS_SETTINGS} == SPEECH_COMMANDS_SETTINGS
    features = extractor(arrays["word_left_16k"], sampling_rate=16000, return_tensors="pt")["input_features"]
    assert features.shape == (1, 1001, 64)
    assert (features[..., 55:] == SILENCE_DB).all()  # filters above Nyquist are empty
    assert (features[..., :55] > SILENCE_DB).any()
    assert HTSATFeatureExtractor.speech_commands(hop_length=320).hop_length == 320  # overrides


def test_batch_of_different_lengths_equals_one_by_one_with_mask(io_fixture, arrays):
    extractor = HTSATFeatureExtractor(clip_samples=None, return_attention_mask=True)
    clips = [io_fixture["clip3s.input_waveform"][0], arrays["mix_3s_32k"][:32000], arrays["mix_3s_32k"][:20000]]
    outputs = extractor(clips, sampling_rate=32000, return_tensors="pt")
    assert outputs["input_features"].shape == (3, 301, 64)
    assert outputs["attention_mask"].sum(dim=1).tolist() == [301, 101, 63]
    for index, clip in enumerate(clips):
        alone = extractor(clip, sampling_rate=32000, return_tensors="pt")["input_features"][0]
        frames = alone.shape[0]
        torch.testing.assert_close(outputs["input_features"][index, :frames], alone, atol=1e-5, rtol=0)
        assert (outputs["input_features"][index, frames:] == extractor.padding_value).all()


def test_stereo_and_resampled_input(arrays):
    extractor = HTSATFeatureExtractor(clip_samples=None)
    mono = arrays["mix_3s_32k"]
    reference = extractor(mono, sampling_rate=32000, return_tensors="pt")["input_features"]
    stereo = torch.stack([mono, mono], dim=1).numpy()  # [samples, channels]
    torch.testing.assert_close(
        extractor([stereo], sampling_rate=32000, return_tensors="pt")["input_features"], reference, atol=1e-5, rtol=0
    )
    # the 16 kHz version of the same file is upsampled to 32 kHz: same frames, the band above 8 kHz is empty
    from_16k = extractor(arrays["mix_3s_16k"], sampling_rate=16000, return_tensors="pt")["input_features"]
    assert from_16k.shape == reference.shape
    below_7k = int((slaney_mel_filterbank(32000, 1024).argmax(dim=0) * 31.25 < 7000).sum())
    difference = (from_16k[..., :below_7k] - reference[..., :below_7k]).abs()
    # two resamplers (sox made the file, soxr upsamples it) and int16 rounding: measured median 1e-3 dB,
    # mean 2e-3 dB, max 0.37 dB (in near-silent bins)
    assert difference.median() < 0.01 and difference.mean() < 0.02


def test_missing_sampling_rate_warns(arrays, caplog):
    extractor = HTSATFeatureExtractor(clip_samples=None)
    with caplog.at_level(logging.WARNING):
        extractor(arrays["mix_3s_32k"])
    assert "sampling_rate" in caplog.text and "HTSATFeatureExtractor" in caplog.text


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([], dtype=np.float32), "empty"),
        (np.array([np.nan] * 40000, dtype=np.float32), "NaN"),
        (torch.full((40000,), float("inf")), "infinite"),
        (np.zeros((1, 2, 40000), dtype=np.float32), "shape"),
        (np.zeros(40000, dtype=np.complex64), "dtype complex64"),
    ],
)
def test_bad_inputs_raise_value_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        HTSATFeatureExtractor()(bad, sampling_rate=32000)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="clip_pad_mode"):
        HTSATFeatureExtractor(clip_pad_mode="reflect")
    with pytest.raises(ValueError, match="clip_samples"):
        HTSATFeatureExtractor(clip_samples=100)
    with pytest.raises(ValueError, match="fmin"):
        HTSATFeatureExtractor(fmin=20000.0)
    with pytest.raises(TypeError, match="no_such_option"):
        HTSATFeatureExtractor()(np.zeros(40000, dtype=np.float32), sampling_rate=32000, no_such_option=True)


def test_save_and_load_round_trip(tmp_path, arrays):
    extractor = HTSATFeatureExtractor.speech_commands(return_attention_mask=True)
    extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert (
        saved["feature_extractor_type"] == "HTSATFeatureExtractor"
    )  # a name transformers does not have (remote code)
    assert saved["hop_length"] == 160 and saved["clip_pad_mode"] == "repeat" and saved["top_db"] is None
    loaded = HTSATFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == extractor.to_dict()
    clip = arrays["word_stop_16k"]
    first = loaded(clip, sampling_rate=16000, return_tensors="np")
    second = extractor(clip, sampling_rate=16000, return_tensors="np")
    np.testing.assert_array_equal(first["input_features"], second["input_features"])
    np.testing.assert_array_equal(first["attention_mask"], np.ones((1, 1001), dtype=np.int32))
