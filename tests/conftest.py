"""Suite-wide fixtures. x64 and device settings are set here and nowhere else."""

import jax
import numpy as np
import pytest


@pytest.fixture
def x64():
    """Runs the test with 64-bit floats enabled, restoring the previous setting afterwards."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def rng():
    """A seeded NumPy generator: every random input in a test is reproducible."""
    return np.random.default_rng(0)
