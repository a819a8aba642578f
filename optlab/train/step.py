"""Compiled train and evaluation steps, and an epoch as one ``lax.scan``.

One train step on a batch :math:`(x, y, m)` (the mask :math:`m_i \\in \\{0, 1\\}` marks the real
rows; padded rows weigh nothing) is

.. math::

    L(\\theta) = \\frac{\\sum_{i=1}^{B} m_i\\,\\ell(f_\\theta(x_i), y_i)}{\\sum_{i=1}^{B} m_i},
    \\qquad g_t = \\nabla_\\theta L(\\theta_t), \\qquad
    (u_t, s_{t+1}) = \\mathrm{update}(g_t, s_t, \\theta_t,
        \\text{value}=L, \\text{grad}=g_t, \\text{value\\_fn}=L, \\ldots), \\qquad
    \\theta_{t+1} = \\theta_t + c\\,u_t

with :math:`c` the state's ``lr_scale``, folded into the update's own elementwise pass. With the
non-finite guard (the default) a step whose loss or gradient norm is not finite keeps
:math:`(\\theta_t, \\sigma_t, s_t)` unchanged. The decision is one scalar, and it selects which
of two branches runs (``lax.cond``): the update, or nothing. A ``where`` between the new and
the old state would be the same arithmetic, but XLA then recomputes the moments inside the
parameter update from the old ones, which forces a copy of every moment buffer (measured:
+22% bytes and -20% speed on the 784-512-512-10 MLP with Adam); the branch costs nothing,
and as it ends the backward pass before the update starts, it also spares the copies of the
weights that an unguarded step makes.

An epoch scans the step over stacked batches of shape ``(num_batches, batch_size, ...)``, so
one dispatch runs the whole epoch; the per-step values stay on the device and are reduced
there: loss and metrics are means over the real rows of the steps that were not skipped,
``grad_norm`` the mean over those steps, ``learning_rate`` the last step's.

A *monitor* (``make_train_step(..., monitor=m)``, e.g. ``optlab.diagnostics.Monitor``) adds
per-layer statistics to the compiled step without changing it otherwise; without one the step
is exactly the function it was. The engine calls, inside the compiled program:

* optionally ``m.every`` (an int, default 1): the monitored step runs on the epoch's steps
  ``0, every, 2 every, ...`` only, the plain step (exactly the step without a monitor, no
  ``lax.cond``: :func:`scan_epoch` splits the epoch into chunks of ``every`` steps, the first
  monitored, the others plain, ``step.plain``) on the others;
* ``m.forward(apply, params, model_state, x, *, rng, mask) -> (predictions, model_state,
  captured)`` in place of the training-mode ``apply`` (``captured``: fixed-size arrays
  recorded during the pass, e.g. each layer's statistics);
* ``m.update_stats(state, updates, grads, captured, carry) -> arrays`` beside the parameter
  update, in the same branch (the parameters move by ``state.lr_scale * updates``;
  ``updates`` is None on a skipped step; ``carry`` is the epoch's carry of ``m.init`` and
  ``m.fold``, or None when the step runs alone): elementwise statistics that add to the
  carry here join the update's own elementwise pass, where a separate reduction of the
  updates makes XLA write them out and read them back;
* ``m.measure(...) -> stats`` once per monitored step, with keyword arguments ``state`` (before the
  step), ``new_state``, ``update_stats``, ``grads``, ``captured``, ``inputs``, ``predictions``,
  ``targets``, ``mask``, ``loss`` and ``ok`` (False for a skipped step): a fixed-size pytree
  of arrays;
* ``m.init(stats_shapes, state) -> carry``, ``m.fold(carry, stats) -> carry`` and
  ``m.finish(carry, state) -> summary``: :func:`scan_epoch` folds each monitored step's
  ``stats`` into a fixed-size carry beside the state (``init`` sees the state at the epoch's
  start, ``finish`` at its end), and returns ``summary`` as the epoch log ``"monitor"``
  (fetched with the other logs, once per epoch);
* on the host, ``m.unpack(summary, state) -> {key: {row: value} | value}`` names the fetched
  summary (:func:`optlab.fit` records it in ``history.diagnostics``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from optlab.core.access import get
from optlab.core.combine import with_extra_args_support
from optlab.core.numerics import tree_sum_of_squares
from optlab.data.batching import Batches
from optlab.train.state import TrainState

Batch = Any  # Batches(x, y, mask), (x, y) or {"x": ..., "y": ...} (and "mask")
Logs = dict[str, jax.Array]
MetricFn = Callable[[jax.Array, jax.Array], jax.Array]

# Epoch reductions of the per-step values (every other key is a row-weighted mean).
_STEP_MEAN = ("grad_norm",)
_LAST = ("learning_rate",)


def accuracy(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Per-example classification accuracy: 1.0 where the arg-max matches the label, else 0.0.

    Targets are integer class labels, or one-hot/probability rows (then their arg-max is the
    label). A single output column is read as a binary logit (positive means class 1). Like
    the losses, it returns one value per example; the engine averages them over the real rows.

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0]])
      >>> print(accuracy(logits, jnp.array([0, 1, 1])))
      [1. 1. 0.]
    """
    if predictions.shape[-1] == 1 and targets.ndim == predictions.ndim - 1:
        predicted = (predictions[..., 0] > 0).astype(targets.dtype)
        return (predicted == targets).astype(jnp.float32)
    labels = jnp.argmax(targets, -1) if targets.ndim == predictions.ndim else targets
    return (jnp.argmax(predictions, -1) == labels).astype(jnp.float32)


_BUILTIN_METRICS: dict[str, MetricFn] = {"accuracy": accuracy, "acc": accuracy}


def resolve_metrics(fn: str, metrics: Sequence[str | MetricFn] | None) -> dict[str, MetricFn]:
    """Maps metric names (``"accuracy"``) and callables ``f(predictions, targets)`` to functions.

    Raises:
      TypeError: ``metrics`` is not a sequence, or an entry is neither a name nor a function.
      ValueError: an unknown metric name (the message lists the known ones).
    """
    if isinstance(metrics, str) or not (metrics is None or isinstance(metrics, Sequence)):
        raise TypeError(
            f"{fn}: metrics must be a sequence of names or functions f(predictions, targets) "
            f"(e.g. ('accuracy',)) or None, got metrics={metrics!r}"
        )
    out: dict[str, MetricFn] = {}
    for m in metrics or ():
        if isinstance(m, str):
            if m not in _BUILTIN_METRICS:
                raise ValueError(
                    f"{fn}: unknown metric {m!r} in metrics; known names: "
                    f"{', '.join(_BUILTIN_METRICS)} "
                    "(or pass a function f(predictions, targets))"
                )
            out["accuracy" if m == "acc" else m] = _BUILTIN_METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", f"metric_{len(out)}")] = m
        else:
            raise TypeError(
                f"{fn}: metrics must hold metric names or functions, got {m!r} in metrics"
            )
    return out


def check_loss(fn: str, loss: Any) -> None:
    """Raises ``TypeError`` unless ``loss`` is callable."""
    if not callable(loss):
        raise TypeError(
            f"{fn}: loss must be a function loss(predictions, targets) returning per-example "
            f"values (or a scalar), got loss={loss!r}"
        )


def weighted_mean(values: Any, mask: jax.Array | None) -> jax.Array:
    """The mean of per-example ``values`` over the rows where ``mask`` is set, in float32.

    ``values`` of shape ``(B, ...)`` are first averaged over their trailing axes; a scalar is
    returned as it is (it is already a batch mean, which a mask cannot re-weight). Masked-out
    rows are selected away (not multiplied by 0), so a non-finite padded row cannot leak in.

    Examples:
      >>> import jax.numpy as jnp
      >>> print(weighted_mean(jnp.array([1.0, 2.0, 9.0]), jnp.array([1.0, 1.0, 0.0])))
      1.5
    """
    v = jnp.asarray(values, jnp.float32)
    if v.ndim == 0:
        return v
    if v.ndim > 1:
        v = jnp.mean(v.reshape(v.shape[0], -1), axis=1)
    if mask is None:
        return jnp.mean(v)
    m = jnp.asarray(mask, jnp.float32)
    return jnp.sum(jnp.where(m > 0, v * m, 0.0)) / jnp.sum(m)


def split_batch(fn: str, batch: Batch) -> tuple[Any, Any, jax.Array | None]:
    """``(x, y, mask)`` of a batch given as ``Batches``, ``(x, y)`` or a dict (mask may be None)."""
    if isinstance(batch, Batches):
        return batch.x, batch.y, batch.mask
    if isinstance(batch, dict) and "x" in batch and "y" in batch:
        return batch["x"], batch["y"], batch.get("mask")
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1], None
    raise TypeError(
        f"{fn}: a batch must be optlab.data.Batches(x, y, mask), a pair (x, y) or "
        f"{{'x': ..., 'y': ...}}, got {type(batch).__name__}"
    )


def readable_learning_rate(opt_state: Any) -> jax.Array | None:
    """The state's ``learning_rate`` when exactly one is recorded (``optlab.get``), else None."""
    try:
        lr = get(opt_state, "learning_rate")
    except KeyError:
        return None
    return jnp.asarray(lr, jnp.float32) if jnp.ndim(lr) == 0 else None


def _select(ok: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def every(monitor: Any) -> int:
    """How often a monitor runs: its ``every`` (an int), 1 when it has none."""
    return int(getattr(monitor, "every", 1))


def make_train_step(
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    metrics: Sequence[str | MetricFn] | None = ("accuracy",),
    skip_nonfinite: bool = True,
    monitor: Any = None,
) -> Callable[..., tuple[TrainState, Logs]]:
    """Builds the pure train step ``step(state, batch, metric=None) -> (state, logs)``.

    With a monitor the step also takes ``carry=None``, the monitor's epoch carry
    (:func:`scan_epoch` passes it), which the statistics that accumulate elementwise over the
    epoch add to (``monitor.update_stats``); None: they start from zero.

    The step runs the model in training mode (with the key ``fold_in(state.rng, step)``
    for dropout and other random layers), differentiates the masked mean loss, calls the
    transformation with the extra arguments ``value`` (the batch loss), ``grad``, ``value_fn``
    (the batch loss as a function of the parameters, for line searches) and, when given,
    ``metric`` (e.g. the last validation loss, for metric-driven controllers), then applies
    :math:`\\theta \\leftarrow \\theta + c\\,u` (the multiplier folded into the same pass).
    optax transformations that take no extra arguments are called without them.

    Args:
      loss: ``loss(predictions, targets)``, per-example values (weighted by the batch's mask;
        a scalar is used as it is).
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)`` returning
        per-example values (or a scalar).
      skip_nonfinite: guard the step: when the loss or the gradient norm is not finite,
        parameters, model state and optimizer state stay as they were (the step counter
        still advances, so the next step draws new dropout masks), and ``logs["skipped"]``
        is 1. A gradient whose squared norm overflows float32 counts as non-finite.
      monitor: None, or an object that records per-layer statistics inside the step (see
        the module docstring; ``optlab.diagnostics.Monitor``). Its per-step statistics come
        back as ``logs["monitor"]`` and the step carries it as ``step.monitor``, so
        :func:`scan_epoch` folds them over the epoch; with ``monitor.every > 1`` it also
        carries ``step.plain``, the step without the monitor, which :func:`scan_epoch` runs
        on the steps in between. Hashable, like the step.

    Returns:
      A pure function, not yet compiled: pass it to :func:`train_epoch`, or ``jax.jit`` it.
      The batch is ``optlab.data.Batches(x, y, mask)``, ``(x, y)`` or a dict. ``logs`` holds
      ``loss``, each metric, ``grad_norm`` (of the raw gradients), ``learning_rate`` when the
      optimizer records one (times ``lr_scale``) and, with the guard, ``skipped``.

    Examples:
      >>> import optlab as ol
      >>> import jax.numpy as jnp
      >>> import jax
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> state = ol.TrainState.create(model, ol.scale_by_learning_rate(0.1))
      >>> step = ol.make_train_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> state, logs = jax.jit(step)(state, (jnp.ones((4, 2)), jnp.zeros(4)))
      >>> print(int(state.step), sorted(logs))
      1 ['grad_norm', 'learning_rate', 'loss', 'skipped']
    """
    check_loss("make_train_step", loss)
    metric_fns = resolve_metrics("make_train_step", metrics)
    if not isinstance(skip_nonfinite, bool):
        raise TypeError(
            f"make_train_step: skip_nonfinite must be a bool, got skip_nonfinite={skip_nonfinite!r}"
        )

    def step(state: TrainState, batch: Batch, metric: jax.Array | None = None, carry: Any = None):
        if carry is not None and monitor is None:
            raise TypeError(
                "train step: carry is a monitor's epoch carry, and this step has none "
                "(make_train_step(loss, monitor=...)); call step(state, batch, metric)"
            )
        x, y, mask = split_batch("train step", batch)
        key = jax.random.fold_in(state.rng, state.step)

        def objective(params, monitored=False):
            if not monitored:
                out = state.apply(params, state.model_state, x, train=True, rng=key)
            else:
                out = monitor.forward(state.apply, params, state.model_state, x, rng=key, mask=mask)
            return weighted_mean(loss(out[0], y), mask), out

        def backward(monitored=False):
            grad_fn = jax.value_and_grad(
                functools.partial(objective, monitored=monitored), has_aux=True
            )
            (value, (preds, model_state, *captured)), grads = grad_fn(state.params)
            return value, preds, model_state, grads, captured

        value, preds, model_state, grads, captured = backward(monitor is not None)
        extra = {"value": value, "grad": grads, "value_fn": lambda p: objective(p)[0]}
        if metric is not None:
            extra["metric"] = metric
        update = with_extra_args_support(state.tx).update
        squared_norm = jnp.asarray(tree_sum_of_squares(grads), jnp.float32)
        scale = state.lr_scale

        def move(p, u):
            return None if p is None else (p + scale * u).astype(p.dtype)

        def updated(_=None):
            updates, opt_state = update(grads, state.opt_state, state.params, **extra)
            params = jax.tree.map(move, state.params, updates, is_leaf=lambda v: v is None)
            if monitor is None:
                return params, opt_state, model_state
            # Beside the step, from the updates (``kept``, the skipped step's branch, passes
            # None: the carry's statistics unchanged).
            stats = monitor.update_stats(state, updates, grads, captured[0], carry)
            return params, opt_state, model_state, stats

        def kept(_=None):
            if monitor is None:
                return state.params, state.opt_state, state.model_state
            stats = monitor.update_stats(state, None, grads, captured[0], carry)
            return state.params, state.opt_state, state.model_state, stats

        if skip_nonfinite:
            ok = jnp.isfinite(value) & jnp.isfinite(squared_norm)
            try:  # one branch runs: nothing is copied or selected (module docstring)
                params, opt_state, new_model_state, *moved = jax.lax.cond(ok, updated, kept)
            except TypeError:  # a transformation whose state changes dtype: select instead
                params, opt_state, new_model_state, *moved = _select(ok, updated(), kept())
            streak = jnp.where(ok, 0, state.nonfinite_streak + 1).astype(jnp.int32)
        else:
            params, opt_state, new_model_state, *moved = updated()
            streak = state.nonfinite_streak
        logs = {"loss": value}
        for name, fn in metric_fns.items():
            logs[name] = weighted_mean(fn(preds, y), mask)
        logs["grad_norm"] = jnp.sqrt(squared_norm)
        lr = readable_learning_rate(opt_state)
        if lr is not None:
            logs["learning_rate"] = lr * scale
        if skip_nonfinite:
            logs["skipped"] = (~ok).astype(jnp.int32)
        new_state = state.replace(
            params=params,
            model_state=new_model_state,
            opt_state=opt_state,
            step=state.step + 1,
            nonfinite_streak=streak,
        )
        if monitor is not None:
            logs["monitor"] = monitor.measure(
                state=state,
                new_state=new_state,
                update_stats=moved[0],
                grads=grads,
                captured=captured[0],
                inputs=x,
                predictions=preds,
                targets=y,
                mask=mask,
                loss=value,
                ok=ok if skip_nonfinite else jnp.isfinite(value) & jnp.isfinite(squared_norm),
            )
        return new_state, logs

    if monitor is not None:
        step.monitor = monitor
        if every(monitor) > 1:
            step.plain = make_train_step(loss, metrics=metrics, skip_nonfinite=skip_nonfinite)
    return step


def make_eval_step(
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    metrics: Sequence[str | MetricFn] | None = ("accuracy",),
) -> Callable[[TrainState, Batch], Logs]:
    """Builds the pure evaluation step ``eval_step(state, batch) -> logs``.

    The model runs in evaluation mode (running BatchNorm statistics, no dropout); the state
    is not changed. Loss and metrics are means over the batch's real rows (``mask``).

    Args:
      loss: ``loss(predictions, targets)``, per-example values (or a scalar).
      metrics: names (``"accuracy"``) or functions ``f(predictions, targets)``.

    Returns:
      A pure function returning ``{"loss": ..., <metric>: ...}`` (means over the real rows).

    Examples:
      >>> import optlab as ol
      >>> import jax.numpy as jnp
      >>> import jax
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> state = ol.TrainState.create(model, ol.identity())
      >>> ev = ol.make_eval_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> logs = jax.jit(ev)(state, (jnp.zeros((3, 2)), jnp.zeros(3)))
      >>> print(sorted(logs), float(logs["loss"]) >= 0)
      ['loss'] True
    """
    check_loss("make_eval_step", loss)
    metric_fns = resolve_metrics("make_eval_step", metrics)

    def eval_step(state: TrainState, batch: Batch) -> Logs:
        x, y, mask = split_batch("eval step", batch)
        preds, _ = state.apply(state.params, state.model_state, x, train=False)
        logs = {"loss": weighted_mean(loss(preds, y), mask)}
        for name, fn in metric_fns.items():
            logs[name] = weighted_mean(fn(preds, y), mask)
        return logs

    return eval_step


def _rows(batch: Batch) -> jax.Array:
    """The weight of one batch: its number of real rows."""
    x, _, mask = split_batch("epoch", batch)
    if mask is not None:
        return jnp.sum(jnp.asarray(mask, jnp.float32))
    return jnp.asarray(jax.tree.leaves(x)[0].shape[0], jnp.float32)


_TAIL = (*_STEP_MEAN, *_LAST, "skipped_steps", "nonfinite_streak")


def ordered(logs: dict[str, Any]) -> dict[str, Any]:
    """``logs`` with ``loss`` first, then the metrics, then the optimizer's values (compiled
    functions return dicts sorted by key)."""
    keys = ["loss", *(k for k in logs if k != "loss" and k not in _TAIL), *_TAIL]
    return {k: logs[k] for k in keys if k in logs}


def _reduce(stacked: Logs, weights: jax.Array, ok: jax.Array) -> Logs:
    """Epoch values from per-step ones (see the module docstring)."""
    w = jnp.where(ok, weights, 0.0)
    steps = jnp.sum(ok.astype(jnp.float32))
    logs = {}
    for k, v in stacked.items():
        if k in _LAST:
            logs[k] = v[-1]
        elif k in _STEP_MEAN:
            logs[k] = jnp.sum(jnp.where(ok, v, 0.0)) / steps
        elif k == "skipped":
            logs["skipped_steps"] = jnp.sum(v)
        elif k == "nonfinite_streak":
            logs[k] = jnp.max(v)
        else:
            logs[k] = jnp.sum(jnp.where(w > 0, v * w, 0.0)) / jnp.sum(w)
    return logs


def scan_epoch(
    step_fn: Callable[..., tuple[TrainState, Logs]],
    state: TrainState,
    batches: Batch,
    metric: jax.Array | None = None,
    augment: Callable[[Batches, jax.Array], Batches] | None = None,
    augment_key: jax.Array | None = None,
) -> tuple[TrainState, Logs]:
    """Scans ``step_fn`` over stacked batches (not compiled: the body of :func:`train_epoch`).

    Args:
      step_fn: a train step.
      state: the training state.
      batches: stacked batches (``Batches``, ``(xs, ys)`` or a dict).
      metric: passed to every step.
      augment: an optional pure ``fn(batch, key) -> batch`` applied to each step's
        ``Batches`` before the step, with key ``fold_in(augment_key, i)`` for step ``i``.
      augment_key: the epoch's augmentation key (required with ``augment``).

    Returns:
      The final state and the epoch's logs (see the module docstring), plus
      ``skipped_steps`` and ``nonfinite_streak`` (the longest run of skipped steps in a row,
      counting those that ended the previous epoch) when the step is guarded, and the
      monitor's epoch summary as ``"monitor"`` when the step has one (``step_fn.monitor``).
    """
    num = jax.tree.leaves(batches)[0].shape[0]
    monitor = getattr(step_fn, "monitor", None)

    def run_step(fn, st, batch, i, carry=None):
        if augment is not None:
            x, y, mask = split_batch("epoch", batch)
            if mask is None:
                mask = jnp.ones((jax.tree.leaves(x)[0].shape[0],), jnp.float32)
            batch = augment(Batches(x, y, mask), jax.random.fold_in(augment_key, i))
        st, logs = fn(st, batch, metric) if carry is None else fn(st, batch, metric, carry)
        logs = dict(logs)
        if "skipped" in logs:
            logs["nonfinite_streak"] = st.nonfinite_streak
        return st, logs, _rows(batch)

    inputs = (batches, jnp.arange(num))
    plain = getattr(step_fn, "plain", None)
    if monitor is None:

        def body(st, xs):
            st, logs, rows = run_step(step_fn, st, *xs)
            return st, (logs, rows)

        state, (stacked, weights) = jax.lax.scan(body, state, inputs)
    else:
        first = jax.tree.map(lambda a: a[0], inputs)
        shapes = jax.eval_shape(lambda st, b: run_step(step_fn, st, *b)[1]["monitor"], state, first)
        acc = monitor.init(shapes, state)
        if every(monitor) == 1 or plain is None:

            def body(carry, xs):
                st, acc = carry
                st, logs, rows = run_step(step_fn, st, *xs, acc)
                return (st, monitor.fold(acc, logs.pop("monitor"))), (logs, rows)

            (state, acc), (stacked, weights) = jax.lax.scan(body, (state, acc), inputs)
        else:
            state, acc, stacked, weights = _chunked(
                run_step, step_fn, plain, every(monitor), state, acc, batches, num
            )
    ok = stacked["skipped"] == 0 if "skipped" in stacked else jnp.ones_like(weights, bool)
    logs = _reduce(stacked, weights, ok)
    if monitor is not None:
        logs["monitor"] = monitor.finish(acc, state)
    return state, logs


def _chunked(run_step, step_fn, plain, k, state, acc, batches, num):
    """The epoch in chunks of ``k`` steps: step ``c k`` runs the monitored ``step_fn`` (its
    statistics folded into ``acc``), steps ``c k + 1 ... c k + k - 1`` the ``plain`` step in
    an inner loop (shorter in the last chunk): no step pays for a branch. The per-step logs
    are written into ``(num,)`` buffers, as a scan would stack them."""

    def batch_at(i):
        return jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), batches)

    def write(buffers, logs, rows, i):
        out = dict(buffers)
        for key, v in logs.items():
            out[key] = buffers[key].at[i].set(v)
        out["__rows__"] = buffers["__rows__"].at[i].set(rows)
        return out

    shapes = jax.eval_shape(lambda st: run_step(plain, st, batch_at(0), 0)[1:], state)
    buffers = {k_: jnp.zeros((num, *s.shape), s.dtype) for k_, s in shapes[0].items()}
    buffers["__rows__"] = jnp.zeros((num,), shapes[1].dtype)

    def plain_body(i, carry):
        st, buffers = carry
        st, logs, rows = run_step(plain, st, batch_at(i), i)
        return st, write(buffers, logs, rows, i)

    def chunk(carry, c):
        st, acc, buffers = carry
        i = c * k
        st, logs, rows = run_step(step_fn, st, batch_at(i), i, acc)
        acc = step_fn.monitor.fold(acc, logs.pop("monitor"))
        buffers = write(buffers, logs, rows, i)
        st, buffers = jax.lax.fori_loop(i + 1, jnp.minimum(i + k, num), plain_body, (st, buffers))
        return (st, acc, buffers), None

    chunks = -(-num // k)
    (state, acc, buffers), _ = jax.lax.scan(chunk, (state, acc, buffers), jnp.arange(chunks))
    weights = buffers.pop("__rows__")
    return state, acc, buffers, weights


@functools.partial(jax.jit, static_argnames=("step_fn",), donate_argnames=("state",))
def train_epoch(
    step_fn: Callable[..., tuple[TrainState, Logs]],
    state: TrainState,
    batches: Batch,
    metric: jax.Array | None = None,
) -> tuple[TrainState, Logs]:
    """Runs one epoch, one compiled dispatch: ``lax.scan`` of ``step_fn`` over the batches.

    The state's buffers are donated: do not use ``state`` after the call, use the returned one.
    The function is compiled once per ``step_fn`` (keep the one :func:`make_train_step`
    returned) and per batch shape.

    Args:
      step_fn: a train step from :func:`make_train_step` (or any function with its signature).
      state: the training state.
      batches: ``optlab.data.Batches`` or ``(xs, ys)`` stacked to ``(num_batches, batch_size,
        ...)``.
      metric: optional scalar passed to every update as ``metric=`` (a validation metric for
        metric-driven controllers).

    Returns:
      ``(state, logs)``: loss and metrics averaged over the real rows of the steps that were
      not skipped, ``grad_norm`` over those steps, ``learning_rate`` the last value,
      ``skipped_steps`` and ``nonfinite_streak`` with a guarded step.

    Examples:
      >>> import optlab as ol
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
      >>> state = ol.TrainState.create(model, ol.scale_by_learning_rate(0.1))
      >>> step = ol.make_train_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> batches = (jnp.ones((5, 4, 2)), jnp.zeros((5, 4)))
      >>> state, logs = ol.train_epoch(step, state, batches)
      >>> print(int(state.step), float(logs["learning_rate"]), int(logs["skipped_steps"]))
      5 0.1 0
    """
    if not callable(step_fn):
        raise TypeError(
            f"train_epoch: step_fn must be a train step (make_train_step(loss)), got "
            f"step_fn={step_fn!r:.60} ({type(step_fn).__name__})"
        )
    if not isinstance(state, TrainState):
        raise TypeError(
            f"train_epoch: state must be an optlab.TrainState (TrainState.create(model, tx)), "
            f"got state={state!r:.60} ({type(state).__name__})"
        )
    x, _, _ = split_batch("train_epoch: batches", batches)
    if any(jnp.ndim(leaf) < 2 for leaf in jax.tree.leaves(x)):
        raise ValueError(
            "train_epoch: batches must be stacked to (num_batches, batch_size, ...) "
            "(optlab.data.batches makes them)"
        )
    return scan_epoch(step_fn, state, batches, metric)


def scan_eval(eval_fn: Callable[[TrainState, Batch], Logs], state: TrainState, batches: Batch):
    """Evaluates ``eval_fn`` over stacked batches: row-weighted means over the real rows."""

    def body(carry, batch):
        return carry, (eval_fn(state, batch), _rows(batch))

    _, (stacked, weights) = jax.lax.scan(body, None, batches)
    return _reduce(stacked, weights, jnp.ones_like(weights, bool))


@functools.partial(jax.jit, static_argnames=("eval_fn",))
def evaluate_batches(
    eval_fn: Callable[[TrainState, Batch], Logs], state: TrainState, batches: Batch
) -> Logs:
    """Evaluates ``eval_fn`` (from :func:`make_eval_step`) over stacked batches, compiled.

    Args:
      eval_fn: an evaluation step.
      state: the training state (not changed).
      batches: ``optlab.data.Batches`` (padded rows masked) or ``(xs, ys)``, stacked
        ``(num_batches, batch_size, ...)``.

    Returns:
      Loss and metrics: means over every real row.
    """
    return scan_eval(eval_fn, state, batches)
