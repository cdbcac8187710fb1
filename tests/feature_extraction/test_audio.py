"""Audio input handling: PCM scaling, down-mixing, validation, soxr resampling and soundfile decoding."""

import io

import numpy as np
import pytest
import soundfile
import torch

from spectrogram_transformers.feature_extraction import (
    load_audio,
    resample,
    to_mono_batch,
    to_mono_float32,
)
from spectrogram_transformers.feature_extraction.audio import MAX_CHANNELS
from testing_utils.fixtures import fixture_path, load_fixture


@pytest.fixture(scope="module")
def arrays():
    return load_fixture("audio_arrays")


def _dominant_frequency(waveform: np.ndarray, sample_rate: float) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.fft.rfftfreq(len(waveform), 1.0 / sample_rate)[spectrum.argmax()])


# ---------------------------------------------------------------- to_mono_float32: dtypes


def test_float_input_is_cast_not_rescaled():
    samples = np.array([0.5, -0.25, 1.5], dtype=np.float64)
    out = to_mono_float32(samples)
    assert out.dtype == np.float32 and out.shape == (3,)
    np.testing.assert_array_equal(out, samples.astype(np.float32))


def test_result_is_a_copy():
    samples = np.zeros(10, dtype=np.float32)
    out = to_mono_float32(samples)
    out[0] = 1.0
    assert samples[0] == 0.0


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.int16, 2.0**15), (np.int32, 2.0**31), (np.int8, 2.0**7)],
)
def test_signed_pcm_is_scaled_to_unit_range(dtype, scale):
    info = np.iinfo(dtype)
    pcm = np.array([info.min, -1, 0, 1, info.max], dtype=dtype)
    out = to_mono_float32(pcm)
    np.testing.assert_allclose(out, pcm.astype(np.float64) / scale, rtol=1e-7, atol=0)
    assert out[0] == -1.0 and out.max() <= 1.0  # int32's max rounds to 1.0 in float32


def test_int16_matches_the_fixture_scaling(arrays):
    """The fixture arrays are int16 / 32768, what soundfile and torchaudio return for 16-bit WAV."""
    reference = arrays["word_yes_16k"].numpy()
    pcm = np.round(reference * 32768).astype(np.int16)
    np.testing.assert_array_equal(to_mono_float32(pcm), reference)
    np.testing.assert_array_equal(to_mono_float32(torch.from_numpy(pcm)), reference)


def test_unsigned_8bit_pcm_is_centred_on_128():
    pcm = np.array([0, 64, 128, 192, 255], dtype=np.uint8)
    np.testing.assert_allclose(to_mono_float32(pcm), [-1.0, -0.5, 0.0, 0.5, 127 / 128])


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(2, 500)).astype(np.float32)
    np.testing.assert_array_equal(to_mono_float32(torch.from_numpy(samples)), to_mono_float32(samples))
    half = torch.from_numpy(samples[0]).to(torch.bfloat16)
    np.testing.assert_array_equal(to_mono_float32(half), half.float().numpy())


def test_a_list_of_numbers_is_one_clip():
    np.testing.assert_array_equal(to_mono_float32([0.0, 0.5, -0.5]), np.array([0.0, 0.5, -0.5], dtype=np.float32))


# ---------------------------------------------------------------- to_mono_float32: channels


@pytest.mark.parametrize("channels", [1, 2, 6, MAX_CHANNELS])
def test_multichannel_is_down_mixed_by_mean_in_either_orientation(channels):
    rng = np.random.default_rng(channels)
    channels_first = rng.normal(size=(channels, 1000)).astype(np.float32)
    expected = channels_first.mean(axis=0)
    np.testing.assert_allclose(to_mono_float32(channels_first), expected, atol=1e-7)
    np.testing.assert_allclose(to_mono_float32(channels_first.T.copy()), expected, atol=1e-7)
    np.testing.assert_allclose(to_mono_float32(torch.from_numpy(channels_first)), expected, atol=1e-7)


def test_stereo_int16_is_scaled_then_down_mixed():
    left = np.full(100, 16384, dtype=np.int16)
    right = np.full(100, -8192, dtype=np.int16)
    out = to_mono_float32(np.stack([left, right], axis=1))  # [samples, channels], as soundfile gives
    np.testing.assert_allclose(out, np.full(100, (0.5 - 0.25) / 2, dtype=np.float32))


def test_channels_axis_overrides_the_guess():
    waveform = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(to_mono_float32(waveform), waveform.mean(axis=0))  # 3 <= 4: channels first
    np.testing.assert_allclose(to_mono_float32(waveform, channels_axis=1), waveform.mean(axis=1))


def test_ambiguous_2d_shape_is_rejected():
    with pytest.raises(ValueError, match="cannot tell channels from samples"):
        to_mono_float32(np.zeros((MAX_CHANNELS + 1, 1000), dtype=np.float32))


# ---------------------------------------------------------------- to_mono_float32: errors


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([], dtype=np.float32), "empty"),
        (np.zeros((2, 0), dtype=np.float32), "empty"),
        (torch.zeros(0), "empty"),
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), "NaN or infinite"),
        (np.array([0.0, np.inf], dtype=np.float32), "NaN or infinite"),
        (torch.tensor([0.0, -float("inf")]), "NaN or infinite"),
        (np.array([1e300], dtype=np.float64), "NaN or infinite"),  # overflows float32
        (np.zeros((2, 2, 100), dtype=np.float32), "3 dimensions"),
        (torch.zeros(1, 1, 1, 100), "4 dimensions"),
        (np.array([True, False]), "not an audio sample type"),
        (np.array([1, 2, 3], dtype=np.int64), "not an audio sample type"),
        (np.array(["a", "b"]), "not an audio sample type"),
        (np.array([1 + 2j], dtype=np.complex64), "not an audio sample type"),
        (torch.tensor([1 + 2j]), "complex"),
    ],
)
def test_bad_audio_raises_a_clear_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        to_mono_float32(bad)


def test_error_messages_name_the_clip():
    with pytest.raises(ValueError, match="my_clip.wav"):
        to_mono_float32(np.array([np.nan], dtype=np.float32), name="my_clip.wav")


def test_non_array_input_is_a_type_error():
    with pytest.raises(TypeError, match="numpy array"):
        to_mono_float32("not audio")


# ---------------------------------------------------------------- to_mono_batch


def test_to_mono_batch_shapes():
    rng = np.random.default_rng(1)
    assert len(to_mono_batch(rng.normal(size=100))) == 1
    assert len(to_mono_batch(rng.normal(size=(3, 100)))) == 3  # 2-D arrays are batches of mono clips
    clips = to_mono_batch([rng.normal(size=100), torch.zeros(50), rng.normal(size=(2, 70))])
    assert [clip.shape for clip in clips] == [(100,), (50,), (70,)]
    assert all(clip.dtype == np.float32 for clip in clips)
    assert to_mono_batch([0.1, 0.2, 0.3])[0].shape == (3,)


def test_to_mono_batch_resamples_only_when_rates_differ():
    clip = np.random.default_rng(2).normal(size=16000).astype(np.float32)
    np.testing.assert_array_equal(to_mono_batch(clip, 16000, 16000)[0], clip)
    assert to_mono_batch(clip, 16000, 32000)[0].shape == (32000,)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        ([], ValueError, "empty list"),
        (np.zeros((2, 2, 100), dtype=np.float32), ValueError, "pass a multi-channel clip inside a list"),
        ([np.zeros(10, dtype=np.float32), np.array([], dtype=np.float32)], ValueError, "clip 1"),
        ([np.zeros(10, dtype=np.float32), np.array([np.nan], dtype=np.float32)], ValueError, "clip 1"),
        ("a string", TypeError, "numpy array"),
    ],
)
def test_to_mono_batch_errors(bad, error, message):
    with pytest.raises(error, match=message):
        to_mono_batch(bad)


# ---------------------------------------------------------------- resample


def test_resample_identity_when_rates_are_equal():
    clip = np.random.default_rng(3).normal(size=1000).astype(np.float32)
    np.testing.assert_array_equal(resample(clip, 16000, 16000), clip)


def test_resampled_tone_keeps_its_frequency_and_amplitude():
    source_rate, target_rate, seconds = 44100, 16000, 1.0
    time = np.arange(int(source_rate * seconds)) / source_rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * time)).astype(np.float32)
    out = resample(tone, source_rate, target_rate)
    assert out.dtype == np.float32
    assert out.shape == (round(len(tone) * target_rate / source_rate),)
    assert _dominant_frequency(out, target_rate) == pytest.approx(440.0, abs=1.0)  # 1 Hz bins over 1 s
    middle = out[len(out) // 4 : -len(out) // 4]  # away from the filter's edge transients
    assert np.abs(middle).max() == pytest.approx(0.5, abs=0.01)


def test_resampling_removes_content_above_the_new_nyquist():
    rate = 32000
    time = np.arange(rate) / rate
    high_tone = np.sin(2 * np.pi * 12000.0 * time).astype(np.float32)  # above 8 kHz Nyquist at 16 kHz
    out = resample(high_tone, rate, 16000)
    assert np.sqrt(np.mean(out[2000:-2000] ** 2)) < 1e-3  # not aliased down to 4 kHz


def test_resample_accepts_torch_and_validates_rates():
    clip = torch.randn(3200)
    assert resample(clip, 32000, 16000).shape == (1600,)
    with pytest.raises(ValueError, match="positive"):
        resample(clip, 0, 16000)
    with pytest.raises(ValueError, match="positive"):
        resample(clip, 16000, -1)
    with pytest.raises(TypeError, match="samples per second"):
        resample(clip, "16k", 16000)


# ---------------------------------------------------------------- load_audio


def test_load_audio_matches_the_fixture_arrays(arrays):
    waveform, rate = load_audio(fixture_path("audio/word_no_16k.wav"))
    assert rate == 16000 and waveform.dtype == np.float32
    np.testing.assert_array_equal(waveform, arrays["word_no_16k"].numpy())


def test_load_audio_from_bytes_file_objects_and_dataset_dicts(arrays):
    path = fixture_path("audio/word_go_16k.wav")
    data = path.read_bytes()
    expected = arrays["word_go_16k"].numpy()
    for source in (data, bytearray(data), io.BytesIO(data), {"bytes": data, "path": None}, {"path": str(path)}):
        waveform, rate = load_audio(source)
        assert rate == 16000
        np.testing.assert_array_equal(waveform, expected)
    with open(path, "rb") as handle:
        np.testing.assert_array_equal(load_audio(handle)[0], expected)


def test_load_audio_resamples_to_the_target_rate(arrays):
    waveform, rate = load_audio(fixture_path("audio/mix_3s_32k.wav"), target_sr=16000)
    assert rate == 16000 and waveform.shape == (48000,)
    reference = arrays["mix_3s_16k"].numpy()  # the same file resampled by sox
    error = np.sqrt(np.mean((waveform - reference) ** 2)) / np.sqrt(np.mean(reference**2))
    assert error < 0.05


def test_load_audio_down_mixes_multichannel_flac(tmp_path):
    rng = np.random.default_rng(4)
    stereo = rng.uniform(-0.5, 0.5, size=(8000, 2))
    path = tmp_path / "stereo.flac"
    soundfile.write(path, stereo, 8000, subtype="PCM_16")
    waveform, rate = load_audio(path)
    decoded = soundfile.read(path, dtype="float32")[0]
    assert rate == 8000 and waveform.shape == (8000,)
    np.testing.assert_allclose(waveform, decoded.mean(axis=1), atol=1e-7)


def test_corrupt_bytes_raise_a_value_error_naming_the_input():
    with pytest.raises(ValueError, match="could not decode audio <64 bytes of audio>"):
        load_audio(b"RIFF" + bytes(range(60)))


def test_corrupt_file_raises_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "broken_clip.wav"
    path.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(ValueError, match="broken_clip.wav"):
        load_audio(path)


def test_truncated_file_is_reported(tmp_path):
    data = fixture_path("audio/word_up_16k.wav").read_bytes()[:30]  # cut inside the header
    with pytest.raises(ValueError, match="could not decode"):
        load_audio(data)


def test_empty_audio_file_is_reported(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1)), 16000, subtype="PCM_16")
    with pytest.raises(ValueError, match="empty.wav.*empty|empty"):
        load_audio(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        load_audio(tmp_path / "nowhere.wav")


def test_dict_without_bytes_or_path_is_rejected():
    with pytest.raises(ValueError, match="'bytes' or 'path'"):
        load_audio({"bytes": None, "path": None})
