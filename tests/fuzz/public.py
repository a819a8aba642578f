"""What the fuzz suite calls: every public callable, a valid call of each, invalid values, and
what a successful call must then do.

The callables are enumerated from the package itself (``optlab.__all__``, the public names of
``optlab.nn``, ``optlab.data`` and ``optlab.callbacks``), so a new public name is fuzzed without
editing the suite. Each needs one *valid* call to vary one argument at a time: it is built from
the parameter's name (:data:`BY_NAME`, shared by every callable that uses the name) or, for the
few callables whose valid arguments are specific, from :data:`BY_CALLABLE`. A new callable whose
arguments neither table knows fails ``test_every_callable_has_a_valid_call`` with the name of
the argument to add.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optlab as ol

# ---------------------------------------------------------------------------------------------
# Enumeration


def _module_names(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:  # optlab.callbacks: the names it defines, and the classes it re-exports
        names = [
            n
            for n in dir(module)
            if not n.startswith("_")
            and (
                getattr(getattr(module, n), "__module__", "").startswith(module.__name__)
                or (
                    isinstance(getattr(module, n), type)
                    and getattr(module, n).__module__.startswith(module.__name__.rsplit(".", 1)[0])
                )
            )
        ]
    return sorted(n for n in names if not n.startswith("_"))


# Public names that are records (their fields are whatever the library computed), not entry
# points a user calls with arguments to check; each says why it is not fuzzed.
RECORDS = {
    "ol.TrainState": "the engine's state record; built by fit/make_train_step, never by hand",
    "nn.Apply": "built by nn.functional from a model; its fields are graph definitions",
    "callbacks.Run": "the record fit hands to callbacks; built by fit",
    "callbacks.TrainState": "the engine's state record (ol.TrainState)",
    "callbacks.Callback": "an abstract base: its constructor takes no argument",
    "callbacks.MonitorCallback": "the shared base of the monitoring callbacks (fuzzed through "
    "EarlyStopping, ReduceLROnPlateau and ModelCheckpoint)",
    "data.Dataset": "the record load() returns; fields are validated where data is read",
    "data.Preprocessor": "the record fit_preprocessor() returns",
    "ol.History": "the record fit returns (per-epoch logs)",
}


def _is_record_type(obj: Any) -> bool:
    """NamedTuple states, exceptions and typing names are data, not calls to fuzz."""
    return isinstance(obj, type) and (
        (issubclass(obj, tuple) and hasattr(obj, "_fields")) or issubclass(obj, BaseException)
    )


@functools.cache
def public_callables() -> dict[str, Callable[..., Any]]:
    """``{"ol.adam": ol.adam, "nn.Dense": ..., "callbacks.EarlyStopping": ...}``."""
    groups = {
        "ol": (ol, list(ol.__all__)),
        "nn": (ol.nn, _module_names(ol.nn)),
        "data": (ol.data, _module_names(ol.data)),
        "callbacks": (ol.callbacks, _module_names(ol.callbacks)),
    }
    found = {}
    for prefix, (module, names) in groups.items():
        for name in names:
            obj = getattr(module, name)
            key = f"{prefix}.{name}"
            if (
                inspect.ismodule(obj)
                or not callable(obj)
                or not getattr(obj, "__module__", "").startswith("optlab")
                or _is_record_type(obj)
                or key in RECORDS
            ):
                continue
            found[key] = obj
    return found


def signature(obj: Callable[..., Any]) -> inspect.Signature:
    """The call signature (an nnx module's ``__init__`` without ``self``)."""
    if isinstance(obj, type):
        if obj.__init__ is object.__init__:  # no constructor of its own: takes no argument
            return inspect.Signature()
        sig = inspect.signature(obj.__init__)
        return sig.replace(parameters=list(sig.parameters.values())[1:])
    return inspect.signature(obj)


# ---------------------------------------------------------------------------------------------
# Valid calls

X = np.asarray([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-0.5, 1.0, 0.0], [2.0, -2.0, 1.0]])
LABELS = np.asarray([0, 1, 2, 1])
IMAGES = np.linspace(0.0, 1.0, 2 * 6 * 6 * 1, dtype=np.float32).reshape(2, 6, 6, 1)


def params_tree() -> dict[str, jax.Array]:
    """The small parameter tree every transformation is exercised on."""
    return {"b": jnp.asarray([[0.5, -0.5]]), "kernel": jnp.asarray([1.0, -2.0, 3.0])}


def quadratic(params: Any) -> jax.Array:
    return sum(0.5 * jnp.sum(p**2) for p in jax.tree.leaves(params))


def _mlp(**kwargs: Any) -> nnx.Module:
    return ol.nn.MLP(3, (4,), 3, rngs=0, **kwargs)


def _toy_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype(np.float32), np.arange(16) % 3


# Where calls write files (a run's folders, checkpoints, IDX files): set by tests/fuzz/conftest.py
# to a pytest temporary directory.
TMP_ROOT: str | None = None


def _tmp(name: str) -> str:
    return os.path.join(tempfile.mkdtemp(prefix="fuzz-", dir=TMP_ROOT), name)


def _saved_model() -> str:
    directory = _tmp("model")
    ol.save_model(_mlp(), directory)
    return directory


def _idx_file() -> str:
    path = _tmp("x.idx")
    ol.data.write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    return path


# A valid value for a parameter of this name, in any callable (a function: fresh each call).
BY_NAME: dict[str, Callable[[], Any]] = {
    "learning_rate": lambda: 0.1,
    "step_size": lambda: 0.1,
    "step_size_fn": lambda: 0.1,
    "clipping": lambda: 0.1,
    "max_delta": lambda: 1.0,
    "max_norm": lambda: 1.0,
    "threshold": lambda: 1.0,
    "eta": lambda: 0.01,
    "gamma": lambda: 0.55,
    "decay": lambda: 0.9,
    "radius": lambda: 1.0,
    "lower": lambda: -1.0,
    "upper": lambda: 1.0,
    "inner": lambda: ol.sgd(0.1),
    "opt": lambda: ol.sgd(0.1),
    "tx": lambda: ol.sgd(0.1),
    "max_consecutive_errors": lambda: 2,
    "every_k_schedule": lambda: 2,
    "init_value": lambda: 1.0,
    "value": lambda: 1.0,
    "base_value": lambda: 0.1,
    "max_value": lambda: 1.0,
    "peak_value": lambda: 1.0,
    "end_value": lambda: 0.01,
    "decay_rate": lambda: 0.5,
    "power": lambda: 2.0,
    "decay_steps": lambda: 10,
    "transition_steps": lambda: 10,
    "warmup_steps": lambda: 2,
    "stable_steps": lambda: 2,
    "steps_per_epoch": lambda: 10,
    "epochs": lambda: 2,
    "interpolate_type": lambda: "linear",
    "max_linesearch_steps": lambda: 5,
    "max_backtracking_steps": lambda: 5,
    "mask": lambda: {"b": True, "kernel": False},
    "projection": lambda: lambda p: jax.tree.map(lambda x: jnp.clip(x, -1.0, 1.0), p),
    "f": lambda: lambda updates, params: updates,
    "params": params_tree,
    "updates": params_tree,
    "tree": params_tree,
    "x0": params_tree,
    "fun": lambda: quadratic,
    "value_fn": lambda: quadratic,
    "inner_factory": lambda: ol.adam,
    "projection_fn": lambda: lambda p: p,
    "transforms": lambda: (ol.clip(1.0), ol.sgd(0.1)),
    "schedules": lambda: [ol.constant_schedule(1.0), ol.constant_schedule(0.5)],
    "boundaries": lambda: [5],
    "cosine_kwargs": lambda: [
        {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1, "decay_steps": 5}
    ],
    "gradient_step": lambda: jnp.asarray(0),
    "max_squared_norm": lambda: 10.0,
    "model": _mlp,
    "data": _toy_data,
    "loss": lambda: ol.nn.softmax_cross_entropy_with_integer_labels,
    # nn
    "in_features": lambda: 3,
    "out_features": lambda: 2,
    "rngs": lambda: 0,
    "stddev": lambda: 0.1,
    "spec": lambda: "relu",
    "x": lambda: jnp.asarray(X, jnp.float32),
    "alpha": lambda: 0.25,
    "logits": lambda: jnp.asarray(X, jnp.float32),
    "scores": lambda: jnp.asarray(X, jnp.float32),
    "predictions": lambda: jnp.asarray(X, jnp.float32),
    "targets": lambda: jnp.zeros((4, 3), jnp.float32),
    "labels": lambda: jnp.asarray(LABELS),
    "outputs": lambda: jnp.asarray(np.stack([X, X[::-1]]), jnp.float32),
    "rate": lambda: 0.5,
    "rng": lambda: jax.random.key(0),
    "key": lambda: jax.random.key(0),
    "train": lambda: True,
    "model_or_tree": params_tree,
    "make_member": lambda: lambda rngs: ol.nn.MLP(3, (4,), 3, rngs=rngs),
    "num_members": lambda: 2,
    "config": lambda: ol.nn.model_config(_mlp()),
    "num_pieces": lambda: 3,
    # data
    "y": lambda: np.arange(20) % 2,
    "batch_size": lambda: 4,
    "num_examples": lambda: 10,
    "method": lambda: "standardize",
    "x_train": lambda: np.asarray(X),
    "name": lambda: "digits",
    "size": lambda: 2,
    "max_shift": lambda: 1,
    "probability": lambda: 0.5,
    "augmentations": lambda: (ol.data.random_shift, ol.data.random_flip_left_right),
    # train, callbacks
    "directory": lambda: _tmp("out"),
    "filename": lambda: _tmp("log.csv"),
    "run_or_model_directory": _saved_model,
    "path": _idx_file,
    "array": lambda: np.arange(6, dtype=np.uint8).reshape(2, 3),
    "state": lambda: ol.adam(0.1).init(params_tree()),
}

# Callables whose valid arguments are specific (an argument that BY_NAME gives differently).
BY_CALLABLE: dict[str, Callable[[], dict[str, Any]]] = {
    "ol.get": lambda: {
        "state": ol.inject_hyperparams(ol.adam)(0.1).init(params_tree()),
        "name": "learning_rate",
    },
    "ol.named_chain": lambda: {"transforms": (("clip", ol.clip(1.0)), ("sgd", ol.sgd(0.1)))},
    "ol.partition": lambda: {
        "transforms": {"a": ol.sgd(0.1), "b": ol.adam(0.1)},
        "labels": {"b": "a", "kernel": "b"},
    },
    "ol.freeze": lambda: {"mask": {"b": True, "kernel": False}},
    "ol.masked": lambda: {"inner": ol.sgd(0.1), "mask": {"b": True, "kernel": False}},
    "ol.project_box": lambda: {"lower": -1.0, "upper": 1.0},
    "ol.evaluate": lambda: {
        "model": _mlp(),
        "data": _toy_data(),
        "loss": ol.nn.softmax_cross_entropy_with_integer_labels,
    },
    "ol.predict": lambda: {"model": _mlp(), "x": _toy_data()[0]},
    "ol.fit": lambda: {
        "model": _mlp(),
        "tx": ol.sgd(0.1),
        "data": _toy_data(),
        "loss": ol.nn.softmax_cross_entropy_with_integer_labels,
        "epochs": 1,
        "batch_size": 8,
        "progress": False,
    },
    "ol.make_train_step": lambda: {"loss": ol.nn.softmax_cross_entropy_with_integer_labels},
    "ol.make_eval_step": lambda: {"loss": ol.nn.softmax_cross_entropy_with_integer_labels},
    "ol.save_model": lambda: {"model": _mlp(), "directory": _tmp("model")},
    "ol.set_hyperparams": lambda: {
        "state": ol.inject_hyperparams(ol.adam)(0.1).init(params_tree()),
        "learning_rate": 0.05,
    },
    "ol.skip_large_updates": lambda: {
        "updates": params_tree(),
        "gradient_step": jnp.asarray(0),
        "params": params_tree(),
        "max_squared_norm": 10.0,
    },
    "ol.unitwise_norm": lambda: {"x": jnp.ones((3, 2))},
    "ol.train_epoch": lambda: {
        "step_fn": ol.make_train_step(ol.nn.softmax_cross_entropy_with_integer_labels),
        "state": _train_state(),
        "batches": ol.data.batches(*_toy_data(), 8, 0),
    },
    "nn.Block": lambda: {"in_features": 3, "out_features": 2, "rngs": 0},
    "nn.Dense": lambda: {"in_features": 3, "out_features": 2, "rngs": 0},
    "nn.MLP": lambda: {"in_features": 3, "hidden": (4,), "out_features": 2, "rngs": 0},
    "nn.MultiInputMLP": lambda: {
        "in_features": (3, 2),
        "tower_hidden": ((4,), (4,)),
        "hidden": (4,),
        "out_features": 2,
        "rngs": 0,
    },
    "nn.GaussianNoise": lambda: {"stddev": 0.1, "rngs": 0},
    "nn.Dropout": lambda: {"rate": 0.5, "rngs": 0},
    "nn.RReLU": lambda: {"lower": 0.1, "upper": 0.3, "rngs": 0},
    "nn.PReLU": lambda: {"num_features": 3},
    "nn.rrelu": lambda: {
        "x": jnp.asarray(X, jnp.float32),
        "key": jax.random.key(0),
        "lower": 0.1,
        "upper": 0.3,
        "train": True,
    },
    "nn.prelu": lambda: {"x": jnp.asarray(X, jnp.float32), "alpha": 0.25},
    "nn.maxout": lambda: {"x": jnp.asarray(X, jnp.float32), "num_pieces": 3},
    "nn.get_initializer": lambda: {"spec": "glorot_uniform"},
    "nn.functional": lambda: {"model": _mlp()},
    "nn.fold_batchnorm": lambda: {"model": _mlp(norm="batch")},
    "nn.model_config": lambda: {"model": _mlp()},
    "nn.majority_vote": lambda: {"outputs": jnp.asarray(np.stack([X, X[::-1]]), jnp.float32)},
    "nn.smooth_labels": lambda: {"labels": jax.nn.one_hot(LABELS, 3), "alpha": 0.1},
    "nn.softmax_cross_entropy": lambda: {
        "logits": jnp.asarray(X, jnp.float32),
        "labels": jax.nn.one_hot(LABELS, 3),
    },
    "nn.sigmoid_binary_cross_entropy": lambda: {
        "logits": jnp.asarray(X, jnp.float32),
        "labels": jnp.asarray(X > 0, jnp.float32),
    },
    "nn.elastic_net_penalty": lambda: {"params": params_tree(), "l1_ratio": 0.5},
    "data.batches": lambda: {
        "x": np.asarray(_toy_data()[0]),
        "y": _toy_data()[1],
        "batch_size": 4,
        "key": 0,
    },
    "data.cutout": lambda: {"x": IMAGES, "key": jax.random.key(0), "size": 2},
    "data.random_shift": lambda: {"x": IMAGES, "key": jax.random.key(0), "max_shift": 1},
    "data.random_flip_left_right": lambda: {"x": IMAGES, "key": jax.random.key(0)},
    "data.gaussian_noise": lambda: {"x": IMAGES, "key": jax.random.key(0)},
    "data.mixup": lambda: {
        "x": IMAGES,
        "y": jax.nn.one_hot(jnp.asarray([0, 1]), 2),
        "key": jax.random.key(0),
    },
    "data.load": lambda: {"name": "two_spirals", "num_samples": 40},
    "data.blobs": lambda: {"num_samples": 40},
    "data.two_spirals": lambda: {"num_samples": 40},
    "data.mnist1d": lambda: {"num_samples": 40},
    "data.fashion_mnist": lambda: {"path": _idx_dataset_dir()},
    "data.mnist": lambda: {"path": _idx_dataset_dir()},
    "data.preprocess": lambda: {"method": "standardize", "x_train": np.asarray(X)},
    "data.fit_preprocessor": lambda: {"method": "standardize", "x_train": np.asarray(X)},
    "data.train_val_split": lambda: {"x": np.ones((20, 3)), "y": np.arange(20) % 2},
    "data.kfold_indices": lambda: {"y": np.arange(20) % 2, "num_folds": 2},
    "data.Mixup": lambda: {"alpha": 0.2, "num_classes": 2},
    "callbacks.Checkpointer": lambda: {"directory": _tmp("ckpt")},
    "callbacks.ModelCheckpoint": lambda: {"directory": _tmp("ckpt")},
    "callbacks.state_is_finite": lambda: {"state": _train_state()},
    "callbacks.injected_learning_rate": lambda: {"state": _train_state()},
}


@functools.cache
def _idx_dataset_dir_cached() -> str:
    directory = tempfile.mkdtemp(prefix="fuzz-idx-", dir=TMP_ROOT)
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        ol.data.write_idx(
            os.path.join(directory, f"{split}-images-idx3-ubyte"),
            rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8),
        )
        ol.data.write_idx(
            os.path.join(directory, f"{split}-labels-idx1-ubyte"),
            (np.arange(n) % 10).astype(np.uint8),
        )
    return directory


def _idx_dataset_dir() -> str:
    return _idx_dataset_dir_cached()


def _train_state() -> Any:
    from optlab.train.state import TrainState

    return TrainState.create(_mlp(), ol.sgd(0.1), seed=0)


# Parameters not fuzzed, with the reason (applies to every callable having the parameter).
NOT_FUZZED = {
    "verbose": "a debugging printout switch",
    "progress": "a display switch; fuzzed through the command's options",
}


def fuzzable(key: str) -> list[inspect.Parameter]:
    """The parameters of a callable that the suite fills with invalid values."""
    return [
        p
        for p in signature(public_callables()[key]).parameters.values()
        if p.kind is not p.VAR_KEYWORD and p.name not in NOT_FUZZED
    ]


def valid_arguments(key: str) -> dict[str, Any]:
    """A valid call of ``key`` as ``{name: value}`` (a ``*args`` parameter maps to a tuple).

    Raises ``LookupError`` naming the parameters no table knows.
    """
    given = BY_CALLABLE.get(key, dict)()
    arguments = {}
    missing = []
    for p in signature(public_callables()[key]).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.name in given:
            arguments[p.name] = given[p.name]
        elif p.default is not p.empty:
            continue
        elif p.name in BY_NAME:
            arguments[p.name] = BY_NAME[p.name]()
        elif p.kind is p.VAR_POSITIONAL:
            continue
        else:
            missing.append(p.name)
    if missing:
        raise LookupError(
            f"{key}: no valid value known for {missing}; add them to BY_NAME or BY_CALLABLE in "
            f"tests/fuzz/public.py"
        )
    for name, value in given.items():  # extra keywords (e.g. load's **options)
        arguments.setdefault(name, value)
    return arguments


def call(key: str, arguments: dict[str, Any]) -> Any:
    """Calls ``key`` with ``arguments`` (keywords; a ``*args`` parameter's tuple spread)."""
    obj = public_callables()[key]
    args, kwargs = [], {}
    sig = signature(obj)
    params = sig.parameters
    positional_first = any(p.kind is p.VAR_POSITIONAL for p in params.values())
    for name, value in arguments.items():
        p = params.get(name)
        if p is not None and p.kind is p.VAR_POSITIONAL:
            args.extend(value)
        elif positional_first and p is not None and p.kind is p.POSITIONAL_OR_KEYWORD:
            args.append(value)
        else:
            kwargs[name] = value
    with warnings.catch_warnings():
        # optax's deprecated names (inject_stateful_hyperparams, ...) warn by design on every
        # call; what is fuzzed here is their argument checks.
        warnings.simplefilter("ignore", DeprecationWarning)
        return obj(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Invalid values


def invalid_values(parameter: inspect.Parameter, valid: Any) -> Iterator[tuple[str, Any]]:
    """The issue's hostile values for one parameter: strings, None, lists, bools for numbers,
    NaN/inf, negative and zero numbers, a float for an integer, a wrong-shape array. Values equal
    to the default are left out (they are valid by definition)."""
    default = parameter.default
    integer = isinstance(valid, int | np.integer) and not isinstance(valid, bool)
    candidates = [
        ("str", "abc"),
        ("None", None),
        ("list", [1.0, 2.0]),
        ("bool", True),
        ("nan", math.nan),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("negative", -1 if integer else -1.0),
        ("zero", 0 if integer else 0.0),
        ("array", np.zeros((2, 5, 7), np.float32)),
        ("object", object()),
    ]
    if integer:
        candidates.append(("fraction", 2.5))
    if parameter.kind is parameter.VAR_POSITIONAL:
        candidates = [(label, (value,)) for label, value in candidates]
    for label, value in candidates:
        if default is not parameter.empty and _same(value, default):
            continue
        yield label, value


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# What a call that succeeded must then do


def _finite(tree: Any) -> bool:
    leaves = [
        np.asarray(x)
        for x in jax.tree.leaves(tree)
        if isinstance(x, np.ndarray | jax.Array | float | int)
        and not (isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key))
    ]
    return all(np.all(np.isfinite(x)) for x in leaves if x.dtype.kind in "fc")


# Transformations whose 3 updates run as one compiled program, and schedules compiled once for
# their 4 steps (eagerly, their loops, random streams and piecewise pieces dispatch op by op).
COMPILED = frozenset(
    {
        *("ol.lbfgs", "ol.newton", "ol.add_noise", "ol.scale_by_lbfgs", "ol.scale_by_newton"),
        *("ol.cosine_onecycle_schedule", "ol.linear_onecycle_schedule"),  # piecewise, 4 steps
    }
)


def exercise(key: str, result: Any) -> str | None:
    """Uses what a call returned a little; returns why it is garbage, or ``None`` when fine.

    Transformations: ``init`` and 3 updates on a small tree (the parameters must stay finite and
    keep their shapes); schedules: values at a few steps; models: a forward pass; arrays and
    datasets: finite values.
    """
    if callable(getattr(result, "init", None)) and callable(getattr(result, "update", None)):

        def three_updates(params: Any) -> Any:
            state = result.init(params)
            for _ in range(3):
                grads = jax.grad(quadratic)(params)
                updates, state = result.update(
                    grads, state, params, value=quadratic(params), grad=grads, value_fn=quadratic
                )
                params = ol.apply_updates(params, updates)
            return params

        # One compiled program where eager updates cost seconds (a line search's loop, a PRNG
        # stream run op by op); the hyperparameters stay concrete Python values either way.
        run = jax.jit(three_updates) if key in COMPILED else three_updates
        with jax.disable_jit(key not in COMPILED):
            params = run(params_tree())
        if jax.tree.map(jnp.shape, params) != jax.tree.map(jnp.shape, params_tree()):
            return f"3 updates changed the parameters' shapes to {jax.tree.map(jnp.shape, params)}"
        if not _finite(params):
            return f"3 updates gave non-finite parameters {params}"
        return None
    if isinstance(result, nnx.Module):
        if key == "nn.MultiInputMLP":
            out = result([jnp.ones((4, 3)), jnp.ones((4, 2))])
        elif key in ("nn.Ensemble",):
            out = result(jnp.ones((4, 3)))
        else:
            try:
                out = result(jnp.asarray(X, jnp.float32))
            except TypeError:  # a model whose input width is not 3 (e.g. in_features changed)
                return None
        return None if _finite(out) else f"the model's output is not finite: {out}"
    if key.startswith("ol.") and getattr(public_callables()[key], "__module__", "").startswith(
        "optlab.schedules"
    ):
        if callable(result):
            schedule = jax.jit(result) if key in COMPILED else result
            with jax.disable_jit(key not in COMPILED):
                values = [schedule(jnp.asarray(c)) for c in (0, 1, 5, 50)]
            return None if _finite(values) else f"the schedule gives {values}"
    if isinstance(result, ol.data.Dataset):
        return None if _finite((result.x_train, result.x_test)) else "non-finite features"
    if isinstance(result, np.ndarray | jax.Array | float) or (
        isinstance(result, tuple) and all(isinstance(r, np.ndarray | jax.Array) for r in result)
    ):
        return None if _finite(result) else f"non-finite result {result}"
    return None


# ---------------------------------------------------------------------------------------------
# The property

# Arguments that carry data (arrays a computation runs on): a NaN or infinity in them may come
# out in the result (the library checks only the values of concrete hyperparameters; data is
# traced), so a non-finite result after a non-finite data value is not a hole.
DATA_ARGUMENTS = frozenset(
    {
        "x",
        "y",
        "logits",
        "labels",
        "scores",
        "predictions",
        "targets",
        "outputs",
        "params",
        "updates",
        "tree",
        "state",
        "x0",
        "model_or_tree",
        "x_train",
        "array",
        "where",
    }
)

# A deferred refusal is accepted only for an argument that cannot be checked before the
# parameters are known (a mask or labels against the parameter tree, a path against the disk).
FAILURES = (TypeError, ValueError, FileNotFoundError)


def names_argument(message: str, name: str, value: Any = None) -> bool:
    """Whether an error message names the argument ``name`` (or, for a compound name such as
    ``weight_decay_mask``, the building block's own argument ``mask`` it is passed to; for a
    ``*args`` name such as ``augmentations``, one ``augmentation``; for a path, the path)."""
    if name in message or (name.endswith("s") and name[:-1] in message):
        return True
    if isinstance(value, str) and len(value) > 1 and repr(value).strip("'") in message:
        return True
    if name == "params":
        return "parameters" in message
    last = name.rsplit("_", 1)[-1]
    return "_" in name and len(last) >= 4 and last in message


def _is_nonfinite(value: Any) -> bool:
    try:
        return not bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):
        return False


def judge(key: str, name: str, value: Any) -> str | None:
    """Calls ``key`` validly except for ``name=value``; returns what is wrong with the outcome,
    or ``None`` when it is acceptable: a ``TypeError``/``ValueError`` naming the argument, or
    a success that stays finite over a few uses (see :func:`exercise`)."""
    arguments = valid_arguments(key)
    arguments[name] = value
    shown = f"{key}({name}={describe(value)})"
    try:
        result = call(key, arguments)
    except FAILURES as err:
        if names_argument(str(err), name, value):
            return None
        return f"{shown} raised {type(err).__name__} not naming {name!r}: {err}"
    except KeyError as err:  # a lookup the library reports itself (get: no value named 'abc')
        message = str(err).strip("'\"")
        if message.startswith(f"{key.split('.', 1)[1]}:") and names_argument(message, name, value):
            return None
        return f"{shown} raised KeyError: {err}"
    except Exception as err:
        return f"{shown} raised {type(err).__name__}: {err}"
    try:
        with jax.disable_jit():  # 3 eager updates cost less than compiling each variant
            why = exercise(key, result)
    except FAILURES as err:
        if names_argument(str(err), name, value):
            return None
        return f"{shown} was accepted, then using it raised {type(err).__name__}: {err}"
    except Exception as err:
        return f"{shown} was accepted, then using it raised {type(err).__name__}: {err}"
    if why is not None and not (name in DATA_ARGUMENTS and _is_nonfinite(value)):
        return f"{shown} was accepted, but {why}"
    return None


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray | jax.Array):
        return f"<array {value.dtype}{list(value.shape)}>"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."
