"""Parameter paths as strings, and masks/labels given as pytrees, functions or glob patterns.

A leaf's path is its keys joined by ``/``: ``{"layer": {"bias": b}}`` gives ``"layer/bias"``,
a list index gives its number, and the trailing ``.value`` of a ``flax.nnx`` Variable is
dropped, so patterns read the same on plain dicts and on ``nnx.State``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from optlab.core.base import PyTree
from optlab.core.validation import describe_structure_difference


def key_str(key: Any) -> str:
    """One path component as text."""
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def path_str(path: Sequence[Any]) -> str:
    """``"a/b/0/c"`` for a ``jax.tree_util`` key path (an nnx Variable's ``value`` dropped)."""
    parts = [key_str(k) for k in path]
    if parts and parts[-1] == "value" and isinstance(path[-1], jax.tree_util.GetAttrKey):
        parts = parts[:-1]
    return "/".join(parts)


def leaf_paths(tree: PyTree) -> list[str]:
    """The path string of every leaf, in flattening order."""
    return [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def match_patterns(path: str, patterns: Mapping[str, Any]) -> Any:
    """The value of the first glob pattern (in insertion order) that matches ``path``."""
    for pattern, value in patterns.items():
        if fnmatch.fnmatchcase(path, pattern):
            return value
    raise ValueError(
        f"no pattern matches the parameter path {path!r}; patterns: {list(patterns)}. "
        f"Add a catch-all pattern such as '*' last."
    )


LabelSpec = PyTree | Callable[[PyTree], PyTree] | Mapping[str, Any]


def _is_pattern_dict(spec: Any) -> bool:
    return (
        isinstance(spec, Mapping)
        and spec
        and all(isinstance(k, str) and any(c in k for c in "*?[") for k in spec)
    )


def resolve_labels(fn: str, labels: LabelSpec, params: PyTree) -> PyTree:
    """Turns a label spec into a tree of labels with the structure of ``params``.

    ``labels`` may be a pytree with the structure of ``params`` (or a prefix of it, a label then
    covering a whole subtree), a function ``params -> pytree``, or a mapping from glob patterns
    on parameter paths to labels (``{"*bias": "no_decay", "*": "decay"}``; first match wins).
    """
    if callable(labels) and not isinstance(labels, Mapping):
        labels = labels(params)
    elif _is_pattern_dict(labels):
        patterns = labels
        return jax.tree_util.tree_map_with_path(
            lambda p, _: match_patterns(path_str(p), patterns), params
        )
    return broadcast_prefix(fn, labels, params, what="labels")


def broadcast_prefix(fn: str, prefix: PyTree, tree: PyTree, what: str = "mask") -> PyTree:
    """Expands a prefix tree (e.g. a mask) to the full structure of ``tree``."""
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), prefix, tree)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{fn}: the {what} tree does not match the parameters "
            f"({describe_structure_difference(tree, prefix)}); give it the structure of the "
            f"parameters, a function of them, or glob patterns on parameter paths"
        ) from err


def resolve_mask(fn: str, mask: Any, params: PyTree) -> PyTree:
    """Turns a mask spec into a tree of Python/JAX booleans with the structure of ``params``.

    ``mask`` may be a pytree of booleans (or a prefix of one), a function ``params -> pytree``,
    or a sequence of glob patterns on parameter paths (``True`` where one matches).
    """
    if isinstance(mask, str):
        mask = [mask]
    if isinstance(mask, Sequence) and mask and all(isinstance(m, str) for m in mask):
        patterns = list(mask)
        return jax.tree_util.tree_map_with_path(
            lambda p, _: any(fnmatch.fnmatchcase(path_str(p), q) for q in patterns), params
        )
    if callable(mask):
        mask = mask(params)
    return broadcast_prefix(fn, mask, params, what="mask")
