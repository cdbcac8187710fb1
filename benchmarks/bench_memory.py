"""Peak memory of `classify` and `detect` on a short and a very long file: it must not grow with the file.

Each measurement is the command line a user runs (`python -m spectrogram_transformers classify FILE --model DIR
--no-windows` / `detect FILE --model DIR`), in a fresh process, started by a fresh wrapper process that reports
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` (the peak resident set of the command, in its own process).
The files are 48 kHz mono PCM16 WAV (the models run at 16 kHz, so every block is resampled): 10 seconds, 10
minutes and `--hours` (default 10: 3.5 GB), written block by block into `--workdir` (default the system's
temporary folder) and deleted afterwards unless `--keep`. Windows are one hop apart (`--hop` = the window: half
the compute of the default half-window hop; memory does not depend on it).

The models are tiny and random (memory, not accuracy, is measured; a real model adds its own weights and
activations, the same for both files): an AST with AudioSet's 10.24 s windows (1 layer, hidden size 32) for
`classify`, an HTS-AT (64×64 image, 16 mel bins, 2.5 s clips, 3 labels) for `detect`. Without `--plot`,
`detect` keeps no frame timeline (events are searched as frames are finalised), so the label count does not
change these figures; with `--plot` it keeps float32 frames × labels (about 100 frames per second).

    python benchmarks/bench_memory.py [--hours 10] [--workdir /tmp] [--keep]

The 10-hour runs take a while on a small CPU (decoding, resampling and features of every window of 10 hours).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

RATE = 48000
LABELS = {0: "dog", 1: "siren", 2: "speech"}

# The wrapper: runs the command as its only child and prints the child's peak RSS in kB (Linux ru_maxrss units).
_WRAPPER = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if result.returncode != 0:
    sys.exit(f"command failed ({result.returncode}): {result.stderr[-2000:]}")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def write_wav(path: Path, seconds: float, block_seconds: float = 60.0) -> None:
    """Noise with a tone switching on and off, written block by block (never the whole file in memory)."""
    rng = np.random.default_rng(0)
    total = int(seconds * RATE)
    block = int(block_seconds * RATE)
    with soundfile.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as handle:
        for first in range(0, total, block):
            count = min(block, total - first)
            time_axis = (first + np.arange(count)) / RATE
            audio = 0.02 * rng.standard_normal(count)
            audio += 0.2 * np.sin(2 * np.pi * 440 * time_axis) * (np.sin(2 * np.pi * time_axis / 7.0) > 0.5)
            handle.write(audio.astype(np.float32))


def save_models(directory: Path) -> dict[str, Path]:
    from spectrogram_transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTForAudioClassification,
        HTSATConfig,
        HTSATFeatureExtractor,
        HTSATForAudioClassification,
    )

    torch.manual_seed(0)
    label2id = {name: index for index, name in LABELS.items()}
    ast = directory / "ast"
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=1024,
        id2label=LABELS,
        label2id=label2id,
    )
    ASTForAudioClassification(config).save_pretrained(ast)
    ASTFeatureExtractor(max_length=1024).save_pretrained(ast)
    htsat = directory / "htsat"
    config = HTSATConfig(
        spec_size=64,
        num_mel_bins=16,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        id2label=LABELS,
        label2id=label2id,
        problem_type="multi_label_classification",
    )
    HTSATForAudioClassification(config).save_pretrained(htsat)
    HTSATFeatureExtractor(
        sampling_rate=16000, num_mel_bins=16, n_fft=512, hop_length=160, fmax=8000.0, clip_samples=40000
    ).save_pretrained(htsat)
    return {"ast": ast, "htsat": htsat}


def peak_rss_mb(arguments: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one command in a fresh process."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _WRAPPER, *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(result.stderr.strip())
    return int(result.stdout.strip()) / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=10.0, help="length of the long file (default 10)")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()), help="where the files are written"
    )
    parser.add_argument("--keep", action="store_true", help="keep the written files and models")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    long_bytes = int(args.hours * 3600 * RATE * 2)
    free = shutil.disk_usage(args.workdir).free
    if free < long_bytes * 1.1:
        raise SystemExit(
            f"{args.workdir} has {free / 1e9:.1f} GB free, the {args.hours:g} h file needs {long_bytes / 1e9:.1f} GB: "
            "pass --workdir elsewhere or fewer --hours"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench_memory_", dir=args.workdir))
    try:
        models = save_models(workdir)
        files = {
            "10 s": workdir / "short.wav",
            "10 min": workdir / "medium.wav",
            f"{args.hours:g} h": workdir / "long.wav",
        }
        write_wav(files["10 s"], 10.0)
        write_wav(files["10 min"], 600.0)
        started = time.perf_counter()
        write_wav(files[f"{args.hours:g} h"], args.hours * 3600)
        print(
            f"wrote {files[f'{args.hours:g} h'].stat().st_size / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s",
            flush=True,
        )

        # --hop of one window halves the compute of a long run; memory does not depend on it
        commands = {
            "classify (AST, --no-windows)": [
                "classify",
                "--model",
                str(models["ast"]),
                "--no-windows",
                "--hop",
                "10.24",
            ],
            "detect (HTS-AT)": ["detect", "--model", str(models["htsat"]), "--hop", "2.5", "--batch-size", "16"],
        }
        figures = {}
        print(f"{'command':32s} {'file':>8s} {'peak RSS':>10s} {'wall':>8s}")
        for name, command in commands.items():
            for length, path in files.items():
                arguments = [
                    sys.executable,
                    "-m",
                    "spectrogram_transformers",
                    command[0],
                    str(path),
                    *command[1:],
                    "--dtype",
                    "float32",
                ]
                peak, wall = peak_rss_mb(arguments)
                figures.setdefault(name, {})[length] = {"peak_rss_mb": round(peak, 1), "wall_s": round(wall, 1)}
                print(f"{name:32s} {length:>8s} {peak:8.0f} MB {wall:7.0f} s", flush=True)
        print()
        for name, by_length in figures.items():
            short, _, long = (by_length[length]["peak_rss_mb"] for length in files)
            print(f"{name}: {long - short:+.0f} MB from 10 s to {args.hours:g} h ({short:.0f} MB -> {long:.0f} MB)")
        if args.json is not None:
            args.json.write_text(json.dumps({"hours": args.hours, "rate": RATE, "figures": figures}, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")


if __name__ == "__main__":
    main()
