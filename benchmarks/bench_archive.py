"""Archive throughput: the same mixed-length files through `classify --output` as 1 process x 1 thread, 2 processes
x 1 thread (torchrun, gloo) and 1 process x 2 threads, for HTS-AT (tiny, AudioSet geometry) and AST-base
(AudioSet geometry), random weights (speed only).

Prints per setting: the run's wall time (rank 0's summary line: listing, decoding, model, merged OUT; without the
interpreter start and model load) and the end-to-end time, hours of audio per hour of run time, the throughput
ratio against 1 x 1 (run time; end to end in brackets), and the peak resident memory of the largest single
process (ranks and their loader processes polled with psutil). Each rank has one loader process
(`--num-workers 1`) decoding ahead of the model.

Lengths are spread geometrically from 1 s to the longest file, names shuffled so sizes are mixed in the listing.
HTS-AT runs the issue's set by default: 200 files of 1 s to 10 min (5.2 h of audio). AST-base classifies about
1.7 h of audio per hour on one core, so that set would take hours per setting: by default it gets 48 files of 1 s
to 2 min (20 min of audio; `--ast-files`, `--ast-longest`). Say which you ran when you quote it.

    python benchmarks/bench_archive.py [--files 200] [--longest 600] [--ast-files 48] [--ast-longest 120] [--models htsat ast]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile
import torch

from spectrogram_transformers import hub_configs
from spectrogram_transformers.runtime import describe_cpu

VARIANTS = {"ast": "ast-base-f10-t10-1024-audioset", "htsat": "htsat-tiny-32k-audioset"}
REPO_ROOT = Path(__file__).resolve().parents[1]


def write_files(folder: Path, count: int, longest: float, rate: int = 44100) -> float:
    """`count` files from 1 s to `longest` s (geometric spacing, shuffled names so sizes are mixed in the listing);
    returns the seconds of audio."""
    folder.mkdir(parents=True, exist_ok=True)
    lengths = np.geomspace(1.0, longest, count)
    order = np.random.default_rng(0).permutation(count)
    rng = np.random.default_rng(1)
    for name, seconds in zip(order, lengths):
        samples = int(seconds * rate)
        audio = 0.02 * rng.standard_normal(samples) + 0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)
        soundfile.write(folder / f"{name:04d}.flac", audio.astype(np.float32), rate)
    return float(lengths.sum())


def save_model(kind: str, directory: Path) -> Path:
    from transformers import AutoModelForAudioClassification

    torch.manual_seed(0)
    model = AutoModelForAudioClassification.from_config(hub_configs.load_config(VARIANTS[kind]))
    model.save_pretrained(directory)
    hub_configs.load_feature_extractor(VARIANTS[kind]).save_pretrained(directory)
    return directory


def peak_memory_while(process: subprocess.Popen) -> float:
    """Largest RSS (MiB) any single process of the tree reached, polled every 0.2 s until `process` ends."""
    peak = 0
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            for member in [root, *root.children(recursive=True)]:
                try:
                    peak = max(peak, member.memory_info().rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        time.sleep(0.2)
    return peak / 2**20


def run_setting(name: str, processes: int, threads: int, model: Path, inputs: Path, output: Path) -> dict:
    command = [
        "-m",
        "spectrogram_transformers",
        "classify",
        str(inputs),
        "--model",
        str(model),
        "--output",
        str(output),
        "--num-workers",
        "1",
        "--dtype",
        "float32",
        "--batch-size",
        "4",
        "--no-progress",
    ]
    if processes > 1:
        command = [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            "29611",
            *command,
        ]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *command], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = {}
    watcher = threading.Thread(target=lambda: peak.setdefault("mib", peak_memory_while(process)))
    watcher.start()
    _, stderr = process.communicate()
    watcher.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{stderr[-3000:]}")
    rows = sum(1 for _ in open(output))
    # the run's own wall time (rank 0's summary: listing to merged OUT), without interpreter start and model load
    summary = [line for line in stderr.splitlines() if " of audio in " in line][-1]
    run_s = float(summary.split(" of audio in ")[1].split("(")[1].split(" s)")[0])
    return {"setting": name, "wall_s": wall, "run_s": run_s, "rows": rows, "peak_mib": peak["mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="HTS-AT: number of files (the issue's set)")
    parser.add_argument("--longest", type=float, default=600.0, help="HTS-AT: longest file in seconds")
    parser.add_argument("--ast-files", type=int, default=48)
    parser.add_argument("--ast-longest", type=float, default=120.0)
    parser.add_argument("--models", nargs="+", default=["htsat", "ast"], choices=sorted(VARIANTS))
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    print(describe_cpu())
    print(
        f"CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start (a shared machine slows every setting)"
    )
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for kind in args.models:
            count, longest = (args.files, args.longest) if kind == "htsat" else (args.ast_files, args.ast_longest)
            audio_s = write_files(scratch / f"audio-{kind}", count, longest)
            model = save_model(kind, scratch / f"model-{kind}")
            print(f"\n{kind} ({VARIANTS[kind]}): {count} files, 1 s to {longest:g} s, {audio_s / 60:.1f} min of audio")
            baseline = None
            for name, processes, threads in (
                ("1 process x 1 thread", 1, 1),
                ("2 processes x 1 thread", 2, 1),
                ("1 process x 2 threads", 1, 2),
            ):
                output = scratch / f"{kind}-{processes}-{threads}.jsonl"
                result = run_setting(name, processes, threads, model, scratch / f"audio-{kind}", output)
                result.update(model=kind, audio_s=audio_s, files=count, audio_hours_per_hour=audio_s / result["run_s"])
                baseline = baseline or result
                result["ratio_vs_1x1"] = baseline["run_s"] / result["run_s"]
                result["end_to_end_ratio_vs_1x1"] = baseline["wall_s"] / result["wall_s"]
                results.append(result)
                print(
                    f"  {name:24s} run {result['run_s']:7.1f} s (end to end {result['wall_s']:6.1f} s)  "
                    f"{result['audio_hours_per_hour']:6.1f} h audio/h  x{result['ratio_vs_1x1']:.2f} vs 1x1 "
                    f"(end to end x{result['end_to_end_ratio_vs_1x1']:.2f})  peak {result['peak_mib']:.0f} MiB/process",
                    flush=True,
                )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
