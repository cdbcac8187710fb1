"""HTS-AT for a user: the hub_configs variants, Auto classes and `pipeline("audio-classification")`."""

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

from spectrogram_transformers import (
    HTSATConfig,
    HTSATFeatureExtractor,
    HTSATForAudioClassification,
    hub_configs,
)
from spectrogram_transformers.modeling.htsat.modeling_htsat import (
    relative_position_index,
    shifted_window_mask,
    window_token_order,
)

VARIANTS = {
    # name: (labels, problem type, sampling rate, a label)
    "htsat-tiny-32k-audioset": (527, "multi_label_classification", 32000, None),
    "htsat-tiny-32k-esc50": (50, "single_label_classification", 32000, "dog"),
    "htsat-tiny-16k-speechcommands": (35, "single_label_classification", 16000, "yes"),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_load_with_paper_sizes(name):
    num_labels, problem_type, sampling_rate, first_label = VARIANTS[name]
    assert name in hub_configs.list_variants()
    config = hub_configs.load_config(name)
    assert isinstance(config, HTSATConfig)
    assert (config.embed_dim, tuple(config.depths), tuple(config.num_heads)) == (96, (2, 2, 6, 2), (4, 8, 16, 32))
    assert (config.window_size, config.spec_size, config.num_mel_bins, config.num_frames) == (8, 256, 64, 1024)
    assert config.num_labels == num_labels and config.problem_type == problem_type
    if first_label is not None:
        assert config.id2label[0] == first_label
    extractor = hub_configs.load_feature_extractor(name)
    assert isinstance(extractor, HTSATFeatureExtractor) and extractor.sampling_rate == sampling_rate
    # every variant's front end gives the 10 s / 1001-frame input the model was trained on
    assert 1 + extractor.clip_samples // extractor.hop_length == 1001
    with torch.device("meta"):  # shapes only
        model = hub_configs.build_model(name)
    assert isinstance(model, HTSATForAudioClassification)
    assert model.classifier.conv.out_channels == num_labels


def tiny_config(**overrides) -> HTSATConfig:
    settings = dict(spec_size=64, num_mel_bins=16, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=4)
    return HTSATConfig(**{**settings, **overrides})


def save_tiny(directory, problem_type: str) -> HTSATForAudioClassification:
    labels = {index: name for index, name in enumerate(["speech", "dog", "siren", "music"])}
    config = tiny_config(id2label=labels, label2id={v: k for k, v in labels.items()}, problem_type=problem_type)
    torch.manual_seed(0)
    model = HTSATForAudioClassification(config).eval()
    model.save_pretrained(directory)
    # 16 mel bins at 16 kHz, 2 s clips: 1 + 32000 // 160 = 201 frames (stretched to the model's 256)
    HTSATFeatureExtractor(
        sampling_rate=16000, num_mel_bins=16, hop_length=160, n_fft=512, fmax=8000.0, clip_samples=32000
    ).save_pretrained(directory)
    return model


@pytest.mark.parametrize(
    "problem_type, activation",
    [("multi_label_classification", torch.sigmoid), ("single_label_classification", lambda x: x.softmax(-1))],
)
def test_pipeline_scores_follow_the_problem_type(tmp_path, problem_type, activation):
    model = save_tiny(tmp_path, problem_type)
    classifier = pipeline("audio-classification", model=str(tmp_path), top_k=4)
    assert isinstance(classifier.model, HTSATForAudioClassification)
    assert isinstance(classifier.feature_extractor, HTSATFeatureExtractor)
    audio = np.random.default_rng(0).normal(scale=0.1, size=24000).astype(np.float32)
    features = HTSATFeatureExtractor.from_pretrained(tmp_path)(audio, sampling_rate=16000, return_tensors="pt")
    assert features.input_features.shape == (1, 201, 16)
    with torch.no_grad():
        expected_scores = activation(model(**features).logits)[0]
    scores = {entry["label"]: entry["score"] for entry in classifier(audio)}
    assert scores.keys() == set(model.config.id2label.values())
    for index, name in model.config.id2label.items():
        assert scores[name] == pytest.approx(expected_scores[index].item(), abs=1e-5)
    total = sum(scores.values())
    if problem_type == "single_label_classification":
        assert total == pytest.approx(1.0, abs=1e-5)
    else:
        assert total != pytest.approx(1.0, abs=1e-3)  # independent sigmoids


def test_from_pretrained_rebuilds_the_derived_buffers(tmp_path):
    """from_pretrained materialises the model on the meta device; the index and shift masks must be recomputed."""
    save_tiny(tmp_path, "multi_label_classification")
    model = AutoModelForAudioClassification.from_pretrained(tmp_path)
    stage = model.htsat.encoder.layers[0]
    assert torch.equal(stage.shift_mask, shifted_window_mask(stage.resolution, stage.window, stage.shift))
    assert torch.equal(stage.blocks[1].attention.relative_position_index, relative_position_index(stage.window))
    assert torch.equal(stage.shifted_window_order, window_token_order(stage.resolution, stage.window, stage.shift))
    assert torch.equal(stage.window_order, window_token_order(stage.resolution, stage.window, 0))
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), HTSATFeatureExtractor)
