"""`pipeline("audio-classification")` on this package's models: any sampling rate without torchaudio (soxr, equal
to pre-resampled audio), long audio in windows averaged as `classify` does, and plain transformers models
untouched."""

import importlib.util
import sys

import numpy as np
import pytest
import torch
import transformers
from transformers import AudioClassificationPipeline, pipeline

from spectrogram_transformers.feature_extraction import ASTFeatureExtractor, resample
from spectrogram_transformers.inference import AudioClassifier
from spectrogram_transformers.pipelines import SpectrogramAudioClassificationPipeline
from testing_utils.inference_models import tiny_ast_dir, tiny_htsat_dir


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    return tiny_ast_dir(tmp_path_factory.mktemp("ast"))


@pytest.fixture(scope="module")
def ast_pipeline(ast_dir):
    return pipeline("audio-classification", model=str(ast_dir), top_k=3)


def signal(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(rate * seconds)) / rate
    return (0.2 * np.sin(2 * np.pi * 660 * time) + 0.05 * rng.standard_normal(time.size)).astype(np.float32)


def as_dict(scores):
    return {entry["label"]: entry["score"] for entry in scores}


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_equals_pre_resampled_audio(ast_pipeline, ast_dir, rate):
    audio = signal(rate, 0.9)
    from_dict = ast_pipeline({"array": audio, "sampling_rate": rate})
    assert from_dict == ast_pipeline({"raw": torch.from_numpy(audio), "sampling_rate": rate})
    pre_resampled = resample(audio, rate, 16000)
    assert from_dict == ast_pipeline(pre_resampled)  # bit for bit: the same soxr resampler
    # and what the model gives on the extractor's features of the pre-resampled audio
    model = transformers.AutoModelForAudioClassification.from_pretrained(ast_dir)
    features = ASTFeatureExtractor.from_pretrained(ast_dir)(pre_resampled, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**features).logits.softmax(-1)[0]
    expected = {model.config.id2label[index]: value for index, value in enumerate(probabilities.tolist())}
    assert as_dict(from_dict) == pytest.approx(expected, abs=1e-6)
    assert "torchaudio" not in sys.modules


def test_htsat_pipeline_at_44_1_khz(tmp_path):
    directory = tiny_htsat_dir(tmp_path / "htsat")
    classifier = pipeline("audio-classification", model=str(directory), top_k=3)
    assert isinstance(classifier, SpectrogramAudioClassificationPipeline)
    audio = signal(44100, 1.5)
    assert classifier({"array": audio, "sampling_rate": 44100}) == classifier(resample(audio, 44100, 16000))


def test_long_audio_is_classified_in_windows_like_classify(ast_pipeline, ast_dir):
    rate = 22050
    audio = np.concatenate([signal(rate, 2.0), 0.5 * np.sign(signal(rate, 3.0, seed=1))]).astype(np.float32)
    scores = as_dict(ast_pipeline({"array": audio, "sampling_rate": rate}))
    # classify's mean of window probabilities over windows of the model's input every half window
    prediction = AudioClassifier(ast_dir, dtype="float32").classify(resample(audio, rate, 16000), top_k=3)
    assert len(prediction.windows) == 9 and prediction.window_s == pytest.approx(1.015)
    assert scores == pytest.approx(dict(prediction.labels), abs=1e-6)
    # the first window alone (what the extractor would keep of the whole array) scores differently
    first_window = as_dict(ast_pipeline(resample(audio, rate, 16000)[:16240]))
    assert max(abs(first_window[label] - scores[label]) for label in scores) > 1e-3
    # the pipeline's own batching of windows gives the same scores
    assert as_dict(ast_pipeline({"array": audio, "sampling_rate": rate}, batch_size=4)) == pytest.approx(
        scores, abs=1e-6
    )


def test_files_are_decoded_by_the_package_and_errors_name_them(ast_pipeline, tmp_path):
    import soundfile

    audio = signal(48000, 0.8)
    soundfile.write(tmp_path / "clip.flac", audio, 48000)
    assert as_dict(ast_pipeline(str(tmp_path / "clip.flac"))) == pytest.approx(
        as_dict(
            ast_pipeline({"array": soundfile.read(tmp_path / "clip.flac", dtype="float32")[0], "sampling_rate": 48000})
        ),
        abs=1e-6,
    )
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + bytes(range(200)))
    with pytest.raises(ValueError, match="corrupt.wav"):
        ast_pipeline(str(corrupt))


def test_plain_transformers_models_keep_transformers_pipeline(tmp_path):
    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100
    )
    transformers.ASTForAudioClassification(config).save_pretrained(tmp_path)
    transformers.ASTFeatureExtractor(max_length=100).save_pretrained(tmp_path)
    plain = pipeline("audio-classification", model=str(tmp_path))
    assert type(plain) is AudioClassificationPipeline
    audio = signal(16000, 3.0)
    reference = pipeline("audio-classification", model=str(tmp_path), pipeline_class=AudioClassificationPipeline)
    assert plain(audio) == reference(audio)
    if importlib.util.find_spec("torchaudio") is None:  # transformers' own behaviour: it resamples with torchaudio
        with pytest.raises(ImportError, match="torchaudio"):
            plain({"array": signal(44100, 1.0), "sampling_rate": 44100})


def test_a_long_file_path_is_streamed_and_equals_the_array(ast_pipeline, tmp_path):
    """A multi-window file path runs from blocks (feature_extraction.streaming) with the same windows and scores
    as the decoded array; formats libsndfile does not read stream through ffmpeg's stdout."""
    import shutil
    import subprocess

    import soundfile

    audio = signal(48000, 4.3, seed=2)
    soundfile.write(tmp_path / "long.flac", audio, 48000)
    from_array = as_dict(
        ast_pipeline({"array": soundfile.read(tmp_path / "long.flac", dtype="float32")[0], "sampling_rate": 48000})
    )
    assert as_dict(ast_pipeline(str(tmp_path / "long.flac"))) == from_array  # the same samples, the same windows
    if shutil.which("ffmpeg") is not None:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(tmp_path / "long.flac"), "-c:a", "aac", str(tmp_path / "long.m4a")],
            check=True,
        )
        from_m4a = as_dict(ast_pipeline(str(tmp_path / "long.m4a")))
        assert max(from_m4a, key=from_m4a.get) == max(from_array, key=from_array.get)
