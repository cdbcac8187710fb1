"""Speed of our feature extractors against `transformers.ASTFeatureExtractor`, in one run.

AST: 8 random 10 s clips at 16 kHz, max_length 1024, through our batched torch Kaldi fbank and through
transformers' extractor (its numpy path: torchaudio is not installed, as in our environment). Each extractor
runs in its OWN worker process, as a user runs one of them, at its library's default thread count; the parent
interleaves their turns round by round (a few back-to-back calls each per round, after an idle pause, so a
load spike on a shared machine hits both alike) and prints the median times, the speed ratio and the largest difference of the features.
Why separate processes: in one process, numpy's OpenBLAS threads (started by the reference) keep spinning
after each call and steal the cores torch's threads need, which slowed OUR extractor 2-3x in the same process
(measured: 8.7x with OPENBLAS_NUM_THREADS=1 against 2.9x without, the previous one-process version).
HTS-AT: 8 random 10 s clips at 32 kHz through HTSATFeatureExtractor (no reference implementation to compare
with in this environment: torchlibrosa/librosa are not dependencies).

    python benchmarks/bench_feature_extraction.py [--repeats 5] [--batch 8] [--seconds 10] [--device cpu]
        [--threads N]

`--threads` sets torch's intra-op threads (default: torch's choice). On a machine whose cores are busy with
other work, one thread is faster: every multi-threaded torch op then waits for descheduled worker threads.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import transformers

from spectrogram_transformers.feature_extraction import (
    ASTFeatureExtractor,
    HTSATFeatureExtractor,
)


def best_of(function: Callable[[], object], repeats: int) -> float:
    """Fastest wall-clock time of `repeats` calls, after one warm-up call (caches, allocator, thread pool)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous
        times.append(time.perf_counter() - start)
    return min(times)


def ast_clips(batch: int, seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(0.0, 0.1, int(16000 * seconds)).astype(np.float32) for _ in range(batch)]


def extractor_worker(
    kind: str, batch: int, seconds: float, device: str, threads: int | None, calls_per_round: int, connection
) -> None:
    """One extractor in its own process: answers "run" with the mean wall time of `calls_per_round` back-to-back
    calls (a data loader's steady state), "features" with the features."""
    if threads is not None:
        torch.set_num_threads(threads)
    clips = ast_clips(batch, seconds)
    if kind == "ours":
        extractor = ASTFeatureExtractor(max_length=1024)

        def run():
            return extractor(clips, sampling_rate=16000, return_tensors="pt", device=device)["input_values"].cpu()
    else:
        extractor = transformers.ASTFeatureExtractor(max_length=1024)

        def run():
            return extractor(clips, sampling_rate=16000, return_tensors="pt")["input_values"]

    run()  # warm-up: caches, allocator, thread pools
    connection.send(torch.get_num_threads())
    while (command := connection.recv()) != "stop":
        if command == "features":
            connection.send(run().numpy())
            continue
        start = time.perf_counter()
        for _ in range(calls_per_round):
            run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous
        connection.send((time.perf_counter() - start) / calls_per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (AST); best-of (HTS-AT)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cpu", help="device for our extractors (the reference is numpy)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds of idle before each worker's turn")
    parser.add_argument("--calls", type=int, default=5, help="back-to-back calls per worker's turn (timed together)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    context = multiprocessing.get_context("spawn")
    workers = {}
    for kind in ("ours", "transformers"):
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=extractor_worker,
            args=(kind, args.batch, args.seconds, args.device, args.threads, args.calls, child_end),
        )
        process.start()
        workers[kind] = (process, parent_end)
    worker_threads = {kind: connection.recv() for kind, (_, connection) in workers.items()}

    times: dict[str, list[float]] = {kind: [] for kind in workers}
    for _ in range(args.repeats):
        for kind, (_, connection) in workers.items():
            time.sleep(args.settle)  # let the other worker's spinning BLAS / OpenMP threads park
            connection.send("run")
            times[kind].append(connection.recv())
    features = {}
    for kind, (process, connection) in workers.items():
        connection.send("features")
        features[kind] = connection.recv()
        connection.send("stop")
        process.join()
    difference = float(np.abs(features["ours"] - features["transformers"]).max())

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, torch threads in the workers: "
        f"{worker_threads['ours']}, device {args.device}; {args.batch} x {args.seconds:g} s clips; AST: median of "
        f"{args.repeats} interleaved rounds of {args.calls} back-to-back calls, one process per extractor; "
        f"HTS-AT: best of {args.repeats}"
    )
    ours_time, reference_time = statistics.median(times["ours"]), statistics.median(times["transformers"])
    print("per-round ratios: " + " ".join(f"{r / o:.1f}" for o, r in zip(times["ours"], times["transformers"])))
    print(f"AST   ours (torch, batched)               : {ours_time * 1000:9.1f} ms")
    print(f"AST   transformers.ASTFeatureExtractor    : {reference_time * 1000:9.1f} ms")
    print(f"AST   speed ratio (transformers / ours)   : {reference_time / ours_time:9.1f} x   (target >= 10x)")
    print(f"AST   max abs difference of the features  : {difference:9.2e}")

    rng = np.random.default_rng(1)
    htsat_clips = [rng.normal(0.0, 0.1, int(32000 * args.seconds)).astype(np.float32) for _ in range(args.batch)]
    htsat = HTSATFeatureExtractor()
    htsat_time = best_of(
        lambda: htsat(htsat_clips, sampling_rate=32000, return_tensors="pt", device=args.device), args.repeats
    )
    frames = htsat(htsat_clips[:1], sampling_rate=32000, return_tensors="pt")["input_features"].shape[1]
    print(f"HTSAT ours, {args.batch} x {frames} frames x 64 mel     : {htsat_time * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
