"""Utilities shared by the tests of every area."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def random_tree(rng: np.random.Generator, dtype: Any = np.float32, scale: float = 1.0) -> dict:
    """A small nested pytree of random arrays: a matrix, a vector, a scalar and a nested dict."""

    def arr(*shape):
        return jnp.asarray(scale * rng.standard_normal(shape), dtype)

    return {"w": arr(3, 4), "b": arr(4), "s": arr(), "inner": {"k": arr(2, 3, 2)}}


def to_numpy64(tree: Any) -> Any:
    """Every leaf as a float64 NumPy array (the reference implementations' precision)."""
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def assert_trees_close(actual: Any, expected: Any, *, rtol: float, atol: float) -> None:
    """Leafwise ``np.testing.assert_allclose`` after checking the tree structures agree."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected), (
        jax.tree.structure(actual),
        jax.tree.structure(expected),
    )
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(
            np.asarray(a, np.float64), np.asarray(e, np.float64), rtol=rtol, atol=atol
        )


class TraceCounter:
    """Wraps a function so that each trace (compilation) by ``jax.jit`` is counted.

    Examples: ``f = TraceCounter(step); jitted = jax.jit(f); ...; assert f.count == 1``.
    """

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.fn(*args, **kwargs)


def run_transformation(
    tx: Any, grads_seq: list[Any], params: Any, jit: bool = False, **extra_args: Any
) -> tuple[list[Any], Any]:
    """Applies ``tx`` to a sequence of gradients, moving ``params``; returns the params after
    each step and the final state."""
    from optlab import apply_updates

    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    trajectory = []
    for g in grads_seq:
        u, state = update(g, state, params, **extra_args)
        params = apply_updates(params, u)
        trajectory.append(params)
    return trajectory, state


def run_job(module: str, *args: Any, timeout: float = 600, env: dict | None = None) -> None:
    """Runs ``python -m module *args`` in a process of its own, from the repository root, on
    CPU (``JAX_PLATFORMS=cpu``, the tests importable), and fails the test with the tail of the
    job's stderr unless it exits with 0.

    For the runs a test process cannot host (a simulated device count is fixed when JAX
    starts) or that must start afresh (resuming in a new process). ``env`` adds variables.
    """
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{module} failed:\n{proc.stderr[-3000:]}"
