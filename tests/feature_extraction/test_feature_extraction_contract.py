"""The tensor contract both feature extractors share: `extract(waveforms [B, S], lengths [B])` on the waveforms'
device, `input_samples` (the one definition of how much of a clip the features read), `__call__` as the numpy
adapter giving the same features, and channels-last arrays read as one clip (issue 11.4)."""

import logging

import numpy as np
import pytest
import torch

from spectrogram_transformers.feature_extraction import (
    ASTFeatureExtractor,
    HTSATFeatureExtractor,
)
from spectrogram_transformers.feature_extraction import audio as audio_module

EXTRACTORS = {
    "ast": lambda **kw: ASTFeatureExtractor(max_length=64, **kw),
    "htsat": lambda **kw: HTSATFeatureExtractor(clip_samples=32000, **kw),
    "htsat-unbounded": lambda **kw: HTSATFeatureExtractor(clip_samples=None, **kw),
    "htsat-repeat": lambda **kw: HTSATFeatureExtractor(clip_samples=32000, clip_pad_mode="repeat", **kw),
}


def _clips(rate: int, seconds=(0.3, 1.1, 0.7), seed: int = 0) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    return [torch.from_numpy((0.3 * rng.standard_normal(int(rate * s)) + 0.1).astype(np.float32)) for s in seconds]


def _padded(clips: list[torch.Tensor], filler: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(clip) for clip in clips])
    batch = torch.full((len(clips), int(lengths.max())), filler)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    return batch, lengths


def _name(extractor) -> str:
    return extractor.model_input_names[0]


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_each_clip_of_a_padded_batch_gets_the_features_it_gets_alone(kind):
    extractor = EXTRACTORS[kind]()
    clips = _clips(extractor.sampling_rate)
    # whatever sits past a clip's length is ignored (mixup or a reused buffer may leave values there)
    batch, lengths = _padded(clips, filler=7.0)
    features = extractor.extract(batch, lengths, return_attention_mask=True)
    for row, clip in enumerate(clips):
        alone = extractor.extract(clip.unsqueeze(0), return_attention_mask=True)
        frames = alone[_name(extractor)].shape[1]
        torch.testing.assert_close(
            features[_name(extractor)][row, :frames], alone[_name(extractor)][0], rtol=0, atol=1e-5
        )
        torch.testing.assert_close(features["attention_mask"][row, :frames], alone["attention_mask"][0])
        assert not features["attention_mask"][row, frames:].any()  # longer rows of an unbounded batch: padding
    # and `__call__` (the numpy adapter) is `extract` on the padded batch
    called = extractor([clip.numpy() for clip in clips], sampling_rate=extractor.sampling_rate, return_tensors="pt")
    torch.testing.assert_close(called[_name(extractor)], features[_name(extractor)], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["ast", "htsat"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_extract_stays_on_the_waveforms_device_in_float32_for_any_float_dtype(kind, dtype):
    extractor = EXTRACTORS[kind]()
    batch, lengths = _padded(_clips(extractor.sampling_rate))
    reference = extractor.extract(batch.to(dtype).float(), lengths)[_name(extractor)]
    features = extractor.extract(batch.to(dtype), lengths)[_name(extractor)]
    assert features.dtype == torch.float32 and features.device == batch.device
    torch.testing.assert_close(features, reference, rtol=0, atol=0)
    untouched = batch.to(dtype).clone()
    extractor.extract(untouched, lengths)
    assert torch.equal(untouched, batch.to(dtype))  # the caller's tensor is never modified
    with pytest.raises(ValueError, match="float tensor"):
        extractor.extract(batch.to(torch.int16), lengths)
    with pytest.raises(ValueError, match="lengths"):
        extractor.extract(batch, lengths[:2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["ast", "htsat"])
def test_extract_on_cuda_returns_cuda_features_matching_cpu(kind):
    extractor = EXTRACTORS[kind]()
    batch, lengths = _padded(_clips(extractor.sampling_rate))
    on_gpu = extractor.extract(batch.cuda(), lengths)[_name(extractor)]
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), extractor.extract(batch, lengths)[_name(extractor)], rtol=0, atol=1e-3)


def test_ast_input_samples_is_exactly_what_the_features_read():
    extractor = ASTFeatureExtractor(max_length=64, subtract_waveform_mean=False)  # no whole-clip statistic
    clip = _clips(16000, seconds=(2.0,))[0]
    needed = extractor.input_samples
    assert needed == 63 * 160 + 400
    full = extractor.extract(clip.unsqueeze(0))["input_values"]
    torch.testing.assert_close(extractor.extract(clip[:needed].unsqueeze(0))["input_values"], full, rtol=0, atol=0)
    short = extractor.extract(clip[: needed - 1].unsqueeze(0))["input_values"]
    assert not torch.equal(short[:, -1], full[:, -1]) and torch.equal(short[:, :-1], full[:, :-1])
    # one definition at any rate: Kaldi's whole-sample window and shift (22.05 kHz: 551 and 220)
    assert ASTFeatureExtractor(sampling_rate=22050).input_samples == 1023 * 220 + 551


def test_htsat_input_samples_is_the_clip_length():
    assert HTSATFeatureExtractor().input_samples == 320000
    assert HTSATFeatureExtractor(clip_samples=None).input_samples is None
    extractor = HTSATFeatureExtractor(clip_samples=32000)
    clip = _clips(32000, seconds=(1.5,))[0]
    torch.testing.assert_close(
        extractor.extract(clip[:32000].unsqueeze(0))["input_features"],
        extractor.extract(clip.unsqueeze(0))["input_features"],
    )


@pytest.fixture
def fresh_channels_warning(monkeypatch):
    monkeypatch.setattr(audio_module, "_warned_channels_last", False)


@pytest.mark.parametrize("kind", ["ast", "htsat"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_a_channels_last_stereo_array_is_one_clip_down_mixed_with_one_warning(
    kind, as_tensor, fresh_channels_warning, caplog
):
    extractor = EXTRACTORS[kind]()
    rate = extractor.sampling_rate
    rng = np.random.default_rng(1)
    stereo = rng.uniform(-0.5, 0.5, size=(rate // 2, 2)).astype(np.float32)  # [N, 2], as soundfile.read gives
    given = torch.from_numpy(stereo) if as_tensor else stereo
    with caplog.at_level(logging.WARNING):
        features = extractor(given, sampling_rate=rate, return_tensors="pt")[_name(extractor)]
        extractor(given, sampling_rate=rate, return_tensors="pt")
    expected = extractor(stereo.mean(axis=1), sampling_rate=rate, return_tensors="pt")[_name(extractor)]
    assert features.shape[0] == 1  # one clip, not N clips of 2 samples
    torch.testing.assert_close(features, expected, rtol=0, atol=1e-6)
    warnings = [record for record in caplog.records if "channels-last" in record.getMessage()]
    assert len(warnings) == 1 and "[samples, channels]" in warnings[0].getMessage()


@pytest.mark.parametrize("kind", ["ast", "htsat"])
def test_a_2d_batch_and_a_channels_first_clip_keep_their_meaning(kind, fresh_channels_warning, caplog):
    extractor = EXTRACTORS[kind]()
    rate = extractor.sampling_rate
    rng = np.random.default_rng(2)
    batch = rng.uniform(-0.5, 0.5, size=(3, rate // 2)).astype(np.float32)  # [batch, samples]
    with caplog.at_level(logging.WARNING):
        assert extractor(batch, sampling_rate=rate, return_tensors="pt")[_name(extractor)].shape[0] == 3
        # [channels, samples] inside a list is one clip, down-mixed
        one = extractor([batch[:2]], sampling_rate=rate, return_tensors="pt")[_name(extractor)]
    assert one.shape[0] == 1
    torch.testing.assert_close(
        one,
        extractor(batch[:2].mean(axis=0), sampling_rate=rate, return_tensors="pt")[_name(extractor)],
        rtol=0,
        atol=1e-6,
    )
    assert not any("channels-last" in record.getMessage() for record in caplog.records)
