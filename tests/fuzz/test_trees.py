"""Issue 11's tree rules, over every public callable they apply to (enumerated, as in
``test_arguments``): an empty parameter tree works for every transformation, and a glob mask
that matches no parameter is refused with the parameter paths that exist."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import optlab as ol
from tests.fuzz import public


def _transformations() -> list[str]:
    """The callables that return a transformation: by their return annotation (a factory) or
    by having ``init`` and ``update`` (a class such as ``MultiSteps``)."""
    keys = []
    for key, obj in sorted(public.public_callables().items()):
        if isinstance(obj, type):
            if callable(getattr(obj, "init", None)) and callable(getattr(obj, "update", None)):
                keys.append(key)
        elif str(public.signature(obj).return_annotation).startswith("GradientTransformation"):
            keys.append(key)
    return keys


TRANSFORMATIONS = _transformations()


def _mask_argument(key: str) -> str | None:
    names = [p.name for p in public.fuzzable(key) if p.name == "mask" or p.name.endswith("_mask")]
    return names[0] if names else None


# Masks on parameters (data.mixup's row mask is not one).
MASKED = sorted(
    key
    for key in public.public_callables()
    if key.startswith(("ol.", "nn.")) and _mask_argument(key)
)


def test_the_enumerations_find_what_they_should():
    assert {"ol.adam", "ol.sgd", "ol.trace", "ol.lbfgs", "ol.chain"} <= set(TRANSFORMATIONS)
    assert {"ol.masked", "ol.adamw", "ol.add_decayed_weights", "nn.l2_penalty"} <= set(MASKED)


@pytest.mark.parametrize("key", TRANSFORMATIONS)
def test_an_empty_parameter_tree_works(key):
    arguments = public.valid_arguments(key)
    for name in ("mask", "labels"):  # a tree for the small parameters: as functions instead
        if isinstance(arguments.get(name), dict):
            value = "a" if name == "labels" else True
            arguments[name] = lambda params, value=value: jax.tree.map(lambda _: value, params)
    tx = public.call(key, arguments)
    state = tx.init({})
    for _ in range(2):
        updates, state = tx.update(
            {}, state, {}, value=jnp.float32(0.0), grad={}, value_fn=lambda p: jnp.float32(0.0)
        )
        assert updates == {}
    assert ol.apply_updates({}, updates) == {}


# The function a message names when it is not the callable itself: the building block that
# holds the mask (adamw's weight decay is add_decayed_weights).
NAMED_BY = {
    "ol.adadelta": "add_decayed_weights",
    "ol.adamw": "add_decayed_weights",
    "ol.nadamw": "add_decayed_weights",
    "nn.elastic_net_penalty": "l1_penalty",
}


@pytest.mark.parametrize("key", MASKED)
def test_a_glob_mask_matching_nothing_lists_the_parameters(key):
    name = next(
        p.name for p in public.fuzzable(key) if p.name == "mask" or p.name.endswith("_mask")
    )
    arguments = public.valid_arguments(key)
    arguments[name] = "*nothing*"
    with pytest.raises(ValueError) as raised:
        result = public.call(key, arguments)
        params = public.params_tree()
        result.update(jax.grad(public.quadratic)(params), result.init(params), params)
    message = str(raised.value)
    assert message.startswith(f"{NAMED_BY.get(key, key.split('.')[1])}: ")  # freeze: not masked
    assert "'*nothing*' matches no parameter" in message
    assert "'b'" in message and "'kernel'" in message
