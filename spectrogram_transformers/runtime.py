"""What the machine running inference can do fast: the facts a default dtype is chosen from."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

__all__ = ["BF16_CPU_FLAGS", "cpu_bf16_flags", "cpu_supports_bf16", "describe_cpu"]

# CPU feature flags (as /proc/cpuinfo spells them) of instructions that compute in bfloat16: x86's AVX512-BF16
# and AMX-BF16, Arm's BF16 extension. oneDNN also "supports" bf16 on plain AVX512 CPUs by emulation, which is
# slower than float32, so `torch.ops.mkldnn._is_mkldnn_bf16_supported()` is not the test to use.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> tuple[str, ...]:
    """The bf16 flags the CPU reports (first processor of `/proc/cpuinfo`, or the given text), in BF16_CPU_FLAGS order."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not path.is_file():
            return ()
        cpuinfo = path.read_text(errors="replace")
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):  # x86 "flags", Arm "Features"
            present = set(value.split())
            return tuple(flag for flag in BF16_CPU_FLAGS if flag in present)
    return ()


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16, AMX-BF16 or Arm BF16).

    Reads /proc/cpuinfo on Linux; on Apple silicon (M2 and later have BF16) and elsewhere without that file it
    answers False, so float32 stays the default there.
    """
    if platform.system() != "Linux":
        return False
    return bool(cpu_bf16_flags())


def describe_cpu() -> str:
    """The CPU model and the bf16-related flags lscpu reports (/proc/cpuinfo's when lscpu is missing).

    What the benchmarks print beside their figures: bf16 is only fast with AVX512-BF16 or AMX.
    """
    try:
        report = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return f"/proc/cpuinfo bf16 flags: {' '.join(cpu_bf16_flags()) or 'none'}"
    lines = report.splitlines()
    flags = next((line for line in lines if line.startswith("Flags:")), "")
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name:")), "?")
    found = [flag for flag in flags.split() if "bf16" in flag or flag.startswith("amx")]
    return f"{model}; lscpu bf16 flags: {' '.join(found) or 'none'}"
