r"""Verdicts: :func:`~optlab.diagnostics.diagnose` turns a run's history into findings a
student can act on.

Each rule reads the epoch losses (``history.history``) and, for a monitored run, the
per-layer statistics (``history.diagnostics``, see :class:`~optlab.diagnostics.Monitor`), and
reports a :class:`Finding` with a severity (``"error"``, ``"warning"``, ``"info"``), the
evidence (layer, epoch, value) and the advice. With :math:`C` classes and :math:`L_0` the loss
of the first step, :math:`g_\ell` the gradient norm of layer :math:`\ell`'s kernel, :math:`\rho`
the update-to-parameter ratio (the lectures' rules of thumb):

* ``initial_loss``: :math:`L_0 > 2 \log C` or :math:`L_0 < \tfrac12 \log C` (an untrained
  classifier should predict uniformly, :math:`L_0 \approx \log C`);
* ``input_scale``: inputs with :math:`|\text{mean}| > 5` or standard deviation :math:`> 5`;
* ``vanishing_gradients`` / ``exploding_gradients``: :math:`g_1 / g_L < 10^{-2}` /
  :math:`> 10^{2}` (first kernel against the last), or a gradient norm that grows
  :math:`1000\times` during training or becomes non-finite;
* ``vanishing_activations``: an activation layer's standard deviation below :math:`10^{-2}`
  or below a tenth of the first layer's, at the first epoch;
* ``dead_units`` / ``saturated_units``: more than half of a ReLU layer's units dead, or more
  than half of a tanh/sigmoid layer's values saturated, at the last epoch;
* ``update_ratio``: the median over epochs of a kernel's :math:`\rho` outside
  :math:`[10^{-4}, 10^{-2}]` (about :math:`10^{-3}` is healthy);
* ``lr_too_high``: a non-finite loss, the first epoch's mean loss above :math:`1.2\,L_0`
  (diverging), or the loss rising by more than 10% in two epochs (oscillating);
* ``lr_too_low``: the train loss changing by less than 1% over three or more epochs;
* ``chance_level``: the best validation accuracy below :math:`1.5 / C` (or, without
  accuracy, the best validation loss above :math:`0.95 \log C`) after three epochs;
* ``overfitting``: the validation loss 10% above its minimum, reached earlier, while the
  train loss kept falling;
* ``underfitting`` (info): the final train loss still above :math:`\tfrac12 \log C`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from optlab.train.history import History

SEVERITIES = ("error", "warning", "info")
UPDATE_BAND = (1e-4, 1e-2)


class Finding(NamedTuple):
    """One verdict of :func:`~optlab.diagnostics.diagnose`.

    Attributes:
      code: what was found (``"vanishing_gradients"``, ``"lr_too_high"``...).
      severity: ``"error"``, ``"warning"`` or ``"info"``.
      message: the evidence in words.
      advice: what to try.
      layer: the layer or parameter concerned, if one.
      epoch: the epoch of the evidence (1-based), if one.
      value: the measured value.
    """

    code: str
    severity: str
    message: str
    advice: str
    layer: str | None = None
    epoch: int | None = None
    value: float | None = None

    def __str__(self) -> str:
        return f"[{self.severity}] {self.code}: {self.message}. {self.advice}"


def _series(history: History, key: str) -> np.ndarray | None:
    values = history.history.get(key)
    return None if values is None else np.asarray(values, np.float64)


def _kernels(record: Any, key: str) -> list[tuple[str, np.ndarray]]:
    """``(parameter, per-epoch values)`` of the weight matrices (not biases, not norms)."""
    if key not in record:
        return []
    rows = record.rows(key)
    values = np.asarray(record[key], np.float64)
    return [(r, values[i]) for i, r in enumerate(rows) if r.endswith("kernel")]


def _finite_median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


def _loss_findings(history: History, record: Any, log_c: float | None) -> list[Finding]:
    out: list[Finding] = []
    loss = _series(history, "loss")
    if loss is None or loss.size == 0:
        return out
    epochs = history.epoch
    first = None
    if record is not None and "loss_first" in record:
        first = float(np.asarray(record["loss_first"])[0])
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size or (
        "skipped_steps" in history.history and np.nansum(_series(history, "skipped_steps"))
    ):
        epoch = epochs[int(bad[0])] if bad.size else None
        out.append(
            Finding(
                "lr_too_high",
                "error",
                "the loss became non-finite (or steps were skipped as non-finite)",
                "lower the learning rate, clip gradients (clip_by_global_norm), check the inputs",
                epoch=epoch,
                value=float(loss[bad[0]]) if bad.size else None,
            )
        )
        return out
    if first is not None and math.isfinite(first) and loss[0] > 1.2 * first:
        out.append(
            Finding(
                "lr_too_high",
                "warning",
                f"the loss rose during the first epoch: mean {loss[0]:.4g} against "
                f"{first:.4g} at the first step (diverging)",
                "lower the learning rate (try 10x lower) or add warmup",
                epoch=epochs[0],
                value=float(loss[0]),
            )
        )
    rises = np.flatnonzero(loss[1:] > 1.1 * loss[:-1])
    if rises.size >= 2:
        out.append(
            Finding(
                "lr_too_high",
                "warning",
                f"the loss rose by more than 10% in {rises.size} epochs (oscillating)",
                "lower the learning rate or use a decaying schedule",
                epoch=epochs[int(rises[0]) + 1],
                value=float(loss[rises[0] + 1]),
            )
        )
    if loss.size >= 3 and abs(loss[0] - loss[-1]) < 0.01 * abs(loss[0]):
        out.append(
            Finding(
                "lr_too_low",
                "warning",
                f"the train loss stayed flat over {loss.size} epochs "
                f"({loss[0]:.4g} -> {loss[-1]:.4g})",
                "raise the learning rate (try 10x); if that does not help, look for a bug "
                "(frozen parameters, a detached loss, vanishing gradients)",
                epoch=epochs[-1],
                value=float(loss[-1]),
            )
        )
    if log_c is not None:
        acc = _series(history, "val_accuracy")
        val = _series(history, "val_loss")
        chance = 1.0 / math.exp(log_c)
        if loss.size >= 3 and acc is not None and np.nanmax(acc) < 1.5 * chance:
            out.append(
                Finding(
                    "chance_level",
                    "warning",
                    f"the validation accuracy never rose above chance (best "
                    f"{np.nanmax(acc):.3g}, chance {chance:.3g})",
                    "check that labels match their inputs (a shuffled or misaligned label "
                    "array learns nothing that generalizes), then the learning rate",
                    epoch=epochs[int(np.nanargmax(acc))],
                    value=float(np.nanmax(acc)),
                )
            )
        elif loss.size >= 3 and acc is None and val is not None and np.nanmin(val) > 0.95 * log_c:
            out.append(
                Finding(
                    "chance_level",
                    "warning",
                    f"the validation loss never fell below chance (best {np.nanmin(val):.4g}, "
                    f"log C = {log_c:.4g})",
                    "check that labels match their inputs, then the learning rate",
                    epoch=epochs[int(np.nanargmin(val))],
                    value=float(np.nanmin(val)),
                )
            )
        if loss[-1] > 0.5 * log_c and not any(f.code == "lr_too_low" for f in out):
            out.append(
                Finding(
                    "underfitting",
                    "info",
                    f"the train loss is still high ({loss[-1]:.4g} against log C = {log_c:.4g})",
                    "train longer, raise the learning rate or use a larger model",
                    epoch=epochs[-1],
                    value=float(loss[-1]),
                )
            )
    val = _series(history, "val_loss")
    if val is not None and val.size >= 3 and np.all(np.isfinite(val)):
        best = int(np.argmin(val))
        if best < val.size - 1 and val[-1] > 1.1 * val[best] and loss[-1] < loss[best]:
            out.append(
                Finding(
                    "overfitting",
                    "warning",
                    f"the validation loss rose from {val[best]:.4g} (epoch {epochs[best]}) to "
                    f"{val[-1]:.4g} while the train loss kept falling (gap "
                    f"{val[-1] - loss[-1]:.3g})",
                    "stop early (EarlyStopping), add weight decay, dropout or data augmentation",
                    epoch=epochs[best],
                    value=float(val[-1]),
                )
            )
    return out


def _statistics_findings(record: Any, log_c: float | None) -> list[Finding]:
    out: list[Finding] = []
    epochs = list(record.epoch)
    first_loss = float(np.asarray(record["loss_first"])[0]) if "loss_first" in record else None
    if log_c is not None and first_loss is not None and math.isfinite(first_loss):
        if first_loss > 2 * log_c or first_loss < 0.5 * log_c:
            out.append(
                Finding(
                    "initial_loss",
                    "warning",
                    f"the initial loss is {first_loss:.4g}, far from log C = {log_c:.4g}",
                    "an untrained classifier should predict uniformly: scale the initial "
                    "weights down (He/Xavier initialization), standardize the inputs, start "
                    "the last layer at zero",
                    epoch=epochs[0],
                    value=first_loss,
                )
            )
    for key, name in (("input_mean", "mean"), ("input_std", "standard deviation")):
        if key in record:
            value = float(np.asarray(record[key])[0])
            if abs(value) > 5:
                out.append(
                    Finding(
                        "input_scale",
                        "warning",
                        f"the inputs' {name} is {value:.4g} (expected about 0 and 1)",
                        "standardize the inputs (subtract the mean, divide by the standard "
                        "deviation; images: divide by 255)",
                        epoch=epochs[0],
                        value=value,
                    )
                )
                break
    grads = _kernels(record, "grad_norm")
    if len(grads) >= 2:
        (name0, g0), (_, g1) = grads[0], grads[-1]
        if g0[0] > 0 and g1[0] > 0 and np.isfinite(g0[0] / g1[0]):
            ratio = float(g0[0] / g1[0])
            if ratio < 1e-2:
                out.append(
                    Finding(
                        "vanishing_gradients",
                        "warning",
                        f"the first layer's gradient norm ({g0[0]:.3g}, {name0}) is {ratio:.2g} "
                        f"times the last layer's ({g1[0]:.3g})",
                        "use ReLU-family activations with He initialization, normalization "
                        "layers or residual connections; avoid deep sigmoid stacks",
                        layer=name0,
                        epoch=epochs[0],
                        value=ratio,
                    )
                )
            elif ratio > 1e2:
                out.append(
                    Finding(
                        "exploding_gradients",
                        "warning",
                        f"the first layer's gradient norm is {ratio:.2g} times the last layer's",
                        "scale the initialization down, clip gradients, add normalization",
                        layer=name0,
                        epoch=epochs[0],
                        value=ratio,
                    )
                )
    for name, g in grads:
        if not np.all(np.isfinite(g)) or (g[0] > 0 and np.nanmax(g) > 1e3 * g[0]):
            out.append(
                Finding(
                    "exploding_gradients",
                    "error" if not np.all(np.isfinite(g)) else "warning",
                    f"the gradient norm of {name} grew from {g[0]:.3g} to {np.nanmax(g):.3g}",
                    "lower the learning rate and clip gradients (clip_by_global_norm)",
                    layer=name,
                    epoch=epochs[int(np.nanargmax(np.where(np.isfinite(g), g, np.inf)))],
                    value=float(np.nanmax(g)),
                )
            )
            break
    if "activation_std" in record:
        stds = np.asarray(record["activation_std"], np.float64)[:, 0]
        rows = record.rows("activation_std")
        for i, (name, std) in enumerate(zip(rows, stds, strict=True)):
            if std < 1e-2 or (i > 0 and std < 0.1 * stds[0]):
                out.append(
                    Finding(
                        "vanishing_activations",
                        "warning",
                        f"the activations of {name} have standard deviation {std:.3g} (first "
                        f"layer: {stds[0]:.3g}): the signal collapses towards zero",
                        "initialize with the activation's gain: He for ReLU, Xavier/Glorot "
                        "for tanh (weights too small shrink the signal layer by layer)",
                        layer=name,
                        epoch=epochs[0],
                        value=float(std),
                    )
                )
                break
    for key, code, what, advice in (
        (
            "activation_dead",
            "dead_units",
            "dead (zero for every input of a batch)",
            "lower the learning rate, use He initialization, or LeakyReLU/ELU",
        ),
        (
            "activation_saturated",
            "saturated_units",
            "saturated (|tanh| > 0.99 or sigmoid outside [0.01, 0.99])",
            "use Xavier initialization, standardize the inputs, add normalization, or ReLU",
        ),
    ):
        if key not in record:
            continue
        values = np.asarray(record[key], np.float64)[:, -1]
        for name, value in zip(record.rows(key), values, strict=True):
            if np.isfinite(value) and value > 0.5:
                out.append(
                    Finding(
                        code,
                        "warning",
                        f"{value:.0%} of {name}'s units are {what}",
                        advice,
                        layer=name,
                        epoch=epochs[-1],
                        value=float(value),
                    )
                )
    low, high = UPDATE_BAND
    medians = [(name, _finite_median(r)) for name, r in _kernels(record, "update_ratio")]
    for too, outside in (
        ("high", [(n, m) for n, m in medians if m > high]),
        ("low", [(n, m) for n, m in medians if m < low]),
    ):
        if outside:
            name, worst = (max if too == "high" else min)(outside, key=lambda nm: nm[1])
            layers = ", ".join(n for n, _ in outside)
            out.append(
                Finding(
                    "update_ratio",
                    "warning",
                    f"the update-to-parameter ratio is too {too} in {len(outside)} "
                    f"layer(s) ({layers}): {worst:.2g} at {name} (median over epochs; "
                    f"about 1e-3 is healthy, [{low:g}, {high:g}] acceptable)",
                    f"{'lower' if too == 'high' else 'raise'} the learning rate"
                    + (" (of those layers)" if len(outside) < len(medians) else ""),
                    layer=name,
                    epoch=epochs[-1],
                    value=worst,
                )
            )
    return out


def diagnose(history: History) -> list[Finding]:
    """Findings about a run, most severe first (see the module docstring for the rules).

    Works on any :class:`~optlab.train.history.History` (loss-curve rules); a run trained
    with ``fit(..., diagnostics=optlab.diagnostics.Monitor())`` also gets the per-layer
    rules. A healthy run gives no ``"warning"`` or ``"error"``.

    Args:
      history: the history of a run (``fit``'s first result, or ``History.load_json``).

    Returns:
      A list of :class:`Finding` (``print`` each for one line).

    Examples:
      >>> from optlab.train.history import History
      >>> h = History()
      >>> for epoch, loss in enumerate([2.30, 2.30, 2.31], 1):
      ...     h.append(epoch, {"loss": loss})
      >>> print([f.code for f in diagnose(h)])
      ['lr_too_low']
    """
    if not isinstance(history, History):
        raise TypeError(
            f"diagnose: history must be an optlab History (fit's first result), "
            f"got {type(history).__name__}"
        )
    record = history.diagnostics
    log_c = None
    if record is not None and "num_classes" in record:
        classes = float(np.asarray(record["num_classes"])[0])
        log_c = math.log(classes) if classes > 1 else None
    found = _loss_findings(history, record, log_c)
    if record is not None and len(record):
        found += _statistics_findings(record, log_c)
    return sorted(found, key=lambda f: SEVERITIES.index(f.severity))
