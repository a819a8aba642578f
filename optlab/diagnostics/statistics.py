r"""Per-layer statistics of activations, gradients and updates, as pure ``jnp`` functions.

The numbers the lectures ask a practitioner to watch, for a batch of :math:`B` rows with
weights :math:`m_i \in \{0, 1\}` (padded rows weigh nothing) and a layer's values
:math:`v_{iu}` (row :math:`i`, unit :math:`u`, :math:`U` units):

.. math::

   \mu = \frac{\sum_{i,u} m_i v_{iu}}{U \sum_i m_i}, \qquad
   \sigma^2 = \frac{\sum_{i,u} m_i (v_{iu} - \mu)^2}{U \sum_i m_i}, \qquad
   \text{dead} = \frac{1}{U} \#\{u : v_{iu} = 0 \;\forall i : m_i = 1\},

the *saturated* fraction of the values (:math:`|\tanh| > 0.99`; :math:`\sigma(z) < 0.01` or
:math:`> 0.99`) and a histogram of 32 bins with fixed edges (values outside go to the end
bins). Dead units are counted for the ReLU family, saturation for tanh and sigmoid; the other
one is NaN. Per parameter :math:`\theta` with gradient :math:`g` and applied step
:math:`\Delta\theta`:

.. math::

   \lVert g \rVert, \qquad \mathrm{RMS}(g) = \lVert g \rVert / \sqrt{n}, \qquad
   \rho = \frac{\lVert \Delta\theta \rVert}{\lVert \theta \rVert}, \qquad
   \eta_\text{eff} = \frac{\lVert \Delta\theta \rVert}{\lVert g \rVert},

the update-to-parameter ratio :math:`\rho` (about :math:`10^{-3}` is healthy, CS231n) and the
effective learning rate :math:`\eta_\text{eff}` (the learning rate itself for plain SGD; what
an adaptive optimizer's per-coordinate scaling amounts to, summarized over the tensor).

Layers are found in the model itself: the output of every module holding a ``kernel``
parameter (``optlab.nn.Dense``, ``nnx.Linear``, ``nnx.Conv``) is a *pre-activation*, the
output of every optlab activation layer (``optlab.nn.Activation``, ``PReLU``, ``RReLU``: the
``act`` of each MLP block) an *activation*. Their values are recorded during the forward pass
with Flax's ``nnx.capture`` (the intercepted method outputs), not by a second model. Layers
are named by their module path (``"blocks/0/act"``) and ordered by it, numbers numerically.

Inside a compiled train step, where every extra kernel shows on a small model, each sum over
the rows is a matrix-vector product with the row weights, and the layers with few values
(fewer than ``PACK_BELOW``) are laid side by side in one matrix whose statistics take a fixed
handful of kernels however many layers there are (:func:`packed_sums`); a large layer is
reduced alone (packing would copy its bytes once more). The monitor reads the first rows of
each batch only for the moments and saturated fractions (32) and the histograms (4), so that
its cost does not grow with the batch size; the dead fraction reads every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.paths import path_str
from optlab.nn.layers import Activation, PReLU, RReLU
from optlab.train.history import natural_key

BINS = 32
ACTIVATION = "activation"
PREACTIVATION = "preactivation"
ROLES = (ACTIVATION, PREACTIVATION)

# Activations whose units can die (output exactly 0 for every input of a batch).
RELU_FAMILY = frozenset(
    {"relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "silu"}
    | {"swish"}
)
SATURATING = frozenset({"tanh", "hard_tanh", "sigmoid"})
# ReLU-family activations whose outputs are never negative.
NONNEGATIVE = frozenset({"relu", "relu6"})
_RANGES = {
    "relu": (0.0, 4.0),
    "relu6": (0.0, 6.0),
    "tanh": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "sigmoid": (0.0, 1.0),
}
_RELU_LIKE_RANGE = (-2.0, 4.0)
_DEFAULT_RANGE = (-4.0, 4.0)


class Layer(NamedTuple):
    """A recorded layer: module path (tuple and text), role and activation kind."""

    path: tuple
    name: str
    role: str  # "activation" or "preactivation"
    kind: str  # the activation's name, or "linear" for a pre-activation


def histogram_range(role: str, kind: str) -> tuple[float, float]:
    """The fixed ``(low, high)`` of a layer's histogram: the activation's range where it has
    one (tanh ``(-1, 1)``, sigmoid ``(0, 1)``, ReLU ``(0, 4)``), ``(-4, 4)`` for
    pre-activations.

    Examples:
      >>> histogram_range("activation", "tanh"), histogram_range("preactivation", "linear")
      ((-1.0, 1.0), (-4.0, 4.0))
    """
    if role == PREACTIVATION:
        return _DEFAULT_RANGE
    if kind in _RANGES:
        return _RANGES[kind]
    return _RELU_LIKE_RANGE if kind in RELU_FAMILY else _DEFAULT_RANGE


def histogram_edges(role: str, kind: str, bins: int = BINS) -> np.ndarray:
    """The ``bins + 1`` fixed edges of a layer's histogram (float32)."""
    low, high = histogram_range(role, kind)
    return np.linspace(low, high, bins + 1, dtype=np.float32)


def _kind(module: nnx.Module) -> str | None:
    if isinstance(module, Activation):
        return str(module.name)
    if isinstance(module, PReLU):
        return "prelu"
    if isinstance(module, RReLU):
        return "rrelu"
    return None


def layers_of(model: nnx.Module) -> list[Layer]:
    """The layers whose outputs are recorded (see the module docstring), in path order."""
    found = []
    for path, module in nnx.iter_modules(model):
        kind = _kind(module)
        if kind is not None:
            found.append(Layer(tuple(path), path_str(path), ACTIVATION, kind))
        elif isinstance(getattr(module, "kernel", None), nnx.Param):
            found.append(Layer(tuple(path), path_str(path), PREACTIVATION, "linear"))
    return sorted(found, key=lambda layer: natural_key(layer.name))


def layer_outputs(layers: list[Layer], captured: Mapping) -> dict[Layer, jax.Array]:
    """Each layer's output from what ``nnx.capture`` recorded (the last call of a layer called
    more than once); layers that were not called are left out."""
    out = {}
    for layer in layers:
        node: Any = captured
        for part in layer.path:
            node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                break
        calls = node.get("__call__") if isinstance(node, Mapping) else None
        if calls:
            out[layer] = calls[-1]
    return out


def value_stats(
    values: jax.Array,
    mask: jax.Array | None,
    *,
    role: str,
    kind: str,
    histogram: bool = True,
    bins: int = BINS,
    histogram_rows: int | None = None,
    moment_rows: int | None = None,
) -> dict[str, jax.Array]:
    """Mean, standard deviation, dead and saturated fractions and histogram of one layer's
    values on one batch (see the module docstring).

    Args:
      values: ``(B, ...)``: rows first; every other axis is a unit.
      mask: ``(B,)`` row weights in {0, 1}, or None (every row).
      role: ``"activation"`` or ``"preactivation"``.
      kind: the activation's name (``"relu"``, ``"tanh"``...); decides which of dead and
        saturated applies, and the histogram's range.
      histogram: also count the histogram (weights of the rows, per bin).
      bins: the number of bins.
      histogram_rows: count the histogram on the first ``histogram_rows`` rows only (still
        weighted by the mask); None: every row. The monitor counts 4 rows per step
        (``optlab.diagnostics.monitor.HISTOGRAM_ROWS``): the histogram is a scatter-add,
        serial on CPU, and a fixed subsample keeps its cost independent of the batch size.
      moment_rows: take the mean, standard deviation and saturated fraction on the first
        ``moment_rows`` rows only (weighted by the mask); None: every row. The dead fraction
        always reads every row (a unit is dead when it is 0 on all of them). The monitor
        takes 32 (``MOMENT_ROWS``).

    Returns:
      ``{"mean", "std", "dead", "saturated"}`` scalars (float32) and, with ``histogram``,
      ``"hist"``: the weighted count of values per bin (``bins``,).

    Examples:
      >>> import jax.numpy as jnp
      >>> v = jnp.array([[0.0, 1.0], [0.0, 3.0], [5.0, 0.0]])
      >>> s = value_stats(v, jnp.array([1.0, 1.0, 0.0]), role="activation", kind="relu")
      >>> print(float(s["mean"]), float(s["dead"]), float(s["hist"].sum()))
      1.0 0.5 4.0
    """
    sums = value_sums(
        values,
        mask,
        role=role,
        kind=kind,
        histogram=histogram,
        bins=bins,
        histogram_rows=histogram_rows,
        moment_rows=moment_rows,
    )
    mean, std = moments(sums["first"], sums["second"], sums["shift"])
    stats = {"mean": mean, "std": std, "dead": sums["dead"], "saturated": sums["saturated"]}
    if histogram:
        stats["hist"] = sums["hist"]
    return stats


def value_sums(
    values: jax.Array,
    mask: jax.Array | None,
    *,
    role: str,
    kind: str,
    histogram: bool = True,
    bins: int = BINS,
    histogram_rows: int | None = None,
    moment_rows: int | None = None,
) -> dict[str, jax.Array]:
    """The reductions behind :func:`value_stats` (same arguments), before the moments are
    finished: ``first`` and ``second``, the weighted means of :math:`v - c` and
    :math:`(v - c)^2` for a shift :math:`c` (``shift``, one of the values: it keeps
    :math:`E[(v-c)^2] - E[v-c]^2` accurate when the mean is large against the spread), the
    ``dead`` and ``saturated`` fractions and, with ``histogram``, ``hist``: the one-entry
    case of :func:`packed_sums`. :func:`moments` turns the first three into the mean and
    standard deviation."""
    sums = packed_sums(
        [(values, role, kind)],
        mask,
        histogram_rows=(values.shape[0] if histogram_rows is None else histogram_rows)
        if histogram
        else None,
        moment_rows=moment_rows,
        bins=bins,
    )
    return {k: v[0] for k, v in sums.items()}


def _weighted_rows(w: jax.Array, values: jax.Array) -> jax.Array:
    r""":math:`\sum_i w_i x_{iu}` per unit :math:`u`, in float32 at full precision."""
    return jnp.dot(w, values.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST)


def moments(first: Any, second: Any, shift: Any) -> tuple[jax.Array, jax.Array]:
    r"""Mean and standard deviation from shifted moments (elementwise: scalars or vectors),
    :math:`\mu = c + E[v - c]` and :math:`\sigma = \sqrt{\max(E[(v-c)^2] - E[v-c]^2, 0)}`."""
    return first + shift, jnp.sqrt(jnp.maximum(second - jnp.square(first), 0.0))


def _scatter_add(counts: jax.Array, index: jax.Array, weights: jax.Array) -> jax.Array:
    # The indices are in bounds by construction: no wrapping of negative indices or bounds
    # handling (each was an extra pass over the indices).
    return counts.at[index].add(weights, mode="promise_in_bounds", wrap_negative_indices=False)


def _histograms(
    values: jax.Array, w: jax.Array, segment: jax.Array, roles: list, bins: int
) -> jax.Array:
    """The ``(entries, bins)`` weighted counts of ``values`` (``(rows, N)``, the entries' units
    side by side, ``segment`` each unit's entry, ``roles`` each entry's ``(role, kind)``):
    one pass for the bin indices, one scatter-add."""
    ranges = np.array([histogram_range(role, kind) for role, kind in roles], np.float32)
    low, high = ranges[:, 0], ranges[:, 1]

    def table(column: np.ndarray) -> jax.Array:  # a per-entry constant, read per unit
        return jnp.asarray(column)[segment]

    # t >= 0 is False for NaN and negative values: bin 0; the conversion truncates, which is
    # the floor for t >= 0 (no floor or NaN pass)
    t = (values - table(low)) * table(bins / (high - low))
    index = jnp.minimum(jnp.where(t >= 0, t, 0.0), bins - 1).astype(jnp.int32)
    index = index + (segment * bins)[None, :]
    weights = jnp.broadcast_to(w[:, None], index.shape)
    counts = jnp.zeros(len(roles) * bins, jnp.float32)
    counts = _scatter_add(counts, index.reshape(-1), weights.reshape(-1))
    return counts.reshape(len(roles), bins)


def _side_by_side(arrays: list[jax.Array], rows: int) -> tuple[jax.Array, np.ndarray, jax.Array]:
    """The first ``rows`` rows of each array (rows first, every other axis a unit) laid side by
    side in one float32 ``(rows, N)`` matrix, the number of units of each, and each unit's
    array (computed from the units' positions: no constant as long as all the units)."""
    flat = [jnp.reshape(v[:rows], (rows, -1)).astype(jnp.float32) for v in arrays]
    units = np.array([v.shape[1] for v in flat])
    starts = np.cumsum(units)[:-1]
    segment = jnp.sum(jnp.arange(int(units.sum()))[:, None] >= jnp.asarray(starts)[None, :], 1)
    return jnp.concatenate(flat, axis=1), units, segment


def _row_weights(mask: jax.Array | None, rows: int) -> jax.Array:
    """The ``(rows,)`` float32 row weights: the mask, or ones."""
    return jnp.ones(rows, jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)


def layer_histograms(
    entries: list[tuple[jax.Array, str, str]], mask: jax.Array | None, rows: int, bins: int = BINS
) -> jax.Array:
    """The ``(entries, bins)`` histograms of :func:`value_stats` (weighted counts), counted on
    each entry's first ``rows`` rows: those rows side by side (a few rows: a small copy), one
    scatter-add for all the entries."""
    if not entries:
        return jnp.zeros((0, bins), jnp.float32)
    r = min(rows, entries[0][0].shape[0])
    values, _, segment = _side_by_side([v for v, _, _ in entries], r)
    w = _row_weights(mask, entries[0][0].shape[0])[:r]
    return _histograms(values, w, segment, [(role, kind) for _, role, kind in entries], bins)


def packed_sums(
    entries: list[tuple[jax.Array, str, str]],
    mask: jax.Array | None,
    *,
    histogram_rows: int | None = None,
    moment_rows: int | None = None,
    bins: int = BINS,
) -> dict[str, jax.Array]:
    """:func:`value_sums` of several arrays at once: the monitor's statistics of every layer
    (and of the input) on one step, in a fixed handful of kernels whatever the number of
    layers.

    The values are laid side by side, unit after unit, in one ``(B, N)`` matrix (``N`` the
    total number of units); each sum over the rows is then one matrix-vector product with the
    row weights for every unit of every entry at once, and the per-entry totals one segment
    sum. On CPU, where each kernel of a small step costs about as much as its arithmetic, this
    is several times cheaper than the same reductions taken entry by entry.

    Args:
      entries: ``(values, role, kind)`` for each entry (``values`` ``(B, ...)``, the same
        ``B`` for all).
      mask: ``(B,)`` row weights in {0, 1}, or None.
      histogram_rows: also count each entry's histogram (:func:`value_stats`) on the first
        ``histogram_rows`` rows; None: no histograms.
      bins: the number of bins.

    Returns:
      ``first``, ``second``, ``shift``, ``dead``, ``saturated``: vectors with one value per
      entry (as :func:`value_sums` returns them for each entry alone), and with
      ``histogram_rows`` ``hist``, the ``(entries, bins)`` weighted counts.

    Examples:
      >>> import jax.numpy as jnp
      >>> a = jnp.array([[0.0, 1.0], [0.0, 3.0]])
      >>> s = packed_sums([(a, "activation", "relu"), (a.T, "preactivation", "linear")], None)
      >>> print(s["dead"], s["first"] + s["shift"])
      [0.5 nan] [1. 1.]
    """
    num = len(entries)
    rows = entries[0][0].shape[0]
    roles = [(role, kind) for _, role, kind in entries]
    relu = np.array([r == ACTIVATION and k in RELU_FAMILY for r, k in roles])
    sigmoid = np.array([r == ACTIVATION and k == "sigmoid" for r, k in roles])
    saturating = np.array([r == ACTIVATION and k in SATURATING for r, k in roles])
    values, units, segment = _side_by_side([v for v, _, _ in entries], rows)  # (B, N)
    starts = np.concatenate([[0], np.cumsum(units)[:-1]])
    w = _row_weights(mask, rows)

    def table(column: Any) -> jax.Array:  # a per-entry constant, read per unit
        return jnp.asarray(np.asarray(column, np.float32))[segment]

    shift = jax.lax.stop_gradient(values[0, starts])
    # the moments and the saturated fractions on the first moment_rows rows, dead on all
    r = rows if moment_rows is None else min(moment_rows, rows)
    vr, wr = values[:r], w[:r]
    # per unit: the weighted sums over the rows, one matrix-vector product each
    columns = [_weighted_rows(wr, vr), _weighted_rows(wr, jnp.square(vr - shift[segment]))]
    if relu.any():  # alive: some real row is not 0 (NaN is not 0)
        if all(k in NONNEGATIVE for (_, k), dead in zip(roles, relu, strict=True) if dead):
            # values >= 0: the unit's weighted sum over the rows is 0 exactly when it is dead
            # (no comparison pass; the sum is the first moment's when it reads every row)
            total = columns[0] if r == rows else _weighted_rows(w, values)
            alive = total != 0
        else:
            alive = _weighted_rows(w, values != 0) > 0
        columns.append(alive.astype(jnp.float32))
    if saturating.any():
        sat = jnp.where(table(sigmoid) > 0, (vr < 0.01) | (vr > 0.99), jnp.abs(vr) > 0.99)
        columns.append(_weighted_rows(wr, sat))
    # per entry: the sum of every column over the entry's units, in one kernel: a plain
    # reduction for one entry, a product with the constant 0/1 matrix of the units' entries
    # while it is small, else a segment sum (a scatter-add)
    stacked = jnp.stack(columns, axis=1)  # (N, columns)
    if num == 1:
        totals = jnp.sum(stacked, axis=0)[:, None]
    elif units.sum() * num <= _SEGMENT_MATRIX:
        member = np.repeat(np.eye(num, dtype=np.float32), units, axis=0)  # (N, entries)
        totals = jnp.dot(stacked.T, member, precision=jax.lax.Precision.HIGHEST)
    else:
        totals = jax.ops.segment_sum(stacked, segment, num, indices_are_sorted=True).T
    n = jnp.sum(wr) * units
    nan = jnp.float32(jnp.nan)
    out = {"first": totals[0] / n - shift, "second": totals[1] / n, "shift": shift}
    none = jnp.full(num, nan)  # a statistic no entry has
    out["dead"] = jnp.where(relu, 1.0 - totals[2] / units, nan) if relu.any() else none
    out["saturated"] = jnp.where(saturating, totals[-1] / n, nan) if saturating.any() else none
    if histogram_rows is not None:
        r = min(histogram_rows, rows)
        out["hist"] = _histograms(values[:r], w[:r], segment, roles, bins)
    return out


# The largest constant 0/1 matrix of the units' entries that packed_sums multiplies by.
_SEGMENT_MATRIX = 1 << 16
# Entries of fewer values than this (rows times units) are packed (:func:`packed_sums`);
# larger ones are reduced one by one. Below it the cost of a reduction is its kernels, above
# it its bytes (which packing would copy once more).
PACK_BELOW = 1 << 12


def layer_sums(
    entries: list[tuple[jax.Array, str, str]],
    mask: jax.Array | None,
    *,
    histogram_rows: int | None = None,
    moment_rows: int | None = None,
    bins: int = BINS,
) -> dict[str, jax.Array]:
    """:func:`packed_sums` of the small entries (fewer than ``PACK_BELOW`` values) together
    and of each large one alone, in the entries' order, and the histograms of all of them at
    once (:func:`layer_histograms`); same arguments and result as :func:`packed_sums`."""
    small = [i for i, (v, _, _) in enumerate(entries) if np.size(v) < PACK_BELOW]
    groups = ([small] if small else []) + [[i] for i in range(len(entries)) if i not in small]
    parts = [
        packed_sums([entries[i] for i in group], mask, moment_rows=moment_rows, bins=bins)
        for group in groups
    ]
    if len(parts) == 1:
        out = dict(parts[0])
    else:
        back = np.argsort([i for group in groups for i in group])
        out = {k: jnp.concatenate([p[k] for p in parts])[back] for k in parts[0]}
    if histogram_rows is not None:
        out["hist"] = layer_histograms(entries, mask, histogram_rows, bins)
    return out


def parameter_stats(
    params: Any, grads: Any, *, steps: Any = None, scale: Any = 1.0
) -> dict[str, dict]:
    r"""Per parameter: gradient norm and RMS, parameter norm and, given the step, the update
    ratio and the effective learning rate (see the module docstring).

    Args:
      params: the parameters before the step (a pytree).
      grads: their gradients (same tree).
      steps: the step of each parameter, :math:`\Delta\theta` (``scale * steps``: the train
        step passes the transformation's updates and the state's ``lr_scale``), or None.
      scale: multiplies ``steps``.

    Returns:
      ``{stat: {path: scalar}}`` with stats ``grad_norm``, ``grad_rms``, ``param_norm`` and,
      with ``steps``, ``update_ratio`` and ``effective_lr`` (NaN where the denominator is 0).

    Examples:
      >>> import jax.numpy as jnp
      >>> p, g = {"w": jnp.array([3.0, 4.0])}, {"w": jnp.array([1.0, 0.0])}
      >>> s = parameter_stats(p, g, steps={"w": jnp.array([-0.1, 0.0])})
      >>> print(float(s["param_norm"]["w"]), round(float(s["effective_lr"]["w"]), 4))
      5.0 0.1
    """
    g_sq = squared_norms(grads)
    s_sq = None if steps is None else squared_norms(steps)
    return norm_stats(squared_norms(params), g_sq, s_sq, scale, sizes(params))


def squared_norms(tree: Any) -> dict[str, jax.Array]:
    """``{path: sum of squares}`` of every leaf (in float32)."""
    return {
        path_str(k): jnp.sum(jnp.square(jnp.asarray(v, jnp.float32)))
        for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def sizes(tree: Any) -> dict[str, int]:
    """``{path: number of elements}`` of every leaf."""
    return {path_str(k): int(np.size(v)) for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def norm_stats(
    param_sq: dict, grad_sq: dict, step_sq: dict | None, scale: Any, size: dict
) -> dict[str, dict]:
    """:func:`parameter_stats` from the squared norms of parameters, gradients and steps."""
    names = list(param_sq)
    vectors = norm_vectors(param_sq, grad_sq, step_sq, scale, size, names)
    return {stat: {n: v[i] for i, n in enumerate(names)} for stat, v in vectors.items()}


def norm_vectors(
    param_sq: dict, grad_sq: dict, step_sq: dict | None, scale: Any, size: dict, names: list
) -> dict[str, jax.Array]:
    """:func:`norm_stats` as one vector per statistic, entry ``i`` for parameter
    ``names[i]``: the arithmetic runs once on stacked values (one small kernel), not once per
    parameter."""
    p_norm = jnp.sqrt(_stack(param_sq, names))
    out = {"param_norm": p_norm}
    root = root_sizes(size, names)
    if step_sq is None:
        g_norm = jnp.sqrt(_stack(grad_sq, names))
        return {"grad_norm": g_norm, "grad_rms": g_norm / root, **out}
    vectors = step_vectors(_stack(grad_sq, names), _stack(step_sq, names), scale, root)
    out["update_ratio"] = jnp.where(p_norm > 0, vectors["step_norm"] / p_norm, jnp.nan)
    return {k: v for k, v in (vectors | out).items() if k != "step_norm"}


def step_vectors(grad_sq: Any, step_sq: Any, scale: Any, root: Any) -> dict[str, jax.Array]:
    r"""Per parameter (entry ``i`` of each vector), from the vectors of squared norms of the
    gradients and of the updates :math:`u` (the step is :math:`\Delta\theta = c\,u`, ``c``
    is ``scale``) and the square roots of the parameters' sizes (``root``): ``grad_norm``,
    ``grad_rms`` (the norm over ``root``), ``step_norm`` :math:`\lVert\Delta\theta\rVert`
    and ``effective_lr`` (NaN where the gradient is 0)."""
    g_norm = jnp.sqrt(grad_sq)
    step = jnp.abs(jnp.asarray(scale, jnp.float32)) * jnp.sqrt(step_sq)
    return {
        "grad_norm": g_norm,
        "grad_rms": g_norm / root,
        "step_norm": step,
        "effective_lr": jnp.where(g_norm > 0, step / g_norm, jnp.nan),
    }


def root_sizes(size: dict, names: list) -> np.ndarray:
    """The square root of each parameter's number of elements (at least 1), a constant."""
    return np.sqrt(np.array([max(size[n], 1) for n in names], np.float32))


def _stack(values: dict, names: list) -> jax.Array:
    return jnp.stack([jnp.asarray(values[n], jnp.float32) for n in names])


def batchnorm_stats(model_state: Any) -> dict[str, dict]:
    """``{"bn_mean": {path: mean of the running means}, "bn_var": {path: mean of the running
    variances}}`` for every BatchNorm (a dict holding ``mean`` and ``var``) in a model's state.
    """
    out: dict[str, dict] = {"bn_mean": {}, "bn_var": {}}

    def walk(node: Any, path: tuple) -> None:
        if not isinstance(node, Mapping):
            return
        if "mean" in node and "var" in node and not isinstance(node["mean"], Mapping):
            name = path_str(path)
            out["bn_mean"][name] = jnp.mean(jnp.asarray(node["mean"], jnp.float32))
            out["bn_var"][name] = jnp.mean(jnp.asarray(node["var"], jnp.float32))
            return
        for key, child in node.items():
            walk(child, (*path, key))

    walk(model_state, ())
    return out
