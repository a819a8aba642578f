r"""The learning-rate range test: one ``lax.scan`` over an exponential ramp of learning rates.

Step :math:`t = 0, \ldots, T-1` trains on one mini-batch with

.. math::

    \eta_t = \eta_{\min} \left(\frac{\eta_{\max}}{\eta_{\min}}\right)^{t/(T-1)}, \qquad
    a_t = \beta a_{t-1} + (1 - \beta)\,L_t, \qquad \bar L_t = \frac{a_t}{1 - \beta^{t+1}}

(the injected learning rate set before each step, :math:`a_{-1} = 0`, :math:`\bar L_t` the
bias-corrected exponential moving average of the batch losses), and stops counting at the first
step where :math:`\bar L_t > \kappa \min_{s \le t} \bar L_s` (:math:`\kappa` =
``diverge_factor``) or the loss is not finite; later steps are skipped. The test is pure: it
trains a copy of the arrays, so the model, its BatchNorm statistics and RNG streams, its mode,
and the transformation are exactly as before.

Suggestions, all read off the smoothed curve of the counted steps as a function of
:math:`u = \log_{10}\eta`, with the slope :math:`D(u) = d\bar L / du` (central differences):

- ``steep``: the steepest descent, :math:`\arg\min_u D(u)`.
- ``minimum``: the learning rate of the lowest smoothed loss, divided by 10.
- ``valley``: the middle (in :math:`u`) of the longest stretch of consecutive steps over which
  the loss falls at least 5% as fast as at its steepest, :math:`D(u) \le 0.05\,D_{\min}`.
- ``slide``: sliding down from the minimum towards smaller rates, the first learning rate at
  which the loss falls at least half as fast as at its steepest, :math:`D(u) \le 0.5\,D_{\min}`:
  the largest rate still on the steep part of the curve.

fastai's suggestions (its documentation, ``LRFinder``) name the same ideas on its own curve:
``minimum`` is the same rule; ``steep`` is the steepest slope of the loss against
:math:`\log\eta`; its ``valley`` is the middle of the longest *decreasing subsequence* of the
loss (not necessarily consecutive steps) and its ``slide`` slides from the divergence end until
the slopes at two points 15 steps apart differ by less than a threshold. The definitions here
use consecutive steps and thresholds relative to the steepest slope, so they do not depend on
the loss's scale or on the number of steps. Slopes are read from step :math:`\max(2,
\lfloor n/10 \rfloor)` of the :math:`n` counted steps on: the first averages rest on a few
batches, and their jumps are noise. The slope is taken against :math:`\log_{10}\eta`
(Lightning's suggestion once differentiated against the step index, #14248).

``verify=True`` then trains :math:`\{s/3, s, 3s\}` around each suggestion :math:`s` for
``verify_epochs`` epochs from the model's weights, all candidates in one vmapped program (each
exactly as ``optlab.fit`` would train it), and returns the candidate with the lowest final
validation loss (the training data's, in evaluation mode, without ``validation_data``): the
learning rate to take.

References:
  Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
  CS231n, "Choosing Hyperparameters", step 3: find a learning rate that makes the loss drop.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import (
    check_bool,
    check_in_range,
    check_int_range,
    check_positive,
    describe_value,
)
from optlab.data.batching import batches
from optlab.nn.apply import functional
from optlab.schedules.inject import inject_hyperparams, set_hyperparams
from optlab.train.evaluation import as_arrays, eval_batches, resolve_batch_size
from optlab.train.fit import epoch_keys
from optlab.train.state import TrainState
from optlab.train.step import check_loss
from optlab.tune.population import Population, engine_steps, replicate

VALLEY_FRACTION = 0.05
SLIDE_FRACTION = 0.5
SUGGESTIONS = ("valley", "steep", "minimum", "slide")


@dataclasses.dataclass
class LRFindResult:
    """The range test's curve, its suggestions and (with ``verify``) the measured winner.

    Attributes:
      lrs: the learning rate of each step, ``(num_steps,)``.
      losses: the batch loss of each step (NaN after the test stopped counting).
      smoothed: the bias-corrected smoothed loss (NaN after the test stopped counting).
      num_counted: the steps counted (before the loss diverged).
      suggestions: ``{"valley", "steep", "minimum", "slide"}`` -> learning rate (NaN when the
        curve never falls).
      verified: the candidate that trained best (with ``verify=True``), else None.
      verification: one dict per candidate: ``lr``, ``from`` (the suggestions it surrounds),
        ``val_loss`` (final).
      title: a label for plots.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    num_counted: int
    suggestions: dict[str, float]
    verified: float | None = None
    verification: list[dict[str, Any]] | None = None
    title: str = ""

    @property
    def suggestion(self) -> float:
        """The verified learning rate when there is one, else the ``valley`` suggestion."""
        return self.verified if self.verified is not None else self.suggestions["valley"]

    def plot(self, ax: Any = None):
        """The curve (log axis) with the suggestions marked; returns the ``Figure``."""
        from optlab.tune.plots import plot_lr_find

        return plot_lr_find(self, ax)


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> dict[str, float]:
    """The four suggestions of a smoothed curve (see the module docstring), in NumPy.

    Args:
      lrs: increasing learning rates (the counted steps).
      smoothed: the smoothed loss at each.

    Returns:
      ``{"valley", "steep", "minimum", "slide"}`` -> learning rate; NaN for every one when
      fewer than 5 steps were counted or the loss never falls.

    Examples:
      >>> lrs = np.logspace(-5, 0, 51)
      >>> curve = 2.0 - np.tanh(np.log10(lrs) + 2.5)   # falls fastest at 10**-2.5
      >>> s = suggest(lrs, curve)
      >>> print(f"{s['steep']:.2g} {s['minimum']:.2g}")
      0.0032 0.1
    """
    lrs = np.asarray(lrs, np.float64)
    loss = np.asarray(smoothed, np.float64)
    nan = dict.fromkeys(SUGGESTIONS, math.nan)
    if len(loss) < 5 or not np.all(np.isfinite(loss)):
        return nan
    u = np.log10(lrs)
    slope = np.gradient(loss, u)
    skip = max(2, len(loss) // 10)  # the first averages rest on a few batches: no slopes there
    i_steep = skip + int(np.argmin(slope[skip:]))
    steepest = slope[i_steep]
    if not steepest < 0:
        return nan
    i_min = int(np.argmin(loss))
    falling = slope <= VALLEY_FRACTION * steepest
    falling[:skip] = False
    best_start, best_len, start = 0, 0, None
    for i, f in enumerate([*falling, False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = None
    valley = 10.0 ** ((u[best_start] + u[best_start + best_len - 1]) / 2)
    slide = lrs[i_steep]
    for i in range(i_min, skip - 1, -1):
        if slope[i] <= SLIDE_FRACTION * steepest:
            slide = lrs[i]
            break
    return {
        "valley": float(valley),
        "steep": float(lrs[i_steep]),
        "minimum": float(lrs[i_min] / 10.0),
        "slide": float(slide),
    }


def as_injected(fn: str, tx: Any, params: Any, initial: float) -> tuple[Any, str]:
    """``(transformation, name)``: ``tx`` made to read its learning rate from its state.

    ``tx`` is a factory whose first argument is the learning rate (``ol.adam``, ``lambda lr:
    ol.sgd(lr, momentum=0.9)``), injected here, or a transformation that already injects a
    ``learning_rate`` (``ol.inject_hyperparams(ol.adam)(learning_rate=1e-3)``).
    """
    if hasattr(tx, "init") and hasattr(tx, "update"):
        try:
            jax.eval_shape(lambda p: set_hyperparams(tx.init(p), learning_rate=initial), params)
        except KeyError:
            raise TypeError(
                f"{fn}: tx must be a factory of the learning rate (ol.adam, or lambda lr: "
                "ol.sgd(lr, momentum=0.9)) or a transformation that injects it "
                "(ol.inject_hyperparams(ol.adam)(learning_rate=1e-3)); this transformation "
                "holds no injected learning_rate"
            ) from None
        return tx, "learning_rate"
    if not callable(tx):
        raise TypeError(
            f"{fn}: tx must be a factory of the learning rate (ol.adam) or an injected "
            f"transformation, got {describe_value(tx)}"
        )
    try:
        first = next(iter(inspect.signature(tx).parameters))
    except (StopIteration, TypeError, ValueError):
        raise TypeError(
            f"{fn}: tx must take the learning rate as its first argument, got {tx!r}"
        ) from None
    return _injected(tx, initial), first


@functools.lru_cache(maxsize=32)
def _cached_injection(factory: Callable, initial: float) -> Any:
    return inject_hyperparams(factory)(initial)


def _injected(factory: Callable, initial: float) -> Any:
    """``inject_hyperparams(factory)(initial)``, the same object for the same factory (so the
    compiled range test and verification are reused)."""
    try:
        return _cached_injection(factory, initial)
    except TypeError:  # an unhashable factory
        return inject_hyperparams(factory)(initial)


def base_state(model: nnx.Module, tx: Any, seed: int) -> TrainState:
    """The state ``fit(model, tx, seed=seed)`` starts from, without touching ``model`` (its
    mode included)."""
    apply, params, model_state = functional(model)
    return TrainState(
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
        step=jnp.zeros((), jnp.int32),
        rng=jax.random.key(seed),
        lr_scale=jnp.ones((), jnp.float32),
        nonfinite_streak=jnp.zeros((), jnp.int32),
        apply=apply,
        tx=tx,
    )


@functools.partial(jax.jit, static_argnames=("step_fn", "name", "batch_size", "epochs"))
def _range_test(
    step_fn, state, x, y, data_key, lrs, smoothing, diverge_factor, *, name, batch_size, epochs
):
    parts = [
        batches(x, y, batch_size, epoch_keys(data_key, e)[0], drop_remainder=True)
        for e in range(1, epochs + 1)
    ]
    stacked = jax.tree.map(lambda *a: jnp.concatenate(a)[: lrs.shape[0]], *parts)

    def body(carry, inputs):
        state, avg, best, stopped = carry
        batch, lr, t = inputs

        def train(state):
            opt_state = set_hyperparams(state.opt_state, **{name: lr})
            state, logs = step_fn(state.replace(opt_state=opt_state), batch)
            return state, logs["loss"]

        def skip(state):
            return state, jnp.asarray(jnp.nan, jnp.float32)

        state, loss = jax.lax.cond(stopped, skip, train, state)
        avg = smoothing * avg + (1.0 - smoothing) * loss
        smooth = avg / (1.0 - smoothing ** (t + 1.0))
        diverged = ~jnp.isfinite(smooth) | (smooth > diverge_factor * best)
        stopped = stopped | diverged
        best = jnp.where(stopped, best, jnp.minimum(best, smooth))
        out = jnp.where(stopped, jnp.nan, jnp.stack([loss, smooth]))
        return (state, avg, best, stopped), out

    init = (state, jnp.zeros((), jnp.float32), jnp.asarray(jnp.inf, jnp.float32), jnp.array(False))
    steps = jnp.arange(lrs.shape[0], dtype=jnp.float32)
    _, out = jax.lax.scan(body, init, (stacked, lrs, steps))
    return out[:, 0], out[:, 1]


def lr_find(
    model: nnx.Module,
    tx: Any,
    data: Any,
    *,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 32,
    seed: int = 0,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    verify: bool = False,
    verify_epochs: int = 1,
    validation_data: Any = None,
) -> LRFindResult:
    """Runs the learning-rate range test (one ``lax.scan``) and suggests learning rates.

    Args:
      model: an nnx model (not modified).
      tx: a factory of the learning rate (``ol.adam``; ``lambda lr: ol.sgd(lr, momentum=0.9)``)
        or a transformation injecting ``learning_rate`` (``ol.inject_hyperparams(ol.adam)(
        learning_rate=1e-3)``).
      data: ``(x, y)`` or a dataset (its training split).
      loss: per-example loss, as for :func:`optlab.fit`.
      min_lr, max_lr: the ends of the ramp (``0 < min_lr < max_lr``).
      num_steps: steps of the ramp (batches are those of ``fit``'s first epochs with ``seed``;
        ``num_steps * batch_size`` rows at most one epoch costs at most one epoch).
      batch_size: rows per step.
      seed: the data order and dropout, as ``fit(seed=...)``.
      smoothing: :math:`\\beta` of the moving average, in ``[0, 1)``.
      diverge_factor: stop counting once the smoothed loss exceeds this times its best (> 1).
      verify: train :math:`\\{s/3, s, 3s\\}` around each suggestion and return the best.
      verify_epochs: epochs of each verification run.
      validation_data: ``(x_val, y_val)`` the verification ranks by (default: the training
        data, in evaluation mode).

    Returns:
      An :class:`LRFindResult`; ``result.suggestion`` is the learning rate to take.

    Examples:
      >>> ds = ol.data.load("digits")
      >>> model = ol.nn.MLP(64, (32,), 10, rngs=0)
      >>> result = ol.tune.lr_find(model, ol.adam, ds, num_steps=40,
      ...                          loss=ol.nn.softmax_cross_entropy_with_integer_labels)
      >>> print(sorted(result.suggestions), 1e-4 < result.suggestions["valley"] < 1.0)
      ['minimum', 'slide', 'steep', 'valley'] True
    """
    fn = "lr_find"
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(model).__name__}")
    check_loss(fn, loss)
    check_positive(fn, "min_lr", min_lr)
    check_positive(fn, "max_lr", max_lr)
    if not float(min_lr) < float(max_lr):
        raise ValueError(f"{fn}: min_lr must be < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    check_int_range(fn, "num_steps", num_steps, 2)
    check_int_range(fn, "batch_size", batch_size, 1)
    check_int_range(fn, "seed", seed, 0)
    check_in_range(fn, "smoothing", smoothing, 0.0, 1.0)
    check_positive(fn, "diverge_factor", diverge_factor)
    if float(diverge_factor) <= 1.0:
        raise ValueError(f"{fn}: diverge_factor must be > 1, got diverge_factor={diverge_factor}")
    check_bool(fn, "verify", verify)
    check_int_range(fn, "verify_epochs", verify_epochs, 1)
    x, y = as_arrays(fn, data, "data")
    n = int(x.shape[0])
    batch_size = min(batch_size, n)
    _, params, _ = functional(model)
    injected, name = as_injected(fn, tx, params, float(min_lr))
    state = base_state(model, injected, seed)
    step_fn, _ = engine_steps(loss)
    lrs = np.geomspace(float(min_lr), float(max_lr), num_steps)
    per_epoch = n // batch_size
    losses, smoothed = _range_test(
        step_fn,
        state,
        x,
        y,
        jax.random.key(seed),
        jnp.asarray(lrs, jnp.float32),
        jnp.asarray(smoothing, jnp.float32),
        jnp.asarray(diverge_factor, jnp.float32),
        name=name,
        batch_size=batch_size,
        epochs=-(-num_steps // per_epoch),
    )
    losses, smoothed = np.asarray(losses, np.float64), np.asarray(smoothed, np.float64)
    counted = (
        int(np.argmax(~np.isfinite(smoothed))) if not np.all(np.isfinite(smoothed)) else (num_steps)
    )
    result = LRFindResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        num_counted=counted,
        suggestions=suggest(lrs[:counted], smoothed[:counted]),
    )
    if verify:
        _verify(
            fn,
            result,
            model,
            injected,
            name,
            x,
            y,
            loss,
            batch_size,
            seed,
            verify_epochs,
            validation_data,
        )
    return result


def candidates(suggestions: dict[str, float]) -> list[tuple[float, list[str]]]:
    """``(lr, [suggestions])`` for :math:`\\{s/3, s, 3s\\}` around each finite suggestion,
    increasing; rates within 5% of each other are merged (the first kept)."""
    raw = sorted(
        (s * f, name)
        for name, s in suggestions.items()
        if math.isfinite(s)
        for f in (1 / 3, 1.0, 3.0)
    )
    out: list[tuple[float, list[str]]] = []
    for lr, name in raw:
        if out and lr <= out[-1][0] * 1.05:
            if name not in out[-1][1]:
                out[-1][1].append(name)
            continue
        out.append((lr, [name]))
    return out


def _verify(fn, result, model, tx, name, x, y, loss, batch_size, seed, epochs, validation_data):
    cands = candidates(result.suggestions)
    if not cands:
        result.verification = []
        return
    if validation_data is not None:
        xv, yv = as_arrays(fn, validation_data, "validation_data")
    else:
        xv, yv = x, y
    val = eval_batches(xv, yv, resolve_batch_size(fn, "batch_size", None, int(xv.shape[0])))
    lrs = jnp.asarray([lr for lr, _ in cands], jnp.float32)
    step_fn, eval_fn = engine_steps(loss)
    states = replicate(base_state(model, tx, seed), len(cands))
    states = states.replace(
        opt_state=jax.vmap(lambda s, lr: set_hyperparams(s, **{name: lr}))(states.opt_state, lrs)
    )
    population = Population(
        states,
        replicate(jax.random.key(seed), len(cands)),
        step_fn=step_fn,
        eval_fn=eval_fn,
        x=x,
        y=y,
        val=val,
        batch_size=batch_size,
    )
    population.run(epochs)
    rows = []
    for pid, (lr, names) in enumerate(cands):
        values = population.histories[pid]["val_loss"]
        rows.append({"lr": lr, "from": names, "val_loss": values[-1]})
    finite = [r for r in rows if math.isfinite(r["val_loss"])]
    result.verification = rows
    result.verified = min(finite, key=lambda r: r["val_loss"])["lr"] if finite else None
