"""Root conftest: reaches the doctests in optlab/ as well as tests/."""

import os

# The suite compiles thousands of small programs and runs each for milliseconds, with one
# pytest worker per core: compile time dominates, and XLA's Eigen thread pool only contends with
# the other worker. So the tests (and the subprocesses and notebook kernels they start, which
# inherit the environment) compile with LLVM's unoptimizing backend and keep Eigen on one
# thread. Neither changes a floating-point result (no fast-math; the HLO passes, fusion
# included, are unchanged). A flag the caller already set in XLA_FLAGS wins; every entry must
# be a `--flag` (XLA stops reading at the first token that is not, silently).
_TEST_XLA_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_multi_thread_eigen=false")
_given = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join(
    [_given, *(f for f in _TEST_XLA_FLAGS if f.split("=")[0] not in _given)]
).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


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
