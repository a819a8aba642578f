"""optlab.minimize against scipy.optimize.minimize, optax.lbfgs and scikit-learn.

The problems: Rosenbrock in 2 and 100 dimensions, a quadratic of condition number 1e4
(rotated, so it is not separable) and L2-regularized logistic regression on the standardized
breast-cancer data. Function evaluations are counted as SciPy counts them (one call of a
function returning value and gradient) and must stay within 1.5x of SciPy's.
"""

from __future__ import annotations

import flax.nnx as nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import optlab as ol
from tests.helpers import TraceCounter

# ---------------------------------------------------------------------------------------------
# Problems (built lazily inside x64 tests so that they are float64)


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


_Q = np.linalg.qr(np.random.default_rng(0).standard_normal((10, 10)))[0]
_A = _Q @ np.diag(np.logspace(0, 4, 10)) @ _Q.T  # condition number 1e4


def ill_quadratic(x):
    d = x - 1.0
    return 0.5 * d @ jnp.asarray(_A) @ d


PROBLEMS = {
    # 2 and 100 dimensions bracket the family (a 10-dimensional one proved nothing more and
    # cost a compilation per method)
    "rosenbrock2": (rosenbrock, np.array([-1.2, 1.0])),
    "rosenbrock100": (rosenbrock, np.zeros(100)),
    "quadratic_cond1e4": (ill_quadratic, np.zeros(10)),
}
TOL = 1e-6
# SciPy method that each of ours is measured against.
SCIPY_METHOD = {"lbfgs": "L-BFGS-B", "bfgs": "BFGS"}


def scipy_run(f, x0, method):
    value_and_grad = jax.jit(jax.value_and_grad(f))

    def fun(x):
        v, g = value_and_grad(jnp.asarray(x))
        return float(v), np.asarray(g, np.float64)

    # SciPy stops on the inf-norm of the gradient, a weaker test than our 2-norm: if anything
    # this favours SciPy's evaluation count. L-BFGS-B's relative-decrease test is switched off.
    options = {"gtol": TOL, "maxiter": 5000}
    if method == "L-BFGS-B":
        options.update(ftol=0.0, maxfun=50000)
    return scipy.optimize.minimize(fun, x0, jac=True, method=method, options=options)


@pytest.mark.parametrize("problem", list(PROBLEMS), ids=list(PROBLEMS))
@pytest.mark.parametrize("method", ["lbfgs", "bfgs"], ids=["lbfgs", "bfgs"])
def test_matches_scipy_within_1_5x_evaluations(x64, problem, method):
    f, x0 = PROBLEMS[problem]
    ref = scipy_run(f, x0, SCIPY_METHOD[method])
    assert ref.success, ref.message
    result = ol.minimize(f, jnp.asarray(x0), method=method, tol=TOL, max_steps=3000)
    assert bool(result.converged) and not bool(result.failed)
    assert float(result.grad_norm) <= TOL
    # Same minimizer (x* = 1 for both problem families) and value.
    np.testing.assert_allclose(np.asarray(result.params), ref.x, atol=1e-5)
    np.testing.assert_allclose(np.asarray(result.params), np.ones_like(x0), atol=1e-5)
    assert abs(float(result.value) - ref.fun) < 1e-10
    assert int(result.num_fun_evals) <= 1.5 * ref.nfev, (int(result.num_fun_evals), ref.nfev)


def optax_lbfgs_run(f, x0, tol, max_steps):
    """optax.lbfgs in its documented loop; returns (params, evaluations, steps)."""
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(f)

    def cond(carry):
        _, state, k, _ = carry
        grad = optax.tree.get(state, "grad")
        return (k == 0) | ((k < max_steps) & (optax.tree.norm(grad) > tol))

    def body(carry):
        params, state, k, evals = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=f)
        evals = evals + state[-1].info.num_linesearch_steps
        return optax.apply_updates(params, updates), state, k + 1, evals

    run = jax.jit(lambda p: jax.lax.while_loop(cond, body, (p, solver.init(p), 0, 1)))
    params, _, steps, evals = run(x0)
    return params, int(evals), int(steps)


@pytest.mark.parametrize("problem", list(PROBLEMS), ids=list(PROBLEMS))
def test_lbfgs_matches_optax_lbfgs(x64, problem):
    f, x0 = PROBLEMS[problem]
    ref_params, ref_evals, _ = optax_lbfgs_run(f, jnp.asarray(x0), TOL, 3000)
    # method="lbfgs" is ol.lbfgs() with its defaults (and shares the compilation above).
    result = ol.minimize(f, jnp.asarray(x0), method="lbfgs", tol=TOL, max_steps=3000)
    assert bool(result.converged)
    np.testing.assert_allclose(np.asarray(result.params), np.asarray(ref_params), atol=1e-5)
    assert int(result.num_fun_evals) <= 1.5 * ref_evals, (int(result.num_fun_evals), ref_evals)


# ---------------------------------------------------------------------------------------------
# Logistic regression against scikit-learn


def test_logistic_regression_reaches_sklearn_optimum(x64):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    c, n = 0.5, len(y)
    # scikit-learn minimizes C * sum_i log(1 + exp(-y_i z_i)) + |w|^2 / 2 (intercept not
    # penalized); we minimize the same objective divided by C * n (the mean loss).
    clf = LogisticRegression(C=c, solver="lbfgs", tol=1e-12, max_iter=10000).fit(x, y)
    signs = jnp.asarray(2.0 * y - 1.0)
    xj = jnp.asarray(x)

    def objective(p, xs, ys):
        z = xs @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, -ys * z)) + jnp.sum(p["w"] ** 2) / (2 * c * n)

    sk_value = float(
        objective({"w": jnp.asarray(clf.coef_[0]), "b": jnp.asarray(clf.intercept_[0])}, xj, signs)
    )
    x0 = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}
    result = ol.minimize(objective, x0, method="lbfgs", tol=1e-8, max_steps=500, args=(xj, signs))
    assert bool(result.converged)
    assert abs(float(result.value) - sk_value) < 1e-6
    np.testing.assert_allclose(np.asarray(result.params["w"]), clf.coef_[0], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Behaviour of the loop


def quartic(x):
    return jnp.sum((x - 2.0) ** 4 + (x - 2.0) ** 2)


def test_result_fields_and_history():
    x0 = jnp.zeros(3)
    result = ol.minimize(quartic, x0, tol=1e-4, max_steps=50)
    k = int(result.num_steps)
    hist = np.asarray(result.value_history)
    assert hist.shape == (51,)
    assert 0 < k < 50
    assert hist[0] == pytest.approx(float(quartic(x0)))
    assert hist[k] == pytest.approx(float(result.value))
    assert np.all(np.isfinite(hist[: k + 1])) and np.all(np.isnan(hist[k + 1 :]))
    assert np.all(np.diff(hist[: k + 1]) <= 0)  # a line search never increases the value
    grad = jax.grad(quartic)(result.params)
    assert float(result.grad_norm) == pytest.approx(float(jnp.linalg.norm(grad)), rel=1e-4)
    # Evaluations: the one at x0 plus those of the line searches (reused afterwards).
    assert int(result.num_fun_evals) == 1 + int(ol.get(result.state, "num_fun_evals"))


def test_plain_transformation_costs_one_evaluation_per_step_and_has_aux():
    def fun(x):
        return jnp.sum(x**2), {"norm": jnp.linalg.norm(x)}

    result = ol.minimize(
        fun,
        jnp.ones(2),
        method=ol.scale_by_learning_rate(0.25),
        tol=1e-3,
        max_steps=100,
        has_aux=True,
    )
    # Gradient descent on |x|^2 with step 0.25 halves x: |g| = 2 sqrt(2) 2^-k <= 1e-3.
    expected_steps = int(np.ceil(np.log2(2 * np.sqrt(2) / 1e-3)))
    assert int(result.num_steps) == expected_steps
    assert int(result.num_fun_evals) == expected_steps + 2  # + x0 + the aux evaluation
    np.testing.assert_allclose(
        float(result.aux["norm"]), np.sqrt(2) * 0.5**expected_steps, rtol=1e-5
    )


def test_stops_without_taking_a_non_finite_step():
    # Gradient descent with a huge step overflows; minimize keeps the last finite point.
    result = ol.minimize(
        lambda x: jnp.sum(jnp.exp(x**2)),
        jnp.ones(2),
        method=ol.scale_by_learning_rate(10.0),
        max_steps=20,
    )
    assert bool(result.failed) and not bool(result.converged)
    assert np.all(np.isfinite(np.asarray(result.params)))
    assert np.isfinite(float(result.value))


def test_runs_under_vmap_and_reuses_its_compilation():
    counted = TraceCounter(quartic)
    ol.minimize(counted, jnp.zeros(3), tol=1e-4, max_steps=50)
    before = counted.count
    ol.minimize(counted, jnp.ones(3), tol=1e-3, max_steps=50)
    assert counted.count == before  # neither the shape check nor the loop traces again
    starts = jnp.stack([jnp.zeros(3), jnp.full(3, 4.0)])
    results = jax.vmap(lambda x: ol.minimize(quartic, x, tol=1e-4, max_steps=50))(starts)
    np.testing.assert_allclose(np.asarray(results.params), 2.0, atol=1e-2)


def test_nnx_mlp_state_full_batch_lbfgs_beats_first_order_and_minibatches():
    """The seeds' claim, small: full-batch L-BFGS on a Flax MLP reaches a lower training loss
    than Adam with the same number of evaluations, and L-BFGS fed small
    noisy mini-batches does worse than full batch."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = jnp.asarray((x - x.mean(0)) / x.std(0), jnp.float32)[:256]
    y = jnp.asarray(y, jnp.float32)[:256]

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(30, 16, rngs=rngs)
            self.out = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, inputs):
            return self.out(jnp.tanh(self.hidden(inputs)))[:, 0]

    graphdef, params = nnx.split(MLP(nnx.Rngs(0)), nnx.Param)

    def loss(p, xs, ys):
        logits = nnx.merge(graphdef, p)(xs)
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, ys))

    budget = 150
    full = ol.minimize(loss, params, method="lbfgs", tol=1e-7, max_steps=budget, args=(x, y))
    assert int(full.num_fun_evals) <= budget + 30
    assert jax.tree.structure(full.params) == jax.tree.structure(params)
    evals = int(full.num_fun_evals)
    # max_steps = evals - 1: Adam gets the same number of evaluations as L-BFGS used.
    adam = ol.minimize(
        loss, params, method=ol.adam(0.01), tol=1e-7, max_steps=evals - 1, args=(x, y)
    )
    assert float(full.value) < 0.5 * float(adam.value)

    # L-BFGS on mini-batches of 8: one optimizer state fed a different batch at each step.
    tx = ol.lbfgs()
    order = np.random.default_rng(0).permutation(256)

    @jax.jit
    def minibatch_steps(p):
        def step(carry, idx):
            p, state = carry
            xb, yb = x[idx], y[idx]
            value, grad = jax.value_and_grad(loss)(p, xb, yb)
            u, state = tx.update(
                grad, state, p, value=value, grad=grad, value_fn=lambda q: loss(q, xb, yb)
            )
            return (ol.apply_updates(p, u), state), None

        batches = jnp.asarray(np.tile(order, 5)[: 8 * 100].reshape(100, 8))
        (p, _), _ = jax.lax.scan(step, (p, tx.init(p)), batches)
        return p

    noisy = float(loss(minibatch_steps(params), x, y))
    assert float(full.value) < 0.5 * noisy


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tol": 0.0}, ValueError, r"minimize: tol must be > 0, got tol=0.0"),
        ({"tol": -1e-3}, ValueError, r"minimize: tol must be > 0"),
        (
            {"max_steps": 0},
            ValueError,
            r"minimize: max_steps must be an integer >= 1, got max_steps=0",
        ),
        (
            {"method": "sgd"},
            ValueError,
            r"minimize: method must be one of \['bfgs', 'lbfgs', 'newton'\]",
        ),
        # a wrong type is a TypeError (the library's rule), an unknown name a ValueError
        (
            {"method": 3},
            TypeError,
            r"minimize: method must be one of .* or a gradient transformation.*got method=3",
        ),
    ],
    ids=["zero_tol", "negative_tol", "zero_steps", "unknown_method", "not_a_method"],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ol.minimize(quartic, jnp.zeros(2), **kwargs)


def test_bad_objectives():
    with pytest.raises(ValueError, match=r"minimize: fun must return a scalar, got \(2,\)"):
        ol.minimize(lambda x: x**2, jnp.zeros(2))
    with pytest.raises(ValueError, match=r"pass has_aux=True"):
        ol.minimize(lambda x: (jnp.sum(x), x), jnp.zeros(2))
    with pytest.raises(ValueError, match=r"minimize: the objective is not finite at x0"):
        ol.minimize(lambda x: jnp.sum(jnp.log(x)), -jnp.ones(2))
    with pytest.raises(ValueError, match=r"every leaf of x0 must be a floating array"):
        ol.minimize(lambda x: jnp.sum(x), jnp.zeros(2, jnp.int32))
