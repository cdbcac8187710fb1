"""Embeddings through the Python API (`AudioEmbedder`): the pooled vector is the base model's `pooler_output`, the
tokens its `last_hidden_state` in the documented (time, frequency) layout, for AST, SSAST (classifier and
pre-training checkpoint) and HTS-AT; files longer than the input get the mean of their windows."""

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from spectrogram_transformers import SSASTForPreTraining
from spectrogram_transformers.inference import (
    AudioEmbedder,
    InferenceError,
    embed_files,
    load_torch_classifier,
    window_starts,
)
from testing_utils.inference_models import RATE, embedding_model_dirs, tone_file

FAMILIES = ("ast", "ssast", "htsat", "ssast-pretraining")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return embedding_model_dirs(tmp_path_factory.mktemp("embedding-models"))


def reference_encoder(directory):
    """The encoder as a user would reach it without this API: the saved model's `base_model`."""
    if directory.name == "ssast-pretraining":
        model = SSASTForPreTraining.from_pretrained(directory)
    else:
        model = AutoModelForAudioClassification.from_pretrained(directory)
    return model.base_model.eval(), AutoFeatureExtractor.from_pretrained(directory)


def reference_output(directory, waveform, frames=None, **model_kwargs):
    """The encoder's output for one clip; `frames`: an extractor built for that many input frames (the frame count
    is a constructor setting: the call's `max_length` counts samples, as in transformers)."""
    encoder, extractor = reference_encoder(directory)
    if frames is not None:
        extractor = AutoFeatureExtractor.from_pretrained(directory, max_length=frames)
    features = extractor(waveform, sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        return encoder(**features, **model_kwargs)


def expected_grid(directory, last_hidden_state):
    """(time, frequency, D) written out from each family's documented token order, independently of `token_grid`."""
    config = reference_encoder(directory)[0].config
    tokens = last_hidden_state[0]
    if config.model_type == "htsat":
        rows, columns = config.stage_resolution(config.num_layers - 1)
        chunks = config.freq_ratio
        rows_per_chunk = rows // chunks
        # final grid row = chunk · rows_per_chunk + frequency row, column = time inside the chunk
        return torch.stack(
            [
                torch.stack(
                    [
                        tokens[((step // columns) * rows_per_chunk + row) * columns + step % columns]
                        for row in range(rows_per_chunk)
                    ]
                )
                for step in range(chunks * columns)
            ]
        )
    prefix = config.num_prefix_tokens
    frequency_patches = config.patch_grid[0]
    time_patches = (tokens.shape[0] - prefix) // frequency_patches
    # patch index f · T + t
    return torch.stack(
        [
            torch.stack([tokens[prefix + f * time_patches + t] for f in range(frequency_patches)])
            for t in range(time_patches)
        ]
    )


def clip(seconds, seed=0):
    return np.random.default_rng(seed).standard_normal(int(seconds * RATE)).astype(np.float32) * 0.1


@pytest.mark.parametrize("family", FAMILIES)
def test_pooled_vector_and_tokens_are_the_models_outputs(model_dirs, family):
    directory = model_dirs[family]
    embedder = AudioEmbedder(directory, dtype="float32")
    waveform = clip(embedder.input_seconds)  # exactly one window
    result = embedder.embed(waveform, tokens=True)
    reference = reference_output(directory, waveform)

    assert result.window_embeddings.shape == (1, embedder.hidden_size)
    np.testing.assert_allclose(result.embedding, reference.pooler_output[0].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        result.tokens[0], expected_grid(directory, reference.last_hidden_state).numpy(), rtol=0, atol=1e-6
    )
    config = embedder.config
    if family == "htsat":
        assert result.prefix_tokens is None
        rows, columns = config.stage_resolution(config.num_layers - 1)
        assert result.tokens.shape[1:3] == (config.freq_ratio * columns, rows // config.freq_ratio)
    else:
        prefix = config.num_prefix_tokens
        np.testing.assert_allclose(
            result.prefix_tokens[0], reference.last_hidden_state[0, :prefix].numpy(), rtol=0, atol=1e-6
        )
        assert result.tokens.shape[1:3] == (config.patch_grid[1], config.patch_grid[0])
    # one embedding per time step, whatever the geometry, with its start time
    assert result.frame_embeddings.shape == (1, result.tokens.shape[1], embedder.hidden_size)
    assert result.token_times[0, 1] == pytest.approx(result.token_hop_s)


def test_frame_model_has_one_token_per_time_step(model_dirs):
    result = AudioEmbedder(model_dirs["ssast-pretraining"], dtype="float32").embed(clip(1.0), tokens=True)
    assert result.tokens.shape[1:3] == (25, 1)  # 100 frames / 4-frame patches, full height
    assert result.token_hop_s == pytest.approx(0.04)
    np.testing.assert_array_equal(result.frame_embeddings, result.tokens[:, :, 0])


def test_long_file_is_the_mean_of_its_windows(model_dirs, tmp_path):
    directory = model_dirs["ast"]
    path = tone_file(tmp_path / "long.wav", seconds=2.6)
    embedder = AudioEmbedder(directory, dtype="float32", batch_size=2)
    [result] = embed_files([path], directory, dtype="float32", batch_size=2)
    waveform = embedder.decode(path)
    window = embedder.input_samples
    starts = window_starts(len(waveform), window, window // 2)
    assert len(starts) == 5 and result.window_embeddings.shape == (5, embedder.hidden_size)
    np.testing.assert_allclose(result.window_starts, np.array(starts) / RATE)
    for start, vector in zip(starts, result.window_embeddings):
        reference = reference_output(directory, waveform[start : start + window]).pooler_output[0].numpy()
        np.testing.assert_allclose(vector, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.embedding, result.window_embeddings.mean(axis=0), rtol=0, atol=1e-7)
    assert result.path == str(path) and result.duration == pytest.approx(2.6)


@pytest.mark.parametrize("family", ["ast", "ssast"])
def test_crop_sees_the_clip_alone(model_dirs, family):
    directory = model_dirs[family]
    embedder = AudioEmbedder(directory, dtype="float32")
    waveform = clip(0.45)  # 43 Kaldi frames of the model's 100
    cropped = embedder.embed(waveform, short_clip="crop", tokens=True)
    padded = embedder.embed(waveform, tokens=True)
    # 43 frames rounded up to whole patches (16 + 3 · 10 = 46), positional embedding cut to them
    reference = reference_output(directory, waveform, frames=46, interpolate_pos_encoding=True)
    np.testing.assert_allclose(cropped.embedding, reference.pooler_output[0].numpy(), rtol=0, atol=1e-6)
    assert cropped.tokens.shape[1] == 4 and padded.tokens.shape[1] == 9
    assert not np.allclose(cropped.embedding, padded.embedding, atol=1e-4)
    # a clip as long as the input is the same either way
    full = clip(embedder.input_seconds, seed=1)
    np.testing.assert_array_equal(embedder.embed(full, short_clip="crop").embedding, embedder.embed(full).embedding)


def test_refusals(model_dirs):
    with pytest.raises(InferenceError, match="HTS-AT's Swin windows"):
        AudioEmbedder(model_dirs["htsat"], dtype="float32").embed(clip(0.5), short_clip="crop")
    with pytest.raises(InferenceError, match="ONNX graph outputs the logits only"):
        AudioEmbedder(model_dirs["ast"], backend="onnx")
    with pytest.raises(InferenceError, match="short_clip must be one of"):
        AudioEmbedder(model_dirs["ast"], dtype="float32").embed(clip(0.5), short_clip="trim")
    # the classifier loader refuses a pre-training checkpoint; the embedder loads its encoder
    with pytest.raises(InferenceError, match="not an audio-classification model"):
        load_torch_classifier(model_dirs["ssast-pretraining"])


def test_in_memory_classifier_uses_its_encoder(model_dirs):
    directory = model_dirs["ast"]
    model = AutoModelForAudioClassification.from_pretrained(directory)
    extractor = AutoFeatureExtractor.from_pretrained(directory)
    in_memory = AudioEmbedder.from_model(model, extractor).embed(clip(0.8))
    from_directory = AudioEmbedder(directory, dtype="float32").embed(clip(0.8))
    np.testing.assert_allclose(in_memory.embedding, from_directory.embedding, rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", ["ast", "htsat"])
@pytest.mark.parametrize("block_seconds", [0.37, 5.0])
def test_blocks_give_exactly_the_embedding_of_the_whole_waveform(model_dirs, family, block_seconds):
    """`embed_blocks` (what `embed_file` and long archive files use) runs windows as blocks arrive and holds about
    one window; its result is bit-for-bit `embed`'s on the concatenated audio, for any block size."""
    embedder = AudioEmbedder(model_dirs[family], dtype="float32", batch_size=2)
    waveform = clip(3.3 * embedder.input_seconds, seed=7)
    whole = embedder.embed(waveform, tokens=True)
    size = int(block_seconds * RATE)
    blocks = (waveform[start : start + size] for start in range(0, len(waveform), size))
    streamed = embedder.embed_blocks(blocks, tokens=True, expected_samples=len(waveform))
    np.testing.assert_array_equal(streamed.embedding, whole.embedding)
    np.testing.assert_array_equal(streamed.window_embeddings, whole.window_embeddings)
    np.testing.assert_array_equal(streamed.window_starts, whole.window_starts)
    np.testing.assert_array_equal(streamed.tokens, whole.tokens)
    assert (streamed.duration, streamed.window_s, streamed.hop_s) == (whole.duration, whole.window_s, whole.hop_s)
    # without keep_windows only the file's vector is kept
    lean = embedder.embed_blocks([waveform[:size], waveform[size:]], keep_windows=False)
    np.testing.assert_array_equal(lean.embedding, whole.embedding)
    assert lean.window_embeddings.shape == (0, embedder.hidden_size) and len(lean.window_starts) == 0


def test_a_short_clip_streamed_is_one_window_of_its_own_length(model_dirs):
    embedder = AudioEmbedder(model_dirs["ast"], dtype="float32")
    waveform = clip(0.4 * embedder.input_seconds, seed=8)
    whole = embedder.embed(waveform, short_clip="crop")
    streamed = embedder.embed_blocks(np.array_split(waveform, 3), short_clip="crop")
    np.testing.assert_array_equal(streamed.embedding, whole.embedding)
    assert streamed.window_s == pytest.approx(0.4 * embedder.input_seconds, abs=1 / RATE)
    with pytest.raises(InferenceError, match="no samples"):
        embedder.embed_blocks([np.zeros(0, dtype=np.float32)])
