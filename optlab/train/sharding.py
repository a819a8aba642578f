r"""Data-parallel training over a device mesh, with JAX's own SPMD machinery.

With a mesh holding an axis ``data`` of :math:`n` devices (``jax.make_mesh((n,), ("data",))``),
each batch of :math:`B` rows is split into :math:`n` shards of :math:`B/n` rows, one per
device, while the parameters :math:`\theta` and the model state :math:`\sigma` are replicated.
The program is the single-device one, compiled for global arrays (``jax.jit`` with
``NamedSharding`` constraints): the loss is still the masked mean over all :math:`B` rows,

.. math::

    L(\theta) = \frac{\sum_{d=1}^{n}\sum_{i \in \mathcal{B}_d} m_i\,\ell(f_\theta(x_i), y_i)}
                     {\sum_{d=1}^{n}\sum_{i \in \mathcal{B}_d} m_i},

so XLA's partitioner inserts the all-reduce of the per-device partial sums of
:math:`\nabla_\theta L` itself, and BatchNorm's batch mean and variance are reduced over the
global batch in the same way: the step computes what one device computes, up to the order of
the floating-point sums. Dropout masks are the same too, because JAX's partitionable
threefry draws the same bits whatever the sharding.

With ``shard_optimizer_state=True`` (ZeRO stage 1) every optimizer-state array with an axis
divisible by :math:`n` is split along it, so each device holds :math:`1/n` of the moments;
XLA then reduce-scatters the gradients, updates each shard and all-gathers the parameters.

:func:`optlab.fit` takes ``mesh=`` and ``shard_optimizer_state=``; the functional form is
:func:`data_parallel` (a train step that keeps these layouts) with :func:`shard_state` and
:func:`shard_batches` to place the inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from optlab.data.batching import Batches

DATA_AXIS = "data"
POP_AXIS = "pop"


def check_mesh(fn: str, mesh: Any, axis: str = DATA_AXIS) -> None:
    """Raises ``TypeError``/``ValueError`` unless ``mesh`` is a ``jax.sharding.Mesh`` with
    an axis named ``axis``."""
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"{fn}: mesh must be a jax.sharding.Mesh (e.g. jax.make_mesh((n,), ('data',))), "
            f"got mesh={mesh!r}"
        )
    if axis not in mesh.axis_names:
        raise ValueError(
            f"{fn}: mesh must have an axis named {axis!r}, got axes {tuple(mesh.axis_names)}"
        )


def auto_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis of type ``Auto`` (XLA's partitioner chooses the layouts in
    between the constraints), the mode the data-parallel step is written for.

    ``jax.make_mesh`` makes ``Explicit`` axes by default in this JAX version; the devices
    and axis names are kept, so arrays placed on either mesh live on the same devices.
    """
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * mesh.devices.ndim)


def data_size(mesh: Mesh, axis: str = DATA_AXIS) -> int:
    """The number of devices along the mesh's ``axis``."""
    return int(mesh.shape[axis])


def check_batch_size(fn: str, name: str, batch_size: int, mesh: Mesh, axis: str = DATA_AXIS):
    """Raises ``ValueError`` unless ``batch_size`` is a multiple of the ``axis`` size."""
    n = data_size(mesh, axis)
    if batch_size % n:
        raise ValueError(
            f"{fn}: {name} must be a multiple of the {n} devices of the mesh's {axis!r} axis, "
            f"got {name}={batch_size}"
        )


def _replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(auto_mesh(mesh), PartitionSpec())


def _split_spec(shape: tuple[int, ...], n: int, axis: str) -> PartitionSpec:
    """``axis`` on the first dimension of ``shape`` divisible by ``n`` (replicated if none)."""
    for i, size in enumerate(shape):
        if size >= n and size % n == 0:
            return PartitionSpec(*([None] * i), axis)
    return PartitionSpec()


def optimizer_state_sharding(
    opt_state: Any, mesh: Mesh, *, shard: bool = True, axis: str = DATA_AXIS
) -> Any:
    """The ``NamedSharding`` of each optimizer-state array: split along its first axis
    divisible by the ``axis`` size when ``shard`` (ZeRO-1), replicated otherwise (and for
    scalars such as step counts)."""
    n = data_size(mesh, axis)

    def one(leaf):
        if not shard or not hasattr(leaf, "shape"):
            return _replicated(mesh)
        return NamedSharding(auto_mesh(mesh), _split_spec(tuple(leaf.shape), n, axis))

    return jax.tree.map(one, opt_state)


def state_sharding(
    state: Any, mesh: Mesh, *, shard_optimizer_state: bool = False, axis: str = DATA_AXIS
) -> Any:
    """The ``NamedSharding`` of every array of a :class:`~optlab.train.state.TrainState`:
    replicated, except the optimizer state when ``shard_optimizer_state`` (ZeRO-1).

    Returns:
      A pytree shaped like ``state`` whose leaves are shardings (pass it to ``jax.device_put``
      or as a ``jax.jit`` in/out sharding).
    """
    replicated = _replicated(mesh)
    everything = jax.tree.map(lambda _: replicated, state)
    opt = optimizer_state_sharding(state.opt_state, mesh, shard=shard_optimizer_state, axis=axis)
    return everything.replace(opt_state=opt)


def shard_state(
    state: Any, mesh: Mesh, *, shard_optimizer_state: bool = False, axis: str = DATA_AXIS
) -> Any:
    """Places a :class:`~optlab.train.state.TrainState` on the mesh (see :func:`state_sharding`).

    Examples:
      >>> import jax
      >>> import optlab as ol
      >>> from flax import nnx
      >>> from optlab.train.sharding import shard_state
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> state = ol.TrainState.create(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), ol.adam(0.1))
      >>> state = shard_state(state, mesh, shard_optimizer_state=True)
      >>> print(state.params["kernel"].sharding.is_fully_replicated)
      True
    """
    check_mesh("shard_state", mesh, axis)
    return put(
        state, state_sharding(state, mesh, shard_optimizer_state=shard_optimizer_state, axis=axis)
    )


def batch_sharding(mesh: Mesh, *, stacked: bool = False, axis: str = DATA_AXIS) -> NamedSharding:
    """The sharding of a batch: rows split over ``axis`` (axis 1 of stacked batches)."""
    return NamedSharding(
        auto_mesh(mesh), PartitionSpec(None, axis) if stacked else PartitionSpec(axis)
    )


def shard_batches(batch: Any, mesh: Mesh, *, stacked: bool = False, axis: str = DATA_AXIS) -> Any:
    """Places a batch (``Batches``, ``(x, y)`` or a dict) on the mesh, rows split over
    ``axis``; ``stacked=True`` for ``(num_batches, batch_size, ...)`` epochs.

    Raises:
      ValueError: the number of rows is not a multiple of the ``axis`` size.
    """
    check_mesh("shard_batches", mesh, axis)
    rows = jax.tree.leaves(batch)[0].shape[1 if stacked else 0]
    check_batch_size("shard_batches", "the batch's number of rows", rows, mesh, axis)
    sharding = batch_sharding(mesh, stacked=stacked, axis=axis)
    return put(batch, jax.tree.map(lambda _: sharding, batch))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Places every array of ``tree`` on every device of the mesh."""
    return put(tree, jax.tree.map(lambda _: _replicated(mesh), tree))


def put(tree: Any, shardings: Any) -> Any:
    """``jax.device_put(tree, shardings)``, also when the shardings span several processes:
    then each process passes its local copy of the same values (fetched to the host first,
    PRNG keys as their key data), and ``device_put`` assembles the global arrays."""

    def one(x: Any, s: Any) -> Any:
        if s.is_fully_addressable or not (isinstance(x, jax.Array) and x.is_fully_addressable):
            return jax.device_put(x, s)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(x)), s)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return jax.device_put(np.asarray(x), s)

    return jax.tree.map(one, tree, shardings)


def _constrain(tree: Any, shardings: Any) -> Any:
    return jax.lax.with_sharding_constraint(tree, shardings)


@dataclasses.dataclass(frozen=True)
class DataParallelStep:
    """A train step that keeps the data-parallel layouts (see :func:`data_parallel`).

    Hashable (by the step, the mesh and the option), so ``jax.jit``'s static arguments and
    :func:`optlab.train.step.train_epoch` compile it once.
    """

    step_fn: Callable[..., Any]
    mesh: Mesh
    shard_optimizer_state: bool = False
    axis: str = DATA_AXIS

    @property
    def monitor(self) -> Any:
        """The wrapped step's diagnostics monitor (``optlab.train.step.scan_epoch`` reads it)."""
        return getattr(self.step_fn, "monitor", None)

    @property
    def plain(self) -> Any:
        """The wrapped step's plain step (``step.plain``: the step without its monitor, run
        between the monitored steps), kept data-parallel; None when it has none."""
        plain = getattr(self.step_fn, "plain", None)
        return None if plain is None else dataclasses.replace(self, step_fn=plain)

    def state_sharding(self, state: Any) -> Any:
        """The shardings of ``state`` under this step's layout."""
        return state_sharding(
            state, self.mesh, shard_optimizer_state=self.shard_optimizer_state, axis=self.axis
        )

    def __call__(
        self, state: Any, batch: Any, metric: Any = None, carry: Any = None
    ) -> tuple[Any, Any]:
        """The wrapped step, layouts kept; ``carry``: its monitor's epoch carry, passed on."""
        shardings = self.state_sharding(state)
        state = _constrain(state, shardings)
        rows = batch_sharding(self.mesh, axis=self.axis)
        if isinstance(batch, Batches | tuple | list | dict):
            batch = jax.tree.map(lambda a: _constrain(a, rows), batch)
        if carry is None:
            state, logs = self.step_fn(state, batch, metric)
        else:
            state, logs = self.step_fn(state, batch, metric, carry)
        return _constrain(state, shardings), logs


@dataclasses.dataclass(frozen=True)
class DataParallelEval:
    """An evaluation step whose batch rows are split over the mesh's ``axis`` when their
    number is a multiple of its size (else the batch is evaluated replicated); hashable."""

    eval_fn: Callable[..., Any]
    mesh: Mesh
    axis: str = DATA_AXIS

    def __call__(self, state: Any, batch: Any) -> Any:
        rows = jax.tree.leaves(batch)[0].shape[0]
        if rows % data_size(self.mesh, self.axis) == 0 and isinstance(
            batch, Batches | tuple | list | dict
        ):
            sharding = batch_sharding(self.mesh, axis=self.axis)
            batch = jax.tree.map(lambda a: _constrain(a, sharding), batch)
        return self.eval_fn(state, batch)


def data_parallel(
    step_fn: Callable[..., Any],
    mesh: Mesh,
    *,
    shard_optimizer_state: bool = False,
    axis: str = DATA_AXIS,
) -> DataParallelStep:
    r"""Makes a train step data-parallel over the mesh's ``axis``.

    The returned step has the signature of ``step_fn`` (``step(state, batch, metric=None)``,
    from :func:`optlab.make_train_step`); under ``jax.jit`` (or
    :func:`optlab.train_epoch`) it splits each batch's rows over ``axis``, keeps
    parameters and model state replicated and, with ``shard_optimizer_state``, the optimizer
    state split (ZeRO-1); XLA inserts the gradient all-reduce (the math is in the module
    docstring). Place the inputs with :func:`shard_state` and :func:`shard_batches` (the same
    layouts) so that the donated state buffers are reused.

    Args:
      step_fn: a train step.
      mesh: a ``jax.sharding.Mesh`` with an axis named ``axis``.
      shard_optimizer_state: split the optimizer state across the ``axis`` devices.
      axis: the mesh axis the rows are split over.

    Returns:
      A :class:`DataParallelStep`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optlab as ol
      >>> from flax import nnx
      >>> from optlab.train.sharding import data_parallel, shard_batches, shard_state
      >>> mesh = jax.make_mesh((1,), ("data",))
      >>> step = ol.make_train_step(lambda p, y: (p[:, 0] - y) ** 2, metrics=())
      >>> state = ol.TrainState.create(nnx.Linear(2, 1, rngs=nnx.Rngs(0)), ol.sgd(0.1))
      >>> state = shard_state(state, mesh)
      >>> batch = shard_batches((jnp.ones((4, 2)), jnp.zeros(4)), mesh)
      >>> state, logs = jax.jit(data_parallel(step, mesh))(state, batch)
      >>> print(int(state.step))
      1

    References:
      Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
      Models", 2020, https://arxiv.org/abs/1910.02054
    """
    check_mesh("data_parallel", mesh, axis)
    if not callable(step_fn):
        raise TypeError(f"data_parallel: step_fn must be a train step, got {step_fn!r}")
    if not isinstance(shard_optimizer_state, bool):
        raise TypeError(
            "data_parallel: shard_optimizer_state must be a bool, got "
            f"shard_optimizer_state={shard_optimizer_state!r}"
        )
    return DataParallelStep(step_fn, auto_mesh(mesh), shard_optimizer_state, axis)


def population_sharding(tree: Any, mesh: Mesh, *, axis: str = POP_AXIS) -> Any:
    """The sharding of a population (every leaf stacked over members on axis 0): members
    split over the mesh's ``axis``, the other axes replicated."""
    sharding = NamedSharding(auto_mesh(mesh), PartitionSpec(axis))
    return jax.tree.map(lambda _: sharding, tree)


def shard_population(tree: Any, mesh: Mesh, *, axis: str = POP_AXIS) -> Any:
    r"""Places a population on the mesh, its members split over ``axis`` (default ``pop``).

    A sweep runs :math:`P` members (configurations, seeds) as one program, ``jax.vmap`` over
    a leading member axis of the states (and of any per-member inputs). Placed with this
    function, each of the :math:`k` devices of ``axis`` holds :math:`P/k` members, and the
    vmapped program runs on them with no communication between members. On a mesh
    ``("pop", "data")`` vmap a :func:`data_parallel` step with ``spmd_axis_name="pop"``:
    members over ``pop``, each member's batch rows over ``data``.

    Args:
      tree: a pytree whose leaves are stacked over members on axis 0 (e.g. a vmapped
        :class:`~optlab.train.state.TrainState`).
      mesh: a ``jax.sharding.Mesh`` with an axis named ``axis``.
      axis: the mesh axis the members are split over.

    Returns:
      The placed tree.

    Raises:
      ValueError: the number of members is not a multiple of the ``axis`` size.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from optlab.train.sharding import shard_population
      >>> mesh = jax.make_mesh((1,), ("pop",))
      >>> members = shard_population({"lr": jnp.array([0.1, 0.2])}, mesh)
      >>> print(members["lr"].sharding.spec)
      P('pop',)
    """
    check_mesh("shard_population", mesh, axis)
    members = jax.tree.leaves(tree)[0].shape[0]
    check_batch_size("shard_population", "the number of members", members, mesh, axis)
    return put(tree, population_sharding(tree, mesh, axis=axis))


def check_fit_options(fn: str, mesh: Any, shard_optimizer_state: Any, batch_size: int) -> None:
    """Checks ``fit``'s ``mesh``, ``shard_optimizer_state`` and the batch size against the
    mesh (``mesh=None`` accepts anything but ``shard_optimizer_state=True``)."""
    if not isinstance(shard_optimizer_state, bool):
        raise TypeError(
            f"{fn}: shard_optimizer_state must be a bool, got "
            f"shard_optimizer_state={shard_optimizer_state!r}"
        )
    if mesh is None:
        if shard_optimizer_state:
            raise ValueError(f"{fn}: shard_optimizer_state=True needs a mesh, got mesh=None")
        return
    check_mesh(fn, mesh)
    check_batch_size(fn, "batch_size", batch_size, mesh)


def place_fit(
    step_fn: Callable,
    eval_fn: Callable,
    state: Any,
    arrays: Any,
    mesh: Mesh,
    shard_optimizer_state: bool,
) -> tuple[DataParallelStep, DataParallelEval, Any, Any]:
    """``fit``'s inputs on the mesh: the data-parallel train and evaluation steps, the
    placed state and the training arrays replicated (each epoch's permutation then stacks the
    batches on the devices, and each step's rows are split over the ``data`` axis). A
    checkpoint is then restored onto these shardings (any device count).
    """
    step = data_parallel(step_fn, mesh, shard_optimizer_state=shard_optimizer_state)
    evaluate = DataParallelEval(eval_fn, step.mesh)
    return step, evaluate, put(state, step.state_sharding(state)), replicate(arrays, mesh)
