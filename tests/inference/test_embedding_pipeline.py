"""`pipeline("audio-feature-extraction")` returns the vectors of `AudioEmbedder` (the base model's `pooler_output`
per window, their mean, and the tokens in the documented layout) for every family, from any input form."""

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel, pipeline

from spectrogram_transformers.embedding_pipeline import AudioFeatureExtractionPipeline
from spectrogram_transformers.feature_extraction import resample
from spectrogram_transformers.inference import AudioEmbedder
from testing_utils.inference_models import RATE, embedding_model_dirs, tone_file


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return embedding_model_dirs(tmp_path_factory.mktemp("embedding-pipeline-models"))


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    return tone_file(tmp_path_factory.mktemp("audio") / "long.wav", seconds=2.6)


@pytest.mark.parametrize("family", ["ast", "ssast", "htsat", "ssast-pretraining"])
def test_pipeline_returns_the_embedders_vectors(model_dirs, long_file, family):
    directory = model_dirs[family]
    pipe = pipeline("audio-feature-extraction", model=str(directory), dtype="float32")
    assert isinstance(pipe, AudioFeatureExtractionPipeline)
    output = pipe(str(long_file), tokens=True)
    expected = AudioEmbedder(directory, dtype="float32").embed_file(long_file, tokens=True)

    np.testing.assert_allclose(output["embedding"], expected.embedding, rtol=0, atol=1e-5)
    np.testing.assert_allclose(output["window_embeddings"], expected.window_embeddings, rtol=0, atol=1e-5)
    np.testing.assert_allclose(output["window_starts"], expected.window_starts)
    np.testing.assert_allclose(output["tokens"], expected.tokens, rtol=0, atol=1e-5)
    assert output["token_hop_s"] == pytest.approx(expected.token_hop_s)
    if expected.prefix_tokens is None:
        assert output["prefix_tokens"] is None
    else:
        np.testing.assert_allclose(output["prefix_tokens"], expected.prefix_tokens, rtol=0, atol=1e-5)

    # a clip of exactly the model's input: the pipeline's vector is the encoder's pooler_output
    waveform = np.random.default_rng(0).standard_normal(expected_samples(directory)).astype(np.float32) * 0.1
    encoder = AutoModel.from_pretrained(directory).eval()
    with torch.no_grad():
        reference = encoder(
            **AutoFeatureExtractor.from_pretrained(directory)(waveform, sampling_rate=RATE, return_tensors="pt")
        )
    np.testing.assert_allclose(pipe(waveform)["embedding"], reference.pooler_output[0].numpy(), rtol=0, atol=1e-6)


def expected_samples(directory) -> int:
    from spectrogram_transformers.feature_extraction import model_input_samples

    return model_input_samples(AutoFeatureExtractor.from_pretrained(directory))


def test_inputs_batching_and_crop(model_dirs, long_file):
    directory = model_dirs["ast"]
    embedder = AudioEmbedder(directory, dtype="float32")
    waveform = embedder.decode(long_file)
    pipe = pipeline("audio-feature-extraction", model=str(directory), dtype="float32")
    reference = pipe(waveform, return_tensors=True)["embedding"].numpy()
    # a dict at another rate is resampled with the package's resampler; batches of windows change nothing
    at_32k = {"array": resample(waveform, RATE, 32000), "sampling_rate": 32000}
    np.testing.assert_allclose(
        pipe(at_32k)["embedding"], embedder.embed(resample(at_32k["array"], 32000, RATE)).embedding, rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(pipe(waveform, batch_size=3)["embedding"], reference, rtol=0, atol=1e-5)
    assert "tokens" not in pipe(waveform)
    short = waveform[: int(0.45 * RATE)]
    np.testing.assert_allclose(
        pipe(short, short_clip="crop")["embedding"],
        embedder.embed(short, short_clip="crop").embedding,
        rtol=0,
        atol=1e-5,
    )
