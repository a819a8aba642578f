r"""The pure functional form of a model: ``apply(params, state, x, *, train, rng)``.

The contract the training engine relies on::

    apply, params, state = optlab.nn.functional(model)
    logits, new_state = apply(params, state, x, train=True, rng=key)    # training step
    logits, _ = apply(params, state, x, train=False)                    # evaluation

* ``params`` are the model's trainable ``nnx.Param`` values as a plain nested ``dict`` of
  arrays (keys are attribute names and list indices, e.g.
  ``params["blocks"][0]["dense"]["kernel"]``): any optlab/optax transformation updates them, and
  glob masks such as ``"*kernel"`` select parameters by path.
* ``state`` holds everything else: BatchNorm's running averages (``nnx.BatchStat``), also a
  plain dict (``{}`` for a model without any).
* ``train`` is a required keyword and a Python ``bool`` (static under ``jax.jit``: train and
  eval are two compiled functions, so the mode can never be forgotten). ``train=True`` uses batch
  statistics, returns the updated running averages in ``new_state``, and draws dropout,
  DropConnect, RReLU, noise and stochastic-depth masks from ``rng``. ``train=False`` uses the
  running averages, draws nothing, is deterministic, ignores ``rng`` and returns ``state``
  unchanged.
* ``apply`` is a pure function of arrays: the ``nnx`` model is rebuilt from ``(graphdef,
  params, state)`` inside the call and nothing outside is mutated, so it can be ``jit``-ed,
  ``grad``-ed with respect to ``params``, ``vmap``-ed and ``lax.scan``-ned. ``apply`` itself is
  hashable (by the model's structure), so it can be a static argument.
* ``apply.merge(params, state)`` returns an ``nnx`` model again (e.g. for
  :func:`optlab.nn.fold_batchnorm` or checkpointing).
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
from flax import nnx

Array = jax.Array


class Apply:
    """The pure forward function of a model with a fixed structure (see the module docstring)."""

    def __init__(self, graphdef: Any):
        self.graphdef = graphdef

    def __call__(
        self,
        params: Any,
        state: Any,
        x: Any,
        *,
        train: bool,
        rng: Array | None = None,
    ) -> tuple[Array, Any]:
        if not isinstance(train, bool):
            raise ValueError(
                f"apply: train must be a Python bool (it selects the computation and is "
                f"static under jit), got train={train!r}"
            )
        model = nnx.merge(self.graphdef, params, state)
        out = model(x, train=train, rng=rng)
        if not train:
            return out, state
        return out, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))

    def merge(self, params: Any, state: Any) -> nnx.Module:
        """An ``nnx`` model holding ``params`` and ``state``."""
        return nnx.merge(self.graphdef, params, state)

    def __hash__(self) -> int:
        return hash(self.graphdef)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Apply) and self.graphdef == other.graphdef

    def __repr__(self) -> str:
        return "Apply(<pure forward function of a split nnx model>)"


def functional(model: nnx.Module) -> tuple[Apply, dict, dict]:
    """Splits a model into a pure ``apply`` function, its ``params`` and its other ``state``.

    Args:
      model: an optlab model (or any ``nnx.Module`` whose ``__call__`` takes ``x`` and the
        keywords ``train`` and ``rng``).

    Returns:
      ``(apply, params, state)`` with ``apply(params, state, x, *, train, rng=None) ->
      (output, new_state)``; ``params`` and ``state`` are nested dicts of arrays.

    Examples:
      >>> import jax, jax.numpy as jnp, optlab
      >>> model = optlab.nn.MLP(4, (8,), 3, norm="batch", rngs=0)
      >>> apply, params, state = optlab.nn.functional(model)
      >>> sorted(params["blocks"][0])
      ['dense', 'norm']
      >>> y, new_state = apply(params, state, jnp.ones((2, 4)), train=True, rng=jax.random.key(1))
      >>> print(y.shape, sorted(new_state["blocks"][0]["norm"]))
      (2, 3) ['mean', 'var']
    """
    try:
        sig = inspect.signature(model.__call__)
        accepts = {"train", "rng"} <= set(sig.parameters) or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
        )
    except (TypeError, ValueError):  # builtins without a signature
        accepts = True
    if not accepts:
        raise ValueError(
            f"functional: {type(model).__name__}.__call__ must take the keywords train and rng "
            f"(the optlab model convention, model(x, *, train, rng)); wrap the module in one "
            f"that does"
        )
    graphdef, params, state = nnx.split(model, nnx.Param, ...)
    return Apply(graphdef), nnx.to_pure_dict(params), nnx.to_pure_dict(state)
