"""A training run from a configuration: data, model, transformation, schedule, callbacks.

The ``optlab`` command is a parser over these functions, and a notebook can call them too::

    from optlab.train import recipes
    config = recipes.Recipe(optimizer="nesterov", lr=0.05, schedule="cosine",
                               warmup_epochs=2, hidden=(128,), epochs=30)
    data = recipes.load_data(config)
    model = recipes.build_model(config, data)
    opt = recipes.build_optimizer(config, data)
    history, model = ol.fit(model, opt.tx, data.train,
                            **recipes.fit_arguments(config, data, opt),
                            callbacks=recipes.build_callbacks(config))

Everything is chosen by name from :mod:`optlab.optimizers.registry` (optimizers, with what
each takes), :mod:`optlab.schedules.registry` (schedules, with their parameters),
:func:`optlab.data.load` (datasets and ``.npz``/``.csv`` files) and :mod:`optlab.nn`
(activations, initializers, norms); each bundled dataset's recommended recipe from
:mod:`optlab.optimizers.recommended` (:func:`recommended`), and what a run's data is
(:class:`~optlab.train.run_data.RunData`, the task of its targets) from
:mod:`optlab.train.run_data`. Options a method does not use are refused, never ignored. The
schedule spans ``schedule_epochs`` (the run's horizon, by default ``epochs``) and holds its
final value afterwards:

.. math::

    \\eta_t = s(\\min(t, T - 1)), \\qquad T = \\text{schedule\\_epochs} \\times
    \\text{steps per epoch}

so a resumed run that asks for more epochs continues at the last value instead of restarting
a cosine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from optlab.core.base import GradientTransformation, Schedule
from optlab.core.validation import (
    check_bool,
    check_in_range,
    check_int_at_least,
    check_nonnegative,
    check_positive,
    check_real,
    check_seed,
    check_str,
)
from optlab.optimizers.recommended import recommended_fields
from optlab.optimizers.registry import optimizer_spec
from optlab.schedules.registry import schedule_spec
from optlab.train.callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from optlab.train.run_data import RunData, is_data_file, task_for

CONFIG_FORMAT = "optlab.run/1"
DEFAULT_BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run (``optlab train`` writes it as config.json).

    ``None`` means "not given": the method's or the dataset's own choice. Names are checked
    when the run is built (a typo raises a ``ValueError`` with a did-you-mean suggestion);
    options that the chosen optimizer or schedule does not use raise at construction.

    Attributes:
      dataset: a name of :func:`optlab.data.dataset_names`, or a ``.npz``/``.csv`` file.
      target: the label column of a ``.csv`` dataset.
      data_dir: the directory of IDX files (``fashion_mnist``, ``mnist``).
      hidden: hidden layer widths of the MLP.
      residual: make every hidden layer a residual block (``True``), or one bool per layer
        (``(False, True)``: the MNIST-1D paper's MLP).
      activation: hidden activation (:func:`optlab.nn.activation_names`).
      init: weight initializer (:func:`optlab.nn.initializer_names`).
      norm: ``None``, ``"batch"``, ``"layer"`` or ``"group"``.
      dropout: dropout rate after each hidden activation.
      optimizer: a key of :data:`optlab.optimizers.registry.OPTIMIZERS`.
      lr: the peak learning rate (default: the registry's).
      momentum: momentum, for the methods that take one.
      opt: other keyword arguments of the optimizer's factory (numbers and switches).
      schedule: a key of :data:`optlab.schedules.registry.SCHEDULES`.
      schedule_opt: the schedule's parameters.
      warmup_epochs: linear warmup from 0 over this many epochs.
      clip_norm: clip the gradients' global norm to this value.
      weight_decay: decoupled for methods that take it, an L2 term added to the gradient for
        the others.
      epochs: the number of epochs (the total to reach, when resuming).
      schedule_epochs: the schedule's horizon (default: ``epochs``).
      batch_size: rows per step (default 32; full-batch methods use every row).
      validation_split: hold out this fraction of the training rows (stratified for class
        labels) for validation; 0 validates on the dataset's test split.
      seed: seeds the initial weights, the data order and the split.
      early_stopping: patience in epochs on ``val_loss`` (restores the best weights).
      checkpoint_every: write a checkpoint every this many epochs.
    """

    dataset: str = "digits"
    target: str | None = None
    data_dir: str | None = None
    hidden: Sequence[int] = (64,)
    residual: bool | Sequence[bool] = False
    activation: str = "relu"
    init: str = "he_normal"
    norm: str | None = None
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    opt: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    schedule: str = "constant"
    schedule_opt: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    warmup_epochs: int = 0
    clip_norm: float | None = None
    weight_decay: float | None = None
    epochs: int = 20
    schedule_epochs: int | None = None
    batch_size: int | None = None
    validation_split: float = 0.0
    seed: int = 0
    early_stopping: int | None = None
    checkpoint_every: int = 1

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.residual, list | tuple):
            object.__setattr__(self, "residual", tuple(self.residual))
        object.__setattr__(self, "opt", dict(self.opt))
        object.__setattr__(self, "schedule_opt", dict(self.schedule_opt))
        if self.norm in ("none", ""):
            object.__setattr__(self, "norm", None)
        _check_types(self)
        check_run_options(self)

    @property
    def horizon(self) -> int:
        """The schedule's length in epochs."""
        return self.schedule_epochs if self.schedule_epochs is not None else self.epochs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with a ``format`` key) that :meth:`from_dict` reads back."""
        out = {"format": CONFIG_FORMAT, **dataclasses.asdict(self)}
        out["hidden"] = list(self.hidden)
        if isinstance(self.residual, tuple):
            out["residual"] = list(self.residual)
        out["schedule_epochs"] = self.horizon
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """The inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        data = dict(data)
        fmt = data.pop("format", None)
        if fmt != CONFIG_FORMAT:
            raise ValueError(
                f"Recipe.from_dict: format must be {CONFIG_FORMAT!r}, got {fmt!r} (written "
                "by another version of optlab?)"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Recipe.from_dict: unknown keys {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)


def recommended(dataset: str = "digits", **overrides: Any) -> Recipe:
    """The recommended :class:`Recipe` of a bundled dataset, with ``overrides`` applied.

    The recipe comes from :data:`optlab.optimizers.recommended.RECOMMENDED` (the one table,
    which ``optlab train`` reads without jax);
    :func:`~optlab.optimizers.recommended.recommended_fields` drops the values tied to an
    override (another optimizer drops the recipe's learning rate). A dataset without one gets
    :class:`Recipe`'s defaults.

    Examples:
      >>> r = recommended("mnist1d")
      >>> r.hidden, r.residual, r.optimizer, r.lr, r.epochs
      ((100, 100), (False, True), 'momentum', 0.2, 150)
      >>> recommended("mnist1d", optimizer="adam", epochs=5).lr is None
      True
    """
    return Recipe(dataset=dataset, **{**recommended_fields(dataset, overrides), **overrides})


def check_run_options(config: Recipe) -> dict[str, Any]:
    """Refuses options the run's optimizer or schedule does not use
    (:meth:`~optlab.optimizers.registry.OptimizerSpec.check_run`); returns the optimizer's
    options (``opt`` and ``momentum``) converted to their kinds."""
    return optimizer_spec(config.optimizer).check_run(
        epochs=config.horizon,
        lr=config.lr,
        momentum=config.momentum,
        opt=config.opt,
        schedule=config.schedule,
        schedule_opt=config.schedule_opt,
        warmup_epochs=config.warmup_epochs,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
    )


def _check_types(config: Recipe) -> None:
    fn = "Recipe"
    for name in ("dataset", "activation", "init", "optimizer", "schedule", "target", "data_dir"):
        value = getattr(config, name)
        if value is None and name in ("target", "data_dir"):
            continue
        check_str(fn, name, value)
        if not value.strip():
            raise ValueError(f"{fn}: {name} must not be empty, got {name}={value!r}")
    if config.norm is not None:
        check_str(fn, "norm", config.norm)
    for h in config.hidden:
        check_int_at_least(fn, "hidden (each width)", h, 1)
    flags = config.residual if isinstance(config.residual, tuple) else (config.residual,)
    for flag in flags:
        check_bool(fn, "residual", flag)
    if isinstance(config.residual, tuple) and len(config.residual) != len(config.hidden):
        raise ValueError(
            f"{fn}: residual must be one bool or one per hidden layer ({len(config.hidden)}), "
            f"got residual={list(config.residual)} for hidden={list(config.hidden)}"
        )
    for name, minimum in (("epochs", 1), ("warmup_epochs", 0), ("checkpoint_every", 1)):
        check_int_at_least(fn, name, getattr(config, name), minimum)
    for name, minimum in (("schedule_epochs", 1), ("batch_size", 1), ("early_stopping", 0)):
        if getattr(config, name) is not None:
            check_int_at_least(fn, name, getattr(config, name), minimum)
    check_seed(fn, "seed", config.seed)
    for name in ("dropout", "validation_split"):
        check_real(fn, name, getattr(config, name))
        check_in_range(fn, name, getattr(config, name), 0.0, 1.0)
    for name in ("lr", "momentum", "weight_decay"):
        if getattr(config, name) is not None:
            check_real(fn, name, getattr(config, name))
            check_nonnegative(fn, name, getattr(config, name))
    if config.clip_norm is not None:
        check_real(fn, "clip_norm", config.clip_norm)
        check_positive(fn, "clip_norm", config.clip_norm)


# ---------------------------------------------------------------------------------------------
# Data and model


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).reshape(len(x), -1)


def load_data(config: Recipe) -> RunData:
    """Loads the configured dataset or file and splits off the validation rows.

    With ``validation_split`` :math:`f > 0`, a stratified (for class labels) seeded split of
    the training rows holds out :math:`\\lceil f n \\rceil` of them; both parts must keep at
    least one row. Otherwise the dataset's test split validates (none when a file has none).

    Raises:
      ValueError: a missing or damaged dataset or file, an option the dataset does not take,
        or a split that leaves no rows.
    """
    from optlab.data.datasets import load
    from optlab.data.splits import train_val_split

    options: dict[str, Any] = {}
    if is_data_file(config.dataset):
        if config.data_dir is not None:
            raise ValueError("load_data: data_dir (--data-dir) applies to IDX datasets, not files")
        if config.target is not None:
            options["target"] = config.target
    else:
        if config.target is not None:
            raise ValueError(
                f"load_data: target (--target) applies to .csv files, not the dataset "
                f"{config.dataset!r}"
            )
        if config.data_dir is not None:
            options["path"] = config.data_dir
    try:
        ds = load(config.dataset, **options)
    except TypeError:  # an option this loader does not take
        raise ValueError(
            f"load_data: the dataset {config.dataset!r} takes no "
            f"{' or '.join(options)} (--data-dir is for fashion_mnist and mnist)"
        ) from None
    x, y = _flat(ds.x_train), np.asarray(ds.y_train)
    task = task_for(y, getattr(ds, "num_classes", None))
    split = config.validation_split
    if not 0.0 <= split < 1.0 or not math.isfinite(split):
        raise ValueError(f"load_data: validation_split must be in [0, 1), got {split!r}")
    if split:
        n_val = math.ceil(split * len(x))
        if n_val < 1 or n_val >= len(x):
            raise ValueError(
                f"load_data: validation_split={split} leaves {len(x) - n_val} training and "
                f"{n_val} validation rows of {len(x)}; both need at least one"
            )
        stratify = task.kind == "classification" and n_val >= task.num_outputs
        stratify = stratify and len(x) - n_val >= task.num_outputs
        train, val = train_val_split(x, y, split, seed=config.seed, stratify=stratify)
        return RunData(ds, train, val, f"validation split ({split:g})", task)
    x_test = getattr(ds, "x_test", None)
    if x_test is None or len(x_test) == 0:
        return RunData(ds, (x, y), None, "none", task)
    return RunData(ds, (x, y), (_flat(x_test), np.asarray(ds.y_test)), "test split", task)


def build_model(config: Recipe, data: RunData) -> Any:
    """The configured :class:`optlab.nn.MLP` for ``data`` (input and output widths).

    ``init="torch_default"`` initializes the biases as PyTorch's ``nn.Linear`` does too
    (:math:`U(\\pm 1/\\sqrt{\text{fan\\_in}})`); every other initializer starts them at 0.
    """
    from optlab.nn.mlp import MLP

    return MLP(
        int(data.train[0].shape[1]),
        tuple(config.hidden),
        data.task.num_outputs,
        activation=config.activation,
        kernel_init=config.init,
        bias_init="torch_default" if config.init == "torch_default" else "zeros",
        residual=config.residual,
        norm=config.norm,
        dropout=config.dropout,
        rngs=config.seed,
    )


# ---------------------------------------------------------------------------------------------
# Schedules


def build_schedule(config: Recipe, peak: float, steps_per_epoch: int) -> Schedule | float:
    """The configured learning-rate schedule with peak ``peak`` (a float when constant).

    The schedule spans ``config.horizon`` epochs and holds its final value afterwards.
    """
    spec = schedule_spec(config.schedule)
    params = spec.check(
        config.schedule_opt, epochs=config.horizon, warmup_epochs=config.warmup_epochs
    )
    warmup = config.warmup_epochs * steps_per_epoch
    if spec.name in ("constant", "reduce-on-plateau") and not warmup:
        return peak
    return spec.build(
        peak,
        params,
        total_steps=config.horizon * steps_per_epoch,
        warmup_steps=warmup,
        steps_per_epoch=steps_per_epoch,
    )


def describe_schedule(config: Recipe) -> str:
    """``cosine(alpha=0.1), warmup 2`` : the schedule in a table cell."""
    spec = schedule_spec(config.schedule)
    params = ", ".join(f"{k}={v}" for k, v in config.schedule_opt.items())
    text = f"{spec.name}({params})" if params else spec.name
    return f"{text}, warmup {config.warmup_epochs}" if config.warmup_epochs else text


# ---------------------------------------------------------------------------------------------
# Optimizer and callbacks


class Optimizer(NamedTuple):
    """A configured transformation and how it runs.

    Attributes:
      tx: the gradient transformation (clipping, L2 term, the method).
      batch_size: rows per step (all of them for a full-batch method).
      steps_per_epoch: updates per epoch.
      learning_rate: the peak learning rate, or ``None`` (line search).
      schedule: the schedule in words.
      description: a JSON-able record of the method and its hyperparameters.
    """

    tx: GradientTransformation
    batch_size: int
    steps_per_epoch: int
    learning_rate: float | None
    schedule: str
    description: dict[str, Any]


def batch_size_for(config: Recipe, num_train: int) -> int:
    """Rows per step: every row for a full-batch method, else ``batch_size`` (at most all)."""
    if optimizer_spec(config.optimizer).full_batch:
        return num_train
    return min(config.batch_size or DEFAULT_BATCH_SIZE, num_train)


def build_optimizer(config: Recipe, data: RunData) -> Optimizer:
    """The configured transformation for ``data``'s training rows.

    The chain is ``clip_by_global_norm`` (with ``clip_norm``), ``add_decayed_weights`` (with
    ``weight_decay`` for a method without decoupled decay), then the method with its
    registered defaults overridden by ``lr`` (as the peak of the schedule), ``momentum`` and
    ``opt``.

    Raises:
      ValueError: an option the method does not take, or a value its factory refuses.
    """
    from optlab.core.combine import chain
    from optlab.data.batching import num_batches
    from optlab.transforms.clipping import clip_by_global_norm
    from optlab.transforms.regularization import add_decayed_weights

    spec = optimizer_spec(config.optimizer)
    opts = check_run_options(config)
    n_train = len(data.train[0])
    batch = batch_size_for(config, n_train)
    spe = num_batches(n_train, batch)
    kwargs = {**spec.defaults, **opts}
    peak = None
    schedule = "line search" if spec.full_batch else describe_schedule(config)
    if not spec.full_batch:
        peak = float(config.lr if config.lr is not None else spec.defaults["learning_rate"])
        kwargs["learning_rate"] = build_schedule(config, peak, spe)
    description: dict[str, Any] = {"name": spec.name, "learning_rate": peak, "schedule": schedule}
    description.update({k: v for k, v in kwargs.items() if k != "learning_rate"})
    decay = config.weight_decay
    if decay is not None and spec.weight_decay == "decoupled":
        kwargs["weight_decay"] = decay
        description["weight_decay"] = decay
    parts = [spec.factory(**kwargs)]
    if decay is not None and spec.weight_decay == "l2":
        parts.insert(0, add_decayed_weights(decay))
        description["l2"] = decay
    if config.clip_norm is not None:
        parts.insert(0, clip_by_global_norm(config.clip_norm))
        description["clip_norm"] = config.clip_norm
    tx = parts[0] if len(parts) == 1 else chain(*parts)
    return Optimizer(tx, batch, spe, peak, schedule, description)


def final_learning_rate(config: Recipe, steps_per_epoch: int) -> float | None:
    """The schedule's value at the end of its horizon (where a longer run stays)."""
    spec = optimizer_spec(config.optimizer)
    if spec.full_batch:
        return None
    peak = float(config.lr if config.lr is not None else spec.defaults["learning_rate"])
    sched = build_schedule(config, peak, steps_per_epoch)
    if not callable(sched):
        return sched
    return float(sched(config.horizon * steps_per_epoch - 1))


def fit_arguments(config: Recipe, data: RunData, opt: Optimizer) -> dict[str, Any]:
    """The keyword arguments of :func:`optlab.fit` that the run's configuration fixes: the
    task's loss and metrics, the validation data, epochs, batch size and seed."""
    return dict(
        loss=data.task.loss,
        metrics=data.task.metrics,
        validation_data=data.validation,
        epochs=config.epochs,
        batch_size=opt.batch_size,
        seed=config.seed,
    )


def build_callbacks(
    config: Recipe, checkpoint_dir: Any = None, *, max_to_keep: int | None = 3
) -> list[Callback]:
    """Early stopping (``early_stopping``), ReduceLROnPlateau (the ``reduce-on-plateau``
    schedule) and, with ``checkpoint_dir``, a checkpoint every ``checkpoint_every`` epochs.

    Raises:
      ValueError: a callback's parameter out of range.
    """
    callbacks: list[Callback] = []
    if config.early_stopping is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=config.early_stopping))
    spec = schedule_spec(config.schedule)
    if spec.name == "reduce-on-plateau":
        p = spec.check(
            config.schedule_opt, epochs=config.horizon, warmup_epochs=config.warmup_epochs
        )
        callbacks.append(ReduceLROnPlateau(monitor="val_loss", **p))
    if checkpoint_dir is not None:
        callbacks.append(
            ModelCheckpoint(
                checkpoint_dir, every_n_epochs=config.checkpoint_every, max_to_keep=max_to_keep
            )
        )
    return callbacks


def needs_validation(config: Recipe) -> list[str]:
    """The options that watch ``val_loss`` (early stopping, reduce-on-plateau)."""
    out = []
    if config.early_stopping is not None:
        out.append("early_stopping (--early-stopping)")
    if schedule_spec(config.schedule).name == "reduce-on-plateau":
        out.append("schedule reduce-on-plateau")
    return out
