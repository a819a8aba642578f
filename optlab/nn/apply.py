r"""The one pure functional form of an nnx model: ``apply(params, state, x, *, train, rng)``.

The contract the training engine (and any pure JAX code) relies on::

    apply, params, state = optlab.nn.functional(model)
    logits, new_state = apply(params, state, x, train=True, rng=key)    # training step
    logits, _ = apply(params, state, x, train=False)                    # evaluation

It accepts any ``flax.nnx.Module``: optlab's models and plain nnx modules that switch mode with
``model.train()`` / ``model.eval()`` (``nnx.Dropout``'s ``deterministic``, ``nnx.BatchNorm``'s
``use_running_average``).

* ``params`` are the model's trainable ``nnx.Param`` values as a plain nested ``dict`` of
  arrays (keys are attribute names and list indices, e.g.
  ``params["blocks"][0]["dense"]["kernel"]``): any optlab/optax transformation updates them, and
  glob masks such as ``"*kernel"`` select parameters by path.
* ``state`` holds everything else: BatchNorm's running averages (``nnx.BatchStat``) and the
  model's random streams (``nnx.RngKey``, ``nnx.RngCount``), also a plain dict.
* ``train`` is a required keyword and a Python ``bool`` (static under ``jax.jit``: train and
  eval are two compiled functions, so the mode can never be forgotten). ``train=True`` runs the
  model as ``model.train()`` would: batch statistics, the running averages updated in
  ``new_state``, random masks drawn. ``train=False`` runs it as ``model.eval()`` would: running
  averages, nothing random, deterministic; ``rng`` is ignored and ``state`` returned unchanged.
* ``rng``: with a ``jax.random`` key the masks are a function of that key alone and the
  model's own streams are left as they were (an optlab model splits the key among its layers; a
  plain module's streams are reseeded from it for the call). With ``rng=None`` they are drawn
  from the model's streams in ``state``, which ``new_state`` returns advanced, exactly as
  ``model(x)`` would draw them after ``model.train()``.
* ``apply`` is a pure function of arrays: the ``nnx`` model is rebuilt from the graph
  definition and ``(params, state)`` inside the call and nothing outside is mutated, so it can
  be ``jit``-ed, ``grad``-ed with respect to ``params``, ``vmap``-ed and ``lax.scan``-ned.
  ``apply`` itself is hashable (by the model's structure), so it can be a static argument.
* ``apply.merge(params, state)`` returns an ``nnx`` model again, in evaluation mode (call
  ``.train()`` on it to train it the nnx way).
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx

from optlab.nn.layers import calls_with_mode

Array = jax.Array


def _reseeded_call(model: nnx.Module, x: Any, rng: Array) -> Any:
    """``model(x)`` with every random stream reseeded from ``rng``, then restored."""
    streams = [s for _, s in nnx.iter_graph(model) if isinstance(s, nnx.RngStream)]
    if not streams:
        return model(x)
    backup = [(s, s.key.get_value(), s.count.get_value()) for s in streams]
    tags = sorted({s.tag for s in streams})
    seeds = {tag: jax.random.fold_in(rng, i) for i, tag in enumerate(tags)}
    nnx.reseed(model, policy="match_shape", **seeds)
    out = model(x)
    for stream, key, count in backup:
        stream.key.set_value(key)
        stream.count.set_value(count)
    return out


class Apply:
    """The pure forward function of a model with a fixed structure (see the module docstring).

    Built by :func:`functional`; holds the graph definitions of the model in training and in
    evaluation mode, and whether the model takes ``train=`` / ``rng=`` itself.
    """

    def __init__(self, train_graphdef: Any, eval_graphdef: Any, takes_mode: bool):
        self.train_graphdef = train_graphdef
        self.eval_graphdef = eval_graphdef
        self.takes_mode = takes_mode

    def __call__(
        self,
        params: Any,
        state: Any,
        x: Any,
        *,
        train: bool,
        rng: Array | None = None,
    ) -> tuple[Any, Any]:
        if not isinstance(train, bool):
            raise TypeError(
                f"apply: train must be a Python bool (it selects the computation and is "
                f"static under jit), got train={train!r}"
            )
        return self._run(params, state, x, train, rng, capture=False)

    def capture(
        self, params: Any, state: Any, x: Any, *, train: bool, rng: Array | None = None
    ) -> tuple[Any, Any, dict]:
        """``apply`` that also returns what the call recorded, through Flax's ``nnx.capture``.

        The forward pass is the same computation as :meth:`__call__`; in addition every
        ``Module.sow(nnx.Intermediate, name, value)`` inside the model and the output of every
        submodule's methods (``method_outputs``, e.g. each Dense layer's ``__call__``) are
        collected, as a nested dict by module path (``captured["blocks"][0]["act"]
        ["__call__"]`` is a tuple of that layer's outputs, one per call). Unused values cost
        nothing under ``jit``.

        Returns:
          ``(output, new_state, captured)``.
        """
        if not isinstance(train, bool):
            raise TypeError(f"apply.capture: train must be a Python bool, got train={train!r}")
        return self._run(params, state, x, train, rng, capture=True)

    def _run(self, params: Any, state: Any, x: Any, train: bool, rng: Any, capture: bool):
        model = nnx.merge(self.train_graphdef if train else self.eval_graphdef, params, state)

        def call(model: nnx.Module, x: Any) -> Any:
            if self.takes_mode:
                return model(x, train=train, rng=rng)
            if train and rng is not None:
                return _reseeded_call(model, x, rng)
            return model(x)

        if capture:
            run = nnx.capture(call, nnx.Intermediate, method_outputs=nnx.Intermediate)
            out, captured = run(model, x)
            extra = (nnx.to_pure_dict(captured),)
        else:
            out, extra = call(model, x), ()
        if not train:
            return (out, state, *extra)
        return (out, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param))), *extra)

    def merge(self, params: Any, state: Any) -> nnx.Module:
        """An ``nnx`` model holding ``params`` and ``state``, in evaluation mode."""
        return nnx.merge(self.eval_graphdef, params, state)

    def __hash__(self) -> int:
        return hash((self.train_graphdef, self.eval_graphdef, self.takes_mode))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Apply)
            and self.takes_mode == other.takes_mode
            and self.train_graphdef == other.train_graphdef
            and self.eval_graphdef == other.eval_graphdef
        )

    def __repr__(self) -> str:
        return "Apply(<pure forward function of a split nnx model>)"


def functional(model: nnx.Module) -> tuple[Apply, dict, dict]:
    """Splits any nnx model into a pure ``apply`` function, its ``params`` and its other state.

    The model itself is not modified (its mode included): the training- and evaluation-mode
    graph definitions come from a copy switched with ``.train()`` and ``.eval()``.

    Args:
      model: a ``flax.nnx.Module``: an optlab model, or a plain module called as ``model(x)``
        that switches mode with ``model.train()`` / ``model.eval()``.

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
    if not isinstance(model, nnx.Module):
        raise TypeError(f"functional: model must be a flax.nnx.Module, got {type(model).__name__}")
    copy = nnx.merge(*nnx.split(model))  # new Variables over the same arrays
    copy.train()
    train_graphdef, params, state = nnx.split(copy, nnx.Param, ...)
    copy.eval()
    eval_graphdef = nnx.graphdef(copy)
    apply = Apply(train_graphdef, eval_graphdef, calls_with_mode(model))
    return apply, nnx.to_pure_dict(params), nnx.to_pure_dict(state)
