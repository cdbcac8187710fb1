"""`train` end to end on tiny local datasets with the Hub schemas: outputs, model card, pipeline, checkpoint
averaging, ensembles, windowed classification, multi-label and streaming runs (marked slow: they train); plus
the pure helpers (schedules, loss, argument plumbing, windows)."""

import io
import json
import math
from contextlib import redirect_stdout

import numpy as np
import pytest
import soundfile as sf
import torch

from spectrogram_transformers.cli import build_parser, main
from spectrogram_transformers.cli.train import training_overrides_from_args
from spectrogram_transformers.training.recipe import load_recipe
from spectrogram_transformers.training.train import (
    TrainingRun,
    build_training_arguments,
    run_training,
    split_global_batch,
)
from spectrogram_transformers.training.trainer import (
    classification_loss,
    epoch_schedule_factor,
)
from testing_utils.training import (
    AUDIOSET_LABELS,
    tiny_ast_dir,
    write_audioset_parquet,
    write_esc50_parquet,
    write_recipe,
    write_speech_commands_parquet,
)

ESC_EPOCHS = 2
ESC_TRAIN_BATCHES = math.ceil(4 * 3 * 2 / 4)  # 4 training folds x 3 classes x 2 clips, batch 4


@pytest.fixture(scope="module")
def esc_run(tmp_path_factory):
    """One tiny ESC-50 run (fold 1): a corrupt clip in the evaluation fold (row 0) and one in training (row 6),
    weight averaging of both epochs, TensorBoard logging (the default)."""
    root = tmp_path_factory.mktemp("esc")
    data_dir = write_esc50_parquet(root / "data", num_classes=3, per_fold=2, corrupt=(0, 6))
    model_dir = tiny_ast_dir(root / "tiny", max_length=100)
    recipe = write_recipe(
        root / "recipe.json",
        "esc50",
        ast={
            "feature_extractor": {"max_length": 100},
            "model": {"max_length": 100},
            "global_train_batch_size": 4,
            "weight_averaging": {"start_epoch": 1, "end_epoch": 2},
            "training_arguments": {
                "num_train_epochs": ESC_EPOCHS,
                "learning_rate": 1e-3,
                "per_device_eval_batch_size": 8,
            },
        },
    )
    output_dir = root / "out"
    metrics = run_training(
        str(recipe),
        str(model_dir),
        output_dir=output_dir,
        fold=1,
        data_dir=data_dir,
        training_overrides={"logging_steps": 1},
    )
    return {"root": root, "data_dir": data_dir, "recipe": recipe, "output_dir": output_dir, "metrics": metrics}


@pytest.mark.slow
def test_train_metrics_and_skipped_clips(esc_run):
    metrics = esc_run["metrics"]
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and math.isfinite(metrics["eval_loss"])
    assert metrics["eval_skipped_clips"] == 1  # the corrupt clip of fold 1
    assert metrics["train_skipped_clips"] == ESC_EPOCHS  # the corrupt training clip, met once per epoch
    assert metrics["weight_averaged_checkpoints"] == ESC_EPOCHS
    saved = json.loads((esc_run["output_dir"] / "all_results.json").read_text())
    assert saved["eval_accuracy"] == metrics["eval_accuracy"]


@pytest.mark.slow
def test_saved_model_loads_with_labels_and_feature_extractor(esc_run):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    import spectrogram_transformers  # noqa: F401

    model = AutoModelForAudioClassification.from_pretrained(esc_run["output_dir"])
    assert model.config.num_labels == 50 and model.config.id2label[0] == "dog"
    assert model.config.problem_type == "single_label_classification" and model.config.max_length == 100
    extractor = AutoFeatureExtractor.from_pretrained(esc_run["output_dir"])
    assert (extractor.max_length, extractor.mean, extractor.std) == (
        100,
        -6.6268077,
        5.358466,
    )  # the recipe's ESC-50 statistics


@pytest.mark.slow
def test_checkpoints_per_epoch_and_weight_averaged_final_model(esc_run):
    from safetensors.torch import load_file

    from spectrogram_transformers.training.averaging import (
        checkpoint_epoch,
        find_checkpoints,
    )

    checkpoints = find_checkpoints(esc_run["output_dir"])
    assert [path.name for path in checkpoints] == [
        f"checkpoint-{ESC_TRAIN_BATCHES * e}" for e in range(1, ESC_EPOCHS + 1)
    ]
    assert [checkpoint_epoch(path) for path in checkpoints] == [1.0, 2.0]
    states = [load_file(str(path / "model.safetensors")) for path in checkpoints]
    final = load_file(str(esc_run["output_dir"] / "model.safetensors"))
    for key, value in final.items():
        torch.testing.assert_close(value, (states[0][key].double() + states[1][key].double()).div(2).to(value.dtype))
    assert not torch.equal(states[0]["classifier.dense.weight"], states[1]["classifier.dense.weight"])


@pytest.mark.slow
def test_model_card_parses(esc_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(esc_run["output_dir"] / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "audio-classification"
    assert data.datasets == ["ashraq/esc50"] and "recipe-esc50" in data.tags and "ast" in data.tags
    assert data.to_dict()["recipe"] == "esc50"
    [result] = data.eval_results
    assert result.metric_type == "accuracy" and result.metric_value == pytest.approx(
        esc_run["metrics"]["eval_accuracy"]
    )
    assert "fold 1" in result.dataset_split
    assert "spectrogram-transformers classify" in card.text
    assert "trust_remote_code=True" in card.text and "import spectrogram_transformers" in card.text


@pytest.mark.slow
def test_tensorboard_events_are_written(esc_run):
    assert list(esc_run["output_dir"].rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_pipeline_loads_the_trained_model(esc_run):
    from transformers import pipeline

    import spectrogram_transformers  # noqa: F401

    classifier = pipeline("audio-classification", model=str(esc_run["output_dir"]))
    waveform = np.sin(2 * np.pi * 700 * np.arange(16000) / 16000).astype(np.float32)
    predictions = classifier({"raw": waveform, "sampling_rate": 16000}, top_k=3)
    from spectrogram_transformers.training.recipe import load_label_map

    assert len(predictions) == 3 and {p["label"] for p in predictions} <= set(load_label_map("esc50").names)


@pytest.mark.slow
def test_average_command(esc_run, capsys):
    from safetensors.torch import load_file

    output = esc_run["root"] / "averaged"
    with redirect_stdout(io.StringIO()) as printed:
        assert main(["average", str(esc_run["output_dir"]), "--last", "2", "--output", str(output)]) == 0
    assert len(json.loads(printed.getvalue())["checkpoints"]) == 2
    averaged = load_file(str(output / "model.safetensors"))
    final = load_file(str(esc_run["output_dir"] / "model.safetensors"))  # the run's own WA of the same 2 epochs
    for key in final:
        torch.testing.assert_close(averaged[key], final[key])
    assert (output / "preprocessor_config.json").is_file()
    capsys.readouterr()
    assert (
        main(
            ["average", str(esc_run["output_dir"]), "--start_epoch", "5", "--end_epoch", "6", "--output", str(output)]
        )
        == 2
    )
    assert "no checkpoint" in capsys.readouterr().err  # one line, exit status 2


@pytest.mark.slow
def test_ensemble_averages_probabilities(esc_run):
    from spectrogram_transformers.training.ensemble import ensemble_evaluate

    checkpoints = [esc_run["output_dir"] / f"checkpoint-{ESC_TRAIN_BATCHES}", esc_run["output_dir"]]
    results = ensemble_evaluate(
        checkpoints, str(esc_run["recipe"]), fold=1, data_dir=esc_run["data_dir"], batch_size=4
    )
    assert results["num_models"] == 2 and results["skipped_clips"] == 1
    assert set(results["models"]) == {str(path) for path in checkpoints}
    # it says what it used: the epoch-1 checkpoint and the final model, both of the esc_run run
    provenance = [results["provenance"][str(path)] for path in checkpoints]
    assert [entry["global_step"] for entry in provenance] == [ESC_TRAIN_BATCHES, ESC_TRAIN_BATCHES * ESC_EPOCHS]
    assert provenance[0]["run_id"] == provenance[1]["run_id"] is not None
    assert 0.0 <= results["ensemble"]["accuracy"] <= 1.0
    # the final model evaluated alone agrees with the train command's evaluation
    assert results["models"][str(esc_run["output_dir"])]["accuracy"] == pytest.approx(
        esc_run["metrics"]["eval_accuracy"]
    )
    with redirect_stdout(io.StringIO()) as printed:
        main(
            [
                "ensemble",
                "--models",
                *map(str, checkpoints),
                "--recipe",
                str(esc_run["recipe"]),
                "--fold",
                "1",
                "--data_dir",
                str(esc_run["data_dir"]),
            ]
        )
    assert json.loads(printed.getvalue())["ensemble"] == results["ensemble"]


@pytest.mark.slow
def test_classify_long_file_by_windows(esc_run, tmp_path):
    from spectrogram_transformers.inference import AudioClassifier, window_starts

    rate = 22050
    time = np.arange(int(7.3 * rate)) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * time), 0.5 * np.sin(2 * np.pi * 880 * time)], axis=1).astype(
        np.float32
    )
    path = tmp_path / "long.flac"
    sf.write(path, stereo, rate)

    classifier = AudioClassifier(esc_run["output_dir"], batch_size=4)
    assert classifier.input_seconds == pytest.approx((99 * 10 + 25) / 1000)  # 100 Kaldi frames
    prediction = classifier.classify_file(path, top_k=3, window=1.0, hop=0.5, progress=False)
    starts = window_starts(int(round(7.3 * 16000)), 16000, 8000)
    assert len(prediction.windows) == len(starts) == 14 and prediction.duration == pytest.approx(7.3, abs=1e-3)
    assert prediction.windows[0].start == 0.0 and prediction.windows[-1].end == pytest.approx(7.3, abs=1e-3)
    assert all(len(window.labels) == 3 for window in prediction.windows)
    # whole-file labels = mean of the window probabilities
    from spectrogram_transformers.feature_extraction import load_audio

    waveform, _ = load_audio(str(path), target_sr=16000)
    scores = classifier.probabilities([waveform[start : start + 16000] for start in starts]).mean(axis=0)
    best = int(np.argmax(scores))
    assert prediction.labels[0] == (classifier.id2label[best], pytest.approx(float(scores[best]), abs=1e-6))

    with redirect_stdout(io.StringIO()) as printed:
        assert (
            main(
                [
                    "classify",
                    str(path),
                    "--model",
                    str(esc_run["output_dir"]),
                    "--window",
                    "1",
                    "--hop",
                    "0.5",
                    "--top-k",
                    "2",
                    "--json",
                ]
            )
            == 0
        )
    [from_cli] = json.loads(printed.getvalue())
    assert len(from_cli["windows"]) == 14 and len(from_cli["labels"]) == 2
    assert from_cli["labels"][0][0] == prediction.labels[0][0]


def test_window_starts_cover_the_clip():
    from spectrogram_transformers.inference import window_starts

    assert window_starts(100, 200, 50) == [0]
    assert window_starts(1000, 300, 300) == [0, 300, 600, 700]  # the last window ends with the clip
    assert window_starts(900, 300, 300) == [0, 300, 600]
    with pytest.raises(ValueError):
        window_starts(100, 0, 10)


@pytest.mark.slow
def test_multi_label_audioset_training(tmp_path):
    data_dir, label_csv = write_audioset_parquet(tmp_path / "audioset")
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=60)
    recipe = write_recipe(
        tmp_path / "recipe.json",
        "audioset-balanced",
        dataset={"labels": str(label_csv)},
        ast={
            "feature_extractor": {"max_length": 60},
            "model": {"max_length": 60},
            "global_train_batch_size": 4,
            "weight_averaging": None,
            "training_arguments": {"num_train_epochs": 1, "warmup_steps": 2},
        },
    )
    metrics = run_training(
        str(recipe),
        str(model_dir),
        output_dir=tmp_path / "out",
        data_dir=data_dir,
        training_overrides={"report_to": "none"},
    )
    assert {"eval_mAP", "eval_mAUC", "eval_d_prime"} <= set(metrics) and 0 <= metrics["eval_mAP"] <= 1
    from transformers import AutoConfig

    import spectrogram_transformers  # noqa: F401

    config = AutoConfig.from_pretrained(tmp_path / "out")
    assert config.problem_type == "multi_label_classification" and list(config.id2label.values()) == [
        n for _, n in AUDIOSET_LABELS
    ]


@pytest.mark.slow
def test_streaming_training_single_process(tmp_path):
    data_dir = write_speech_commands_parquet(tmp_path / "sc", words=3)
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=100)
    recipe = write_recipe(
        tmp_path / "recipe.json",
        "speech-commands",
        ast={"feature_extractor": {"max_length": 100}, "model": {"max_length": 100}, "global_train_batch_size": 4},
    )
    metrics = run_training(
        str(recipe), str(model_dir), output_dir=tmp_path / "out", data_dir=data_dir, streaming=True,
        training_overrides={"max_steps": 4, "report_to": "none"},
    )  # fmt: skip
    assert metrics["train_skipped_clips"] == 0 and "eval_accuracy" in metrics and "test_accuracy" in metrics
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    assert state["global_step"] == 4  # 12 clips, batch 4: the stream is re-read after 3 steps


def test_training_arguments_layering_and_push_to_hub_pass_through(tmp_path):
    family = load_recipe("speech-commands").families["ast"]
    arguments, steps = build_training_arguments(
        family, {"push_to_hub": True, "hub_model_id": "me/ast-sc", "learning_rate": 1e-4}, tmp_path
    )
    assert arguments.push_to_hub and arguments.hub_model_id == "me/ast-sc"
    assert arguments.learning_rate == 1e-4 and arguments.num_train_epochs == 30 and arguments.adam_beta1 == 0.95
    assert arguments.per_device_train_batch_size == 128 and arguments.remove_unused_columns is False and steps is None
    assert (
        split_global_batch(128, processes=4) == 32 and split_global_batch(12, 2, accumulation=3) == 2
    )  # the papers' global batch
    assert split_global_batch(48, 5) == 9  # uneven: rounded down (with a warning)
    streamed, steps = build_training_arguments(family, {}, tmp_path, streaming=True, num_train_examples=1000)
    assert (
        steps == 8 and streamed.max_steps == 30 * 8 and streamed.eval_strategy == "steps" and streamed.eval_steps == 8
    )
    with pytest.raises(ValueError, match="max_steps"):
        build_training_arguments(family, {}, tmp_path, streaming=True, num_train_examples=None)
    args = build_parser().parse_args(
        [
            "train",
            "--recipe",
            "esc50",
            "--model",
            "x",
            "--push_to_hub",
            "--hub_model_id",
            "me/x",
            "--max_steps",
            "5",
            "--resume_from_checkpoint",
            "ck",
        ]
    )
    assert training_overrides_from_args(args) == {
        "push_to_hub": True,
        "hub_model_id": "me/x",
        "max_steps": 5,
        "resume_from_checkpoint": "ck",
    }


def test_epoch_schedules_by_hand():
    ast = {"name": "epoch_step", "start_epoch": 5, "every_epochs": 1, "gamma": 0.85}
    assert [epoch_schedule_factor(ast, e) for e in (0, 4, 5, 6)] == [1.0, 1.0, 0.85, pytest.approx(0.85**2)]
    balanced = {"name": "epoch_step", "start_epoch": 10, "every_epochs": 5, "gamma": 0.5}
    assert [epoch_schedule_factor(balanced, e) for e in (9, 10, 14, 15, 20)] == [1.0, 0.5, 0.5, 0.25, 0.125]
    htsat = load_recipe("esc50").families["htsat"].schedule
    assert [epoch_schedule_factor(htsat, e) for e in (0, 1, 2, 10, 11, 20, 21, 30, 31, 99)] == [
        0.02,
        0.05,
        0.1,
        0.1,
        0.05,
        0.05,
        0.02,
        0.02,
        0.03,
        0.03,
    ]


@pytest.mark.parametrize(
    "family,epochs,warmup_steps,expected_scales",
    [
        # esc50 AST: epoch_step from (0-based) epoch 5, gamma 0.85; HTS-AT: lr_foo rows from epochs 0, 1, 2
        ("ast", 7, 0, [1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.85**2]),
        ("htsat", 3, 0, [0.02, 0.05, 0.1]),
        ("htsat", 3, 3, [0.02, 0.05, 0.1]),
    ],
)
def test_trainer_applies_the_recipe_learning_rate_in_every_epoch(
    tmp_path, family, epochs, warmup_steps, expected_scales
):
    """The learning rate each optimiser step of a real `Trainer.train()` uses (read from the optimiser as the step
    begins) is the base rate times the recipe's factor for that step's epoch, times the linear warm-up."""
    import datasets
    from transformers import TrainerCallback, TrainingArguments

    from spectrogram_transformers import ASTForAudioClassification
    from spectrogram_transformers.training.trainer import AudioClassificationTrainer

    class RecordLearningRates(TrainerCallback):
        def __init__(self):
            self.rates = []

        def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
            self.rates.append(optimizer.param_groups[0]["lr"])

    schedule = load_recipe("esc50").families[family].schedule
    model = ASTForAudioClassification.from_pretrained(tiny_ast_dir(tmp_path / "model", max_length=16, hidden_size=16))
    rows = [{"input_values": torch.randn(16, 128).tolist(), "labels": index % 3} for index in range(4)]
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, num_train_epochs=epochs, learning_rate=0.1,
        warmup_steps=warmup_steps, report_to="none", use_cpu=True, save_strategy="no", logging_strategy="no",
        dataloader_num_workers=0, seed=0,
    )  # fmt: skip
    recorder = RecordLearningRates()
    trainer = AudioClassificationTrainer(
        model=model, args=arguments, train_dataset=datasets.Dataset.from_list(rows).with_format("torch"),
        optimizer_name="adamw", schedule=schedule, callbacks=[recorder],
    )  # fmt: skip
    trainer.train()
    steps_per_epoch = 2  # 4 examples, batches of 2
    expected = []
    for step in range(epochs * steps_per_epoch):
        warmup = step / warmup_steps if step < warmup_steps else 1.0
        expected.append(0.1 * expected_scales[step // steps_per_epoch] * warmup)
    assert recorder.rates == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_classification_loss_variants():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    ids = torch.tensor([0, 2])
    torch.testing.assert_close(classification_loss(logits, ids, "ce"), torch.nn.functional.cross_entropy(logits, ids))
    one_hot = torch.nn.functional.one_hot(ids, 3).float()
    torch.testing.assert_close(
        classification_loss(logits, ids, "bce"), torch.nn.functional.binary_cross_entropy_with_logits(logits, one_hot)
    )
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]])
    expected = -(soft * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
    torch.testing.assert_close(classification_loss(logits, soft, "ce"), expected)
    with pytest.raises(ValueError, match="do not match"):
        classification_loss(logits, torch.zeros(2, 4), "bce")


@pytest.mark.slow
def test_htsat_family_trains_with_its_recipe_settings(esc_run, tmp_path):
    """The recipe's `htsat` entry: log-mel `input_features`, AdamW, the epoch-table schedule, masks filled with
    each example's mean."""
    import spectrogram_transformers as package
    from spectrogram_transformers.feature_extraction import HTSATFeatureExtractor

    config = package.HTSATConfig(
        spec_size=64, num_mel_bins=16, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=4, num_labels=5
    )
    package.HTSATForAudioClassification(config).save_pretrained(tmp_path / "htsat")
    HTSATFeatureExtractor(
        num_mel_bins=16, sampling_rate=16000, hop_length=160, n_fft=512, clip_samples=16000
    ).save_pretrained(tmp_path / "htsat")
    recipe = write_recipe(
        tmp_path / "recipe.json",
        "esc50",
        htsat={"feature_extractor": {"sampling_rate": 16000, "clip_samples": 16000}, "global_train_batch_size": 4},
    )
    metrics = run_training(
        str(recipe), str(tmp_path / "htsat"), output_dir=tmp_path / "out", fold=1, data_dir=esc_run["data_dir"],
        training_overrides={"max_steps": 2, "report_to": "none", "eval_strategy": "no", "save_strategy": "no"},
    )  # fmt: skip
    assert math.isfinite(metrics["eval_loss"]) and metrics["eval_skipped_clips"] == 1
    from huggingface_hub import ModelCard

    assert "htsat" in ModelCard.load(tmp_path / "out" / "README.md").data.tags


@pytest.mark.slow
def test_cross_validation_reports_mean_and_std_over_folds(esc_run, tmp_path):
    from spectrogram_transformers.training.train import run_cross_validation

    recipe = write_recipe(
        tmp_path / "two-folds.json",
        "esc50",
        dataset={"folds": {"column": "fold", "values": [2, 3]}},
        ast={"feature_extractor": {"max_length": 100}, "model": {"max_length": 100}, "global_train_batch_size": 8},
    )
    overrides = {"max_steps": 1, "report_to": "none", "eval_strategy": "no", "save_strategy": "no"}
    summary = run_cross_validation(
        str(recipe),
        str(esc_run["root"] / "tiny"),
        output_dir=tmp_path / "cv",
        data_dir=esc_run["data_dir"],
        training_overrides=overrides,
    )
    accuracies = [summary["folds"][fold]["eval_accuracy"] for fold in ("2", "3")]
    assert summary["eval_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert summary["eval_accuracy_std"] == pytest.approx(np.std(accuracies))
    assert (
        json.loads((tmp_path / "cv" / "cv_results.json").read_text())["eval_accuracy_mean"]
        == summary["eval_accuracy_mean"]
    )
    assert (tmp_path / "cv" / "fold2" / "model.safetensors").is_file() and (
        tmp_path / "cv" / "fold3" / "README.md"
    ).is_file()


def test_audioset_label_map_must_be_given():
    from spectrogram_transformers.training.recipe import load_label_map

    with pytest.raises(ValueError, match="class_labels_indices.csv .*--labels"):
        load_label_map("audioset")


@pytest.mark.slow
def test_train_cli_labels_option_supplies_the_audioset_map(tmp_path, capsys):
    from spectrogram_transformers.cli import main as cli_main

    data_dir, label_csv = write_audioset_parquet(tmp_path / "audioset")
    model_dir = tiny_ast_dir(tmp_path / "tiny", max_length=60)
    recipe = write_recipe(
        tmp_path / "recipe.json",
        "audioset-balanced",  # its label map is the unshipped "audioset"
        ast={
            "feature_extractor": {"max_length": 60},
            "model": {"max_length": 60},
            "global_train_batch_size": 4,
            "weight_averaging": None,
        },
    )
    argv = [
        "train",
        "--recipe",
        str(recipe),
        "--model",
        str(model_dir),
        "--data_dir",
        str(data_dir),
        "--output_dir",
        str(tmp_path / "out"),
        "--max_steps",
        "1",
        "--report_to",
        "none",
    ]
    with pytest.raises(ValueError, match="--labels"):
        cli_main(argv)
    assert cli_main([*argv, "--labels", str(label_csv)]) == 0
    from transformers import AutoConfig

    import spectrogram_transformers  # noqa: F401

    assert list(AutoConfig.from_pretrained(tmp_path / "out").id2label.values()) == [
        name for _, name in AUDIOSET_LABELS
    ]


def test_training_run_is_built_once_with_one_route_for_the_output_directory(tmp_path):
    """`TrainingRun.of` settles the run's settings once: --output_dir given as an override becomes the run's own,
    the default is outputs/<recipe>-<model>/fold<k>, and overwriting is a field, never an override."""
    run = TrainingRun.of("esc50", "some/model", fold=2, training_overrides={"output_dir": str(tmp_path), "seed": 7})
    assert run.output_dir == str(tmp_path) and "output_dir" not in run.training_overrides and run.seed == 7
    assert (
        run.recipe.name == "esc50"
        and run.card_dataset_id == run.recipe.dataset.hub_id
        and not run.overwrite_output_dir
    )
    assert TrainingRun.of("esc50", "some/model", fold=2).output_dir.as_posix() == "outputs/esc50-model/fold2"
    assert TrainingRun.of("esc50", "m", dataset_id="me/other").card_dataset_id == "me/other"
    with pytest.raises(ValueError, match="pass overwrite_output_dir=True"):
        TrainingRun.of("esc50", "m", training_overrides={"overwrite_output_dir": True})
    with pytest.raises(TypeError, match="takes no model"):
        run_training(run, "another/model")
