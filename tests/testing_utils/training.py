"""Tiny datasets and models for the training tests (written into pytest tmp dirs; nothing touches the network).

Audio is class-dependent tones plus noise, so that a few training steps can tell classes apart; every dataset
uses the Hub schema of the recipe it stands in for (`ashraq/esc50`, `google/speech_commands` v0.02,
`agkphysics/AudioSet`), with the audio column stored as {"bytes", "path"} structs cast to `Audio(decode=False)`.
"""

import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf

CORRUPT_BYTES = b"RIFF\x00\x00\x00\x00WAVEthis is not audio"


def tone_wav_bytes(
    frequency: float, seconds: float, sampling_rate: int, seed: int, subtype: str = "PCM_16", fmt: str = "WAV"
) -> bytes:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * sampling_rate)) / sampling_rate
    waveform = 0.5 * np.sin(2 * np.pi * frequency * time) + 0.05 * rng.standard_normal(time.shape)
    buffer = io.BytesIO()
    sf.write(buffer, waveform.astype(np.float32), sampling_rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


def _audio_features(extra: dict):
    from datasets import Features, Value

    return Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, **extra})


def _save_parquet(rows: dict, features, path: Path) -> None:
    from datasets import Audio, Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False))
    dataset.to_parquet(str(path))


def write_esc50_parquet(
    root: Path, num_classes: int = 3, per_fold: int = 2, seconds: float = 0.5, corrupt: tuple = ()
) -> Path:
    """`ashraq/esc50` layout: data/train-0000{0,1}-of-00002.parquet, one split, folds 1-5, 44.1 kHz WAV.
    Rows whose index is in `corrupt` hold bytes soundfile cannot decode (rows are fold-major: fold 1 first)."""
    from datasets import Value

    rows = {key: [] for key in ("filename", "fold", "target", "category", "esc10", "src_file", "take", "audio")}
    index = 0
    for fold in range(1, 6):
        for target in range(num_classes):
            for take in range(per_fold):
                name = f"{fold}-{index}-{'ABCDEFGH'[take]}-{target}.wav"
                data = CORRUPT_BYTES if index in corrupt else tone_wav_bytes(300 + 400 * target, seconds, 44100, index)
                rows["filename"].append(name)
                rows["fold"].append(fold)
                rows["target"].append(target)
                rows["category"].append(f"class{target}")
                rows["esc10"].append(False)
                rows["src_file"].append(index)
                rows["take"].append("ABCDEFGH"[take])
                rows["audio"].append({"bytes": data, "path": name})
                index += 1
    features = _audio_features(
        {
            "filename": Value("string"),
            "fold": Value("int64"),
            "target": Value("int64"),
            "category": Value("string"),
            "esc10": Value("bool"),
            "src_file": Value("int64"),
            "take": Value("string"),
        }
    )
    half = len(rows["filename"]) // 2
    for shard, (start, stop) in enumerate(((0, half), (half, len(rows["filename"])))):
        part = {key: values[start:stop] for key, values in rows.items()}
        _save_parquet(part, features, root / "data" / f"train-0000{shard}-of-00002.parquet")
    return root


SPEECH_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one", "two", "three", "four",
                "five", "six", "seven", "eight", "nine", "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila",
                "tree", "wow", "backward", "forward", "follow", "learn", "visual", "_silence_"]  # fmt: skip


def write_speech_commands_parquet(root: Path, words: int = 3, per_word: dict | None = None, silence: int = 1) -> Path:
    """`google/speech_commands` v0.02 schema in train/, validation/, test/ folders (16 kHz, 1 s clips), with
    `silence` `_silence_` rows (a 3 s noise clip, as the Hub's background-noise rows) per split."""
    from datasets import ClassLabel, Value

    per_word = per_word or {"train": 4, "validation": 2, "test": 2}
    features = _audio_features(
        {
            "file": Value("string"),
            "label": ClassLabel(names=SPEECH_WORDS),
            "is_unknown": Value("bool"),
            "speaker_id": Value("string"),
            "utterance_id": Value("int8"),
        }
    )
    for split_index, (split, count) in enumerate(per_word.items()):
        rows = {key: [] for key in ("file", "audio", "label", "is_unknown", "speaker_id", "utterance_id")}
        for word in range(words):
            for utterance in range(count):
                name = f"{SPEECH_WORDS[word]}/spk{utterance:04d}_nohash_{utterance}.wav"
                rows["file"].append(name)
                rows["audio"].append(
                    {
                        "bytes": tone_wav_bytes(
                            400 + 500 * word, 1.0, 16000, 1000 * split_index + 10 * word + utterance
                        ),
                        "path": name,
                    }
                )
                rows["label"].append(word)
                rows["is_unknown"].append(word >= 10)
                rows["speaker_id"].append(f"spk{utterance:04d}")
                rows["utterance_id"].append(utterance)
        for index in range(silence):
            name = f"_background_noise_/noise{index}.wav"
            rows["file"].append(name)
            rows["audio"].append({"bytes": tone_wav_bytes(50, 3.0, 16000, 99 + index), "path": name})
            rows["label"].append(SPEECH_WORDS.index("_silence_"))
            rows["is_unknown"].append(False)
            rows["speaker_id"].append(None)
            rows["utterance_id"].append(0)
        _save_parquet(rows, features, root / split / "0000.parquet")
    return root


AUDIOSET_LABELS = [("/m/09x0r", "Speech"), ("/m/04rlf", "Music"), ("/m/0jbk", "Animal")]


def write_audioset_parquet(root: Path, per_split: dict | None = None) -> tuple[Path, Path]:
    """`agkphysics/AudioSet` 'balanced' schema (train/, test/; FLAC at 48 kHz; labels as MID lists) and a
    3-class label CSV; returns (data dir, label CSV)."""
    from datasets import Sequence, Value

    per_split = per_split or {"train": 12, "test": 8}
    features = _audio_features(
        {"video_id": Value("string"), "labels": Sequence(Value("string")), "human_labels": Sequence(Value("string"))}
    )
    rng = np.random.default_rng(0)
    for split, count in per_split.items():
        rows = {key: [] for key in ("video_id", "audio", "labels", "human_labels")}
        for index in range(count):
            chosen = [
                label
                for position, label in enumerate(AUDIOSET_LABELS)
                if (index >> position) & 1 or position == index % 3
            ]
            rows["video_id"].append(f"vid{split}{index:03d}")
            frequency = 200 + 300 * AUDIOSET_LABELS.index(chosen[0])
            rows["audio"].append(
                {
                    "bytes": tone_wav_bytes(
                        frequency, 0.6, 48000, int(rng.integers(1 << 30)), subtype="PCM_24", fmt="FLAC"
                    ),
                    "path": f"audio/{split}/{index}.flac",
                }
            )
            rows["labels"].append([mid for mid, _ in chosen])
            rows["human_labels"].append([name for _, name in chosen])
        _save_parquet(rows, features, root / split / "0000.parquet")
    label_csv = root / "labels.csv"
    label_csv.write_text(
        "index,mid,display_name\n" + "".join(f"{i},{mid},{name}\n" for i, (mid, name) in enumerate(AUDIOSET_LABELS))
    )
    return root, label_csv


def write_audio_folder(root: Path, classes=("low", "high"), per_class: int = 3, corrupt: bool = False) -> Path:
    """An audio folder (`datasets` "audiofolder": one sub-folder per class) at 22.05 kHz."""
    for index, name in enumerate(classes):
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for take in range(per_class):
            (folder / f"{name}{take}.wav").write_bytes(
                tone_wav_bytes(300 + 600 * index, 0.5, 22050, 10 * index + take)
            )
    if corrupt:
        (root / "train" / classes[0] / "broken.wav").write_bytes(CORRUPT_BYTES)
    return root


def tiny_ast_dir(
    path: Path, max_length: int = 100, num_labels: int = 3, hidden_size: int = 32, layers: int = 1
) -> Path:
    """A randomly initialised tiny AST (16x16 patches, stride 16) + its feature extractor, saved to `path`."""
    import torch

    import spectrogram_transformers
    from spectrogram_transformers.feature_extraction import ASTFeatureExtractor

    torch.manual_seed(0)
    config = spectrogram_transformers.ASTConfig(
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_length=max_length,
        frequency_stride=16,
        time_stride=16,
        num_labels=num_labels,
    )
    spectrogram_transformers.ASTForAudioClassification(config).save_pretrained(path)
    ASTFeatureExtractor(max_length=max_length).save_pretrained(path)
    return path


def write_recipe(path: Path, base: str, **changes) -> Path:
    """A copy of a shipped recipe with nested changes, e.g. dataset={"labels": "x.csv"}, ast={"training_arguments": {...}}."""
    from spectrogram_transformers.training.recipe import RECIPES_DIR

    recipe = json.loads((RECIPES_DIR / f"{base}.json").read_text())
    for section, values in changes.items():
        target = recipe["dataset"] if section == "dataset" else recipe["families"][section]
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    path.write_text(json.dumps(recipe))
    return path


# two epochs with a learning-rate decay after the first: scheduler state that a resumed or distributed run must keep
TWO_EPOCHS_WITH_DECAY = {
    "schedule": {"start_epoch": 1},
    "training_arguments": {"num_train_epochs": 2, "learning_rate": 1e-3},
}


def speech_commands_setup(root: Path, **ast_changes) -> dict:
    """A streamed-style Speech Commands run: 3 words as parquet, a tiny AST at 100 frames, and the shipped
    speech-commands recipe (all its augmentation) at batch 4 with `ast_changes` on top.

    Returns {"root", "data_dir", "model_dir", "recipe"}.
    """
    ast = {
        "feature_extractor": {"max_length": 100},
        "model": {"max_length": 100},
        "global_train_batch_size": 4,
        **ast_changes,
    }
    return {
        "root": root,
        "data_dir": write_speech_commands_parquet(
            root / "sc", words=3
        ),  # 12 training clips (+ a _silence_ row, excluded)
        "model_dir": tiny_ast_dir(root / "tiny", max_length=100),
        "recipe": write_recipe(root / "recipe.json", "speech-commands", ast=ast),
    }
