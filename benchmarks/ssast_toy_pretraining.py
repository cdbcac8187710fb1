"""SSAST at toy scale on CPU: does masked spectrogram patch pre-training help a few-label task?

    python benchmarks/ssast_toy_pretraining.py                 # a few minutes on 2 CPU cores
    python benchmarks/ssast_toy_pretraining.py --pretrain_steps 300 --seeds 1   # a quicker look

1. Data: the package's synthetic spoken keywords (espeak-ng, 10 words, random accents, voices, speed, pitch and
   noise; `training/synthetic_keywords.py`). The train split's audio, WITHOUT labels, is the pre-training pool
   (written as WAV files, read by the `pretrain` code path). The few-label task takes `--shots` labeled clips
   per word from that split; the test split holds out whole voice variants.
2. Pre-training: `run_pretraining` (what `spectrogram-transformers pretrain` runs) of a tiny SSAST (16×16 patches,
   stride 16, 96 frames: an 8×6 grid; or 128×2 frames with `--patch frame`) with the joint objective; NCE, MSE and masked-patch accuracy are read from
   the Trainer's log.
3. Fine-tuning, same architecture and hyper-parameters twice: from the pre-trained checkpoint
   (`SSASTForAudioClassification.from_pretrained(dir, frequency_stride=10, time_stride=10, ...)`, the paper's
   overlapping fine-tuning patches) and from scratch; test accuracy per seed (another labeled subset and head).
Prints a Markdown summary at the end.
"""

import argparse
import io
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from spectrogram_transformers import ASTFeatureExtractor, SSASTConfig, SSASTForAudioClassification
from spectrogram_transformers.training.pretrain import run_pretraining
from spectrogram_transformers.training.synthetic_keywords import SyntheticKeywordsConfig, load_synthetic_keywords

TINY = {"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 256, "num_hidden_layers": 3}


def decode(rows) -> list[np.ndarray]:
    return [soundfile.read(io.BytesIO(row["bytes"]), dtype="float32")[0] for row in rows]


def features(extractor: ASTFeatureExtractor, clips: list[np.ndarray]) -> torch.Tensor:
    return extractor(clips, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]


def fine_tune(model, train_x, train_y, test_x, test_y, steps: int, lr: float, batch: int, seed: int) -> float:
    """Plain Adam fine-tuning on the labeled clips; returns test accuracy."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-7, betas=(0.95, 0.999))
    model.train()
    for _ in range(steps):
        index = torch.randint(0, len(train_x), (batch,), generator=generator)
        loss = model(train_x[index], labels=train_y[index]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test_x), 64):
            logits = model(test_x[start : start + 64]).logits
            correct += (logits.argmax(-1) == test_y[start : start + 64]).sum().item()
    return correct / len(test_x)


def linear_probe(model, train_x, train_y, test_x, test_y) -> float:
    """Logistic regression on the frozen encoder's mean and std over patch tokens (before any fine-tuning)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def embed(x):
        prefix = model.config.num_prefix_tokens
        with torch.no_grad():
            hidden = torch.cat(
                [model.ssast(x[i : i + 64]).last_hidden_state[:, prefix:] for i in range(0, len(x), 64)]
            )
        return torch.cat([hidden.mean(1), hidden.std(1)], dim=1).numpy()

    model.eval()
    train, test = embed(train_x), embed(test_x)
    scaler = StandardScaler().fit(train)
    classifier = LogisticRegression(max_iter=3000, C=0.5).fit(scaler.transform(train), train_y.numpy())
    return float(classifier.score(scaler.transform(test), test_y.numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool_size", type=int, default=2000, help="unlabeled pre-training clips")
    parser.add_argument("--test_size", type=int, default=500)
    parser.add_argument("--patch", choices=("patch", "frame"), default="patch", help="16×16 patches or 128×2 frames")
    parser.add_argument("--shots", type=int, default=20, help="labeled clips per keyword")
    parser.add_argument("--pretrain_steps", type=int, default=1200)
    parser.add_argument("--pretrain_batch", type=int, default=24)
    parser.add_argument("--pretrain_lr", type=float, default=5e-4)
    parser.add_argument(
        "--max_length", type=int, default=96, help="frames; a 1 s clip has 98, so 96 avoids padded patches"
    )
    parser.add_argument("--masked", type=int, default=24, help="masked patches (16×16: 8×6 = 48 at 96 frames)")
    parser.add_argument("--finetune_steps", type=int, default=800)
    parser.add_argument("--finetune_lr", type=float, default=2e-4)
    parser.add_argument("--finetune_batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ssast-toy-"))
    started = time.perf_counter()

    data = load_synthetic_keywords(
        SyntheticKeywordsConfig(train_size=args.pool_size, validation_size=0, test_size=args.test_size, seed=0),
        verbose=True,
    )
    keywords = data["train"].features["label"].names
    pool_dir = workdir / "unlabeled"
    pool_dir.mkdir(parents=True, exist_ok=True)
    for index, row in enumerate(data["train"]):  # audio only: the labels stay behind
        (pool_dir / f"{index:05d}.wav").write_bytes(row["audio"]["bytes"])

    # -- pre-training, through the command's code path
    overrides = {**TINY, "max_length": args.max_length, "num_masked_patches": args.masked}
    output_dir = workdir / "pretrained"
    pretrain_started = time.perf_counter()
    run_pretraining(
        str(pool_dir),
        f"ssast-tiny-{args.patch}-400",
        config_overrides=overrides,
        training_overrides={
            "output_dir": str(output_dir), "max_steps": args.pretrain_steps, "per_device_train_batch_size": args.pretrain_batch,
            "learning_rate": args.pretrain_lr, "warmup_steps": max(1, args.pretrain_steps // 20), "logging_steps": max(1, args.pretrain_steps // 15),
            "save_strategy": "no", "dataloader_pin_memory": False, "disable_tqdm": True, "seed": 0,
        },
    )  # fmt: skip
    pretrain_seconds = time.perf_counter() - pretrain_started
    history = json.loads((output_dir / "pretraining_metrics.json").read_text())
    trainer_log = []
    state_file = output_dir / "trainer_state.json"
    if state_file.is_file():
        trainer_log = [entry for entry in json.loads(state_file.read_text())["log_history"] if "nce_loss" in entry]
    print("pre-training log (step, loss, nce, mse, accuracy):")
    for entry in trainer_log:
        print(
            f"  {entry['step']:5d} {entry['loss']:.4f} {entry['nce_loss']:.4f} {entry['mse_loss']:.4f} {entry['accuracy']:.4f}"
        )

    # -- few-label fine-tuning: pre-trained vs scratch
    extractor = ASTFeatureExtractor.from_pretrained(output_dir)
    labels = np.array(data["train"]["label"])
    test_x = features(extractor, decode(data["test"]["audio"]))
    test_y = torch.tensor(data["test"]["label"])
    # the paper's fine-tuning strides: 10×10 for patches, time stride 1 for frames
    strides = (
        {"frequency_stride": 10, "time_stride": 10}
        if args.patch == "patch"
        else {"frequency_stride": 128, "time_stride": 1}
    )
    ft_kwargs = {"num_labels": len(keywords), **strides}
    results = {"pretrained": [], "scratch": [], "probe pretrained": [], "probe scratch": []}
    for seed in range(args.seeds):
        rng = np.random.default_rng(100 + seed)
        chosen = np.concatenate(
            [rng.choice(np.flatnonzero(labels == k), args.shots, replace=False) for k in range(len(keywords))]
        )
        train_x = features(extractor, decode([data["train"][int(i)]["audio"] for i in chosen]))
        train_y = torch.tensor(labels[chosen])
        torch.manual_seed(seed)
        pretrained = SSASTForAudioClassification.from_pretrained(output_dir, **ft_kwargs)
        config = SSASTConfig.from_dict({**pretrained.config.to_dict()})
        torch.manual_seed(seed)
        scratch = SSASTForAudioClassification(config)
        scratch.classifier.load_state_dict(pretrained.classifier.state_dict())  # the same fresh head for both
        for name, model in (("pretrained", pretrained), ("scratch", scratch)):
            accuracy = linear_probe(model, train_x, train_y, test_x, test_y)
            results[f"probe {name}"].append(accuracy)
            print(f"seed {seed}: {name:10s} linear-probe accuracy {accuracy:.3f}", flush=True)
            accuracy = fine_tune(
                model,
                train_x,
                train_y,
                test_x,
                test_y,
                args.finetune_steps,
                args.finetune_lr,
                args.finetune_batch,
                seed,
            )
            results[name].append(accuracy)
            print(f"seed {seed}: {name:10s} test accuracy {accuracy:.3f}", flush=True)

    def summary(values):
        return (
            f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
            if len(values) > 1
            else f"{values[0]:.3f}"
        )

    first, last = (trainer_log[0], trainer_log[-1]) if trainer_log else ({}, {})
    print("\n### Results (Markdown)\n")
    print(
        f"- data: {args.pool_size} unlabeled synthetic keyword clips (10 words, espeak-ng voices + noise); test {args.test_size} clips of held-out voices; {args.shots} labeled clips per word"
    )
    shape = "16×16 patches" if args.patch == "patch" else "128×2 frame patches"
    print(
        f"- model: SSAST width {TINY['hidden_size']}, {TINY['num_hidden_layers']} layers, {shape} on {args.max_length} frames × 128 mel, {args.masked} masked, joint nce + 10·mse"
    )
    print(
        f"- pre-training: {args.pretrain_steps} steps × batch {args.pretrain_batch}, Adam lr {args.pretrain_lr}, {pretrain_seconds / 60:.1f} min on CPU"
    )
    if trainer_log:
        print("\n| step | nce | mse | masked-patch accuracy |\n|---|---|---|---|")
        for entry in (first, trainer_log[len(trainer_log) // 2], last):
            print(f"| {entry['step']} | {entry['nce_loss']:.3f} | {entry['mse_loss']:.3f} | {entry['accuracy']:.3f} |")
        print(
            f"\n(chance accuracy 1/{args.masked} = {1 / args.masked:.3f}; nce at chance = ln {args.masked} = {math.log(args.masked):.3f})"
        )
    print(
        f"\n| {args.shots} labels per word, test accuracy (mean ± std over {args.seeds} seeds) | from SSAST pre-training | from scratch |\n|---|---|---|"
    )
    print(
        f"| fine-tuning ({args.finetune_steps} steps, lr {args.finetune_lr}, strides {strides['frequency_stride']}×{strides['time_stride']}) | {summary(results['pretrained'])} | {summary(results['scratch'])} |"
    )
    print(
        f"| linear probe (frozen encoder, logistic regression) | {summary(results['probe pretrained'])} | {summary(results['probe scratch'])} |"
    )
    print(
        f"\ntotal {(time.perf_counter() - started) / 60:.1f} min; final pre-training metrics: { {k: history[k] for k in history if k.startswith('last_')} }"
    )


if __name__ == "__main__":
    main()
