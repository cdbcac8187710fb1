"""The offline main job: what `spectrogram-transformers train` runs with no arguments.

A new user without Hub access gets the whole life of a model in one command, on CPU, in minutes:

1. synthesise (or reuse from the cache) the spoken-keyword dataset (`synthetic_keywords`: espeak-ng voices,
   Speech Commands schema, validation and test voices held out);
2. train a small AST from scratch with `Trainer` through the `keywords-offline` recipe (`train.run_training`),
   evaluate on the held-out voices, save the model, feature extractor and model card;
3. reload the saved directory with `transformers.pipeline("audio-classification", model=DIR)` (as anyone
   would after `push_to_hub`), classify the held-out test clips and print the accuracy and the top-5
   predictions of a few clips. The pipeline is given each clip's first `input_samples` (0.995 s of the 1 s
   clips: the model's 98 frames), which is what `Trainer` evaluated, so the two accuracies are the same
   number; on the whole 1 s clip the pipeline would add a second window for its last 5 ms and average the two;
4. draw one held-out clip's prediction (spectrogram and top-5, `plotting`) next to the saved model and print
   its path (the `[train]` extra brings matplotlib; without it the picture is skipped with a one-line note).

The real-world path is the same command with a recipe and a model: `spectrogram-transformers train --recipe
esc50 --model <hub id>`.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .synthetic_keywords import (
    SyntheticKeywordsConfig,
    synthesize_keywords,
)

__all__ = [
    "EXAMPLE_PLOT_NAME",
    "OFFLINE_MODEL",
    "OFFLINE_RECIPE",
    "classify_held_out",
    "job_torch_threads",
    "plot_held_out_clip",
    "run_offline_main_job",
]

OFFLINE_RECIPE = "keywords-offline"
# hub_configs variant trained from scratch by the offline recipe
OFFLINE_MODEL = "ast-d128-l4-frame4-98-keywords"
# the picture of one held-out clip's prediction, written next to the saved model
EXAMPLE_PLOT_NAME = "example_prediction.png"


def job_torch_threads(requested: int | None = None) -> int:
    """Intra-op threads for the offline job; 0 means torch's default (one per core, or OMP_NUM_THREADS).

    Measured on a 2-core VM shared with other work: with libgomp's default spin-waiting, 2 threads ran a training
    step 2-10x *slower* than 1 thread whenever another process held a core (18 min instead of 6 for the job),
    and 1.5x faster when both cores were free. With OMP_WAIT_POLICY=PASSIVE (read by libgomp when torch is
    imported, so it must be set in the environment) 2 threads were never slower than 1 (0.26 vs 0.23 s/step
    under contention, 0.113 vs 0.169 s/step on free cores). So: all cores when the environment says how to use
    them, one thread otherwise.
    """
    if requested is not None:
        if requested < 0:
            raise ValueError(f"torch_threads must be >= 0, got {requested}")
        return requested
    passive = os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"
    return 0 if passive or "OMP_NUM_THREADS" in os.environ else 1


def _decode(audio: dict) -> tuple[np.ndarray, int]:
    import soundfile as sf

    waveform, sampling_rate = sf.read(io.BytesIO(audio["bytes"]), dtype="float32")
    return waveform, sampling_rate


def classify_held_out(
    model_dir: str | Path, data_dir: str | Path, split: str = "test", num_demo_clips: int = 10, batch_size: int = 64
) -> dict[str, Any]:
    """Reload `model_dir` with `pipeline("audio-classification")` and classify every clip of `split`.

    Each clip is cut to the model's input (`input_samples` of the saved feature extractor; its beginning, as
    `Trainer`'s evaluation keeps it), so that the pipeline scores exactly what `Trainer` scored: one window per
    clip, the same features. (A clip even slightly longer than the input is classified by the pipeline as two
    overlapping windows whose scores are averaged.)

    Returns {"accuracy", "num_clips", "input_seconds", "examples": [{"speaker_id", "label", "top5": [(label,
    score), ...]}]} with the top-5 of `num_demo_clips` clips spread over the split (different keywords and voices).
    """
    from datasets import Audio, load_from_disk
    from transformers import pipeline

    from ..feature_extraction import model_input_samples, resample

    dataset = load_from_disk(str(data_dir))[split]
    dataset = dataset.cast_column("audio", Audio(decode=False))
    names = dataset.features["label"].names
    classifier = pipeline("audio-classification", model=str(model_dir), device="cpu")
    rate = classifier.feature_extractor.sampling_rate
    input_samples = model_input_samples(classifier.feature_extractor)
    inputs = []
    for audio in dataset["audio"]:
        waveform, sampling_rate = _decode(audio)
        waveform = resample(waveform, sampling_rate, rate)[:input_samples]  # [:None] keeps everything
        inputs.append({"raw": waveform, "sampling_rate": rate})
    predictions = classifier(inputs, top_k=5, batch_size=batch_size)
    labels = [names[label] for label in dataset["label"]]
    correct = sum(prediction[0]["label"] == label for prediction, label in zip(predictions, labels))
    shown = np.linspace(0, len(dataset) - 1, num=min(num_demo_clips, len(dataset))).round().astype(int).tolist()
    examples = [
        {
            "speaker_id": dataset[index]["speaker_id"],
            "label": labels[index],
            "top5": [(item["label"], float(item["score"])) for item in predictions[index]],
        }
        for index in shown
    ]
    return {
        "accuracy": correct / max(1, len(dataset)),
        "num_clips": len(dataset),
        "input_seconds": None if input_samples is None else input_samples / rate,
        "examples": examples,
    }


def plot_held_out_clip(model_dir: str | Path, data_dir: str | Path, split: str = "test", index: int = 0) -> Path:
    """Draw the saved model's prediction on one held-out clip (log-mel spectrogram and top-5 bars, as
    `classify --plot` draws it) into `model_dir/example_prediction.png`; returns the path.

    Raises ImportError naming the `[plot]` extra when matplotlib is missing.
    """
    from datasets import Audio, load_from_disk

    from ..feature_extraction import resample
    from ..inference import AudioClassifier
    from ..plotting import check_plot_path, plot_classification, save_figure

    path = check_plot_path(Path(model_dir) / EXAMPLE_PLOT_NAME)
    dataset = load_from_disk(str(data_dir))[split].cast_column("audio", Audio(decode=False))
    row = dataset[index]
    keyword = dataset.features["label"].names[row["label"]]
    classifier = AudioClassifier(model_dir)
    waveform, sampling_rate = _decode(row["audio"])
    waveform = resample(waveform, sampling_rate, classifier.sampling_rate)
    prediction = classifier.classify(waveform, name=row["file"], top_k=5, progress=False)
    title = f'held-out {split} clip: "{keyword}" spoken by {row["speaker_id"]}'
    return save_figure(plot_classification(prediction, waveform, classifier.sampling_rate, title=title), path)


def _print_report(
    report: dict[str, Any], metrics: dict[str, float], model_dir: Path, seconds: dict[str, float]
) -> None:
    print()
    print(f"saved model: {model_dir}")
    for name in ("eval_accuracy", "test_accuracy"):
        if name in metrics:
            print(f"{name} (Trainer): {metrics[name]:.4f}")
    scored = (
        ""
        if report["input_seconds"] is None
        else f" (their first {report['input_seconds']:.3f} s, the model's input, as Trainer scores them)"
    )
    print(
        f"test accuracy through pipeline('audio-classification') on {report['num_clips']} clips of held-out voices"
        f"{scored}: {report['accuracy']:.4f}"
    )
    for example in report["examples"]:
        mark = "ok " if example["top5"][0][0] == example["label"] else "ERR"
        top5 = "  ".join(f"{label} {score:.2f}" for label, score in example["top5"])
        print(f"  [{mark}] {example['label']:>5s}  ({example['speaker_id']}):  {top5}")
    print("time: " + ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items()))
    print(
        f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f} (other work slows the timings)"
    )


def run_offline_main_job(
    data_config: SyntheticKeywordsConfig | None = None,
    *,
    model: str = OFFLINE_MODEL,
    recipe: str = OFFLINE_RECIPE,
    output_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    training_overrides: dict[str, Any] | None = None,
    overwrite_output_dir: bool = False,
    num_demo_clips: int = 10,
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """Synthesise (or reuse) the dataset, train, evaluate, save, reload with `pipeline` and classify held-out clips.

    `data_dir` skips the synthesis (a `save_to_disk` directory of the same schema). `torch_threads` sets torch's
    intra-op threads for the job and restores them afterwards (0: torch's default; None: `job_torch_threads`).
    Returns the training metrics plus `pipeline_test_accuracy`.
    """
    previous_threads = torch.get_num_threads()
    threads = job_torch_threads(torch_threads)
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return _run_offline_main_job(
            data_config,
            model,
            recipe,
            output_dir,
            cache_dir,
            data_dir,
            training_overrides,
            overwrite_output_dir,
            num_demo_clips,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _run_offline_main_job(
    data_config,
    model,
    recipe,
    output_dir,
    cache_dir,
    data_dir,
    training_overrides,
    overwrite_output_dir,
    num_demo_clips,
) -> dict[str, Any]:
    from .train import run_training

    seconds = {}
    started = time.perf_counter()
    if data_dir is None:
        data_dir = synthesize_keywords(data_config or SyntheticKeywordsConfig(), cache_dir=cache_dir)
    seconds["dataset"] = time.perf_counter() - started

    overrides = dict(training_overrides or {})
    output_dir = Path(
        output_dir or overrides.pop("output_dir", None) or Path("outputs") / f"{recipe}-{Path(model).name}"
    )
    started = time.perf_counter()
    metrics = run_training(
        recipe, model, output_dir=output_dir, data_dir=data_dir, training_overrides=overrides,
        overwrite_output_dir=overwrite_output_dir,
    )  # fmt: skip
    seconds["training + evaluation + saving"] = time.perf_counter() - started

    started = time.perf_counter()
    report = classify_held_out(output_dir, data_dir, num_demo_clips=num_demo_clips)
    seconds["pipeline reload + classification"] = time.perf_counter() - started
    _print_report(report, metrics, output_dir, seconds)
    try:
        example_plot = plot_held_out_clip(output_dir, data_dir)
    except ImportError as error:  # a [train] install without the [plot] extra
        example_plot = None
        print(f"example plot skipped: {error}")
    else:
        print(f"example plot (one held-out clip): {example_plot}")
    return {
        **metrics,
        "pipeline_test_accuracy": report["accuracy"],
        "demo_examples": report["examples"],
        "example_plot": None if example_plot is None else str(example_plot),
    }
