"""Training throughput (samples/s) of the `train` loop: AST at the Speech Commands setting, 1 vs 2 processes.

What is timed is the whole fine-tuning step as `spectrogram-transformers train --recipe speech-commands` runs it:
decoding 1 s WAV clips from parquet, the recipe's augmentation (waveform mixup 0.6, Kaldi fbank of 128 frames,
48/48 masks, noise, time shift), forward, BCE, backward and the Adam update; the interval between consecutive
optimiser steps after `--warmup` steps. The model is AST with 10x10 patch strides on 128 frames x 128 mel bins
(12 x 12 = 144 patches); by default at DeiT-tiny width (192, 12 layers, 3 heads, 5.4 M parameters) because the
base width (768, 85 M parameters) takes ~20 s per 8-clip step on a shared 2-core CPU; `--hidden_size 768
--heads 12` gives base.

Scaling: the same per-process batch on 1 process (torch's default threads, and 1 thread) and on 2 processes
with `torchrun --nproc_per_node 2` (gloo DDP, 1 thread each, as torchrun sets OMP_NUM_THREADS=1). Global
throughput = per-process batch x processes / step time. The data are synthetic tones (no network), written to
a temp dir. On a machine shared with other jobs the numbers move a lot between runs: compare within one run.

    python benchmarks/bench_training_throughput.py [--steps 8 --warmup 2 --batch_size 8]
"""

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORDS = 35


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
        Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False)).to_parquet(str(folder / "0000.parquet"))
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


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def launch(args, root: Path, processes: int, threads: int | None = None) -> dict:
    """One configuration; `threads` sets OMP_NUM_THREADS of a single process (torchrun sets 1 per process)."""
    result = root / f"result-{processes}-{threads}.json"
    worker_args = [
        __file__, "--worker", "--data_dir", str(args.data_dir), "--model_dir", str(args.model_dir),
        "--output_dir", str(root / f"out-{processes}-{threads}"), "--result", str(result),
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch_size", str(args.batch_size),
    ]  # fmt: skip
    if processes == 1:
        command = [sys.executable, *worker_args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(_free_port()), *worker_args]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{processes}-process run failed:\n{(completed.stdout + completed.stderr)[-4000:]}")
    return json.loads(result.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per process per step")
    parser.add_argument("--hidden_size", type=int, default=192)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data_dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model_dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output_dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-training-") as temporary:
        root = Path(temporary)
        args.data_dir = make_data(root / "data", clips_per_word=2)
        args.model_dir = make_model(root / "model", args.hidden_size, args.layers, args.heads)
        print(
            f"AST width {args.hidden_size}, {args.layers} layers, {args.heads} heads, 128 frames x 128 mel bins, "
            f"f10/t10 strides; Speech Commands recipe augmentation; batch {args.batch_size} per process; "
            f"{args.steps} timed steps after {args.warmup}; CPU, {os.cpu_count()} cores visible",
            flush=True,
        )
        runs = {
            "1 process, default threads": launch(args, root, 1),
            "1 process, 1 thread": launch(args, root, 1, threads=1),
            "2 processes (torchrun, gloo), 1 thread each": launch(args, root, 2),
        }
    for name, result in runs.items():
        print(
            f"{name:45s} ({result['threads_per_process']} thread(s)/process): {result['seconds_per_step']:6.2f} s/step, "
            f"{result['samples_per_second']:6.2f} samples/s"
        )
    two = runs["2 processes (torchrun, gloo), 1 thread each"]["samples_per_second"]
    print(
        f"2 processes vs 1 process x 1 thread: {two / runs['1 process, 1 thread']['samples_per_second']:.2f}x; "
        f"vs 1 process x default threads: {two / runs['1 process, default threads']['samples_per_second']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
