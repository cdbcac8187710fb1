"""Recipes, dataset loading from local files of the Hub schemas (parquet, audio folder, streaming), label
encoding and the batch collator (shapes, crops, augmentation, corrupt clips)."""

import json
import warnings

import numpy as np
import pytest
import torch

from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
from spectrogram_transformers.training.augment import AugmentationConfig, random_crop
from spectrogram_transformers.training.datasets import (
    SKIPPED_CLIPS_KEY,
    AudioClassificationCollator,
    LabelEncoder,
    load_recipe_datasets,
    model_input_samples,
    training_label_weights,
)
from spectrogram_transformers.training.recipe import (
    LabelMap,
    list_recipes,
    load_label_map,
    load_recipe,
)
from testing_utils.training import (
    AUDIOSET_LABELS,
    CORRUPT_BYTES,
    tone_wav_bytes,
    write_audio_folder,
    write_audioset_parquet,
    write_esc50_parquet,
    write_recipe,
    write_speech_commands_parquet,
)


def test_shipped_recipes_load_with_the_papers_settings():
    assert {"esc50", "speech-commands", "audioset-balanced", "audioset-full"} <= set(list_recipes())
    for name in list_recipes():
        recipe = load_recipe(name)
        family_name, family = recipe.family("ast")
        assert family_name == "ast" and recipe.family("ssast")[0] == "ast"  # SSAST fine-tunes with AST's settings
        assert family.feature_extractor["max_length"] == family.model["max_length"]
    speech = load_recipe("speech-commands").families["ast"]
    assert (
        speech.augmentation_config.freq_mask,
        speech.augmentation_config.time_mask,
        speech.augmentation_config.mixup_prob,
    ) == (48, 48, 0.6)
    assert speech.training_arguments["learning_rate"] == 2.5e-4 and speech.loss == "bce"
    audioset = load_recipe("audioset-full")
    assert audioset.dataset.problem_type == "multi_label_classification"
    assert (
        audioset.families["ast"].augmentation_config.freq_mask,
        audioset.families["ast"].augmentation_config.time_mask,
    ) == (48, 192)
    assert (
        audioset.families["ast"].training_arguments["learning_rate"] == 1e-5
        and audioset.families["ast"].sampler == "balanced"
    )
    assert load_recipe("audioset-balanced").families["ast"].weight_averaging == {"start_epoch": 6, "end_epoch": 25}
    htsat = load_recipe("esc50").families["htsat"]
    assert htsat.optimizer == "adamw" and htsat.training_arguments["weight_decay"] == 0.05
    assert load_recipe("speech-commands").dataset.exclude["values"] == [35]  # _silence_


def test_recipe_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown recipe"):
        load_recipe("no-such-recipe")
    bad = write_recipe(tmp_path / "bad.json", "esc50", ast={"schedule": {"name": "cosine-ish"}})
    with pytest.raises(ValueError, match="schedule name"):
        load_recipe(bad)
    bad = write_recipe(tmp_path / "bad2.json", "esc50", dataset={"label_format": "names"})
    with pytest.raises(ValueError, match="does not fit problem_type"):
        load_recipe(bad)
    with pytest.raises(ValueError, match="no settings for model type"):
        load_recipe("esc50").family("wav2vec2")


def test_esc50_folds_from_parquet_shards(tmp_path):
    data_dir = write_esc50_parquet(tmp_path / "esc50", num_classes=3, per_fold=2)
    data = load_recipe_datasets(load_recipe("esc50").dataset, fold=2, data_dir=data_dir)
    assert len(data.train) == 4 * 3 * 2 and len(data.eval) == 3 * 2
    assert set(data.eval["fold"]) == {2} and 2 not in set(data.train["fold"])
    assert data.test is None and data.fold == 2 and len(data.label_map) == 50
    assert data.label_map.names[:2] == ["dog", "rooster"]
    assert data.train.features["audio"].decode is False
    with pytest.raises(ValueError, match="fold must be one of"):
        load_recipe_datasets(load_recipe("esc50").dataset, fold=7, data_dir=data_dir)


def test_speech_commands_leaves_out_silence(tmp_path):
    data_dir = write_speech_commands_parquet(tmp_path / "sc", words=3, silence=2)
    data = load_recipe_datasets(load_recipe("speech-commands").dataset, data_dir=data_dir)
    for split, words in ((data.train, 4), (data.eval, 2), (data.test, 2)):
        assert len(split) == 3 * words
        assert 35 not in set(split["label"])
    assert data.label_encoder.ids(data.train["label"][:4]).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="has no folds"):
        load_recipe_datasets(load_recipe("speech-commands").dataset, fold=1, data_dir=data_dir)


def test_audioset_multi_hot_labels_from_mids(tmp_path):
    data_dir, label_csv = write_audioset_parquet(tmp_path / "audioset")
    recipe = load_recipe(write_recipe(tmp_path / "r.json", "audioset-balanced", dataset={"labels": str(label_csv)}))
    data = load_recipe_datasets(recipe.dataset, data_dir=data_dir)
    assert data.problem_type == "multi_label_classification" and data.label_map.names == [
        n for _, n in AUDIOSET_LABELS
    ]
    labels = data.train["labels"]
    multi_hot = data.label_encoder(labels)
    assert multi_hot.shape == (12, 3) and multi_hot.dtype == torch.float32
    for row, mids in zip(multi_hot, labels):
        assert {AUDIOSET_LABELS[i][0] for i in np.flatnonzero(row.numpy())} == set(mids)
    weights = training_label_weights(data.train, recipe.dataset, data.label_encoder)
    counts = multi_hot.sum(0).numpy()
    np.testing.assert_allclose(weights, multi_hot.numpy() @ (1000 / (counts + 0.01)))


def test_label_encoder_remaps_class_ids_by_name_and_rejects_unknown():
    label_map = LabelMap(names=["b", "a"], keys=["b", "a"])
    encoder = LabelEncoder("id", label_map, dataset_names=["a", "b", "c"])  # dataset ids in another order
    assert encoder.ids([0, 1]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="outside"):
        encoder.ids([2])
    names = LabelEncoder("names", LabelMap(names=["Speech", "Music"], keys=["/m/1", "/m/2"]))
    assert names.multi_hot([["/m/2", "/m/unknown"]]).tolist() == [[0.0, 1.0]]  # unknown MID ignored, not fatal
    with pytest.raises(ValueError, match="not in the recipe's label map"):
        LabelEncoder("name", LabelMap(names=["x"], keys=["x"])).ids(["y"])


def test_audio_folder_with_dataset_label_names_and_a_corrupt_file(tmp_path):
    data_dir = write_audio_folder(tmp_path / "folder", classes=("low", "high"), per_class=3, corrupt=True)
    recipe_path = tmp_path / "folder.json"
    recipe_path.write_text(
        json.dumps(
            {
                "name": "folder",
                "dataset": {
                    "hub_id": "local/folder",
                    "splits": {"train": "train", "eval": "train"},
                    "labels": "dataset",
                },
                "families": {"ast": {}},
            }
        )
    )
    recipe = load_recipe(recipe_path)
    data = load_recipe_datasets(recipe.dataset, data_dir=data_dir)
    assert data.label_map.names == ["high", "low"] and len(data.train) == 7
    collator = AudioClassificationCollator(ASTFeatureExtractor(max_length=40), data.label_encoder)
    with pytest.warns(UserWarning, match="cannot be decoded"):
        batch = collator([data.train[i] for i in range(len(data.train))])
    assert batch["input_values"].shape == (6, 40, 128) and int(batch[SKIPPED_CLIPS_KEY].sum()) == 1
    assert collator.num_skipped == 1 and sorted(batch["labels"].tolist()) == [0, 0, 0, 1, 1, 1]


def test_streaming_parquet_is_an_iterable_dataset(tmp_path):
    import datasets

    data_dir = write_speech_commands_parquet(tmp_path / "sc", words=2, silence=1)
    data = load_recipe_datasets(load_recipe("speech-commands").dataset, data_dir=data_dir, streaming=True, seed=1)
    assert isinstance(data.train, datasets.IterableDataset) and data.streaming
    assert data.num_train_examples == 84843  # from the recipe (full Hub split), for per-epoch schedules
    collator = AudioClassificationCollator(ASTFeatureExtractor(max_length=30), data.label_encoder)
    batches = list(torch.utils.data.DataLoader(data.train, batch_size=3, collate_fn=collator))
    assert sum(len(batch["labels"]) for batch in batches) == 2 * 4  # silence filtered while streaming
    assert batches[0]["input_values"].shape == (3, 30, 128)


def _rows(count: int, seconds: float = 1.0, rate: int = 16000, corrupt: tuple = ()):
    return [
        {
            "audio": {
                "bytes": CORRUPT_BYTES if i in corrupt else tone_wav_bytes(300 + 200 * i, seconds, rate, i),
                "path": f"{i}.wav",
            },
            "label": i % 3,
        }
        for i in range(count)
    ]


def test_collator_shapes_labels_and_resampling():
    extractor = ASTFeatureExtractor(max_length=64)
    encoder = LabelEncoder("id", LabelMap(names=list("abc"), keys=list("abc")))
    batch = AudioClassificationCollator(extractor, encoder)(_rows(4, rate=44100))  # resampled to 16 kHz
    assert batch["input_values"].shape == (4, 64, 128) and batch["labels"].tolist() == [0, 1, 2, 0]
    reference = extractor([tone_wav_bytes_decoded(i) for i in range(4)], sampling_rate=16000, return_tensors="pt")[
        "input_values"
    ]
    assert torch.allclose(
        AudioClassificationCollator(extractor, encoder)(_rows(4))["input_values"], reference, atol=1e-5
    )
    soft = AudioClassificationCollator(extractor, encoder, soft_labels=True)(_rows(4))
    assert soft["labels"].shape == (4, 3) and soft["labels"].sum(1).tolist() == [1.0] * 4


def tone_wav_bytes_decoded(index: int) -> np.ndarray:
    import io

    import soundfile as sf

    data, _ = sf.read(io.BytesIO(tone_wav_bytes(300 + 200 * index, 1.0, 16000, index)), dtype="float32")
    return data


def test_model_input_samples_and_random_crop_bounds():
    extractor = ASTFeatureExtractor(max_length=20)
    crop = model_input_samples(extractor)
    assert crop == extractor.input_samples == 19 * 160 + 400  # 19 shifts of 10 ms plus one 25 ms window at 16 kHz
    # one definition, in Kaldi's whole samples: at 22.05 kHz a shift is 220 samples and a window 551
    assert model_input_samples(ASTFeatureExtractor(sampling_rate=22050)) == 1023 * 220 + 551 == 225_611
    generator = torch.Generator().manual_seed(0)
    ramp = torch.arange(20000, dtype=torch.float32)
    batch = torch.stack([ramp, torch.cat([ramp[:1000], torch.zeros(19000)])])  # (2, 20000), second clip 1000 long
    lengths = torch.tensor([20000, 1000])
    offsets = set()
    for _ in range(10):
        cropped, cropped_lengths = random_crop(batch, lengths, crop, generator)
        assert cropped.shape == (2, crop) and cropped_lengths.tolist() == [crop, 1000]  # short clips keep their start
        assert torch.equal(cropped[1, :1000], ramp[:1000]) and not cropped[1, 1000:].any()
        offset = int(cropped[0, 0])
        assert 0 <= offset <= len(ramp) - crop and torch.equal(cropped[0], ramp[offset : offset + crop])
        offsets.add(offset)
    assert len(offsets) > 3
    # nothing to crop: the batch itself, and no draw
    state = generator.get_state()
    assert random_crop(batch[:, :crop], lengths.clamp_max(crop), crop, generator)[0].shape == (2, crop)
    assert torch.equal(generator.get_state(), state)


def test_training_collator_mixup_masks_and_reproducibility():
    extractor = ASTFeatureExtractor(max_length=64)
    encoder = LabelEncoder("id", LabelMap(names=list("abc"), keys=list("abc")))
    augmentation = AugmentationConfig(
        mixup_prob=1.0, mixup_alpha=10.0, freq_mask=20, time_mask=30, mask_value="unnormalized_zero"
    )

    def collate(seed):
        return AudioClassificationCollator(
            extractor, encoder, augmentation=augmentation, generator=torch.Generator().manual_seed(seed)
        )(_rows(6))

    first, again, other = collate(0), collate(0), collate(1)
    assert torch.equal(first["input_values"], again["input_values"]) and torch.equal(first["labels"], again["labels"])
    assert not torch.equal(first["input_values"], other["input_values"])
    labels = first["labels"]
    assert labels.shape == (6, 3) and torch.allclose(labels.sum(1), torch.ones(6))
    assert bool((labels.max(1).values < 1).any())  # mixed
    masked_value = (0 - extractor.mean) / (2 * extractor.std)  # AST masks before normalising
    assert bool((first["input_values"] == torch.tensor(masked_value)).any())


def test_collator_counts_corrupt_clips_and_fails_clearly_when_nothing_decodes():
    extractor = ASTFeatureExtractor(max_length=32)
    encoder = LabelEncoder("id", LabelMap(names=list("abc"), keys=list("abc")))
    collator = AudioClassificationCollator(extractor, encoder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = collator(_rows(4, corrupt=(1, 2)))
        assert any("cannot be decoded" in str(w.message) for w in caught)
    assert (
        batch["input_values"].shape[0] == 2
        and batch["labels"].tolist() == [0, 0]
        and int(batch[SKIPPED_CLIPS_KEY].sum()) == 2
    )
    # evaluation (the default): a batch of only corrupt clips is empty, never a copy of an earlier clip
    with pytest.warns(UserWarning):
        empty = collator(_rows(2, corrupt=(0, 1)))
    assert (
        empty["input_values"].shape[0] == 0
        and empty["labels"].shape == (0,)
        and int(empty[SKIPPED_CLIPS_KEY].sum()) == 2
    )
    # training (waveform batches): the same, first batch or later; the trainer skips the empty batch
    training = AudioClassificationCollator(extractor, encoder, return_waveforms=True)
    for rows in (_rows(2, corrupt=(0, 1)), _rows(2), _rows(2, corrupt=(0, 1))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = training(rows)
    assert batch["waveforms"].shape[0] == 0 and int(batch[SKIPPED_CLIPS_KEY].sum()) == 2 and training.num_skipped == 4


def test_label_map_from_hub_configs_csv():
    speech = load_label_map("speech_commands")
    assert len(speech) == 35 and speech.names[:3] == ["yes", "no", "up"] and "_silence_" not in speech.names
    with pytest.raises(ValueError, match="neither a CSV"):
        load_label_map("not-a-label-map")
    from spectrogram_transformers.hub_configs import load_labels

    assert len(load_labels("esc50")) == 50
    with pytest.raises(FileNotFoundError, match=r"class_labels_indices.csv"):
        load_labels("audioset")  # not shipped: the error says what to pass instead


def test_trainer_evaluation_drops_undecodable_clips_and_scores_each_decodable_clip_once(tmp_path):
    """A real Trainer evaluation in which one batch holds only corrupt clips: nothing stands in for them (no
    copy of an earlier clip is scored twice), metrics cover the decodable clips, the corrupt ones are counted."""
    import datasets
    from transformers import TrainingArguments

    from spectrogram_transformers import ASTForAudioClassification
    from spectrogram_transformers.training.metrics import build_compute_metrics
    from spectrogram_transformers.training.trainer import AudioClassificationTrainer
    from testing_utils.training import tiny_ast_dir

    model_dir = tiny_ast_dir(tmp_path / "model", max_length=32)
    extractor = ASTFeatureExtractor.from_pretrained(model_dir)
    encoder = LabelEncoder("id", LabelMap(names=list("abc"), keys=list("abc")))
    rows = _rows(5, seconds=0.4, corrupt=(2, 3))  # batches of 2: [good, good], [corrupt, corrupt], [good]
    good_rows = [row for index, row in enumerate(rows) if index not in (2, 3)]

    def trainer_for(dataset):
        arguments = TrainingArguments(
            output_dir=str(tmp_path / "out"), per_device_eval_batch_size=2, report_to="none", use_cpu=True,
            remove_unused_columns=False, label_names=["labels"], dataloader_num_workers=0,
        )  # fmt: skip
        return AudioClassificationTrainer(
            model=ASTForAudioClassification.from_pretrained(model_dir),
            args=arguments,
            eval_dataset=dataset,
            data_collator=AudioClassificationCollator(extractor, encoder),
            compute_metrics=build_compute_metrics("single_label_classification"),
        )

    trainer = trainer_for(datasets.Dataset.from_list(rows))
    with pytest.warns(UserWarning, match="cannot be decoded"):
        result = trainer.predict(datasets.Dataset.from_list(rows), metric_key_prefix="eval")
    reference = trainer_for(datasets.Dataset.from_list(good_rows)).predict(
        datasets.Dataset.from_list(good_rows), metric_key_prefix="eval"
    )
    assert result.predictions.shape == (3, 3) and result.label_ids.tolist() == [0, 1, 1]
    np.testing.assert_allclose(result.predictions, reference.predictions, rtol=0, atol=1e-6)
    assert result.metrics["eval_skipped_clips"] == 2 and reference.metrics["eval_skipped_clips"] == 0
    assert result.metrics["eval_accuracy"] == reference.metrics["eval_accuracy"]
    assert result.metrics["eval_loss"] == pytest.approx(reference.metrics["eval_loss"], rel=1e-6)
    with pytest.warns(UserWarning):
        assert trainer.evaluate()["eval_skipped_clips"] == 2

    # evaluation batches of padded waveforms featurized on the device (the training step's path) score the same:
    # no augmentation outside training, even with a featurizer that augments
    from spectrogram_transformers.training.datasets import AugmentedFeaturizer

    on_device = trainer_for(datasets.Dataset.from_list(good_rows))
    on_device.data_collator = AudioClassificationCollator(extractor, encoder, return_waveforms=True)
    on_device.featurizer = AugmentedFeaturizer(
        extractor, AugmentationConfig(mixup_prob=1.0, freq_mask=10, time_mask=10, noise_max_scale=0.5)
    )
    waveform_result = on_device.predict(datasets.Dataset.from_list(good_rows), metric_key_prefix="eval")
    np.testing.assert_allclose(waveform_result.predictions, reference.predictions, rtol=0, atol=1e-6)
