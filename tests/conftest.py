"""Shared test fixtures: the reference tensors made by the authors' original code (tests/fixtures)."""

import json
from pathlib import Path

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


@pytest.fixture(autouse=True)
def _deterministic_torch():
    """Every test starts from the same RNG state and a fixed thread count (parity tolerances assume it)."""
    torch.manual_seed(0)
    yield
