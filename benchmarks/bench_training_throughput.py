"""Training throughput (samples/s) of the `train` loop, AST at the Speech Commands setting: the batch path
BEFORE and AFTER one tensor contract (issue 10.4), and optionally 1 vs 2 processes.

What is timed is the whole fine-tuning step as `spectrogram-transformers train --recipe speech-commands` runs it:
decoding 1 s WAV clips from parquet, the recipe's augmentation (waveform mixup 0.6, Kaldi fbank of 128 frames,
48/48 masks, noise, time shift), forward, BCE, backward and the Adam update; the interval between consecutive
optimiser steps after `--warmup` steps. The model is AST with 10x10 patch strides on 128 frames x 128 mel bins
(12 x 12 = 144 patches); by default at DeiT-tiny width (192, 12 layers, 3 heads, 5.4 M parameters) because the
base width (768, 85 M parameters) takes ~20 s per 8-clip step on a shared 2-core CPU; `--hidden_size 768
--heads 12` gives base. Also timed on its own: the featurizer stage of a training batch (padded waveforms ->
augmented features, `AugmentedFeaturizer.from_batch`), which is what the batch-path change touched.

Before / after: `--before REV` and `--after REV` (default: the batch-path change and the commit before it, so
nothing else differs; `--after worktree` for this checkout) are checked out with `git worktree` into a
temporary folder and imported from there (a folder laid out as the installed package), so the old and the new
code run on the same data, model and machine in one run, interleaved
(before, after, before, after, ...; `--repeats`); the ratio after/before is printed per pair and as the
median. `--scaling` adds the earlier comparison of 1 process vs 2 processes (`torchrun`, gloo DDP).

The data are synthetic tones (no network), written to a temp dir. On a machine shared with other jobs the
numbers move a lot between runs: compare within one run.

    python benchmarks/bench_training_throughput.py [--steps 8 --warmup 2 --batch_size 8 --repeats 2]
"""

import argparse
import inspect
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORDS = 35
PACKAGE = "spectrogram_transformers"
# folders that setup.py's package_dir maps into the package
TOP_LEVEL_SUBPACKAGES = ("modeling", "feature_extraction", "training", "hub_configs")
# the batch-path change (issue 10.4: one tensor contract, no host round trip) and the commit before it, whose
# training step copied the audio back to the host and padded it three times
AFTER_BATCH_PATH_CHANGE = "138efa8"
BEFORE_BATCH_PATH_CHANGE = f"{AFTER_BATCH_PATH_CHANGE}~1"


def make_data(root: Path, clips_per_word: int) -> Path:
    """Speech Commands v0.02 schema (train / validation / test), 16 kHz 1 s WAV tones."""
    import numpy as np
    import soundfile as sf
    from datasets import Audio, ClassLabel, Dataset, Features, Value

    from spectrogram_transformers.hub_configs import load_labels

    names = list(load_labels("speech_commands").values()) + ["_silence_"]  # the Hub ClassLabel order
    features = Features(
        {
            "file": Value("string"),
            "audio": {"bytes": Value("binary"), "path": Value("string")},
            "label": ClassLabel(names=names),
            "is_unknown": Value("bool"),
            "speaker_id": Value("string"),
            "utterance_id": Value("int8"),
        }
    )
    rng = np.random.default_rng(0)
    for split, count in (("train", clips_per_word), ("validation", 1), ("test", 1)):
        rows = {key: [] for key in features}
        for word in range(WORDS):
            for take in range(count):
                time_axis = np.arange(16000) / 16000
                clip = 0.4 * np.sin(2 * np.pi * (200 + 60 * word) * time_axis) + 0.05 * rng.standard_normal(16000)
                buffer = io.BytesIO()
                sf.write(buffer, clip.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
                rows["file"].append(f"{names[word]}/{take}.wav")
                rows["audio"].append({"bytes": buffer.getvalue(), "path": f"{names[word]}/{take}.wav"})
                rows["label"].append(word)
                rows["is_unknown"].append(False)
                rows["speaker_id"].append(f"s{take}")
                rows["utterance_id"].append(take % 100)
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False)).to_parquet(
            str(folder / "0000.parquet")
        )
    return root


def make_model(path: Path, hidden_size: int, layers: int, heads: int) -> Path:
    import torch

    import spectrogram_transformers as package

    torch.manual_seed(0)
    config = package.ASTConfig(
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden_size,
        max_length=128,
        num_labels=WORDS,
    )
    package.ASTForAudioClassification(config).save_pretrained(path)
    package.ASTFeatureExtractor(max_length=128, mean=-6.845978, std=5.5654526).save_pretrained(path)
    return path


def worker(args) -> None:
    """One training run (one process of it under torchrun); rank 0 writes the step timings to args.result."""
    import torch
    from transformers import TrainerCallback

    from spectrogram_transformers.training.train import run_training

    class StepClock(TrainerCallback):
        def __init__(self):
            self.stamps = []

        def on_step_end(self, arguments, state, control, **kwargs):
            self.stamps.append(time.perf_counter())

    clock = StepClock()
    overrides = {
        "max_steps": args.warmup + args.steps,
        "per_device_train_batch_size": args.batch_size,
        "report_to": "none",
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_steps": 10_000,
        "disable_tqdm": True,
    }
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        overrides["ddp_backend"] = "gloo"
    run_training(
        "speech-commands", str(args.model_dir), output_dir=str(args.output_dir), data_dir=str(args.data_dir),
        training_overrides=overrides, callbacks=[clock],
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        timed = clock.stamps[args.warmup - 1 :] if args.warmup > 0 else clock.stamps
        seconds = timed[-1] - timed[0]
        steps = len(timed) - 1
        processes = int(os.environ.get("WORLD_SIZE", "1"))
        result = {
            "processes": processes,
            "threads_per_process": torch.get_num_threads(),
            "steps": steps,
            "seconds_per_step": seconds / steps,
            "samples_per_second": steps * args.batch_size * processes / seconds,
        }
        Path(args.result).write_text(json.dumps(result))


def featurize_worker(args) -> None:
    """Time `AugmentedFeaturizer.from_batch` on collated training batches (the code under test's own API)."""
    import torch

    from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
    from spectrogram_transformers.training.datasets import (
        AudioClassificationCollator,
        AugmentedFeaturizer,
        load_recipe_datasets,
    )
    from spectrogram_transformers.training.recipe import load_recipe

    recipe = load_recipe("speech-commands")
    data = load_recipe_datasets(recipe.dataset, data_dir=str(args.data_dir))
    extractor = ASTFeatureExtractor.from_pretrained(str(args.model_dir))
    augmentation = recipe.family("ast")[1].augmentation_config
    collator = AudioClassificationCollator(extractor, data.label_encoder, return_waveforms=True, soft_labels=True)
    rows = [data.train[index] for index in range(min(len(data.train), args.featurize_batch))]
    batch = collator(rows)
    batch.pop("num_skipped_clips")
    featurizer = AugmentedFeaturizer(extractor, augmentation, generator=torch.Generator().manual_seed(0))
    old_api = "device" in inspect.signature(featurizer.from_batch).parameters
    call = (lambda: featurizer.from_batch(batch, device="cpu")) if old_api else (lambda: featurizer.from_batch(batch))
    call()  # warm-up (filterbank caches)
    seconds = []
    for _ in range(args.featurize_repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    best = min(seconds)
    Path(args.result).write_text(
        json.dumps({"seconds_per_batch": best, "samples_per_second": len(rows) / best, "batch": len(rows)})
    )


def import_tree(checkout: Path, root: Path) -> Path:
    """A folder laid out as the installed package (as setup.py's package_dir maps it), for PYTHONPATH."""
    package = root / PACKAGE
    package.mkdir(parents=True)
    for entry in (checkout / PACKAGE).iterdir():
        (package / entry.name).symlink_to(entry)
    for folder in TOP_LEVEL_SUBPACKAGES:
        (package / folder).symlink_to(checkout / folder)
    return root


def checkout(revision: str, root: Path, name: str) -> Path:
    """`git worktree add` of `revision` (removed again by `remove_checkout`)."""
    target = root / f"{name}-checkout"
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(target), revision],
        check=True,
        capture_output=True,
    )
    return target


def remove_checkout(target: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(target)], check=False, capture_output=True
    )


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def launch(
    args,
    root: Path,
    processes: int,
    threads: int | None = None,
    code: Path = REPO_ROOT,
    tag: str = "",
    featurize: bool = False,
) -> dict:
    """One configuration; `threads` sets OMP_NUM_THREADS of a single process (torchrun sets 1 per process);
    `code` is the folder on PYTHONPATH that `spectrogram_transformers` is imported from."""
    name = f"{tag}-{processes}-{threads}-{'featurize' if featurize else 'train'}-{time.monotonic_ns()}"
    result = root / f"result-{name}.json"
    worker_args = [
        __file__, "--worker", "--data_dir", str(args.data_dir), "--model_dir", str(args.model_dir),
        "--output_dir", str(root / f"out-{name}"), "--result", str(result),
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch_size", str(args.batch_size),
        "--featurize_batch", str(args.featurize_batch), "--featurize_repeats", str(args.featurize_repeats),
    ]  # fmt: skip
    if featurize:
        worker_args.append("--featurize")
    if processes == 1:
        command = [sys.executable, *worker_args]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(_free_port()),
            *worker_args,
        ]
    environment = {**os.environ, "PYTHONPATH": str(code)}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=str(root))
    if completed.returncode != 0:
        raise RuntimeError(f"{name} run failed:\n{(completed.stdout + completed.stderr)[-4000:]}")
    return json.loads(result.read_text())


def _check_imported_from(code: Path) -> str:
    """Where a worker with this PYTHONPATH imports the package from (guards against the editable install
    shadowing the old checkout)."""
    probe = subprocess.run(
        [sys.executable, "-c", f"import {PACKAGE}.training.datasets as m; print(m.__file__)"],
        env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True, text=True, check=True, cwd=str(code),
    )  # fmt: skip
    return probe.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per process per step")
    parser.add_argument("--hidden_size", type=int, default=192)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--before", default=BEFORE_BATCH_PATH_CHANGE, help="git revision of the BEFORE code")
    parser.add_argument(
        "--after", default=AFTER_BATCH_PATH_CHANGE,
        help="git revision of the AFTER code ('worktree': this checkout as it is; the default isolates the change)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=2, help="before/after pairs of training runs")
    parser.add_argument("--featurize_batch", type=int, default=32, help="clips per batch of the featurizer timing")
    parser.add_argument("--featurize_repeats", type=int, default=10, help="timed featurizer calls (best is kept)")
    parser.add_argument("--featurize_pairs", type=int, default=3, help="before/after pairs of featurizer runs")
    parser.add_argument("--scaling", action="store_true", help="also 1 process x 1 thread and 2 processes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--featurize", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data_dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model_dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output_dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        featurize_worker(args) if args.featurize else worker(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-training-") as temporary:
        root = Path(temporary)
        args.data_dir = make_data(root / "data", clips_per_word=2)
        args.model_dir = make_model(root / "model", args.hidden_size, args.layers, args.heads)
        checkouts = [checkout(args.before, root, "before")]
        if args.after != "worktree":
            checkouts.append(checkout(args.after, root, "after"))
        try:
            after_code = REPO_ROOT if args.after == "worktree" else checkouts[1]
            codes = {
                "before": import_tree(checkouts[0], root / "before-import"),
                "after": import_tree(after_code, root / "after-import"),
            }
            for label, code in codes.items():
                print(f"{label}: {_check_imported_from(code)}", flush=True)
            print(
                f"AST width {args.hidden_size}, {args.layers} layers, {args.heads} heads, 128 frames x 128 mel bins, "
                f"f10/t10 strides; Speech Commands recipe augmentation; batch {args.batch_size} per process; "
                f"{args.steps} timed steps after {args.warmup}; CPU, {os.cpu_count()} cores visible; "
                f"before = {args.before}, after = {args.after}",
                flush=True,
            )
            featurize_pairs = []
            for repeat in range(args.featurize_pairs):  # interleaved too: the stage is short and the machine noisy
                pair = {
                    label: launch(args, root, 1, code=code, tag=f"{label}{repeat}", featurize=True)
                    for label, code in codes.items()
                }
                featurize_pairs.append(pair)
                print(
                    f"featurizer pair {repeat + 1}: before {pair['before']['seconds_per_batch'] * 1000:7.1f} ms/batch, "
                    f"after {pair['after']['seconds_per_batch'] * 1000:7.1f} ms/batch, after/before throughput "
                    f"{pair['before']['seconds_per_batch'] / pair['after']['seconds_per_batch']:.2f}x",
                    flush=True,
                )
            pairs = []
            for repeat in range(args.repeats):
                pair = {
                    label: launch(args, root, 1, code=code, tag=f"{label}{repeat}") for label, code in codes.items()
                }
                pairs.append(pair)
                print(
                    f"pair {repeat + 1}: before {pair['before']['samples_per_second']:6.2f} samples/s, after "
                    f"{pair['after']['samples_per_second']:6.2f} samples/s, after/before "
                    f"{pair['after']['samples_per_second'] / pair['before']['samples_per_second']:.2f}x",
                    flush=True,
                )
            scaling = {}
            if args.scaling:
                scaling = {
                    "1 process, 1 thread": launch(args, root, 1, threads=1, tag="scaling"),
                    "2 processes (torchrun, gloo), 1 thread each": launch(args, root, 2, tag="scaling"),
                }
        finally:
            for target in checkouts:
                remove_checkout(target)

    featurize_ratios = [
        pair["before"]["seconds_per_batch"] / pair["after"]["seconds_per_batch"] for pair in featurize_pairs
    ]
    print(
        f"featurizer stage ({args.featurize_batch} clips, best of {args.featurize_repeats} calls per run), median over "
        f"{len(featurize_pairs)} pair(s): after/before throughput {statistics.median(featurize_ratios):.2f}x"
    )
    ratios = [pair["after"]["samples_per_second"] / pair["before"]["samples_per_second"] for pair in pairs]
    print(f"training step, median over {len(pairs)} pair(s): after/before throughput {statistics.median(ratios):.2f}x")
    for name, result in scaling.items():
        print(
            f"{name:45s} ({result['threads_per_process']} thread(s)/process): {result['seconds_per_step']:6.2f} s/step, "
            f"{result['samples_per_second']:6.2f} samples/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
