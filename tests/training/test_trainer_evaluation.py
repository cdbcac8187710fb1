"""A real `transformers.Trainer` evaluation of every family with the argmax `compute_metrics` of transformers'
audio-classification example: `compute_metrics` gets the clip logits alone, and HTS-AT's frame outputs are
never gathered unless asked for."""

import numpy as np
import pytest
import torch
from test_model_inputs import build
from transformers import Trainer, TrainingArguments

from spectrogram_transformers.training.metrics import build_compute_metrics


class FeatureClips(torch.utils.data.Dataset):
    """`count` clips of fixed features with a class id each, as a feature extractor's output would be."""

    def __init__(self, model, features: torch.Tensor, count: int):
        self.input_name = model.main_input_name
        generator = torch.Generator().manual_seed(2)
        self.features = features[:1].expand(count, -1, -1) + torch.randn(
            count, *features.shape[1:], generator=generator
        )
        self.labels = torch.arange(count) % model.config.num_labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {self.input_name: self.features[index], "labels": self.labels[index]}


def argmax_accuracy(eval_prediction) -> dict[str, float]:
    """The example script's `compute_metrics`: `np.argmax(eval_pred.predictions, axis=1)`."""
    predictions = np.argmax(eval_prediction.predictions, axis=1)
    return {"accuracy": float(np.mean(predictions == eval_prediction.label_ids))}


def make_trainer(model, tmp_path, compute_metrics) -> Trainer:
    arguments = TrainingArguments(
        output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to=[], use_cpu=True, disable_tqdm=True
    )
    return Trainer(model=model, args=arguments, compute_metrics=compute_metrics)


@pytest.mark.parametrize("family", ["ast", "ssast", "htsat"])
def test_trainer_evaluation_gives_compute_metrics_the_clip_logits(family, tmp_path):
    model, features = build(family)
    clips = FeatureClips(model, features, count=10)
    trainer = make_trainer(model, tmp_path, argmax_accuracy)
    metrics = trainer.evaluate(clips)
    prediction = trainer.predict(clips)
    assert isinstance(prediction.predictions, np.ndarray)
    assert prediction.predictions.shape == (10, model.config.num_labels)
    expected = np.mean(prediction.predictions.argmax(axis=1) == clips.labels.numpy())
    assert metrics["eval_accuracy"] == pytest.approx(expected)
    # the package's own `train` metrics read the same predictions
    package_metrics = build_compute_metrics("single_label_classification")(prediction)
    assert package_metrics["accuracy"] == pytest.approx(expected)


def test_htsat_frame_outputs_are_gathered_only_on_request(tmp_path):
    model, features = build("htsat")
    clips = FeatureClips(model, features, count=9)
    trainer = make_trainer(model, tmp_path, None)
    default = trainer.predict(clips)
    # what Trainer gathered over the whole evaluation: the clip logits and nothing else
    assert isinstance(default.predictions, np.ndarray) and default.predictions.shape == (9, 5)
    with_frames = trainer.predict(clips, ignore_keys=[])
    logits, framewise_logits, latent_output = with_frames.predictions
    np.testing.assert_array_equal(logits, default.predictions)
    assert framewise_logits.shape == (9, model.config.num_frames, 5)
    assert latent_output.shape == (9, model.config.hidden_size)
