"""`pretrain` command: a tiny SSAST pre-training run on local audio files, and its data pieces."""

import json
import math

import numpy as np
import pytest
import soundfile
import torch

from spectrogram_transformers import (
    ASTFeatureExtractor,
    SSASTForAudioClassification,
    SSASTForPreTraining,
)
from spectrogram_transformers.cli import main
from spectrogram_transformers.training.pretrain import (
    AudioFileDataset,
    UnlabeledAudioCollator,
    find_audio_files,
    load_pretraining_model,
)

TINY = {
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "max_length": 64,
    "num_masked_patches": 10,
}


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    """Tones with noise, 0.5-1.5 s, as WAV and FLAC in nested folders, plus one corrupt file."""
    folder = tmp_path_factory.mktemp("unlabeled")
    (folder / "nested").mkdir()
    rng = np.random.default_rng(0)
    for index in range(6):
        seconds = 0.5 + 0.2 * index
        t = np.arange(int(16000 * seconds)) / 16000
        clip = 0.3 * np.sin(2 * np.pi * (200 + 150 * index) * t) + 0.05 * rng.normal(size=t.size)
        name = ("nested/" if index % 2 else "") + f"clip{index}." + ("flac" if index == 3 else "wav")
        soundfile.write(folder / name, clip.astype(np.float32), 16000)
    (folder / "notes.txt").write_text("not audio, not picked up")
    (folder / "corrupt.wav").write_bytes(b"RIFF but not really audio")
    return folder


def test_pretrain_command_runs_and_saves_a_loadable_checkpoint(audio_folder, tmp_path):
    output = tmp_path / "run"
    code = main([
        "pretrain", "--data", str(audio_folder), "--eval_data", str(audio_folder), "--model", "ssast-tiny-patch-400",
        "--config_overrides", json.dumps(TINY), "--max_steps", "3", "--per_device_train_batch_size", "3",
        "--per_device_eval_batch_size", "4", "--logging_steps", "1", "--save_strategy", "no", "--output_dir", str(output),
        "--dataloader_pin_memory", "false",
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads((output / "pretraining_metrics.json").read_text())
    for name in (
        "last_loss",
        "last_nce_loss",
        "last_mse_loss",
        "last_accuracy",
        "eval_loss",
        "eval_nce_loss",
        "eval_accuracy",
    ):
        assert math.isfinite(metrics[name]), name
    assert 0.0 <= metrics["last_accuracy"] <= 1.0
    assert metrics["train_skipped_clips"] >= 1 and metrics["eval_skipped_clips"] == 1  # corrupt.wav, counted
    # the logged loss is the paper's joint objective (logging_steps=1: one step's values)
    assert metrics["last_loss"] == pytest.approx(metrics["last_nce_loss"] + 10 * metrics["last_mse_loss"], rel=1e-4)

    pretrained = SSASTForPreTraining.from_pretrained(output)
    assert pretrained.config.hidden_size == 32 and pretrained.config.max_length == 64
    assert ASTFeatureExtractor.from_pretrained(output).max_length == 64
    classifier = SSASTForAudioClassification.from_pretrained(output, num_labels=3, frequency_stride=8, time_stride=8)
    assert torch.equal(
        classifier.ssast.encoder.layers[0].mlp.fc1.weight, pretrained.ssast.encoder.layers[0].mlp.fc1.weight
    )
    with torch.no_grad():
        logits = classifier(torch.randn(2, 64, 128)).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_find_audio_files_is_recursive_and_filters_by_format(audio_folder, tmp_path):
    files = find_audio_files(audio_folder)
    names = sorted(path.name for path in files)
    assert names == sorted(
        ["clip0.wav", "clip1.wav", "clip2.wav", "clip3.flac", "clip4.wav", "clip5.wav", "corrupt.wav"]
    )
    with pytest.raises(ValueError, match="no audio files"):
        find_audio_files(tmp_path)
    with pytest.raises(FileNotFoundError):
        find_audio_files(tmp_path / "missing")


def test_collator_crops_pads_and_skips_bad_clips(audio_folder):
    extractor = ASTFeatureExtractor(max_length=64)
    dataset = AudioFileDataset(find_audio_files(audio_folder))
    collator = UnlabeledAudioCollator(extractor, generator=torch.Generator().manual_seed(0))
    rows = [dataset[index] for index in range(len(dataset))]
    with pytest.warns(UserWarning, match="corrupt.wav"):
        batch = collator(rows)
    assert batch["input_values"].shape == (6, 64, 128)  # the corrupt clip is skipped
    with pytest.raises(ValueError, match="no clip"), pytest.warns(UserWarning):
        collator([{"audio": str(audio_folder / "corrupt.wav")}])
    # the crop is random in training and at the start in evaluation
    long_clip = [{"audio": str(audio_folder / "nested" / "clip5.wav")}]
    first, second = collator(long_clip)["input_values"], collator(long_clip)["input_values"]
    assert not torch.equal(first, second)
    fixed = UnlabeledAudioCollator(extractor, random_crop=False)
    assert torch.equal(fixed(long_clip)["input_values"], fixed(long_clip)["input_values"])


def test_load_pretraining_model_from_variant_and_directory(tmp_path):
    model = load_pretraining_model("ssast-tiny-frame-400", {**TINY, "num_masked_patches": 8})
    assert model.config.patch_grid == (1, 32) and model.config.mask_strategy == "random"
    model.save_pretrained(tmp_path)
    resumed = load_pretraining_model(str(tmp_path))
    assert torch.equal(resumed.mask_embedding, model.mask_embedding)
    with pytest.raises(ValueError):
        load_pretraining_model("ast-base-f10-t10-1024-audioset")
