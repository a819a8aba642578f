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

Any nnx model is accepted (an optlab model, or a plain nnx module that switches mode with
``model.train()`` / ``model.eval()``): :func:`optlab.nn.functional` splits it, the one
functional form of the library.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from optlab.core.base import GradientTransformation
from optlab.core.validation import check_int_at_least
from optlab.nn.apply import functional


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
        apply, params, model_state = functional(model)
        model.eval()  # as before: the model the run writes back into is used for inference
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
