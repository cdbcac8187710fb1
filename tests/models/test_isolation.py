"""conftest's autouse fixture gives every test the same thread count and RNG state, and undoes what a test
changes in torch's global settings and the environment (these two tests run in this order)."""

import os

import pytest
import torch

from testing_utils.fixtures import TEST_THREADS


@pytest.fixture(scope="module")
def threads_between_tests():
    """A thread count set outside the tests (module scope: before the per-test fixture, undone after it), which the
    per-test fixture must hand back."""
    original = torch.get_num_threads()
    outside = TEST_THREADS + 2
    torch.set_num_threads(outside)
    yield outside
    restored = torch.get_num_threads()
    torch.set_num_threads(original)
    assert restored == outside, "the per-test fixture did not restore the thread count"


def test_a_test_that_changes_global_state(threads_between_tests):
    assert torch.get_num_threads() == TEST_THREADS
    torch.set_num_threads(1 if TEST_THREADS != 1 else 3)
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    os.environ["SPECTROGRAM_TRANSFORMERS_ISOLATION_PROBE"] = "1"


def test_the_next_test_finds_it_restored(threads_between_tests):
    assert torch.get_num_threads() == TEST_THREADS
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert "SPECTROGRAM_TRANSFORMERS_ISOLATION_PROBE" not in os.environ
    assert torch.initial_seed() == 0
