"""Shared test fixtures: the reference tensors made by the authors' original code (tests/fixtures)."""

import json
import os
import random
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


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


# Intra-op threads of every test: reductions (matmul, FFT) are summed in an order that depends on the thread
# count, and the parity tolerances were measured with this many. One thread gives the same order on any machine
# (torch's default is one per core), and on a loaded machine OpenMP's spin-waiting made 2 threads 10-30x slower.
TEST_THREADS = 1


@pytest.fixture(autouse=True)
def _deterministic_torch():
    """Every test starts from the same RNG states and a fixed thread count, and leaves torch's global settings
    (threads, default dtype, grad mode, deterministic algorithms) and the environment as it found them."""
    saved = {
        "threads": torch.get_num_threads(),
        "dtype": torch.get_default_dtype(),
        "grad": torch.is_grad_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "environ": dict(os.environ),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }
    torch.set_num_threads(TEST_THREADS)
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
    torch.set_num_threads(saved["threads"])
    torch.set_default_dtype(saved["dtype"])
    torch.set_grad_enabled(saved["grad"])
    torch.use_deterministic_algorithms(saved["deterministic"])
    if dict(os.environ) != saved["environ"]:
        os.environ.clear()
        os.environ.update(saved["environ"])
    np.random.set_state(saved["numpy_rng"])
    random.setstate(saved["python_rng"])


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for process groups and local servers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
