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


# The suite's longest tests, longest first. ``pytest -n auto`` hands tests to its workers in
# collection order; one of these collected last would run alone while the other workers sit
# idle, so they are moved to the front (longest-processing-time-first scheduling). Everything
# else keeps its collection order.
_LONGEST_FIRST = (
    "tests/compat/test_optax_suite.py",
    "tests/test_notebooks.py",
    "tests/test_docs.py",
    "tests/train/test_sharding",
    "tests/train/test_distributed.py",
    "tests/cli/test_bench.py",
    "tests/benchmarks/",
    "tests/cli/test_tune_cli.py",
    "tests/cli/test_subprocess.py",
    "tests/cli/test_diagnose.py",
    "tests/fuzz/",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        path = item.nodeid
        return next(
            (i for i, prefix in enumerate(_LONGEST_FIRST) if path.startswith(prefix)),
            len(_LONGEST_FIRST),
        )

    items.sort(key=rank)  # stable: the order within each group is kept
