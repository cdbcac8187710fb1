"""Every test starts from the same RNG states and thread count (helpers live in `testing_utils`, not here)."""

import os
import random

import numpy as np
import pytest
import torch

from testing_utils.fixtures import TEST_THREADS


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
