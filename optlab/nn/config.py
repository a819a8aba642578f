"""A model's architecture as JSON: :func:`model_config` and :func:`from_config`.

``model_config(model)`` describes an optlab model (:class:`~optlab.nn.MLP`,
:class:`~optlab.nn.MultiInputMLP`, :class:`~optlab.nn.Ensemble`) by its class and constructor
arguments, activations, initializers and norms by name; ``from_config(config)`` builds the same
architecture with fresh parameters, into which saved arrays can be restored (``nnx.update``).
Nothing about an optimizer is needed, so a trained model can be loaded on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flax import nnx

from optlab.nn.mlp import MLP
from optlab.nn.spec import spec_from_json
from optlab.nn.topologies import Ensemble, MultiInputMLP

_SPECS = ("activation", "kernel_init", "bias_init", "norm")
_SEQUENCES = ("hidden", "in_features", "dropout", "residual")


def model_config(model: nnx.Module) -> dict[str, Any]:
    """The JSON-serializable description of an optlab model's architecture.

    Args:
      model: an :class:`~optlab.nn.MLP`, :class:`~optlab.nn.MultiInputMLP` or
        :class:`~optlab.nn.Ensemble` of them.

    Returns:
      A dict of JSON values: ``"class"`` and the constructor's arguments (an ensemble:
      ``"num_members"`` and its ``"member"``'s configuration).

    Raises:
      TypeError: ``model`` is not an optlab model.
      ValueError: it was built with something a configuration cannot name (a callable
        activation, initializer or norm).

    Examples:
      >>> import json, optlab
      >>> model = optlab.nn.MLP(4, (8,), 3, activation="tanh", rngs=0)
      >>> config = optlab.nn.model_config(model)
      >>> print(config["class"], config["hidden"], config["activation"])
      MLP [8] tanh
      >>> rebuilt = optlab.nn.from_config(json.loads(json.dumps(config)))
      >>> print(optlab.nn.count_params(rebuilt) == optlab.nn.count_params(model))
      True
    """
    if not isinstance(model, MLP | MultiInputMLP | Ensemble):
        raise TypeError(
            f"model_config: model must be an optlab.nn model (MLP, MultiInputMLP or "
            f"Ensemble), got {type(model).__name__}"
        )
    return model.get_config()


def _arguments(config: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = {k: v for k, v in config.items() if k != "class"}
    for key in _SPECS:
        if key in kwargs:
            kwargs[key] = spec_from_json(kwargs[key])
    for key in _SEQUENCES:
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    if isinstance(kwargs.get("tower_hidden"), list):
        kwargs["tower_hidden"] = tuple(tuple(t) for t in kwargs["tower_hidden"])
    return kwargs


def from_config(config: Mapping[str, Any], *, rngs: nnx.Rngs | int = 0) -> nnx.Module:
    """Builds the model a :func:`model_config` describes, with fresh parameters.

    Args:
      config: a dict from :func:`model_config` (also after a JSON round trip).
      rngs: ``flax.nnx.Rngs`` or an int seed for the fresh parameters.

    Returns:
      The model (in training mode, as any new model).

    Examples:
      >>> import optlab
      >>> config = {"class": "MLP", "in_features": 4, "hidden": [8], "out_features": 3}
      >>> print(optlab.nn.count_params(optlab.nn.from_config(config)))
      67
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"from_config: config must be a dict from model_config, got {type(config).__name__}"
        )
    cls = config.get("class")
    if cls == "Ensemble":
        unknown = sorted(set(config) - {"class", "num_members", "member"})
        if unknown or "member" not in config or "num_members" not in config:
            raise ValueError(
                f"from_config: an Ensemble configuration has the keys class, num_members and "
                f"member, got {sorted(config)}"
            )
        member = config["member"]
        return Ensemble(lambda r: from_config(member, rngs=r), config["num_members"], rngs=rngs)
    classes = {"MLP": MLP, "MultiInputMLP": MultiInputMLP}
    if cls not in classes:
        raise ValueError(
            f"from_config: config['class'] must be one of ['Ensemble', 'MLP', "
            f"'MultiInputMLP'], got {cls!r}"
        )
    try:
        return classes[cls](**_arguments(config), rngs=rngs)
    except TypeError as err:
        if "unexpected keyword argument" in str(err) or "missing" in str(err):
            raise ValueError(f"from_config: the {cls} configuration does not fit: {err}") from err
        raise
