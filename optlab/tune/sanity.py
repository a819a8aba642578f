r"""Babysitting before training: the checks that catch a broken setup in seconds.

CS231n's "Choosing Hyperparameters" starts with checks, before any search: the initial loss
(:math:`\log C` for a softmax over :math:`C` classes, each class at :math:`1/C`), a
regularization term that raises the loss, a small sample the model can overfit (loss not going
down: learning rate too low or a bad initialization; exploding to NaN: too high). Karpathy's
"Recipe for Training Neural Networks" adds an input-independent baseline (zeroed inputs must do
worse than real ones, else the model learns nothing from its inputs) and a dependency check by
backpropagation (example :math:`i`'s loss must not depend on example :math:`j`'s input).

:func:`sanity_checks` runs them all and returns a table of verdicts:

===============================  ===============================================================
``initial_loss``                 :math:`|L_0 - \log C| \le 0.1 \log C` (training mode, untrained)
``l2_raises_loss``               :math:`L_0 + \tfrac{\lambda}{2}\sum_{W} \|W\|^2 > L_0` (weight
                                 matrices; all-zero weights fail it)
``overfit_small_sample``         20 examples, full batch, ``overfit_steps`` steps of ``tx``: the
                                 mean loss of the last 10 steps :math:`\le 0.05\,L_0`
``input_independent_baseline``   trained ``baseline_epochs`` on real and on zeroed inputs (one
                                 vmapped program): held-out loss real / zeroed :math:`\le 0.95`
``per_example_independence``     evaluation mode, for the model's outputs :math:`f_i` by the
                                 inputs and the losses :math:`\ell_i` by the outputs:
                                 :math:`\max_{i \ne j} |\partial f_i / \partial x_j| \le
                                 10^{-6} \max_i |\partial f_i / \partial x_i|` (and likewise)
``no_nan_first_steps``           the first ``nan_steps`` steps of ``tx`` on the data (unguarded)
                                 give finite losses and parameters
===============================  ===============================================================

Everything runs on copies: the model and ``tx`` are unchanged.

References:
  CS231n, "Training Neural Networks", Choosing Hyperparameters (steps 1 and 2).
  Karpathy, "A Recipe for Training Neural Networks", 2019,
  https://karpathy.github.io/2019/04/25/recipe/.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import check_int_range, check_nonnegative, check_number, describe_value
from optlab.data.batching import Batches, batches
from optlab.data.splits import train_val_split
from optlab.nn.losses import l2_penalty
from optlab.train.evaluation import as_arrays, eval_batches, resolve_batch_size
from optlab.train.step import check_loss, scan_epoch, weighted_mean
from optlab.transforms.regularization import decay_mask
from optlab.tune.lr_find import base_state
from optlab.tune.population import Population, engine_steps, replicate

ADVICE = {
    "initial_loss": (
        "an untrained classifier should give each class about 1/C, a loss of log C: a much "
        "larger loss means weights too large at the output (scale the last layer down), a "
        "loss on the wrong axis, or probabilities passed where logits are expected"
    ),
    "l2_raises_loss": (
        "the penalty left the loss unchanged: the weight matrices are all zero (a zero "
        "initialization makes every unit of a layer identical: use he_normal or glorot) or "
        "the model has none"
    ),
    "overfit_small_sample": (
        "the model cannot overfit 20 examples: loss not going down means a learning rate too "
        "low or a bad initialization; a loss that explodes, a learning rate too high; else a "
        "model too small or a bug in the loss or the labels"
    ),
    "input_independent_baseline": (
        "the model does no better with its inputs than with zeros: it learns nothing from "
        "them (labels shuffled or misaligned with the inputs, inputs not reaching the model, "
        "or training too short)"
    ),
    "per_example_independence": (
        "example i's loss depends on example j's input: something mixes the batch (a "
        "reshape or transpose across the batch axis, a softmax or normalization over axis 0 "
        "instead of the last, a layer left in training mode at evaluation)"
    ),
    "no_nan_first_steps": (
        "the loss or the parameters became NaN or infinite in the first steps: a learning "
        "rate too high, a bad initialization, or NaN in the data"
    ),
}


@dataclasses.dataclass(frozen=True)
class Check:
    """One verdict of :func:`sanity_checks`.

    Attributes:
      name: the check.
      value: what was measured.
      rule: what passing means, in words.
      passed: True, False, or None when the check does not apply.
      advice: what to do when it fails (or why it did not apply).
    """

    name: str
    value: float
    rule: str
    passed: bool | None
    advice: str


@dataclasses.dataclass
class SanityReport:
    """The verdicts of :func:`sanity_checks`, in order; ``str(report)`` is the table."""

    checks: list[Check]

    @property
    def passed(self) -> bool:
        """True when no check failed (checks that do not apply do not count)."""
        return all(c.passed is not False for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.passed is False]

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"SanityReport: no check {name!r}; checks: {[c.name for c in self.checks]}")

    def table(self) -> list[dict[str, Any]]:
        """One dict per check (JSON-able)."""
        return [
            {
                "check": c.name,
                "value": c.value if math.isfinite(c.value) else None,
                "rule": c.rule,
                "verdict": {True: "pass", False: "FAIL", None: "n/a"}[c.passed],
                "advice": "" if c.passed else c.advice,
            }
            for c in self.checks
        ]

    def __str__(self) -> str:
        lines = [f"{'check':<28} {'value':>10}  {'verdict':<7} rule"]
        for row in self.table():
            value = "-" if row["value"] is None else f"{row['value']:.4g}"
            lines.append(f"{row['check']:<28} {value:>10}  {row['verdict']:<7} {row['rule']}")
            if row["advice"]:
                lines.append(f"{'':<28} {'':>10}  {'':<7} -> {row['advice']}")
        return "\n".join(lines)


def _num_classes(y: np.ndarray, out_dim: int) -> int | None:
    if y.ndim == 2 and y.shape[1] > 1:
        return int(y.shape[1])
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return max(int(y.max()) + 1, out_dim)
    return None


# Each stage below is one compiled program (the state, data, rows and keys are arguments, so a
# second call with the same shapes reuses it): eager steps would compile a small program per
# operation and shape.
@functools.partial(jax.jit, static_argnames=("n",))
def _order(key, *, n):
    return jax.random.permutation(jax.random.fold_in(key, 1), n)


@functools.partial(jax.jit, static_argnames=("loss",))
def _mean_loss(state, x, y, rows, key, *, loss):
    """The mean loss of the rows ``rows`` (training mode) and the model's outputs."""
    out, _ = state.apply(state.params, state.model_state, x[rows], train=True, rng=key)
    return weighted_mean(loss(out, y[rows]), None), out


@jax.jit
def _l2(params):
    return l2_penalty(params, mask=decay_mask)


@functools.partial(jax.jit, static_argnames=("step_fn", "steps", "tail"))
def _overfit(step_fn, state, x, y, rows, *, steps, tail):
    batch = Batches(x[rows], y[rows], jnp.ones((rows.shape[0],), jnp.float32))

    def repeat(k):
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (k, *a.shape)), batch)

    state, _ = scan_epoch(step_fn, state, repeat(steps - tail))
    _, logs = scan_epoch(step_fn, state, repeat(tail))
    return logs["loss"]


@functools.partial(jax.jit, static_argnames=("step_fn", "batch_size", "steps"))
def _first_steps(step_fn, state, x, y, key, *, batch_size, steps):
    stacked = batches(x, y, batch_size, key, drop_remainder=True)
    stacked = jax.tree.map(lambda a: a[:steps], stacked)

    def body(st, batch):
        st, logs = step_fn(st, batch)
        return st, logs["loss"]

    state, losses = jax.lax.scan(body, state, stacked)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(state.params)]))
    return losses, finite


def _mixing(jac: jax.Array, b: int, out_ndim: int) -> jax.Array:
    """``[max_{i != j}, max_i]`` of ``|d f_i / d z_j|`` for a Jacobian of shape ``out + in``
    whose output and input shapes both start with the batch axis ``B``."""
    mags = jnp.abs(jnp.moveaxis(jac, out_ndim, 1)).reshape(b, b, -1).max(axis=2)
    eye = jnp.eye(b, dtype=bool)
    return jnp.stack([jnp.max(jnp.where(eye, 0.0, mags)), jnp.max(jnp.where(eye, mags, 0.0))])


@functools.partial(jax.jit, static_argnames=("loss",))
def _mixings(state, x, y, rows, *, loss):
    """The rows ``[off-diagonal, diagonal]`` of :func:`_mixing` on the rows ``rows`` for the
    model (outputs by inputs, evaluation mode) and for the loss (per-example losses by outputs),
    or None when the model's output is not an array or the loss not one value per example."""
    x, y = x[rows], y[rows]

    def model(xb):
        out, _ = state.apply(state.params, state.model_state, xb, train=False)
        return out

    out = model(x)
    values = loss(out, y)
    b = x.shape[0]
    if not isinstance(out, jax.Array) or jnp.ndim(values) != 1 or jnp.shape(values)[0] != b:
        return None
    by_inputs = _mixing(jax.jacrev(model)(x), b, out.ndim)
    by_outputs = _mixing(jax.jacrev(lambda o: jnp.asarray(loss(o, y), jnp.float32))(out), b, 1)
    return jnp.stack([by_inputs, by_outputs])


def _independence(state, x, y, rows, loss) -> tuple[float, bool | None]:
    """The largest ``max_{i != j} |d f_i / d z_j| / max_i |d f_i / d z_i|`` of the model
    (outputs by inputs, evaluation mode) and of the loss (per-example losses by outputs), and
    whether it applies (None: no gradient to measure, e.g. a zero-initialized layer)."""
    mixings = _mixings(state, x, y, rows, loss=loss)
    if mixings is None:
        return math.nan, False
    ratios = [float(off) / float(diagonal) for off, diagonal in np.asarray(mixings) if diagonal > 0]
    return (max(ratios), True) if ratios else (math.nan, None)


def sanity_checks(
    model: nnx.Module,
    tx: Any,
    data: Any,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    num_classes: int | None = None,
    expected_initial_loss: float | None = None,
    validation_data: Any = None,
    batch_size: int = 32,
    seed: int = 0,
    l2: float = 1e-2,
    overfit_examples: int = 20,
    overfit_steps: int = 300,
    baseline_epochs: int = 1,
    nan_steps: int = 10,
) -> SanityReport:
    """Runs the babysitting checks (see the module docstring) and returns their verdicts.

    Args:
      model: an nnx model (not modified).
      tx: the gradient transformation to check (not modified).
      data: ``(x, y)`` or a dataset (its training split).
      loss: per-example loss, as for :func:`optlab.fit`.
      num_classes: C for the initial-loss check (default: from integer labels or one-hot
        targets, at least the model's output width).
      expected_initial_loss: the initial loss to expect instead of :math:`\\log C` (another
        loss than the softmax cross-entropy, or a regression).
      validation_data: held-out ``(x, y)`` for the baseline check (default: a stratified 20%
        of ``data``).
      batch_size: rows per step.
      seed: the data order, dropout and the split.
      l2: the penalty's coefficient :math:`\\lambda`.
      overfit_examples: the small sample's size.
      overfit_steps: its full-batch steps (>= 20).
      baseline_epochs: epochs of the two baseline runs.
      nan_steps: steps watched for NaN.

    Returns:
      A :class:`SanityReport` (``report.passed``, ``report.failed``, ``str(report)``).

    Examples:
      >>> ds = ol.data.load("digits")
      >>> model = ol.nn.MLP(64, (32,), 10, kernel_init="glorot_uniform", rngs=0)
      >>> report = ol.tune.sanity_checks(model, ol.adam(1e-2), ds,
      ...                                loss=ol.nn.softmax_cross_entropy_with_integer_labels)
      >>> print(report.passed, [c.name for c in report.failed])
      True []
    """
    fn = "sanity_checks"
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(model).__name__}")
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"{fn}: tx must be a gradient transformation with init and update, got "
            f"{describe_value(tx)}"
        )
    check_loss(fn, loss)
    if num_classes is not None:
        check_int_range(fn, "num_classes", num_classes, 2)
    if expected_initial_loss is not None:
        check_number(fn, "expected_initial_loss", expected_initial_loss)
    check_int_range(fn, "batch_size", batch_size, 1)
    check_int_range(fn, "seed", seed, 0)
    check_nonnegative(fn, "l2", l2)
    check_int_range(fn, "overfit_examples", overfit_examples, 1)
    check_int_range(fn, "overfit_steps", overfit_steps, 20)
    check_int_range(fn, "baseline_epochs", baseline_epochs, 1)
    check_int_range(fn, "nan_steps", nan_steps, 1)
    x, y = as_arrays(fn, data, "data")
    n = int(x.shape[0])
    state = base_state(model, tx, seed)
    key = jax.random.key(seed)
    order = np.asarray(_order(key, n=n))
    checks = []

    # 1. initial loss, 2. L2 raises it (training mode, one batch, the same masks)
    rows = order[: min(n, 512)]
    initial, out = _mean_loss(state, x, y, rows, key, loss=loss)
    initial = float(initial)
    classes = num_classes or _num_classes(np.asarray(y), int(np.shape(out)[-1]))
    expected = (
        expected_initial_loss
        if expected_initial_loss is not None
        else (math.log(classes) if classes else None)
    )
    if expected is None:
        checks.append(
            Check(
                "initial_loss",
                initial,
                "needs C classes or expected_initial_loss",
                None,
                "not a classification task: pass expected_initial_loss=",
            )
        )
    else:
        ok = abs(initial - expected) <= 0.1 * abs(expected)
        what = "log C" if expected_initial_loss is None else "expected_initial_loss"
        checks.append(
            Check(
                "initial_loss",
                initial,
                f"within 10% of {what} = {expected:.4g}",
                ok,
                ADVICE["initial_loss"],
            )
        )
    penalty = float(l2) * float(_l2(state.params))  # weight matrices
    checks.append(
        Check(
            "l2_raises_loss",
            penalty,
            f"L0 + {l2:g}/2 sum W^2 > L0",
            penalty > 1e-12 * max(1.0, abs(initial)),
            ADVICE["l2_raises_loss"],
        )
    )

    # 3. overfit a small sample
    step_fn, eval_fn = engine_steps(loss)
    k = min(overfit_examples, n)
    small = order[:k]
    start = float(_mean_loss(state, x, y, small, key, loss=loss)[0])
    final = float(_overfit(step_fn, state, x, y, small, steps=overfit_steps, tail=10))
    ratio = final / start if start > 0 else math.nan
    checks.append(
        Check(
            "overfit_small_sample",
            ratio,
            f"{k} examples, {overfit_steps} steps: last loss <= 5% of the first",
            math.isfinite(ratio) and ratio <= 0.05,
            ADVICE["overfit_small_sample"],
        )
    )

    # 4. input-independent baseline (two members in one vmapped program)
    checks.append(
        _baseline(
            fn, state, x, y, validation_data, step_fn, eval_fn, batch_size, seed, baseline_epochs
        )
    )

    # 5. per-example independence (evaluation mode)
    b = min(8, n)
    if jnp.issubdtype(x.dtype, jnp.floating):
        mixing, applies = _independence(state, x, y, order[:b], loss)
        if applies is False:
            advice = "the loss returns a scalar: return per-example values to run this check"
        elif applies is None:
            advice = (
                "every gradient is zero at initialization (a zero-initialized layer): nothing "
                "to measure"
            )
        else:
            advice = ADVICE["per_example_independence"]
        checks.append(
            Check(
                "per_example_independence",
                mixing,
                "max off-diagonal / diagonal gradient <= 1e-6 (model and loss)",
                (mixing <= 1e-6) if applies else None,
                advice,
            )
        )
    else:
        checks.append(
            Check(
                "per_example_independence",
                math.nan,
                "floating inputs",
                None,
                "integer inputs: no gradient with respect to them",
            )
        )

    # 6. no NaN in the first steps (unguarded steps)
    raw_step, _ = engine_steps(loss, skip_nonfinite=False)
    size = min(batch_size, n)
    steps = min(nan_steps, n // size)
    losses, finite = _first_steps(raw_step, state, x, y, key, batch_size=size, steps=steps)
    bad = np.flatnonzero(~np.isfinite(np.asarray(losses)))
    first_bad = float(bad[0] + 1) if len(bad) else (0.0 if bool(finite) else float(steps))
    checks.append(
        Check(
            "no_nan_first_steps",
            first_bad,
            f"{steps} steps: 0 = finite throughout, else the first bad step",
            first_bad == 0.0,
            ADVICE["no_nan_first_steps"],
        )
    )
    return SanityReport(checks)


@functools.partial(jax.jit, static_argnames=("size",))
def _baseline_members(state, xt, yt, xv, yv, key, *, size):
    """The two members of the baseline (real inputs, zeroed inputs), stacked: their states,
    keys, training data and held-out batches (fresh buffers, which the population donates)."""
    val = eval_batches(xv, yv, size)
    zero_val = val._replace(x=jnp.zeros_like(val.x))
    return (
        replicate(state, 2),
        replicate(key, 2),
        jnp.stack([xt, jnp.zeros_like(xt)]),
        jnp.stack([yt, yt]),
        jax.tree.map(lambda a, b: jnp.stack([a, b]), val, zero_val),
    )


def _baseline(fn, state, x, y, validation_data, step_fn, eval_fn, batch_size, seed, epochs):
    if validation_data is not None:
        xv, yv = as_arrays(fn, validation_data, "validation_data")
        xt, yt = x, y
    else:
        stratify = jnp.issubdtype(y.dtype, jnp.integer) and y.ndim == 1
        try:
            (xt, yt), (xv, yv) = train_val_split(
                np.asarray(x), np.asarray(y), 0.2, seed=seed, stratify=bool(stratify)
            )
        except ValueError:
            return Check(
                "input_independent_baseline",
                math.nan,
                "held-out data",
                None,
                "too few rows to hold some out: pass validation_data=",
            )
    size = resolve_batch_size(fn, "batch_size", None, int(xv.shape[0]))
    states, keys, x2, y2, val2 = _baseline_members(
        state, xt, yt, xv, yv, jax.random.key(seed), size=size
    )
    population = Population(
        states,
        keys,
        step_fn=step_fn,
        eval_fn=eval_fn,
        x=x2,
        y=y2,
        val=val2,
        batch_size=min(batch_size, int(xt.shape[0])),
        member_data=True,
    )
    population.run(epochs)
    real = population.histories[0]["val_loss"][-1]
    zeros = population.histories[1]["val_loss"][-1]
    ratio = real / zeros if zeros > 0 else math.nan
    return Check(
        "input_independent_baseline",
        ratio,
        f"held-out loss with real inputs / with zeros <= 0.95 after {epochs} epoch(s)",
        math.isfinite(ratio) and ratio <= 0.95,
        ADVICE["input_independent_baseline"],
    )
