"""Root conftest: reaches the doctests in optlab/ as well as tests/."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    """``jax``, ``jnp``, ``np`` and ``ol``/``optlab`` are available in every doctest."""
    import optlab

    doctest_namespace.update(jax=jax, jnp=jnp, np=np, optlab=optlab, ol=optlab)
