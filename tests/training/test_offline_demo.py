"""The offline main job: the synthetic spoken-keyword dataset (schema, determinism, held-out voices) and a
tiny end-to-end run of `spectrogram-transformers train` (synthesise, train, evaluate, save, reload with
`pipeline`, print accuracy and top-5)."""

import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Audio, ClassLabel, load_from_disk
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.training.offline_demo import classify_held_out, job_torch_threads
from spectrogram_transformers.training.synthetic_keywords import (
    KEYWORDS,
    SyntheticKeywordsConfig,
    espeak_variants,
    load_synthetic_keywords,
    split_voices,
    synthesize_keywords,
)

STALE_WEIGHTS = (
    "Trainer evaluated other weights than it saved: a weight cache not invalidated by the optimiser step? "
    "(Trainer's default fused AdamW updates parameters without bumping their tensor version counters)"
)
TINY = SyntheticKeywordsConfig(train_size=40, validation_size=20, test_size=20, seed=3)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return synthesize_keywords(TINY, cache_dir=tmp_path_factory.mktemp("keywords"), num_workers=2, verbose=False)


def _variant(speaker_id: str) -> str:
    return speaker_id.split("+", 1)[1]


def test_schema_is_speech_commands(tiny_dir):
    dataset = load_from_disk(str(tiny_dir))
    assert sorted(dataset) == ["test", "train", "validation"]
    assert {name: len(split) for name, split in dataset.items()} == {"train": 40, "validation": 20, "test": 20}
    features = dataset["train"].features
    assert isinstance(features["audio"], Audio) and features["audio"].sampling_rate == 16000
    assert isinstance(features["label"], ClassLabel) and features["label"].names == list(KEYWORDS)
    for column in ("file", "speaker_id", "is_unknown", "utterance_id"):
        assert column in features
    # every take says every keyword once: balanced classes
    assert np.bincount(dataset["train"]["label"], minlength=len(KEYWORDS)).tolist() == [4] * len(KEYWORDS)

    raw = dataset["train"].cast_column("audio", Audio(decode=False))
    offsets = []
    for row in raw.select(range(10)):
        assert set(row["audio"]) == {"bytes", "path"} and row["audio"]["path"].endswith(".wav")
        waveform, sampling_rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert sampling_rate == 16000 and waveform.shape == (16000,)  # mono, 1 s
        assert 0.05 < np.abs(waveform).max() <= 1.0
        offsets.append(row["offset_seconds"])
        # the keyword is where the metadata says: louder in its first 100 ms than in the noise before it
        start = round(row["offset_seconds"] * 16000)
        if start >= 1600:
            assert np.abs(waveform[start : start + 1600]).max() > np.abs(waveform[: start - 160]).max()
    assert len(set(offsets)) > 5  # random offsets
    assert not row["is_unknown"] and row["speaker_id"].count("+") == 1


def test_generation_is_deterministic_and_seeded(tiny_dir, tmp_path):
    again = synthesize_keywords(TINY, cache_dir=tmp_path / "again", num_workers=1, verbose=False)
    assert again.name == tiny_dir.name  # same settings, same cache name
    first = load_synthetic_keywords(TINY, cache_dir=tiny_dir.parent)
    second = load_synthetic_keywords(TINY, cache_dir=tmp_path / "again")
    for split in first:
        assert first[split]["audio"] == second[split]["audio"]
        assert first[split]["speaker_id"] == second[split]["speaker_id"]
        assert first[split]["label"] == second[split]["label"]

    other_seed = SyntheticKeywordsConfig(train_size=40, validation_size=20, test_size=20, seed=4)
    other = load_synthetic_keywords(other_seed, cache_dir=tmp_path / "other", num_workers=2, verbose=False)
    assert other["train"]["audio"] != first["train"]["audio"]


def test_cached_dataset_is_reused(tiny_dir, capsys):
    marker = tiny_dir / "dataset_dict.json"
    before = marker.stat().st_mtime_ns
    assert synthesize_keywords(TINY, cache_dir=tiny_dir.parent) == tiny_dir
    assert marker.stat().st_mtime_ns == before
    assert "reusing" in capsys.readouterr().out


def test_validation_and_test_hold_out_whole_voices(tiny_dir):
    dataset = load_from_disk(str(tiny_dir))
    speakers = {split: set(dataset[split]["speaker_id"]) for split in dataset}
    variants = {split: {_variant(speaker) for speaker in names} for split, names in speakers.items()}
    for held_out in ("validation", "test"):
        assert not speakers["train"] & speakers[held_out]
        assert not variants["train"] & variants[held_out]  # not even the timbre in another accent
    assert not variants["validation"] & variants["test"]

    # the full split: every installed variant in exactly one split, all accents with it
    voices = split_voices(espeak_variants(), SyntheticKeywordsConfig())
    by_split = {split: {_variant(voice) for voice in names} for split, names in voices.items()}
    assert set.union(*by_split.values()) == set(espeak_variants())
    assert sum(len(names) for names in by_split.values()) == len(espeak_variants())
    assert len(voices["train"]) > len(voices["test"]) > 0


def test_unlabeled_pool_uses_training_voices_only(tmp_path):
    config = SyntheticKeywordsConfig(train_size=10, validation_size=10, test_size=10, unlabeled_size=30, seed=3)
    dataset = load_synthetic_keywords(config, cache_dir=tmp_path, verbose=False)
    pool = dataset["unlabeled"]
    assert len(pool) == 30 and set(pool["label"]) == {-1}
    assert all(name.startswith("unlabeled/") for name in pool["file"])  # the path does not give the word away
    voices = split_voices(espeak_variants(), config)
    assert set(pool["speaker_id"]) <= set(voices["train"])


def test_job_threads_follow_the_openmp_environment(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert job_torch_threads() == 1  # libgomp spin-waits: one thread unless told otherwise
    assert job_torch_threads(0) == 0 and job_torch_threads(3) == 3
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert job_torch_threads() == 0  # torch's default: every core
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert job_torch_threads() == 0
    with pytest.raises(ValueError, match="torch_threads"):
        job_torch_threads(-1)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="train_size"):
        SyntheticKeywordsConfig(train_size=0)
    with pytest.raises(ValueError, match="snr_db"):
        SyntheticKeywordsConfig(snr_db=(20.0, 0.0))
    with pytest.raises(ValueError, match="fraction"):
        SyntheticKeywordsConfig(validation_variant_fraction=0.5, test_variant_fraction=0.5)


def test_offline_main_job_end_to_end(tiny_dir, tmp_path, capsys):
    """`spectrogram-transformers train` with no recipe: synthesise (reused here), train a few steps, evaluate on
    held-out voices, save, reload with pipeline and print accuracy and top-5 predictions."""
    output_dir = tmp_path / "model"
    code = cli_main(
        [
            "train",
            "--synthetic_train_size", "40",
            "--synthetic_validation_size", "20",
            "--synthetic_test_size", "20",
            "--synthetic_seed", "3",
            "--synthetic_cache_dir", str(tiny_dir.parent),
            "--num_demo_clips", "3",
            "--max_steps", "6",
            "--eval_strategy", "steps",
            "--eval_steps", "2",  # evaluate, train on, evaluate again: eval must see the updated weights
            "--learning_rate", "0.01",  # large steps, so stale weights would show in the loss
            "--per_device_train_batch_size", "8",
            "--report_to", "none",
            "--output_dir", str(output_dir),
            "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "reusing" in out  # the module's dataset, not a new one

    for name in ("config.json", "preprocessor_config.json", "model.safetensors", "README.md", "all_results.json"):
        assert (output_dir / name).is_file(), name
    metrics = json.loads((output_dir / "all_results.json").read_text())

    match = re.search(r"test accuracy through pipeline\('audio-classification'\) on (\d+) clips .*: ([0-9.]+)", out)
    assert match, out
    assert int(match.group(1)) == 20
    # the reloaded pipeline sees exactly what Trainer evaluated (same clips, same features, same weights)
    assert float(match.group(2)) == pytest.approx(metrics["test_accuracy"], abs=1e-4), STALE_WEIGHTS

    # Trainer's final test loss is the saved model's: recompute it from the saved directory
    model = AutoModelForAudioClassification.from_pretrained(output_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(output_dir)
    test = load_from_disk(str(tiny_dir))["test"].cast_column("audio", Audio(decode=False))
    waveforms = [sf.read(io.BytesIO(audio["bytes"]), dtype="float32")[0] for audio in test["audio"]]
    with torch.no_grad():
        logits = model(**extractor(waveforms, sampling_rate=16000, return_tensors="pt")).logits
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(test["label"])).item()
    assert loss == pytest.approx(metrics["test_loss"], abs=1e-4), STALE_WEIGHTS

    # the pipeline's accuracy is Trainer's because it scores the same thing: every clip's scores are the softmax of
    # the logits of Trainer's features (the clip's first 98 frames), not an average over two windows of the 1 s clip
    assert "(their first 0.995 s, the model's input, as Trainer scores them)" in out
    report = classify_held_out(output_dir, tiny_dir, num_demo_clips=len(test))
    expected = torch.softmax(logits, dim=-1)
    names = test.features["label"].names
    assert len(report["examples"]) == len(test)
    for example, probabilities in zip(report["examples"], expected):
        scores = {name: float(probability) for name, probability in zip(names, probabilities)}
        assert dict(example["top5"]) == pytest.approx({label: scores[label] for label, _ in example["top5"]}, abs=1e-5)
        assert [label for label, _ in example["top5"]] == sorted(scores, key=scores.get, reverse=True)[:5]
    assert report["accuracy"] == pytest.approx(
        (logits.argmax(-1) == torch.tensor(test["label"])).double().mean().item()
    )

    # one held-out clip drawn next to the saved model, its path printed
    (plot_line,) = [line for line in out.splitlines() if line.startswith("example plot (one held-out clip): ")]
    plot_path = output_dir / "example_prediction.png"
    assert plot_line.endswith(str(plot_path)) and plot_path.stat().st_size > 10_000
    from matplotlib.image import imread

    assert imread(plot_path).shape[1] >= 600

    top5_lines = [line for line in out.splitlines() if re.match(r"\s+\[(ok |ERR)\]", line)]
    assert len(top5_lines) == 3
    for line in top5_lines:
        predicted = re.findall(r"([a-z]+) (0\.\d\d|1\.00)", line.split(":", 1)[1])
        assert len(predicted) == 5 and {label for label, _ in predicted} <= set(KEYWORDS)
        scores = [float(score) for _, score in predicted]
        assert scores == sorted(scores, reverse=True)
