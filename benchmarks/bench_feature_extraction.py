"""Speed of our feature extractors against `transformers.ASTFeatureExtractor`, in one process.

AST: 8 random 10 s clips at 16 kHz, max_length 1024, through our batched torch Kaldi fbank and through
transformers' extractor (its numpy path: torchaudio is not installed, as in our environment). Both are timed
best-of-N with the same inputs; the script prints both times, the speed ratio, and the largest difference.
HTS-AT: 8 random 10 s clips at 32 kHz through HTSATFeatureExtractor (no reference implementation to compare
with in this environment: torchlibrosa/librosa are not dependencies).

    python benchmarks/bench_feature_extraction.py [--repeats 5] [--batch 8] [--seconds 10] [--device cpu]
        [--threads N]

`--threads` sets torch's intra-op threads (default: torch's choice). On a machine whose cores are busy with
other work, one thread is faster: every multi-threaded torch op then waits for descheduled worker threads.
"""

from __future__ import annotations

import argparse
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


def interleaved_times(functions: list[Callable[[], object]], rounds: int) -> list[list[float]]:
    """Wall times of each function over `rounds` rounds of one call each, interleaved, after one warm-up each:
    a load spike on a shared machine hits every function alike, and the median of the rounds is reported."""
    for function in functions:
        function()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(rounds):
        for function, measured in zip(functions, times):
            start = time.perf_counter()
            function()
            measured.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cpu", help="device for our extractors (the reference is numpy)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    ast_clips = [rng.normal(0.0, 0.1, int(16000 * args.seconds)).astype(np.float32) for _ in range(args.batch)]
    htsat_clips = [rng.normal(0.0, 0.1, int(32000 * args.seconds)).astype(np.float32) for _ in range(args.batch)]
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
        f"device {args.device}; {args.batch} x {args.seconds:g} s clips; AST: median of {args.repeats} interleaved "
        f"rounds, HTS-AT: best of {args.repeats}"
    )

    ours = ASTFeatureExtractor(max_length=1024)
    reference = transformers.ASTFeatureExtractor(max_length=1024)

    def run_ours():
        return ours(ast_clips, sampling_rate=16000, return_tensors="pt", device=args.device)["input_values"]

    def run_reference():
        return reference(ast_clips, sampling_rate=16000, return_tensors="pt")["input_values"]

    difference = float((run_ours().cpu() - run_reference()).abs().max())
    ours_times, reference_times = interleaved_times([run_ours, run_reference], args.repeats)
    ours_time, reference_time = statistics.median(ours_times), statistics.median(reference_times)
    print("per-round ratios: " + " ".join(f"{r / o:.1f}" for o, r in zip(ours_times, reference_times)))
    print(f"AST   ours (torch, batched)               : {ours_time * 1000:9.1f} ms")
    print(f"AST   transformers.ASTFeatureExtractor    : {reference_time * 1000:9.1f} ms")
    print(f"AST   speed ratio (transformers / ours)   : {reference_time / ours_time:9.1f} x")
    print(f"AST   max abs difference of the features  : {difference:9.2e}")

    htsat = HTSATFeatureExtractor()
    htsat_time = best_of(
        lambda: htsat(htsat_clips, sampling_rate=32000, return_tensors="pt", device=args.device), args.repeats
    )
    frames = htsat(htsat_clips[:1], sampling_rate=32000, return_tensors="pt")["input_features"].shape[1]
    print(f"HTSAT ours, {args.batch} x {frames} frames x 64 mel     : {htsat_time * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
