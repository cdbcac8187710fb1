"""Linear probe: a logistic regression on frozen embeddings of the offline keyword dataset.

How good are a model's embeddings for a task it was not (or was) trained on? Embed the training and test splits
of the synthetic keyword dataset (training/synthetic_keywords.py: the test split holds out whole voice variants)
with `AudioEmbedder` (the code of `spectrogram-transformers embed`), fit scikit-learn's logistic regression on the
training vectors, report test accuracy. Run it on the main job's keyword model and on an SSAST pre-training
checkpoint (encoder only, never fine-tuned) to compare.

    # the dataset and the keyword model: the offline main job
    spectrogram-transformers train --output-dir outputs/keywords --torch-threads 1
    # an SSAST pre-training checkpoint of the same geometry on 4,000 training clips' audio (no labels)
    python benchmarks/linear_probe.py export-audio --data ~/.cache/spectrogram_transformers/keywords-<hash> \
        --count 4000 --out /tmp/keyword-audio
    OMP_NUM_THREADS=1 spectrogram-transformers pretrain --data /tmp/keyword-audio --model ssast-tiny-frame-400 \
        --config-overrides '{"hidden_size": 128, "num_hidden_layers": 4, ...}' --mean -6.127 --std 4.05 \
        --output-dir outputs/ssast-keywords --max-steps 300 ...
    # the probe (each model on the same clips)
    OMP_NUM_THREADS=1 python benchmarks/linear_probe.py probe --data ~/.cache/spectrogram_transformers/keywords-<hash> \
        --model outputs/keywords --model outputs/ssast-keywords --train-size 4000

docs/embeddings.md gives the exact commands and the figures measured with them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _split(data: str, split: str, count: int | None, seed: int):
    """The first `count` rows of a seeded shuffle of a split (all rows when `count` is None), audio undecoded."""
    import datasets

    dataset = datasets.load_from_disk(data)[split]
    dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    if count is not None and count < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(count))
    return dataset


def export_audio(args: argparse.Namespace) -> int:
    """Write a split's clips as WAV files (the audio folder `pretrain --data` reads); labels are not written."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = _split(args.data, args.split, args.count, args.seed)
    for position, audio in enumerate(dataset["audio"]):
        (out / f"{position:06d}.wav").write_bytes(audio["bytes"])
    print(f"wrote {len(dataset)} clips of {args.split} to {out}", file=sys.stderr)
    return 0


def embed_split(embedder, dataset, short_clip: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(vectors [N, hidden], labels [N], seconds): each clip decoded as the `embed` command decodes it."""
    from spectrogram_transformers.feature_extraction import load_audio

    started = time.perf_counter()
    vectors = []
    for audio in dataset["audio"]:
        waveform, _ = load_audio(audio["bytes"], target_sr=embedder.sampling_rate)
        vectors.append(embedder.embed(waveform, short_clip=short_clip, progress=False).embedding)
    return np.stack(vectors), np.asarray(dataset["label"]), time.perf_counter() - started


def probe(args: argparse.Namespace) -> int:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from spectrogram_transformers.inference import AudioEmbedder

    torch.set_num_threads(args.threads)
    train = _split(args.data, "train", args.train_size, args.seed)
    test = _split(args.data, "test", args.test_size, args.seed)
    print(
        f"data: {args.data}: {len(train)} training clips, {len(test)} test clips (held-out voices); torch threads {args.threads}"
    )
    print("| model | encoder | hidden | short clips | test accuracy | embedding time |")
    print("|---|---|---|---|---|---|")
    for model in args.model:
        embedder = AudioEmbedder(model, dtype="float32", batch_size=16)
        train_x, train_y, train_s = embed_split(embedder, train, args.short_clip)
        test_x, test_y, test_s = embed_split(embedder, test, args.short_clip)
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=args.c))
        classifier.fit(train_x, train_y)
        accuracy = float((classifier.predict(test_x) == test_y).mean())
        print(
            f"| {model} | {type(embedder.model).__name__} | {embedder.hidden_size} | {args.short_clip} | {accuracy:.4f} "
            f"| {train_s + test_s:.0f} s |",
            flush=True,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export-audio", help="write a split's clips as WAV files (pre-training data)")
    export.add_argument("--data", required=True, help="the synthetic keyword dataset (a save_to_disk directory)")
    export.add_argument("--split", default="train")
    export.add_argument("--count", type=int, default=None, help="clips to write (default: all)")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--out", required=True)
    export.set_defaults(run=export_audio)
    run = commands.add_parser("probe", help="logistic regression on the embeddings of each --model")
    run.add_argument("--data", required=True, help="the synthetic keyword dataset (a save_to_disk directory)")
    run.add_argument("--model", action="append", required=True, help="model directory (repeat to compare)")
    run.add_argument("--train-size", type=int, default=None, help="training clips (default: all)")
    run.add_argument("--test-size", type=int, default=None, help="test clips (default: all)")
    run.add_argument("--short-clip", choices=("pad", "crop"), default="pad")
    run.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength of the logistic regression")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=1)
    run.set_defaults(run=probe)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
