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
        weighted by the mask); None: every row. The monitor counts 8 rows per step: the
        histogram is a scatter-add, serial on CPU, and a fixed subsample keeps its cost
        independent of the batch size.

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
) -> dict[str, jax.Array]:
    """The reductions behind :func:`value_stats` (same arguments), before the moments are
    finished: ``first`` and ``second``, the weighted means of :math:`v - c` and
    :math:`(v - c)^2` for a shift :math:`c` (``shift``, one of the values: it keeps
    :math:`E[(v-c)^2] - E[v-c]^2` accurate when the mean is large against the spread), the
    ``dead`` and ``saturated`` fractions and, with ``histogram``, ``hist``.
    :func:`moments` turns the first three into the mean and standard deviation; the monitor
    does so for all its layers at once (one small kernel instead of one per layer)."""
    v = values.reshape(values.shape[0], -1).astype(jnp.float32)
    w = jnp.ones(v.shape[0], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    wv = w[:, None]
    n = jnp.sum(w) * v.shape[1]
    nan = jnp.full((), jnp.nan, jnp.float32)
    if role == ACTIVATION and kind == "sigmoid":
        sat = (v < 0.01) | (v > 0.99)
    elif role == ACTIVATION and kind in SATURATING:
        sat = jnp.abs(v) > 0.99
    else:
        sat = None
    # Separate reductions of the same input (a stacked (B, U, 3) operand was materialized).
    shift = jax.lax.stop_gradient(v[0, 0])
    d = v - shift
    sums = {"first": jnp.sum(wv * d) / n, "second": jnp.sum(wv * d * d) / n, "shift": shift}
    sums["saturated"] = nan if sat is None else jnp.sum(wv * sat) / n
    if role == ACTIVATION and kind in RELU_FAMILY:
        alive = jnp.any((v != 0) & (wv > 0), axis=0)
        sums["dead"] = 1.0 - jnp.mean(alive.astype(jnp.float32))
    else:
        sums["dead"] = nan
    if histogram:
        rows = v.shape[0] if histogram_rows is None else min(histogram_rows, v.shape[0])
        sums["hist"] = _histogram(v[:rows], wv[:rows], *histogram_range(role, kind), bins)
    return sums


def moments(first: Any, second: Any, shift: Any) -> tuple[jax.Array, jax.Array]:
    r"""Mean and standard deviation from shifted moments (elementwise: scalars or vectors),
    :math:`\mu = c + E[v - c]` and :math:`\sigma = \sqrt{\max(E[(v-c)^2] - E[v-c]^2, 0)}`."""
    return first + shift, jnp.sqrt(jnp.maximum(second - jnp.square(first), 0.0))


def _histogram(v: jax.Array, wv: jax.Array, low: float, high: float, bins: int) -> jax.Array:
    """Weighted counts per bin (values below ``low``, and NaN, in the first bin; above
    ``high`` in the last): one scatter-add, cheaper on CPU than comparing every value with
    every edge."""
    index, weights = _bin_index(v, wv, low, high, bins)
    return jnp.zeros(bins, jnp.float32).at[index].add(weights)


def _bin_index(
    v: jax.Array, wv: jax.Array, low: float, high: float, bins: int
) -> tuple[jax.Array, jax.Array]:
    index = jnp.floor((v - low) * (bins / (high - low)))
    index = jnp.clip(jnp.nan_to_num(index, nan=0.0), 0, bins - 1).astype(jnp.int32)
    return index.reshape(-1), jnp.broadcast_to(wv, v.shape).reshape(-1)


def stacked_histograms(
    layers: list[Layer], outputs: Mapping, mask: jax.Array | None, rows: int, bins: int = BINS
) -> jax.Array:
    """The ``(len(layers), bins)`` histograms of :func:`value_stats` (on each output's first
    ``rows`` rows, weighted by ``mask``) for every layer at once: one scatter-add over the
    bin indices of all layers (each offset by its row of the matrix), not one per layer.
    A layer missing from ``outputs`` (not called) gets a row of zeros."""
    indices, weights = [], []
    for i, layer in enumerate(layers):
        if layer not in outputs:
            continue
        values = outputs[layer]
        v = values.reshape(values.shape[0], -1)[:rows].astype(jnp.float32)
        n = v.shape[0]
        w = jnp.ones(n, jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)[:n]
        index, weight = _bin_index(v, w[:, None], *histogram_range(layer.role, layer.kind), bins)
        indices.append(index + i * bins)
        weights.append(weight)
    counts = jnp.zeros(len(layers) * bins, jnp.float32)
    if indices:
        counts = counts.at[jnp.concatenate(indices)].add(jnp.concatenate(weights))
    return counts.reshape(len(layers), bins)


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
    if step_sq is None:
        return {**_grad_vectors(grad_sq, size, names), **out}
    vectors = step_vectors(grad_sq, step_sq, scale, size, names)
    out["update_ratio"] = jnp.where(p_norm > 0, vectors["step_norm"] / p_norm, jnp.nan)
    return {k: v for k, v in (vectors | out).items() if k != "step_norm"}


def step_vectors(
    grad_sq: dict, step_sq: dict, scale: Any, size: dict, names: list
) -> dict[str, jax.Array]:
    r"""Per parameter ``names[i]`` (entry ``i`` of each vector), from the squared norms of the
    gradient and of the update :math:`u` (the step is :math:`\Delta\theta = c\,u`, ``c`` is
    ``scale``): ``grad_norm``, ``grad_rms``, ``step_norm`` :math:`\lVert\Delta\theta\rVert`
    and ``effective_lr`` (NaN where the gradient is 0)."""
    grad = _grad_vectors(grad_sq, size, names)
    scale = jnp.abs(jnp.asarray(scale, jnp.float32))
    step = scale * jnp.sqrt(_stack(step_sq, names))
    return {
        **grad,
        "step_norm": step,
        "effective_lr": jnp.where(grad["grad_norm"] > 0, step / grad["grad_norm"], jnp.nan),
    }


def _grad_vectors(grad_sq: dict, size: dict, names: list) -> dict[str, jax.Array]:
    """``grad_norm`` and ``grad_rms`` (the norm over the square root of the size) per
    parameter ``names[i]``."""
    g_norm = jnp.sqrt(_stack(grad_sq, names))
    root = np.sqrt(np.array([max(size[n], 1) for n in names], np.float32))
    return {"grad_norm": g_norm, "grad_rms": g_norm / root}


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
