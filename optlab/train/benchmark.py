r"""Benchmark primitives: a population of runs as one vmapped program, time to a target,
performance profiles and AlgoPerf's integrated score.

:func:`train_population` trains :math:`P` members (one model each, its own seed, its own
traced hyperparameters) in one compiled program: ``jax.vmap`` over the members of a
``lax.scan`` over epochs of the engine's own epoch (:func:`optlab.train.step.scan_epoch` of
:func:`optlab.train.make_train_step` over :func:`optlab.data.batches`). A new value of a
hyperparameter is an array entry, never a recompilation.

A member's time to a target :math:`a^\star` is the first step at which its validation
accuracy reaches it (checked once per epoch; :math:`\infty` when it never does). Over a set of
workloads :math:`w` and methods :math:`o` with times :math:`t_{o,w}`, the performance ratio
and profile (Dolan and Moré 2002) are

.. math::

    r_{o,w} = \frac{t_{o,w}}{\min_{o'} t_{o',w}}, \qquad
    \rho_o(\tau) = \frac{1}{|W|}\,\bigl|\{w : r_{o,w} \le \tau\}\bigr|,

and AlgoPerf's integrated score is the area under the profile from 1 to :math:`r_{\max}`,

.. math::

    B_o = \frac{1}{r_{\max} - 1}\int_1^{r_{\max}} \rho_o(\tau)\,d\tau
        = \frac{1}{|W|}\sum_w \frac{\max(0,\ r_{\max} - r_{o,w})}{r_{\max} - 1},

with ratios above :math:`r_{\max}` (and misses) counting as :math:`\infty` (score 0 on that
workload); a workload no method solves counts as 0 for every method.

References:
  Dahl et al., Benchmarking Neural Network Training Algorithms (AlgoPerf), 2023,
  https://arxiv.org/abs/2306.07179. Dolan and Moré, Benchmarking optimization software with
  performance profiles, Math. Program. 91, 2002.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optlab.core.base import GradientTransformation
from optlab.core.validation import check_int_at_least, check_real
from optlab.data.batching import batches as make_batches
from optlab.nn.apply import functional
from optlab.train.state import TrainState
from optlab.train.step import make_train_step, scan_epoch


class Population(NamedTuple):
    """What :func:`train_population` measured, one row per member.

    Attributes:
      train_loss: ``(P, epochs)`` mean training loss of each epoch.
      val_accuracy: ``(P, epochs)`` accuracy on the validation rows after each epoch.
      test_accuracy: ``(P,)`` accuracy on the test rows after the last epoch (NaN without).
      steps_per_epoch: updates per epoch.
      compile_seconds: time to compile the program.
      seconds: time to run it (after compilation).
    """

    train_loss: np.ndarray
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray
    steps_per_epoch: int
    compile_seconds: float
    seconds: float


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _accuracy(apply: Any, params: Any, model_state: Any, x: Any, y: Any) -> jax.Array:
    logits, _ = apply(params, model_state, x, train=False)
    return jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(jnp.float32))


def train_population(
    model_fn: Callable[[int], Any],
    tx_fn: Callable[..., Any],
    hyperparams: Mapping[str, Any],
    seeds: Sequence[int],
    train: tuple[Any, Any],
    validation: tuple[Any, Any],
    *,
    loss: Callable[[Any, Any], Any],
    epochs: int,
    batch_size: int | None,
    test: tuple[Any, Any] | None = None,
    cache: dict | None = None,
) -> Population:
    """Trains one member per seed, all at once (one compiled ``vmap`` of the epoch scan).

    Member :math:`i` starts from ``model_fn(seeds[i])``, draws its batches and its dropout
    keys from ``seeds[i]``, and trains with ``tx_fn(**{k: v[i] for k, v in
    hyperparams.items()})``: the values are traced, so ``tx_fn`` builds the transformation
    from arrays (every optlab factory and schedule accepts them).

    Args:
      model_fn: ``seed -> nnx model``; every member must have the same structure.
      tx_fn: keyword hyperparameters -> a gradient transformation.
      hyperparams: name -> array of shape ``(P,)`` (``P = len(seeds)``).
      seeds: one non-negative int per member.
      train: ``(x, y)`` training rows (integer class labels).
      validation: ``(x, y)`` rows whose accuracy is recorded after every epoch.
      loss: per-example ``loss(logits, labels)``.
      epochs: number of epochs.
      batch_size: rows per step (``None``: the full batch, one step per epoch).
      test: ``(x, y)`` rows whose accuracy is recorded after the last epoch.
      cache: a dict that keeps the compiled program: a later call with the same ``tx_fn``,
        model structure, data arrays, loss, epochs, batch size and number of members runs
        it again without compiling.

    Returns:
      A :class:`Population`.

    Examples:
      >>> import numpy as np, optlab as ol
      >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> pop = train_population(lambda s: ol.nn.MLP(2, (), 2, rngs=s),
      ...     lambda learning_rate: ol.sgd(learning_rate), {"learning_rate": np.array([0.0, 1.0])},
      ...     [0, 1], (x, y), (x, y), loss=ol.nn.softmax_cross_entropy_with_integer_labels,
      ...     epochs=5, batch_size=16)
      >>> print(pop.val_accuracy.shape, pop.val_accuracy[1, -1] > pop.val_accuracy[0, -1])
      (2, 5) True
    """
    fn = "train_population"
    check_int_at_least(fn, "epochs", epochs, 1)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError(f"{fn}: seeds must name at least one member, got seeds={seeds!r}")
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hyperparams.items()}
    for k, v in hp.items():
        if v.shape != (len(seeds),):
            raise ValueError(
                f"{fn}: hyperparams[{k!r}] must have shape ({len(seeds)},) (one per seed), "
                f"got {v.shape}"
            )
    forms = [functional(model_fn(s)) for s in seeds]
    apply = forms[0][0]
    params = _stack([f[1] for f in forms])
    model_state = _stack([f[2] for f in forms])
    x, y = jnp.asarray(train[0], jnp.float32), jnp.asarray(train[1])
    xv, yv = jnp.asarray(validation[0], jnp.float32), jnp.asarray(validation[1])
    xt = yt = None
    if test is not None:
        xt, yt = jnp.asarray(test[0], jnp.float32), jnp.asarray(test[1])
    n = int(x.shape[0])
    size = n if batch_size is None else min(int(batch_size), n)
    steps = n // size
    step_fn = make_train_step(loss, metrics=(), skip_nonfinite=True)

    def member(params, model_state, hps, seed):
        tx = tx_fn(**hps)
        key = jax.random.key(seed)
        state = TrainState(
            params=params,
            model_state=model_state,
            opt_state=tx.init(params),
            step=jnp.zeros((), jnp.int32),
            rng=jax.random.fold_in(key, 1),
            lr_scale=jnp.ones((), jnp.float32),
            nonfinite_streak=jnp.zeros((), jnp.int32),
            apply=apply,
            tx=tx,
        )

        def epoch(st, e):
            b = make_batches(x, y, size, jax.random.fold_in(key, e), drop_remainder=True)
            st, logs = scan_epoch(step_fn, st, b)
            acc = _accuracy(apply, st.params, st.model_state, xv, yv)
            return st, (logs["loss"], acc)

        st, (losses, accs) = jax.lax.scan(epoch, state, jnp.arange(epochs))
        final = jnp.nan if xt is None else _accuracy(apply, st.params, st.model_state, xt, yt)
        return losses, accs, final

    args = (params, model_state, hp, jnp.asarray(seeds, jnp.uint32))
    arrays = (train[0], train[1], validation[0], validation[1], *(test or ()))
    key = (tx_fn, apply, loss, epochs, size, len(seeds), tuple(sorted(hp)), *map(id, arrays))
    start = time.perf_counter()
    if cache is not None and key in cache:
        compiled = cache[key][0]
    else:
        compiled = jax.jit(jax.vmap(member)).lower(*args).compile()
        if cache is not None:
            cache[key] = (compiled, arrays)  # the arrays stay alive: their ids stay theirs
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    losses, accs, final = jax.block_until_ready(compiled(*args))
    seconds = time.perf_counter() - start
    return Population(
        np.asarray(losses, np.float64),
        np.asarray(accs, np.float64),
        np.asarray(final, np.float64),
        steps,
        compile_seconds,
        seconds,
    )


def select_transform(index: Any, transforms: Sequence[Any]) -> GradientTransformation:
    """The transformation ``transforms[index]``, chosen by a traced integer ``index``.

    Its state holds every transformation's state; an update advances only the chosen one
    (``lax.switch``). Under ``jax.vmap`` with one index per member, every branch runs and each
    member keeps its own (a select): several optimizers train in one compiled program, at the
    price of computing every update rule for every member (small next to an MLP's gradient).

    Args:
      index: an integer (or integer-valued float) scalar, possibly traced.
      transforms: the gradient transformations to choose from.

    Returns:
      A gradient transformation.

    Examples:
      >>> import jax.numpy as jnp, optlab as ol
      >>> tx = select_transform(1, [ol.sgd(0.1), ol.sgd(1.0)])
      >>> u, _ = tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.zeros(2)}))
      >>> print(u["w"])
      [-1. -1.]
    """
    txs = tuple(transforms)
    if not txs:
        raise ValueError("select_transform: transforms must hold at least one, got none")

    def init(params: Any) -> tuple:
        return tuple(tx.init(params) for tx in txs)

    def update(updates: Any, state: tuple, params: Any = None, **extra: Any) -> tuple:
        def branch(i: int) -> Callable[[Any], Any]:
            def run(operands: Any) -> Any:
                u, st, p = operands
                new_u, new_s = txs[i].update(u, st[i], p, **extra)
                return new_u, (*st[:i], new_s, *st[i + 1 :])

            return run

        i = jnp.asarray(index).astype(jnp.int32)
        return jax.lax.switch(i, [branch(k) for k in range(len(txs))], (updates, state, params))

    return GradientTransformation(init, update)


# ---------------------------------------------------------------------------------------------
# Time to target, profiles, score


def steps_to_target(val_accuracy: Any, target: float, steps_per_epoch: int) -> np.ndarray:
    """Steps until each member's validation accuracy first reaches ``target`` (``inf``: never).

    Args:
      val_accuracy: ``(P, epochs)`` accuracy after each epoch.
      target: the accuracy to reach.
      steps_per_epoch: updates per epoch.

    Returns:
      ``(P,)`` float64: ``(e + 1) * steps_per_epoch`` for the first epoch ``e`` that reaches it.

    Examples:
      >>> print(steps_to_target([[0.1, 0.6, 0.9], [0.2, 0.3, 0.4]], 0.5, 10))
      [20. inf]
    """
    acc = np.atleast_2d(np.asarray(val_accuracy, np.float64))
    check_real("steps_to_target", "target", target)
    hit = acc >= target
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), (first + 1.0) * steps_per_epoch, np.inf)


def performance_ratios(times: Any) -> np.ndarray:
    r"""The ratios :math:`r_{o,w} = t_{o,w} / \min_{o'} t_{o',w}` of a ``(methods, workloads)``
    table of times (``inf`` for a miss; a workload nobody solves is all ``inf``).

    Examples:
      >>> print(performance_ratios([[1.0, np.inf], [2.0, np.inf]]))
      [[ 1. inf]
       [ 2. inf]]
    """
    t = np.asarray(times, np.float64)
    if t.ndim != 2 or t.size == 0:
        raise ValueError(f"performance_ratios: times must be a non-empty 2-D table, got {t.shape}")
    if np.isnan(t).any() or (t <= 0).any():
        raise ValueError("performance_ratios: times must be > 0 (inf for a miss), got NaN or <= 0")
    best = t.min(axis=0)
    with np.errstate(invalid="ignore"):
        r = t / best
    return np.where(np.isfinite(best)[None, :], r, np.inf)


def performance_profile(times: Any, taus: Any) -> np.ndarray:
    r""":math:`\rho_o(\tau)`: the fraction of workloads each method solves within a factor
    :math:`\tau` of the best. Returns ``(methods, len(taus))``.

    Examples:
      >>> print(performance_profile([[1.0, 4.0], [2.0, 1.0]], [1.0, 2.0, 4.0]))
      [[0.5 0.5 1. ]
       [0.5 1.  1. ]]
    """
    r = performance_ratios(times)
    taus = np.asarray(taus, np.float64)
    return (r[:, :, None] <= taus[None, None, :]).mean(axis=1)


def integrated_score(times: Any, r_max: float = 4.0) -> np.ndarray:
    r"""AlgoPerf's score :math:`B_o`: the profile's area from 1 to ``r_max``, divided by
    ``r_max - 1`` (1 = fastest on every workload, 0 = never within ``r_max``).

    Examples:
      >>> print(integrated_score([[1.0, 4.0], [2.0, 1.0]]))
      [0.5        0.83333333]
    """
    check_real("integrated_score", "r_max", r_max)
    if not r_max > 1:
        raise ValueError(f"integrated_score: r_max must be > 1, got r_max={r_max}")
    r = performance_ratios(times)
    area = np.where(r <= r_max, r_max - r, 0.0) / (r_max - 1.0)
    return area.mean(axis=1)


def summarize(values: Any) -> dict[str, float]:
    """Median and interquartile range (``inf`` entries count as large values).

    Examples:
      >>> summarize([1.0, 2.0, np.inf])
      {'median': 2.0, 'q25': 1.5, 'q75': inf}
    """
    v = np.sort(np.asarray(values, np.float64))
    q = np.quantile(v, [0.25, 0.5, 0.75], method="linear") if np.isfinite(v).all() else None
    if q is None:  # np.quantile interpolates inf - inf to NaN: order statistics by hand
        pos = np.array([0.25, 0.5, 0.75]) * (len(v) - 1)
        lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
        frac = pos - lo
        with np.errstate(invalid="ignore"):
            mid = v[lo] + frac * (v[hi] - v[lo])
        q = np.where(frac == 0, v[lo], np.where(v[hi] == np.inf, np.inf, mid))
    return {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2])}
