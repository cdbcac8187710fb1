"""The reference tensors made by the authors' original code (tests/fixtures), and small test utilities."""

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS_DIR.parent
FIXTURES_DIR = TESTS_DIR / "fixtures"
AUDIO_FIXTURES_DIR = FIXTURES_DIR / "audio"

# Intra-op threads of every test: reductions (matmul, FFT) are summed in an order that depends on the thread
# count, and the parity tolerances were measured with this many. One thread gives the same order on any machine
# (torch's default is one per core), and on a loaded machine OpenMP's spin-waiting made 2 threads 10-30x slower.
TEST_THREADS = 1


def fixture_path(name: str) -> Path:
    """Path of a reference fixture file; fails loudly (never skips) when the fixtures are missing."""
    path = FIXTURES_DIR / name
    if not path.exists():
        pytest.fail(
            f"reference fixture {path} is missing from the repository's tests/fixtures/ "
            "(a partial checkout or a Git LFS pointer?)"
        )
    return path


def load_fixture(name: str) -> dict[str, torch.Tensor]:
    """All tensors of `<name>.safetensors` (name without the suffix)."""
    return load_file(str(fixture_path(f"{name}.safetensors")))


def fixture_info(name: str) -> dict:
    """The generator's JSON `info` metadata of a fixture file (constructor arguments, seeds, tolerances)."""
    with safe_open(str(fixture_path(f"{name}.safetensors")), framework="pt") as handle:
        return json.loads(handle.metadata()["info"])


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for process groups and local servers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
