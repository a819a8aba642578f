r"""A population of training runs advanced together: one compiled program per epoch.

Every member :math:`m` is a :class:`~optlab.train.state.TrainState` :math:`s_m` with its own
data key :math:`k_m` (``jax.random.key(seed_m)``, as :func:`optlab.fit` derives it from its
seed). The states are stacked on a leading axis and one epoch of the whole population is

.. math::

    (s'_m, \ell_m) = \mathrm{fit\_epoch}(s_m, k_m, e) \quad \text{for every } m
    \text{ (one } \texttt{vmap}\text{)}, \qquad
    s_m \leftarrow \begin{cases} s'_m & a_m \\ s_m & \text{otherwise} \end{cases}

with :func:`optlab.train.fit.fit_epoch` the very function ``fit`` compiles for one run (the
data permuted on the device with :func:`optlab.data.batches`, the engine's train step scanned
over the batches) and :math:`a_m` the member's *active* flag: a member that has stopped (early
stopping, too many non-finite steps) keeps its state while the others train on. Validation is
the engine's evaluation scan, under the same ``vmap``. Hence member :math:`m`'s history is the
history of ``fit`` with the same model, transformation and seed.

Members run in chunks of at most ``chunk_size`` (each chunk one dispatch of the same compiled
program; the last chunk is padded with inactive copies), so a population larger than memory
allows gives the same results as one that fits. :func:`member_bytes` estimates one member's
working memory from its state, its copy of the batches and the intermediates of one step.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optlab.data.batching import Batches
from optlab.train import sharding
from optlab.train.callbacks import EarlyStopping
from optlab.train.fit import fit_epoch
from optlab.train.history import History
from optlab.train.step import make_eval_step, make_train_step, ordered, scan_eval

DEFAULT_CPU_BUDGET = 1 << 30  # bytes of working memory per chunk when the device reports none


@functools.partial(
    jax.jit,
    static_argnames=(
        "step_fn",
        "eval_fn",
        "batch_size",
        "drop_remainder",
        "augment",
        "member_data",
    ),
    donate_argnames=("states",),
)
def population_epoch(
    states: Any,
    data_keys: jax.Array,
    active: jax.Array,
    epoch: jax.Array,
    x: Any,
    y: Any,
    val: Batches | None,
    *,
    step_fn: Callable,
    eval_fn: Callable,
    batch_size: int,
    drop_remainder: bool,
    augment: Callable | None,
    member_data: bool,
) -> tuple[Any, dict[str, jax.Array]]:
    """One epoch of every member, compiled once per population size (see the module docs).

    Args:
      states: stacked :class:`~optlab.train.state.TrainState` (leading member axis); donated.
      data_keys: ``(P,)`` typed keys, each member's ``jax.random.key(seed)``.
      active: ``(P,)`` bools; inactive members keep their state.
      epoch: the 1-based epoch number (int32 scalar), shared.
      x, y: the training rows, shared, or stacked per member with ``member_data``.
      val: validation batches (shared or stacked), or None.
      step_fn, eval_fn: the engine's train and evaluation steps.
      batch_size, drop_remainder, augment: as :func:`optlab.fit`.
      member_data: whether ``x``, ``y`` and ``val`` carry a member axis.

    Returns:
      ``(states, logs)``: the logs hold the train values of
      :func:`~optlab.train.step.scan_epoch` and ``val_<key>`` for each validation value, each
      with a leading member axis.
    """
    axis = 0 if member_data else None

    def one(state, key, on, x, y, val):
        new, logs = fit_epoch(
            step_fn,
            state,
            x,
            y,
            key,
            epoch,
            None,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            augment=augment,
        )
        new = jax.tree.map(lambda a, b: jnp.where(on, a, b), new, state)
        out = dict(logs)
        if val is not None:
            out.update({f"val_{k}": v for k, v in scan_eval(eval_fn, new, val).items()})
        return new, out

    return jax.vmap(one, in_axes=(0, 0, 0, axis, axis, None if val is None else axis))(
        states, data_keys, active, x, y, val
    )


@functools.lru_cache(maxsize=32)
def _cached_steps(
    loss: Callable, metrics: tuple, skip_nonfinite: bool
) -> tuple[Callable, Callable]:
    return (
        make_train_step(loss, metrics=metrics, skip_nonfinite=skip_nonfinite),
        make_eval_step(loss, metrics=metrics),
    )


def engine_steps(
    loss: Callable, metrics: Sequence[Any] = (), skip_nonfinite: bool = True
) -> tuple[Callable, Callable]:
    """The engine's train and evaluation steps for ``(loss, metrics, skip_nonfinite)``, built
    once (so a second search with the same loss reuses the compiled programs)."""
    try:
        return _cached_steps(loss, tuple(metrics), skip_nonfinite)
    except TypeError:  # an unhashable loss or metric
        return (
            make_train_step(loss, metrics=metrics, skip_nonfinite=skip_nonfinite),
            make_eval_step(loss, metrics=metrics),
        )


def replicate(tree: Any, n: int) -> Any:
    """``n`` stacked copies of every leaf of ``tree`` (any dtype, typed keys included)."""
    return jax.vmap(lambda _: tree)(jnp.arange(n))


def take(tree: Any, index: Any) -> Any:
    """The members ``index`` (an integer array) of a stacked tree."""
    index = jnp.asarray(index, jnp.int32)
    return jax.tree.map(lambda a: a[index], tree)


def _tree_bytes(tree: Any) -> int:
    return int(sum(np.prod(np.shape(a)) * np.dtype(a.dtype).itemsize for a in _arrays(tree)))


def _arrays(tree: Any) -> list[Any]:
    out = []
    for leaf in jax.tree.leaves(tree):
        if hasattr(leaf, "dtype") and not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            out.append(leaf)
    return out


def _jaxpr_bytes(jaxpr: Any) -> int:
    """The bytes of every value a jaxpr (and the jaxprs inside it) computes."""
    total = 0
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            aval = v.aval
            if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                try:
                    total += int(np.prod(aval.shape)) * np.dtype(aval.dtype).itemsize
                except TypeError:  # extended dtypes (keys): a few bytes
                    total += 8
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", None)
            if inner is not None:
                total += _jaxpr_bytes(getattr(inner, "jaxpr", inner))
            elif isinstance(param, tuple | list):
                for p in param:
                    sub = getattr(p, "jaxpr", None)
                    if sub is not None:
                        total += _jaxpr_bytes(getattr(sub, "jaxpr", sub))
    return total


def member_bytes(step_fn: Callable, state: Any, x: Any, y: Any, batch_size: int) -> int:
    """An estimate of one member's working memory in an epoch, in bytes.

    Three times the state (the state, the next state and the gradients), the member's own copy
    of the epoch's stacked batches (the whole training set, permuted), and every intermediate
    value of one train step (read from its jaxpr: an upper bound, as XLA frees and fuses).

    Args:
      step_fn: the train step.
      state: one member's :class:`~optlab.train.state.TrainState` (no member axis).
      x, y: the training rows.
      batch_size: rows per step.
    """
    n = int(jax.tree.leaves(x)[0].shape[0])
    rows = _tree_bytes(x) + (_tree_bytes(y) if y is not None else 0)
    size = min(batch_size, n)

    def one_batch(a):
        return jnp.zeros((size, *np.shape(a)[1:]), a.dtype)

    batch = Batches(
        jax.tree.map(one_batch, x),
        None if y is None else jax.tree.map(one_batch, y),
        jnp.ones((size,), jnp.float32),
    )
    jaxpr = jax.make_jaxpr(step_fn)(state, batch)
    return 3 * _tree_bytes(state) + rows + _jaxpr_bytes(jaxpr.jaxpr)


def default_budget() -> int:
    """Half the device's memory when it reports it (GPUs), else :data:`DEFAULT_CPU_BUDGET`."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:
        stats = {}
    limit = stats.get("bytes_limit")
    return int(limit) // 2 if limit else DEFAULT_CPU_BUDGET


class _MemberRun:
    """What an :class:`~optlab.train.callbacks.EarlyStopping` needs of a run, for one member."""

    def __init__(self):
        self.state = None
        self.stop_training = False
        self.stop_reason: str | None = None
        self.resumed = False

    def stop(self, reason: str) -> None:
        self.stop_training = True
        if self.stop_reason is None:
            self.stop_reason = reason


def member_stopper(early_stopping: EarlyStopping | None) -> EarlyStopping | None:
    """A fresh copy of ``early_stopping`` for one member (its rule, none of its state; members
    keep their last weights: a sweep reports histories)."""
    if early_stopping is None:
        return None
    stopper = copy.copy(early_stopping)
    stopper.restore_best_weights = False
    stopper.keep_best_weights = False
    stopper.reset_monitor()
    return stopper


class Population:
    """Members trained together by :func:`population_epoch`, with their histories on the host.

    Args:
      states: stacked train states (leading member axis).
      data_keys: ``(P,)`` typed keys (``jax.random.key(seed)`` of each member).
      step_fn, eval_fn: the engine's steps.
      x, y: training rows (shared, or stacked per member with ``member_data``).
      val: validation batches (shared or stacked) or None.
      batch_size, drop_remainder, augment: as :func:`optlab.fit`.
      member_data: whether the data carry a member axis.
      chunk_size: members per dispatch (None: all).
      early_stopping: an :class:`~optlab.train.callbacks.EarlyStopping` whose rule every member
        follows (each with its own copy), or None.
      max_consecutive_nonfinite: stop a member after an epoch with this many skipped steps in a
        row (as ``fit``).

    Attributes:
      ids: the member ids of the current positions (compaction keeps a subset).
      histories: ``{id: History}``.
      stop_reasons: ``{id: str}`` for members that stopped themselves.
      epoch: the number of epochs run.
    """

    def __init__(
        self,
        states: Any,
        data_keys: jax.Array,
        *,
        step_fn: Callable,
        eval_fn: Callable,
        x: Any,
        y: Any,
        val: Batches | None,
        batch_size: int,
        drop_remainder: bool = True,
        augment: Callable | None = None,
        member_data: bool = False,
        chunk_size: int | None = None,
        early_stopping: EarlyStopping | None = None,
        max_consecutive_nonfinite: int = 10,
        mesh: Any = None,
    ):
        self.mesh = mesh
        self.states = states
        self.keys = data_keys
        size = int(data_keys.shape[0])
        self.ids: list[int] = list(range(size))
        self.active = np.ones(size, bool)
        self.histories = {i: History() for i in self.ids}
        self.stoppers = {i: member_stopper(early_stopping) for i in self.ids}
        self.stop_reasons: dict[int, str] = {}
        self.x, self.y, self.val = x, y, val
        self.member_data = member_data
        self.chunk_size = size if chunk_size is None else max(1, int(chunk_size))
        self.max_consecutive_nonfinite = max_consecutive_nonfinite
        self.epoch = 0
        self.member_epochs = 0  # epochs trained, summed over members (the compute spent)
        self._static = dict(
            step_fn=step_fn,
            eval_fn=eval_fn,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            augment=augment,
            member_data=member_data,
        )

    @property
    def size(self) -> int:
        """The number of positions (members still in the population, stopped or not)."""
        return len(self.ids)

    def _data(self, index: np.ndarray | None) -> tuple[Any, Any, Any]:
        if not self.member_data or index is None:
            return self.x, self.y, self.val
        return (
            take(self.x, index),
            take(self.y, index),
            (None if self.val is None else take(self.val, index)),
        )

    def _dispatch(self, states, keys, active, index):
        x, y, val = self._data(index)
        epoch = jnp.asarray(self.epoch + 1, jnp.int32)
        if self.mesh is not None:
            states, keys, active, x, y, val = place_members(
                self.mesh, (states, keys, jnp.asarray(active)), (x, y, val), self.member_data
            )
        return population_epoch(states, keys, jnp.asarray(active), epoch, x, y, val, **self._static)

    def step(self) -> None:
        """Runs one epoch of every active member and records it."""
        size = self.size
        chunk = min(self.chunk_size, size)
        if chunk >= size:
            self.states, logs = self._dispatch(self.states, self.keys, self.active, None)
            logs = jax.device_get(logs)
        else:
            parts, part_logs = [], []
            for start in range(0, size, chunk):
                pos = np.arange(start, start + chunk)
                real = pos < size
                index = np.where(real, pos, 0)  # the last chunk is padded with inactive copies
                states, logs = self._dispatch(
                    take(self.states, index),
                    take(self.keys, index),
                    self.active[index] & real,
                    index,
                )
                count = int(real.sum())
                parts.append(jax.tree.map(lambda a, c=count: a[:c], states))
                part_logs.append(
                    {k: np.asarray(v)[:count] for k, v in jax.device_get(logs).items()}
                )
            self.states = jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
            logs = {k: np.concatenate([p[k] for p in part_logs]) for k in part_logs[0]}
        self.epoch += 1
        self._record(logs)

    def _record(self, logs: dict[str, np.ndarray]) -> None:
        train_keys = [k for k in ordered({k: 0 for k in logs if not k.startswith("val_")})]
        val_keys = [k for k in logs if k.startswith("val_")]
        val_keys = ["val_" + k for k in ordered({k[4:]: 0 for k in val_keys})]
        for pos, member in enumerate(self.ids):
            if not self.active[pos]:
                continue
            self.member_epochs += 1
            values = {k: float(logs[k][pos]) for k in (*train_keys, *val_keys)}
            streak = int(values.pop("nonfinite_streak", 0))
            history = self.histories[member]
            history.append(self.epoch, values)
            run = _MemberRun()
            if streak >= self.max_consecutive_nonfinite:
                run.stop(
                    f"{streak} steps in a row had a non-finite loss or gradient and were skipped "
                    f"(max_consecutive_nonfinite={self.max_consecutive_nonfinite})"
                )
            stopper = self.stoppers[member]
            if stopper is not None:
                stopper.on_epoch_end(run, self.epoch, values)
            if run.stop_training:
                self.active[pos] = False
                self.stop_reasons[member] = run.stop_reason or "stopped"

    def run(self, until_epoch: int) -> None:
        """Runs epochs until ``until_epoch`` (1-based, inclusive) or until no member is active."""
        while self.epoch < until_epoch and self.active.any():
            self.step()

    def compact(self, keep: Sequence[int]) -> None:
        """Keeps only the members ``keep`` (ids), in that order: later epochs cost nothing for
        the others."""
        where = {m: p for p, m in enumerate(self.ids)}
        index = np.array([where[m] for m in keep], np.int64)
        self.states = take(self.states, index)
        self.keys = take(self.keys, index)
        self.active = self.active[index]
        if self.member_data:
            self.x, self.y, self.val = self._data(index)
        self.ids = [self.ids[p] for p in index]

    def final_states(self) -> Any:
        """The stacked states of the current positions (``ids``)."""
        return self.states


def place_members(mesh: Any, members: Any, data: Any, member_data: bool) -> tuple:
    """A dispatch's inputs on the mesh: the members (and per-member data) split over its
    ``pop`` axis when their number is a multiple of its size, replicated otherwise (e.g. after
    a compaction), the shared data replicated. Members never communicate."""
    if int(jax.tree.leaves(members)[0].shape[0]) % sharding.data_size(mesh, "pop") == 0:
        place = functools.partial(sharding.shard_population, mesh=mesh)
    else:
        place = functools.partial(sharding.replicate, mesh=mesh)
    members = place(members)
    data = place(data) if member_data else sharding.replicate(data, mesh)
    return (*members, *data)


def chunk_size_for(budget: int | None, per_member: int, population: int) -> int:
    """Members per dispatch: as many as ``budget`` bytes hold (at least one)."""
    budget = default_budget() if budget is None else int(budget)
    return max(1, min(population, budget // max(1, per_member)))


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """The epochs ``min_epochs * eta**k`` below ``epochs`` (the rungs of successive halving)."""
    out, r = [], min_epochs
    while r < epochs:
        out.append(r)
        r *= eta
    return out


def compilations_bound(n: int, eta: int) -> int:
    """``max(1, ceil(log_eta n))``: the most population sizes successive halving goes through
    (it stops halving once at most ``eta`` configurations remain)."""
    return max(1, math.ceil(math.log(n) / math.log(eta) - 1e-12)) if n > 1 else 1
