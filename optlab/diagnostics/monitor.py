r"""Statistics inside the compiled train step: :class:`Monitor` for ``fit``, and the same
numbers for one's own loop (:func:`activation_stats`, :func:`gradient_stats`).

``fit(..., diagnostics=Monitor(every=1, histograms=True))`` runs the training-mode forward pass
through Flax's ``nnx.capture`` (the outputs of every Dense layer and activation layer are
intercepted: no second model), and after each sampled step computes, per layer, the
statistics of ``optlab.diagnostics.statistics`` on the batch's real rows (the moments and
saturated fractions on its first 32, ``MOMENT_ROWS``, the histograms on its first 4,
``HISTOGRAM_ROWS``, the dead fractions on all of them), and per parameter the gradient norm
and RMS, the update ratio and the effective learning rate. They
are folded into a fixed-size carry of the epoch's ``lax.scan`` (sums of the finite values and
their counts; summed histogram counts), so nothing leaves the device until the epoch ends;
then the epoch's summary (the mean over the sampled steps of each per-step value, histograms
normalized to fractions, the running BatchNorm statistics at the end of the epoch) comes back
with the epoch's logs and is recorded in ``history.diagnostics``:

.. math::

   \bar s_e = \frac{1}{|S_e|} \sum_{t \in S_e} s_t, \qquad
   S_e = \{t \in \text{epoch } e : t \bmod \text{every} = 0,\ \text{step } t
   \text{ not skipped}\},

:math:`t` counting the epoch's steps from 0 (the first step of every epoch is sampled, so
every epoch has a summary, and a resumed run samples the same steps).

With ``every > 1`` the engine splits the epoch into chunks of ``every`` steps: the first
step of each chunk runs monitored, the others run the plain step (exactly the step without a
monitor: no branch, no statistics), so they cost what an unmonitored step costs.

The steps are summed as squares, elementwise: the carry holds :math:`\sum_{t \in S_e}
(\Delta\theta_t)^2` for every weight (one float32 copy of the parameters while a monitored
epoch runs), updated in the parameter update's own elementwise pass. A norm per step would be
a reduction of the update, for which XLA writes the update out and reads it back: on CPU that
cost more than all the other statistics together (the digits recipe's MLP:
``benchmarks/diagnostics_overhead.py``). So the epoch's step norm is the root mean square over
the sampled steps, and the effective learning rate the ratio of the root sums of squares:

.. math::

   \lVert\Delta\theta\rVert_e = \Big(\frac{1}{|S_e|} \sum_{t \in S_e}
   \lVert\Delta\theta_t\rVert^2\Big)^{1/2}, \qquad
   \eta_{\text{eff},e} = \Big(\frac{\sum_{t \in S_e} \lVert\Delta\theta_t\rVert^2}
   {\sum_{t \in S_e} \lVert g_t\rVert^2}\Big)^{1/2}

(the learning rate itself for SGD, as on every step). The parameter norms
:math:`\lVert\theta\rVert` are taken once per epoch, from the parameters at the epoch's start
(a pass over every weight on every step cost more, on a large model, than all the other
statistics together), and the update ratio is the epoch's step norm over them,
:math:`\rho_e = \lVert\Delta\theta\rVert_e / \lVert\theta_{e,0}\rVert`; with one step per
epoch each of them is the per-step value exactly.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.paths import leaf_paths
from optlab.core.validation import check_bool, check_int_at_least
from optlab.diagnostics.statistics import (
    ACTIVATION,
    BINS,
    Layer,
    batchnorm_stats,
    histogram_edges,
    layer_histograms,
    layer_outputs,
    layer_sums,
    layers_of,
    parameter_stats,
    root_sizes,
    sizes,
    squared_norms,
    value_stats,
)
from optlab.nn.apply import functional
from optlab.train.history import natural_key
from optlab.train.step import split_batch, weighted_mean

# The histograms count the values of the batch's first rows only (real rows: the mask still
# weighs them): a fixed subsample, so their cost does not grow with the batch.
HISTOGRAM_ROWS = 4
# The moments and saturated fractions are taken on the batch's first rows too (all of them
# up to this batch size); dead units on every row.
MOMENT_ROWS = 32
_VALUE_STATS = ("mean", "std", "dead", "saturated")
# Per parameter, per monitored step (folded: means over the epoch's sampled steps) ...
_STEP_STATS = ("grad_norm", "grad_rms")
# ... and once per epoch, in ``finish``: the steps' root mean square norm and the effective
# learning rate (from the running sums of the squared steps and gradients), the norm at the
# epoch's start and the update ratio.
_EPOCH_STATS = ("step_norm", "effective_lr", "param_norm", "update_ratio")
# the rows of the per-entry sums the forward pass returns (``optlab.diagnostics.statistics``)
_VALUE_ROWS = ("first", "second", "shift", "dead", "saturated")


def _num_classes(predictions: jax.Array, targets: Any) -> int:
    """The number of classes of a classification with integer labels (else 0): static."""
    targets = jnp.asarray(targets)
    integer = jnp.issubdtype(targets.dtype, jnp.integer)
    if integer and predictions.ndim == 2 and predictions.shape[-1] > 1 and targets.ndim == 1:
        return int(predictions.shape[-1])
    return 0


def _layout(state: Any) -> tuple[list[Layer], list[tuple[str, str]]]:
    """The static layout of a monitored step: the recorded layers (one histogram row each)
    and the ``(key, row)`` of each entry of the packed vector of means (row ``""``: a value
    without rows). Grouped by statistic (every layer's mean, then every layer's standard
    deviation...), so that the packed vector is a concatenation of per-statistic vectors."""
    layers = layers_of(state.model())
    acts = [layer for layer in layers if layer.role == ACTIVATION]
    entries: list[tuple[str, str]] = [("input_mean", ""), ("input_std", "")]
    for stat in ("mean", "std"):
        entries += [(f"{layer.role}_{stat}", layer.name) for layer in layers]
    for stat in ("dead", "saturated"):
        entries += [(f"{ACTIVATION}_{stat}", layer.name) for layer in acts]
    params = leaf_paths(state.params)
    for stat in (*_STEP_STATS, *_EPOCH_STATS):
        entries += [(stat, name) for name in params]
    return layers, entries


# The formulas of the packed vector's entries (``_plan``).
_MEAN, _STD, _COPY, _NORM = range(4)


def _plan(entries: int, acts: list[int], root: np.ndarray) -> np.ndarray:
    r"""How each entry of a step's packed vector (in the layout's order, without the
    once-per-epoch values) is computed from the raw vector of the step's scalars: the
    ``(5, entries)`` matrix of the forward pass's sums flattened (rows first, second, shift,
    dead, saturated; columns the input and the layers, ``acts`` the columns of the activation
    layers), then the squared gradient norms (one per parameter) and whether the step counts
    (1 or 0). Rows ``formula, a, b, c, k`` (operands: positions in the raw vector), formulas
    ``a + c`` (mean: the moments of ``optlab.diagnostics.statistics.moments``),
    :math:`\sqrt{\max(b - a^2, 0)}` (standard deviation), ``a`` (a fraction, a squared
    gradient norm, whether the step counts) and :math:`k \sqrt a` (gradient norm and RMS,
    the formulas of ``statistics.step_vectors``). After the layout's per-step entries come
    the squared gradient norms (summed over the epoch: the effective learning rate's
    denominator, ``Monitor.finish``), then whether the step counts (summed: the number of
    sampled steps).

    Static: one elementwise kernel evaluates the whole vector (:func:`_evaluate`), where
    computing its pieces apart and concatenating them costs a small kernel per piece on CPU.
    """
    params = len(root)
    first, second, shift, dead, saturated = (i * entries for i in range(len(_VALUE_ROWS)))
    grad = len(_VALUE_ROWS) * entries
    rows = [(_MEAN, first, 0, shift, 1.0), (_STD, first, second, 0, 1.0)]
    rows += [(_MEAN, first + e, 0, shift + e, 1.0) for e in range(1, entries)]
    rows += [(_STD, first + e, second + e, 0, 1.0) for e in range(1, entries)]
    rows += [(_COPY, dead + a, 0, 0, 1.0) for a in acts]
    rows += [(_COPY, saturated + a, 0, 0, 1.0) for a in acts]
    # in the order of _STEP_STATS: gradient norm, gradient RMS; then the squared norms
    rows += [(_NORM, grad + p, 0, 0, 1.0) for p in range(params)]
    rows += [(_NORM, grad + p, 0, 0, 1.0 / float(root[p])) for p in range(params)]
    rows += [(_COPY, grad + p, 0, 0, 1.0) for p in range(params)]
    rows += [(_COPY, grad + params, 0, 0, 1.0)]  # whether the step counts
    return np.array(rows, np.float64).T


def _evaluate(raw: jax.Array, plan: np.ndarray) -> jax.Array:
    """The packed vector of :func:`_plan`'s formulas on ``raw``."""
    formula = plan[0].astype(np.int32)
    a, b, c = (raw[plan[i].astype(np.int32)] for i in (1, 2, 3))
    k = jnp.asarray(plan[4], jnp.float32)
    return jnp.select(
        [formula == _MEAN, formula == _STD, formula == _COPY],
        [a + c, jnp.sqrt(jnp.maximum(b - jnp.square(a), 0.0)), a],
        k * jnp.sqrt(jnp.maximum(a, 0.0)),
    )


@dataclasses.dataclass(frozen=True)
class Monitor:
    r"""Per-layer statistics inside ``fit``'s compiled step (see the module docstring).

    Pass it as ``fit(..., diagnostics=Monitor())``; ``history.diagnostics`` then holds, per
    epoch (``record[key]`` is ``(rows, epochs)``, histograms ``(layers, epochs, 32)``):

    * ``activation_{mean,std,dead,saturated,hist}`` for every activation layer (``blocks/0/act``
      of an optlab MLP), ``preactivation_*`` for every layer with a kernel (its output: for the
      last one, the logits), and ``activation_edges`` / ``preactivation_edges``, the fixed
      histogram edges;
    * ``grad_norm`` and ``grad_rms`` for every parameter (``blocks/0/dense/kernel``), means
      over the sampled steps; ``step_norm`` (:math:`\lVert\Delta\theta\rVert`, the root
      mean square over the sampled steps), ``effective_lr`` (the root of the summed squared
      step norms over the summed squared gradient norms), ``param_norm`` (at the epoch's
      start) and ``update_ratio`` (the step norm over it);
    * ``bn_mean``, ``bn_var`` (running BatchNorm averages at the end of the epoch);
    * ``loss_first`` (the loss of the epoch's first sampled step: before any update in epoch
      1), ``input_mean``, ``input_std``, ``num_classes`` (0 unless the targets are integer
      labels of a classifier) and ``sampled_steps``.

    Plain nnx modules get the parameter statistics and the pre-activations of their
    ``nnx.Linear``/``nnx.Conv`` layers (activation functions that are not layers cannot be
    intercepted).

    Args:
      every: compute the statistics on the epoch's steps ``0, every, 2 every, ...``; the
        others run the plain step.
      histograms: also count the 32-bin histograms, on the first 4 rows of each batch
        (``HISTOGRAM_ROWS``; the mask still weighs them), summed over the epoch's sampled
        steps. The moments and saturated fractions read the first 32 rows (``MOMENT_ROWS``),
        the dead fractions every real row: fixed subsamples, so that the cost does not grow
        with the batch size.

    Examples:
      >>> import optlab as ol
      >>> ds = ol.data.load("digits")
      >>> model = ol.nn.MLP(64, (32,), 10, rngs=0)
      >>> history, _ = ol.fit(model, ol.sgd(0.1), ds, epochs=2, batch_size=64, progress=False,
      ...                     loss=ol.nn.softmax_cross_entropy_with_integer_labels,
      ...                     diagnostics=ol.diagnostics.Monitor())
      >>> record = history.diagnostics
      >>> print(record.rows("activation_std"), record["activation_hist"].shape)
      ['blocks/0/act'] (1, 2, 32)
      >>> print(record.rows("effective_lr"), np.round(record["effective_lr"][:, 0], 4))
      ['blocks/0/dense/bias', 'blocks/0/dense/kernel', 'head/bias', 'head/kernel'] [0.1 0.1 0.1 0.1]
    """

    every: int = 1
    histograms: bool = True

    def __post_init__(self) -> None:
        check_int_at_least("Monitor", "every", self.every, 1)
        check_bool("Monitor", "histograms", self.histograms)

    # The engine's monitor protocol (optlab.train.step): every, forward, update_stats,
    # measure, init, fold, finish, unpack.

    def forward(self, apply: Any, params: Any, model_state: Any, x: Any, *, rng: Any, mask: Any):
        """The training-mode forward pass, returning each recorded layer's statistics (reduced
        here, on the batch's real rows: only fixed-size values leave the pass)."""
        out, new_state, captured = apply.capture(params, model_state, x, train=True, rng=rng)
        layers = layers_of(apply.merge(params, model_state))
        outputs = layer_outputs(layers, captured)
        called = [layer for layer in layers if layer in outputs]
        entries = [(jax.tree.leaves(x)[0], "input", "input")]
        entries += [
            (jax.lax.stop_gradient(outputs[layer]), layer.role, layer.kind) for layer in called
        ]
        sums = layer_sums(entries, mask, moment_rows=MOMENT_ROWS)
        # the layers' histograms (not the input's)
        hist = layer_histograms(entries[1:], mask, HISTOGRAM_ROWS) if self.histograms else None
        # One column per layer (the input first) of the rows first, second, shift, dead and
        # saturated: NaN (no histogram counts) for a layer not called in this pass.
        values = jnp.stack([sums[k] for k in _VALUE_ROWS])
        if len(called) < len(layers):  # a static gather from the called ones
            row = {layer: i + 1 for i, layer in enumerate(called)}
            where = np.array([0] + [row.get(layer, len(entries)) for layer in layers])
            nan = jnp.full((len(_VALUE_ROWS), 1), jnp.nan, jnp.float32)
            values = jnp.concatenate([values, nan], axis=1)[:, where]
            if hist is not None:
                hist = jnp.concatenate([hist, jnp.zeros((1, BINS))])[where[1:] - 1]
        captured = {"values": values}
        if hist is not None:
            captured["hist"] = hist
        return out, new_state, captured

    def update_stats(
        self, state: Any, updates: Any, grads: Any, captured: Any, carry: Any = None
    ) -> Any:
        r"""The epoch's running elementwise sums of the squared steps, :math:`\sum_t
        (\Delta\theta_t)^2` (the step is :math:`\Delta\theta = c\,u`, ``c`` the state's
        ``lr_scale``): the carry's plus this step's (zeros without a carry), unchanged on a
        skipped step (``updates`` None). Elementwise, it joins the update's own pass."""
        if carry is None:
            base = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.float32), state.params)
        else:
            base = carry["step_sq"]
        if updates is None:
            return base
        c = jnp.asarray(state.lr_scale, jnp.float32)
        return jax.tree.map(
            lambda a, u: a + jnp.square(c * jnp.asarray(u, jnp.float32)), base, updates
        )

    def measure(
        self,
        *,
        state: Any,
        new_state: Any,
        update_stats: Any,
        grads: Any,
        captured: dict,
        inputs: Any,
        predictions: jax.Array,
        targets: Any,
        mask: Any,
        loss: jax.Array,
        ok: jax.Array,
    ) -> dict[str, Any]:
        """One step's statistics, packed: ``"mean"`` a vector (one entry per statistic, layer
        and parameter, in the order of the layout, without the once-per-epoch values, then
        each parameter's squared gradient norm, then 1 or 0: whether the step counts),
        ``"hist"`` a ``(layers, 32)`` matrix of counts, and ``"step_sq"`` the running sums of
        the squared steps (``update_stats``), which ``fold`` keeps as they are."""
        layers, entries = _layout(state)
        names = leaf_paths(state.params)
        # The gradients' norms are taken here, where XLA shares them with the step's own
        # gradient norm.
        grad_sq = squared_norms(grads)
        root = root_sizes(sizes(state.params), names)
        scalars = [grad_sq[n] for n in names] + [ok]
        raw = jnp.concatenate(
            [captured["values"].reshape(-1)]
            + [jnp.reshape(jnp.asarray(v, jnp.float32), (1,)) for v in scalars]
        )
        acts = [i + 1 for i, layer in enumerate(layers) if layer.role == ACTIVATION]
        # the layout's per-step entries, then whether the step counts (its sum over the
        # epoch is the number of sampled steps)
        packed = _evaluate(raw, _plan(len(layers) + 1, acts, root))
        size = len(entries) - len(_EPOCH_STATS) * len(names) + len(names) + 1
        assert packed.shape == (size,), (packed.shape, size)
        first_values = jnp.stack(
            [jnp.asarray(loss, jnp.float32), jnp.float32(_num_classes(predictions, targets))]
        )
        return {
            "take": ok.astype(jnp.float32),
            "first": first_values,
            "mean": packed,
            "hist": captured["hist"] if self.histograms else jnp.zeros((0, BINS)),
            "step_sq": update_stats,
        }

    def init(self, shapes: Any, state: Any) -> dict[str, jax.Array]:
        """The epoch's empty carry for per-step statistics shaped like ``shapes``, and the
        squared parameter norms at the epoch's start (``state``)."""
        sq = squared_norms(state.params)
        return {
            "param_sq": jnp.stack([sq[n] for n in leaf_paths(state.params)]),
            "step_sq": jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["step_sq"]),
            # row 0: the sum of each finite value over the sampled steps, row 1: their count
            # (the last entry: the number of sampled steps)
            "sums": jnp.zeros((2, *shapes["mean"].shape), jnp.float32),
            "hist": jnp.zeros(shapes["hist"].shape, jnp.float32),
            "first": jnp.full(shapes["first"].shape, jnp.nan, jnp.float32),
        }

    def fold(self, carry: dict[str, jax.Array], stats: dict[str, jax.Array]) -> dict:
        """Adds one step's statistics to the carry (a skipped or unsampled step adds none)."""
        take = stats["take"] > 0
        finite = take & jnp.isfinite(stats["mean"])
        step = jnp.stack([jnp.where(finite, stats["mean"], 0.0), finite.astype(jnp.float32)])
        first = take & (carry["sums"][1, -1] == 0)
        return {
            "sums": carry["sums"] + step,
            "hist": carry["hist"] + jnp.where(take, stats["hist"], 0.0),
            "first": jnp.where(first, stats["first"], carry["first"]),
            "param_sq": carry["param_sq"],
            "step_sq": stats["step_sq"],
        }

    def finish(self, carry: dict[str, jax.Array], state: Any) -> dict[str, jax.Array]:
        """The epoch's summary, still packed (``unpack`` names it on the host): means over
        the sampled steps, histograms as fractions, BatchNorm's running statistics and the
        first sampled step's values."""
        total, n = carry["sums"][:, :-1]
        mean = jnp.where(n > 0, total / jnp.maximum(n, 1.0), jnp.nan)
        p_norm = jnp.sqrt(carry["param_sq"])
        count = p_norm.shape[0]
        # the last block: the sums of the squared gradient norms over the sampled steps
        grad_sq, mean = total[-count:], mean[:-count]
        steps = carry["sums"][1, -1]
        step_sq = jnp.stack([jnp.sum(v) for v in jax.tree.leaves(carry["step_sq"])])
        step = jnp.where(steps > 0, jnp.sqrt(step_sq / jnp.maximum(steps, 1.0)), jnp.nan)
        # NaN without a sampled step too: then no gradient was summed
        lr = jnp.where(grad_sq > 0, jnp.sqrt(step_sq / jnp.maximum(grad_sq, 1e-38)), jnp.nan)
        ratio = jnp.where(p_norm > 0, step / p_norm, jnp.nan)
        bn = batchnorm_stats(state.model_state)
        return {
            "mean": jnp.concatenate([mean, step, lr, p_norm, ratio]),
            "hist": carry["hist"] / jnp.maximum(jnp.sum(carry["hist"], -1, keepdims=True), 1e-30),
            "bn": jnp.stack([v for stat in bn.values() for v in stat.values()] or [jnp.zeros(())]),
            "first": carry["first"],
            "count": carry["sums"][1, -1],
        }

    def unpack(self, summary: Any, state: Any) -> dict[str, Any]:
        """The fetched summary of ``finish`` as ``{key: {row: value}}`` and ``{key:
        value}`` (see the class docstring): what ``fit`` records in ``history.diagnostics``."""
        layers, entries = _layout(state)
        means = np.asarray(summary["mean"])
        out: dict[str, Any] = {}
        for i, (key, row) in enumerate(entries):
            if row:
                out.setdefault(key, {})[row] = means[i]
            else:
                out[key] = means[i]
        if self.histograms:
            for i, layer in enumerate(layers):
                out.setdefault(f"{layer.role}_hist", {})[layer.name] = summary["hist"][i]
                edges = histogram_edges(layer.role, layer.kind)
                out.setdefault(f"{layer.role}_edges", {})[layer.name] = edges
        bn = batchnorm_stats(jax.tree.map(np.asarray, state.model_state))
        values = iter(np.asarray(summary["bn"]))
        for stat, per_layer in bn.items():
            for name in per_layer:
                out.setdefault(stat, {})[name] = next(values)
        out["loss_first"], out["num_classes"] = summary["first"][0], summary["first"][1]
        out["sampled_steps"] = summary["count"]
        return out


class ActivationStats(NamedTuple):
    """Per-layer activation statistics of one forward pass (:func:`activation_stats`).

    Rows are the recorded layers in order; ``histogram[i]`` holds the fraction of layer
    ``i``'s values in each bin between ``edges[i]``.
    """

    names: tuple[str, ...]
    roles: tuple[str, ...]
    kinds: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    dead: np.ndarray
    saturated: np.ndarray
    histogram: np.ndarray
    edges: np.ndarray

    def select(self, role: str = ACTIVATION) -> ActivationStats:
        """The rows of one role: ``"activation"`` or ``"preactivation"``."""
        keep = [i for i, r in enumerate(self.roles) if r == role]
        return ActivationStats(
            *(tuple(f[i] for i in keep) for f in (self.names, self.roles, self.kinds)),
            *(np.asarray(f)[keep] for f in self[3:]),
        )

    def __str__(self) -> str:
        lines = [f"{'layer':<22}{'kind':<10}{'mean':>10}{'std':>10}{'dead':>8}{'saturated':>11}"]
        for i, name in enumerate(self.names):
            lines.append(
                f"{name:<22}{self.kinds[i]:<10}{self.mean[i]:>10.4g}{self.std[i]:>10.4g}"
                f"{self.dead[i]:>8.3f}{self.saturated[i]:>11.3f}"
            )
        return "\n".join(lines)


@functools.partial(jax.jit, static_argnums=0)
def _activation_pass(graphdef: Any, state: Any, x: Any, mask: Any) -> tuple:
    model = nnx.merge(graphdef, state)
    layers = layers_of(model)
    _, captured = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    outputs = layer_outputs(layers, nnx.to_pure_dict(captured))
    return {
        layer.name: value_stats(v, mask, role=layer.role, kind=layer.kind)
        for layer, v in outputs.items()
    }


def activation_stats(model: nnx.Module, x: Any, *, mask: Any = None) -> ActivationStats:
    """The statistics of every layer's output on one forward pass of ``model`` on ``x``.

    The model runs once, in its current mode (``model.train()`` / ``model.eval()``), through
    Flax's ``nnx.capture``; the model itself is not changed (random layers draw from a copy
    of its streams). Layers and statistics are those of the monitor (see
    ``optlab.diagnostics.statistics``).

    Args:
      model: an nnx model (an ``optlab.nn`` model records pre-activations and activations; a
        plain module the outputs of its layers with a kernel).
      x: a batch of inputs.
      mask: optional ``(B,)`` row weights in {0, 1}.

    Returns:
      An :class:`ActivationStats` (``print`` it for a table).

    Examples:
      >>> import optlab as ol, numpy as np
      >>> model = ol.nn.MLP(64, (64, 64), None, activation="tanh",
      ...                   kernel_init=("normal", {"stddev": 0.01}), rngs=0)
      >>> x = np.random.default_rng(0).normal(size=(16, 64)).astype(np.float32)
      >>> stats = activation_stats(model, x).select("activation")
      >>> print(stats.names, np.round(stats.std, 3))
      ('blocks/0/act', 'blocks/1/act') [0.079 0.006]
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"activation_stats: model must be a flax.nnx.Module, got {type(model).__name__}"
        )
    graphdef, state = nnx.split(model)
    per_layer = jax.device_get(_activation_pass(graphdef, state, jnp.asarray(x), mask))
    layers = {layer.name: layer for layer in layers_of(model)}
    names = sorted(per_layer, key=natural_key)
    rows = [per_layer[n] for n in names]

    def column(stat: str) -> np.ndarray:
        return np.asarray([r[stat] for r in rows], np.float32)

    hist = column("hist") if rows else np.zeros((0, BINS), np.float32)
    return ActivationStats(
        names=tuple(names),
        roles=tuple(layers[n].role for n in names),
        kinds=tuple(layers[n].kind for n in names),
        mean=column("mean"),
        std=column("std"),
        dead=column("dead"),
        saturated=column("saturated"),
        histogram=hist / np.maximum(hist.sum(axis=-1, keepdims=True), 1e-30),
        edges=np.asarray(
            [histogram_edges(layers[n].role, layers[n].kind) for n in names], np.float32
        ).reshape(len(names), BINS + 1),
    )


class GradientStats(NamedTuple):
    """Per-parameter gradient statistics of one batch (:func:`gradient_stats`)."""

    names: tuple[str, ...]
    loss: float
    grad_norm: np.ndarray
    grad_rms: np.ndarray
    param_norm: np.ndarray

    def __str__(self) -> str:
        lines = [f"{'parameter':<26}{'grad norm':>12}{'grad RMS':>12}{'param norm':>12}"]
        for i, name in enumerate(self.names):
            lines.append(
                f"{name:<26}{self.grad_norm[i]:>12.4g}{self.grad_rms[i]:>12.4g}"
                f"{self.param_norm[i]:>12.4g}"
            )
        return "\n".join(lines)


def gradient_stats(
    model: nnx.Module,
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    batch: Any,
    *,
    train: bool = True,
    seed: int = 0,
) -> GradientStats:
    """The gradient of the batch's mean loss, per parameter: norm, RMS and the parameter's norm.

    Args:
      model: an nnx model (not changed).
      loss: ``loss(predictions, targets)``, per-example values (as for ``fit``).
      batch: ``(x, y)``, ``optlab.data.Batches(x, y, mask)`` or a dict.
      train: run the model in training mode (batch statistics, dropout with ``seed``), as the
        train step does; False for evaluation mode.
      seed: the key of the random layers' masks in training mode.

    Returns:
      A :class:`GradientStats` (``print`` it for a table): parameters named by path
      (``blocks/0/dense/kernel``) in natural order.

    Examples:
      >>> import optlab as ol, numpy as np
      >>> model = ol.nn.MLP(4, (8,), 3, rngs=0)
      >>> x, y = np.ones((5, 4), np.float32), np.zeros(5, np.int32)
      >>> g = gradient_stats(model, ol.nn.softmax_cross_entropy_with_integer_labels, (x, y))
      >>> print(g.names)
      ('blocks/0/dense/bias', 'blocks/0/dense/kernel', 'head/bias', 'head/kernel')
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"gradient_stats: model must be a flax.nnx.Module, got {model!r}")
    check_bool("gradient_stats", "train", train)
    check_int_at_least("gradient_stats", "seed", seed, 0)
    x, y, mask = split_batch("gradient_stats", batch)
    apply, params, model_state = functional(model)
    value, stats = _gradient_pass(
        apply,
        loss,
        params,
        model_state,
        jnp.asarray(x),
        jnp.asarray(y),
        mask,
        jax.random.key(seed),
        train=train,
    )
    value, stats = jax.device_get((value, stats))
    names = sorted(stats["grad_norm"], key=natural_key)

    def column(stat: str) -> np.ndarray:
        return np.asarray([stats[stat][n] for n in names], np.float32)

    return GradientStats(
        tuple(names), float(value), column("grad_norm"), column("grad_rms"), column("param_norm")
    )


@functools.partial(jax.jit, static_argnames=("apply", "loss", "train"))
def _gradient_pass(apply, loss, params, model_state, x, y, mask, key, *, train):
    def objective(p):
        out, _ = apply(p, model_state, x, train=train, rng=key if train else None)
        return weighted_mean(loss(out, y), mask)

    value, grads = jax.value_and_grad(objective)(params)
    return value, parameter_stats(params, grads)
