"""The checks every optimizer module runs, driven by a table of :class:`Case` rows.

A case builds the transformation from one traced hyperparameter ``hp`` (a learning rate for
aliases, a decay or epsilon for building blocks), names the optax function of the same name
and gives a NumPy float64 implementation of the published rule for one array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol
from tests.helpers import TraceCounter, random_tree

# One array's update rule: (gradients of each step, the fixed parameters, hp) -> updates.
Reference = Callable[[list[np.ndarray], np.ndarray, float], list[np.ndarray]]


@dataclass(frozen=True)
class Case:
    name: str
    ours: Callable[[Any], Any]
    theirs: Callable[[Any], Any] | None
    reference: Reference | None
    hp: float = 0.1
    hp2: float = 0.05
    block: str = ""  # the building block whose state catches a gradient tree of the wrong shape

    def __str__(self) -> str:
        return self.name


def params_case(cases: list[Case]) -> Any:
    """``pytest.mark.parametrize("case", cases)`` with the cases' names as ids."""
    return pytest.mark.parametrize("case", cases, ids=[c.name for c in cases])


def _steps(rng: np.random.Generator, n: int, dtype: Any) -> tuple[Any, list[Any]]:
    params = random_tree(rng, dtype)
    grads = [random_tree(rng, dtype) for _ in range(n)]
    return params, grads


def _small_steps(rng: np.random.Generator, n: int, dtype: Any) -> tuple[Any, list[Any]]:
    """Two leaves (a matrix and a scalar): for the checks that do not test the tree handling
    (the NumPy and optax checks do, on :func:`random_tree`). Compilation time grows with the
    number of leaves, and each new leaf shape compiles every eager operation once more."""

    def tree():
        full = random_tree(rng, dtype)
        return {"w": full["w"], "s": full["s"]}

    return tree(), [tree() for _ in range(n)]


def _run(tx: Any, params: Any, grads: list[Any], update: Any = None) -> list[Any]:
    update = update or tx.update
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = update(g, state, params)
        out.append(u)
    return out


def check_numpy_reference(case: Case, rng: np.random.Generator, steps: int = 4) -> None:
    """float64 optlab (run under the ``x64`` fixture) against the NumPy rule, leaf by leaf.

    Both sides compute in float64 from the same inputs, so only roundoff of differently
    ordered but algebraically equal expressions separates them: rtol 1e-10.
    """
    assert jax.config.jax_enable_x64
    params, grads = _steps(rng, steps, np.float64)
    ours = _run(case.ours(case.hp), params, grads)
    for i, (path, p) in enumerate(jax.tree_util.tree_flatten_with_path(params)[0]):
        g_seq = [np.asarray(jax.tree.leaves(g)[i], np.float64) for g in grads]
        expected = case.reference(g_seq, np.asarray(p, np.float64), case.hp)
        assert len(expected) == steps
        for t, (u, e) in enumerate(zip(ours, expected, strict=True)):
            np.testing.assert_allclose(
                np.asarray(jax.tree.leaves(u)[i]),
                e,
                rtol=1e-10,
                atol=1e-12,
                err_msg=f"{case.name}: leaf {jax.tree_util.keystr(path)}, step {t + 1}",
            )


def check_against_optax(case: Case, rng: np.random.Generator, steps: int = 12) -> None:
    """float32 optlab against optax's function of the same name, over ``steps`` random steps.

    Tolerance: both run in float32 (unit roundoff 6e-8) and evaluate the same formula in a
    different but algebraically equal order (optlab folds the bias corrections into scalars);
    about ten roundings per element per step, accumulated in the moments over 12 steps, stay
    well below rtol 2e-5 (atol 1e-6 covers updates that cancel to near zero).
    """
    params, grads = _steps(rng, steps, np.float32)
    ours = _run(case.ours(case.hp), params, grads)
    theirs = _run(case.theirs(case.hp), params, grads)
    for t, (u, v) in enumerate(zip(ours, theirs, strict=True)):
        assert jax.tree.structure(u) == jax.tree.structure(v)
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True):
            np.testing.assert_allclose(
                np.asarray(a),
                np.asarray(b),
                rtol=2e-5,
                atol=1e-6,
                err_msg=f"{case.name}: step {t + 1}",
            )


def check_jit_and_no_recompile(case: Case, rng: np.random.Generator) -> None:
    """jit equals eager; neither a second call nor a new value of the traced hyperparameter
    recompiles. Same float32 formula both ways, but XLA's fused code may contract
    multiply-adds (FMA) and the hyperparameter is a traced array rather than a constant, so
    the last bits differ; a few ulps, amplified by the cancellation in centered variances
    (n - m^2), stay below rtol 1e-5."""
    params, grads = _small_steps(rng, 3, np.float32)

    def step(hp, g, state, p):
        return case.ours(hp).update(g, state, p)

    counter = TraceCounter(step)
    jitted = jax.jit(counter)
    hp = jnp.asarray(case.hp, jnp.float32)
    state = case.ours(hp).init(params)
    eager = _run(case.ours(case.hp), params, grads)
    for g, e in zip(grads, eager, strict=True):
        u, state = jitted(hp, g, state, params)
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(e), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    jitted(jnp.asarray(case.hp2, jnp.float32), grads[0], state, params)
    assert counter.count == 1, f"{case.name}: recompiled ({counter.count} traces)"


def check_dtype_preserved(case: Case, rng: np.random.Generator, dtype: Any) -> None:
    """Updates come back in the gradients' dtype and stay finite; the state keeps its dtype."""
    params, grads = _small_steps(rng, 2, dtype)
    tx = case.ours(case.hp)
    state = tx.init(params)
    state_dtypes = [x.dtype for x in jax.tree.leaves(state)]
    for g in grads:
        u, state = tx.update(g, state, params)
        for leaf in jax.tree.leaves(u):
            assert leaf.dtype == jnp.dtype(dtype), (case.name, leaf.dtype)
            assert np.all(np.isfinite(np.asarray(leaf, np.float32)))
    assert [x.dtype for x in jax.tree.leaves(state)] == state_dtypes


def check_abstract_init(case: Case, rng: np.random.Generator) -> None:
    """``init`` works on ``jax.ShapeDtypeStruct`` leaves and gives the concrete state's
    structure, shapes and dtypes."""
    params = random_tree(rng, np.float32)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    tx = case.ours(case.hp)
    concrete = tx.init(params)
    from_abstract = tx.init(abstract)
    shaped = jax.eval_shape(tx.init, abstract)
    assert jax.tree.structure(from_abstract) == jax.tree.structure(concrete)
    assert jax.tree.structure(shaped) == jax.tree.structure(concrete)
    for a, b in zip(jax.tree.leaves(shaped), jax.tree.leaves(concrete), strict=True):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)


def check_structure_mismatch(case: Case) -> None:
    """A gradient tree unlike the parameters raises one clear error naming the leaf."""
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    tx = case.ours(case.hp)
    state = tx.init(params)
    with pytest.raises(ValueError, match=rf"{case.block}: .*structure.*'c'"):
        tx.update({"a": jnp.ones(2), "c": jnp.ones(3)}, state, params)


class RuleChecks:
    """The checks every optimizer module runs, as a mixin: subclass it as ``TestRules`` with
    ``CASES`` (and optionally ``MISMATCH_CASES``, the cases whose state can catch a gradient
    tree of the wrong structure; stateless ones cannot). ``tests/optimizers/conftest.py``
    parametrizes ``case`` and ``mismatch_case`` from these class attributes."""

    CASES: tuple[Case, ...] = ()
    MISMATCH_CASES: tuple[Case, ...] | None = None

    def test_numpy_reference(self, case, rng, x64):
        check_numpy_reference(case, rng)

    def test_matches_optax(self, case, rng):
        check_against_optax(case, rng)

    def test_jit_equals_eager_without_recompiling(self, case, rng):
        check_jit_and_no_recompile(case, rng)

    @pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32], ids=["bf16", "f32"])
    def test_dtype_preserved(self, case, dtype, rng):
        check_dtype_preserved(case, rng, dtype)

    def test_float64(self, case, rng, x64):
        check_dtype_preserved(case, rng, jnp.float64)

    def test_abstract_init(self, case, rng):
        check_abstract_init(case, rng)

    def test_structure_mismatch(self, mismatch_case):
        check_structure_mismatch(mismatch_case)


def ema(seq: list[np.ndarray], decay: float, init: float = 0.0, power: int = 1) -> list[Any]:
    """The moving averages :math:`m_t = \\beta m_{t-1} + (1-\\beta) x_t^k`, one per step."""
    m = np.full_like(seq[0], init)
    out = []
    for x in seq:
        m = decay * m + (1 - decay) * x**power
        out.append(m)
    return out


__all__ = [
    "Case",
    "RuleChecks",
    "check_abstract_init",
    "check_against_optax",
    "check_dtype_preserved",
    "check_jit_and_no_recompile",
    "check_numpy_reference",
    "check_structure_mismatch",
    "ema",
    "ol",
    "params_case",
]
