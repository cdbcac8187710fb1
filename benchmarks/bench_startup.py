"""Start-up time: the command line's `--help` and `--version`, and `import spectrogram_transformers`, against
`import torch, transformers`.

Every figure is the MEDIAN wall time of fresh interpreter processes (interpreter start-up included), the commands
interleaved round by round so a load spike on a shared machine hits all alike. Printed: each median, and the
ratio of `import spectrogram_transformers` to `import torch, transformers` (target: at most 1.25x; the package
imports neither, its registration with transformers runs when transformers' Auto modules are imported, see
`spectrogram_transformers.registration`). Two more lines show what a user of the Auto classes pays: the package
plus `AutoModelForAudioClassification` against `import torch, transformers` plus the same Auto class.

    python benchmarks/bench_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

_AUTO = "from transformers import AutoModelForAudioClassification"
COMMANDS: dict[str, list[str]] = {
    "spectrogram-transformers --help": [sys.executable, "-m", "spectrogram_transformers", "--help"],
    "spectrogram-transformers --version": [sys.executable, "-m", "spectrogram_transformers", "--version"],
    "import spectrogram_transformers": [sys.executable, "-c", "import spectrogram_transformers"],
    "import torch, transformers": [sys.executable, "-c", "import torch, transformers"],
    "  + the Auto class, with the package": [
        sys.executable,
        "-c",
        f"import spectrogram_transformers, torch, transformers; {_AUTO}",
    ],
    "  + the Auto class, without": [sys.executable, "-c", f"import torch, transformers; {_AUTO}"],
    "python -c pass (interpreter alone)": [sys.executable, "-c", "pass"],
}


def time_once(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh processes per command (default 7)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # warm the file cache once, untimed
        time_once(command)
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            times[name].append(time_once(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    width = max(map(len, medians))
    for name, median in medians.items():
        spread = f"(min {min(times[name]):.3f}, max {max(times[name]):.3f})"
        print(f"{name:<{width}}  {median:6.3f} s  {spread}")
    package = medians["import spectrogram_transformers"]
    reference = medians["import torch, transformers"]
    print(
        f"import spectrogram_transformers / import torch, transformers: {package / reference:.2f}x (target <= 1.25x)"
    )
    with_auto = medians["  + the Auto class, with the package"] / medians["  + the Auto class, without"]
    print(f"with the Auto class imported too: {with_auto:.2f}x")


if __name__ == "__main__":
    main()
