"""The bug zoo: small digits runs, each with one planted fault that
:func:`~optlab.diagnostics.diagnose` must flag.

Every entry trains the same kind of model on scikit-learn's digits (64 inputs in [0, 1], 10
classes; 20% of the training rows held out for validation) with a monitor, changing one
thing from a healthy recipe: weights x10 or x0.01 at initialization, the learning rate x100 or
x1e-4, an 8-layer sigmoid stack, shuffled labels, inputs left in [0, 255]. The healthy
baselines (``healthy_*``) change nothing and must draw no warning. Use it to see each finding
on a real run::

    history = run_bug("lr_x100")
    for finding in diagnose(history):
        print(finding)

``BUGS`` maps each name to its :class:`Bug`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from optlab.core.validation import check_int_at_least
from optlab.data import load
from optlab.diagnostics.monitor import Monitor
from optlab.nn.losses import softmax_cross_entropy_with_integer_labels
from optlab.nn.mlp import MLP
from optlab.optimizers.adam import adam
from optlab.optimizers.sgd import sgd
from optlab.train.callbacks import Callback
from optlab.train.fit import fit
from optlab.train.history import History


class Bug(NamedTuple):
    """One entry of the zoo: what is planted, the finding it must draw (None for a healthy
    baseline: no warning at all) and how the run is built.

    ``lr_multiplier`` multiplies every update through the state's ``lr_scale`` (Adam 1e-3 with
    a multiplier of 100 takes the steps of Adam 0.1): the run reuses the compiled epoch of the
    healthy recipe, as a learning rate set on the state never recompiles.
    """

    description: str
    expected: str | None
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    kernel_init: str = "he_normal"
    weight_scale: float = 1.0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_multiplier: float = 1.0
    shuffle_labels: bool = False
    input_scale: float = 1.0


BUGS: dict[str, Bug] = {
    "weights_x10": Bug("initial weights multiplied by 10", "initial_loss", weight_scale=10.0),
    "weights_x0.01": Bug(
        "initial weights multiplied by 0.01", "vanishing_activations", weight_scale=0.01
    ),
    "lr_x100": Bug("learning rate 100 times too high", "lr_too_high", lr_multiplier=100.0),
    "lr_x1e-4": Bug("learning rate 10^4 times too low", "lr_too_low", lr_multiplier=1e-4),
    "sigmoid_stack": Bug(
        "8 hidden sigmoid layers",
        "vanishing_gradients",
        hidden=(32,) * 8,
        activation="sigmoid",
        kernel_init="lecun_normal",
        optimizer="sgd",
        learning_rate=0.1,
    ),
    "shuffled_labels": Bug("training labels shuffled", "chance_level", shuffle_labels=True),
    "inputs_0_255": Bug("inputs left in [0, 255]", "input_scale", input_scale=255.0),
    "healthy_adam": Bug("adam 1e-3, ReLU MLP 64-64", None),
    "healthy_sgd": Bug(
        "SGD 0.1, tanh MLP 32",
        None,
        hidden=(32,),
        activation="tanh",
        optimizer="sgd",
        kernel_init="lecun_normal",
        learning_rate=0.1,
    ),
    "healthy_batchnorm": Bug("adam 3e-3, ReLU MLP 128 with BatchNorm", None, hidden=(128,)),
}


def _scale_weights(model: nnx.Module, factor: float) -> None:
    for _, module in nnx.iter_modules(model):
        kernel = getattr(module, "kernel", None)
        if isinstance(kernel, nnx.Param):
            kernel[...] = kernel[...] * factor


class _ScaleLearningRate(Callback):
    """Sets the state's learning-rate multiplier before the first epoch."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def on_train_begin(self, run: Any) -> None:
        run.state = run.state.replace(lr_scale=jnp.asarray(self.factor, jnp.float32))


@functools.cache
def _transformation(name: str, learning_rate: float) -> Any:
    # One object per (name, rate): runs that differ only in weights or data reuse the
    # compiled epoch (a new transformation object is a new static argument).
    return adam(learning_rate) if name == "adam" else sgd(learning_rate)


def bug_data(bug: Bug, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits' training rows ``(x, y)`` with the bug's data fault planted (labels shuffled,
    inputs scaled)."""
    ds = load("digits")
    x, y = ds.x_train * np.float32(bug.input_scale), ds.y_train
    if bug.shuffle_labels:
        y = np.random.default_rng(seed).permutation(y)
    return x, y


def run_bug(
    name: str, *, epochs: int = 6, seed: int = 0, monitor: Monitor | None = None
) -> History:
    """Trains the zoo's entry ``name`` (a key of ``BUGS``) and returns its history, with
    ``history.diagnostics`` recorded by ``monitor`` (default ``Monitor(histograms=True)``)."""
    if name not in BUGS:
        raise ValueError(f"run_bug: name must be one of {sorted(BUGS)}, got name={name!r}")
    check_int_at_least("run_bug", "epochs", epochs, 1)
    bug = BUGS[name]
    norm = "batch" if name == "healthy_batchnorm" else None
    model = MLP(
        64,
        bug.hidden,
        10,
        activation=bug.activation,
        kernel_init=bug.kernel_init,
        norm=norm,
        rngs=seed,
    )
    _scale_weights(model, bug.weight_scale)
    lr = 3e-3 if norm else bug.learning_rate
    tx = _transformation(bug.optimizer, lr)
    history, _ = fit(
        model,
        tx,
        bug_data(bug, seed),
        loss=softmax_cross_entropy_with_integer_labels,
        epochs=epochs,
        batch_size=64,
        validation_split=0.2,
        seed=seed,
        progress=False,
        callbacks=[_ScaleLearningRate(bug.lr_multiplier)] if bug.lr_multiplier != 1.0 else [],
        diagnostics=monitor if monitor is not None else Monitor(),
    )
    return history


# BUGS (a dict) is left out: the API reference would show dict's own docstring.
__all__ = ["Bug", "bug_data", "run_bug"]
