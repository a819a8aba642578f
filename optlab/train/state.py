"""The training state: one pytree holding everything a train step reads and writes.

A Flax nnx model is split once into a pure forward function and arrays:

.. math::

    \\text{model} \\;\\to\\; (f, \\theta, \\sigma), \\qquad
    s = (\\theta, \\sigma, \\text{opt\\_state}, t, k, c, z)

with :math:`\\theta` the trainable parameters (``nnx.Param``), :math:`\\sigma` the rest of the
model's state (BatchNorm statistics, dropout RNG streams), the optimizer state, the step
:math:`t`, an RNG key :math:`k`, an update multiplier :math:`c` (1 unless a callback such as
:class:`~optlab.train.callbacks.ReduceLROnPlateau` lowers it) and the number :math:`z` of
steps skipped in a row for a non-finite loss or gradient. The forward function ``apply``
(both modes) and the transformation are static (pytree metadata), so a
compiled step specialises on them and the arrays can be donated.

Two model conventions are accepted. optlab's models (and any module whose ``__call__`` takes
``x, *, train, rng``) go through :func:`optlab.nn.functional`; a plain nnx module that switches
mode with ``model.train()`` / ``model.eval()`` (Dropout/BatchNorm flags, RNG streams stored in
the module) is split once per mode.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from optlab.core.base import GradientTransformation
from optlab.core.validation import check_int_at_least


class ModeApply:
    """The pure forward function of a plain nnx module whose mode is a flag.

    ``apply(params, state, x, *, train, rng=None) -> (output, new_state)``, the contract of
    :func:`optlab.nn.functional`, for modules called as ``model(x)`` that switch mode with
    ``model.train()`` / ``model.eval()``. ``rng`` is ignored (such modules keep their RNG
    streams, e.g. dropout's, in ``state``). Hashable by the two graph definitions.
    """

    def __init__(self, train_graphdef: Any, eval_graphdef: Any):
        self.train_graphdef = train_graphdef
        self.eval_graphdef = eval_graphdef

    def __call__(
        self, params: Any, state: Any, x: Any, *, train: bool, rng: jax.Array | None = None
    ) -> tuple[jax.Array, Any]:
        del rng
        model = nnx.merge(self.train_graphdef if train else self.eval_graphdef, params, state)
        out = model(x)
        if not train:
            return out, state
        return out, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))

    def merge(self, params: Any, state: Any) -> nnx.Module:
        """An nnx model (evaluation mode) holding ``params`` and ``state``."""
        return nnx.merge(self.eval_graphdef, params, state)

    def __hash__(self) -> int:
        return hash((self.train_graphdef, self.eval_graphdef))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModeApply)
            and self.train_graphdef == other.train_graphdef
            and self.eval_graphdef == other.eval_graphdef
        )


def _takes_train_and_rng(model: nnx.Module) -> bool:
    try:
        params = inspect.signature(model.__call__).parameters
    except (TypeError, ValueError):
        return False
    return {"train", "rng"} <= set(params)


def functional_form(model: nnx.Module) -> tuple[Any, dict, dict]:
    """``(apply, params, model_state)`` for either model convention (see the module docs).

    ``params`` and ``model_state`` are nested dicts of arrays. A plain nnx module is left in
    evaluation mode.
    """
    if _takes_train_and_rng(model):
        from optlab.nn.apply import functional

        return functional(model)
    model.train()
    train_graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
    model.eval()
    apply = ModeApply(train_graphdef, nnx.graphdef(model))
    return apply, nnx.to_pure_dict(params), nnx.to_pure_dict(model_state)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Parameters, model state, optimizer state, step, RNG key and update multiplier.

    A pytree (the arrays are its leaves; the forward function and the transformation are
    static metadata), so it passes through ``jax.jit``, ``lax.scan`` and ``vmap`` and is saved
    whole by :mod:`optlab.train.checkpoint`. Build it with :meth:`TrainState.create`.

    Attributes:
      params: the trainable parameters, a nested dict of arrays (``nnx.Param`` values).
      model_state: every other model variable (BatchNorm statistics, RNG streams), a dict.
      opt_state: the transformation's state.
      step: the number of train steps taken (int32 scalar).
      rng: a typed PRNG key; step :math:`t` draws with ``fold_in(rng, t)``.
      lr_scale: a float32 multiplier applied to every update (1.0 unless a callback lowers it).
      nonfinite_streak: int32, the number of steps skipped in a row by the non-finite guard.
      apply: ``apply(params, model_state, x, *, train, rng) -> (output, model_state)`` (static).
      tx: the gradient transformation (static).
    """

    params: Any
    model_state: Any
    opt_state: Any
    step: jax.Array
    rng: jax.Array
    lr_scale: jax.Array
    nonfinite_streak: jax.Array
    apply: Any = dataclasses.field(metadata={"static": True})
    tx: Any = dataclasses.field(metadata={"static": True})

    @classmethod
    def create(cls, model: nnx.Module, tx: GradientTransformation, *, seed: int = 0) -> TrainState:
        """Splits an nnx model and initializes the transformation's state.

        Args:
          model: a Flax nnx module (an optlab model, or a plain module; see the module docs).
          tx: an optlab or optax gradient transformation.
          seed: seeds the state's RNG key (dropout masks of optlab models).

        Returns:
          A state at step 0.

        Examples:
          >>> import optlab as ol
          >>> from flax import nnx
          >>> model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
          >>> state = ol.TrainState.create(model, ol.scale_by_learning_rate(0.1))
          >>> print(int(state.step), sorted(state.params))
          0 ['bias', 'kernel']
        """
        if not isinstance(model, nnx.Module):
            raise TypeError(
                f"TrainState.create: model must be a flax.nnx.Module, got {type(model).__name__}"
            )
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise TypeError(
                "TrainState.create: tx must be a gradient transformation with init and update, "
                f"got {type(tx).__name__}"
            )
        check_int_at_least("TrainState.create", "seed", seed, 0)
        apply, params, model_state = functional_form(model)
        return cls(
            params=params,
            model_state=model_state,
            opt_state=tx.init(params),
            step=jnp.zeros((), jnp.int32),
            rng=jax.random.key(seed),
            lr_scale=jnp.ones((), jnp.float32),
            nonfinite_streak=jnp.zeros((), jnp.int32),
            apply=apply,
            tx=tx,
        )

    def replace(self, **changes: Any) -> TrainState:
        """A copy with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def model(self) -> nnx.Module:
        """A fresh nnx model holding this state's arrays."""
        return self.apply.merge(self.params, self.model_state)

    def to_model(self, model: nnx.Module) -> nnx.Module:
        """Writes this state's parameters and model state into ``model`` in place; returns it."""
        nnx.update(model, nnx.state(self.model()))
        return model
