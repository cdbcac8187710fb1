"""The standard call arguments of transformers' sequence feature extractors (`padding`, `truncation`,
`max_length` in samples, `pad_to_multiple_of`, `return_attention_mask`) on both extractors: each equals cutting
or zero-padding the audio yourself, and a nonsense value is a ValueError (never a TypeError)."""

import numpy as np
import pytest
import torch

from spectrogram_transformers.feature_extraction import ASTFeatureExtractor, HTSATFeatureExtractor

RATE = 16000
EXTRACTORS = {
    "ast": lambda **kw: ASTFeatureExtractor(max_length=128, **kw),
    "htsat": lambda **kw: HTSATFeatureExtractor(sampling_rate=RATE, hop_length=160, clip_samples=32000, **kw),
    "htsat_unclipped": lambda **kw: HTSATFeatureExtractor(sampling_rate=RATE, hop_length=160, clip_samples=None, **kw),
}


def _clips() -> list[np.ndarray]:
    generator = np.random.default_rng(0)
    return [generator.standard_normal(n).astype(np.float32) * 0.1 for n in (20000, 9000)]


def _features(outputs) -> torch.Tensor:
    return outputs["input_values" if "input_values" in outputs else "input_features"]


@pytest.mark.parametrize("name", ["ast", "htsat"])
def test_guide_call_equals_cutting_the_audio_yourself(name):
    extractor = EXTRACTORS[name]()
    clips = _clips()
    guide = extractor(clips, sampling_rate=RATE, max_length=16000, truncation=True, return_tensors="pt")
    cut = extractor([clip[:16000] for clip in clips], sampling_rate=RATE, return_tensors="pt")
    assert torch.equal(_features(guide), _features(cut))
    # The default call is untouched by the new arguments.
    default = extractor(clips, sampling_rate=RATE, return_tensors="pt")
    assert not torch.equal(_features(default)[0], _features(guide)[0])


@pytest.mark.parametrize("name", list(EXTRACTORS))
def test_padding_equals_zero_padding_the_audio_yourself(name):
    extractor = EXTRACTORS[name]()
    clips = _clips()
    padded = extractor(clips, sampling_rate=RATE, padding="max_length", max_length=24000, return_tensors="pt")
    yourself = [np.pad(clip, (0, 24000 - len(clip))) for clip in clips]
    assert torch.equal(_features(padded), _features(extractor(yourself, sampling_rate=RATE, return_tensors="pt")))
    longest = extractor(clips, sampling_rate=RATE, padding=True, return_tensors="pt")
    to_longest = [np.pad(clip, (0, 20000 - len(clip))) for clip in clips]
    assert torch.equal(_features(longest), _features(extractor(to_longest, sampling_rate=RATE, return_tensors="pt")))
    assert torch.equal(
        _features(longest), _features(extractor(clips, sampling_rate=RATE, padding="longest", return_tensors="pt"))
    )


@pytest.mark.parametrize("name", ["ast", "htsat_unclipped"])
def test_pad_to_multiple_of_rounds_the_sample_count_up(name):
    extractor = EXTRACTORS[name]()
    clips = _clips()
    outputs = extractor(clips, sampling_rate=RATE, padding=True, pad_to_multiple_of=7000, return_tensors="pt")
    yourself = [np.pad(clip, (0, 21000 - len(clip))) for clip in clips]  # longest 20000 -> 21000
    assert torch.equal(_features(outputs), _features(extractor(yourself, sampling_rate=RATE, return_tensors="pt")))
    cut = extractor(
        clips, sampling_rate=RATE, truncation=True, max_length=15000, pad_to_multiple_of=8000, return_tensors="pt"
    )
    assert torch.equal(
        _features(cut), _features(extractor([c[:16000] for c in clips], sampling_rate=RATE, return_tensors="pt"))
    )


def test_attention_mask_marks_frames_of_the_clips_own_audio():
    ast = EXTRACTORS["ast"]()
    clips = _clips()
    outputs = ast(
        clips,
        sampling_rate=RATE,
        padding="max_length",
        max_length=20000,
        return_attention_mask=True,
        return_tensors="pt",
    )
    # Kaldi frames of 400 samples every 160: 20000 samples -> 123 frames, 9000 -> 54; 128 frames in all.
    assert outputs["attention_mask"].sum(dim=1).tolist() == [123, 54]
    assert outputs["attention_mask"][1, :54].all() and not outputs["attention_mask"][1, 54:].any()
    unpadded = ast(clips, sampling_rate=RATE, return_attention_mask=True, return_tensors="pt")
    assert torch.equal(unpadded["attention_mask"], outputs["attention_mask"])

    htsat = EXTRACTORS["htsat_unclipped"]()
    outputs = htsat(clips, sampling_rate=RATE, padding=True, return_attention_mask=True, return_tensors="pt")
    # Centred frames every 160 samples: 1 + 20000 // 160 = 126 and 1 + 9000 // 160 = 57 of 126.
    assert outputs["attention_mask"].shape == (2, 126) and outputs["attention_mask"].sum(dim=1).tolist() == [126, 57]
    clipped = EXTRACTORS["htsat"]()(
        clips,
        sampling_rate=RATE,
        truncation=True,
        max_length=16000,
        padding="max_length",
        return_attention_mask=True,
        return_tensors="np",
    )
    assert clipped["attention_mask"].sum(axis=1).tolist() == [101, 57]


@pytest.mark.parametrize("name", ["ast", "htsat"])
def test_nonsense_values_are_value_errors_not_type_errors(name):
    extractor, clip = EXTRACTORS[name](), _clips()[0]
    for arguments, message in [
        ({"padding": "sideways"}, "padding"),
        ({"truncation": "yes", "max_length": 100}, "truncation"),
        ({"truncation": True}, "max_length"),
        ({"padding": "max_length"}, "max_length"),
        ({"max_length": 0, "truncation": True}, "max_length"),
        ({"max_length": 1.5, "truncation": True}, "max_length"),
        ({"padding": True, "pad_to_multiple_of": -2}, "pad_to_multiple_of"),
    ]:
        with pytest.raises(ValueError, match=message):
            extractor(clip, sampling_rate=RATE, **arguments)
    # Every standard argument at once is accepted.
    extractor(
        clip,
        sampling_rate=RATE,
        padding=False,
        truncation=False,
        max_length=None,
        pad_to_multiple_of=None,
        return_attention_mask=False,
    )
