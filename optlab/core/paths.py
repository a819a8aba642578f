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
import numpy as np

from optlab.core.base import PyTree
from optlab.core.validation import MASK_RULE, check_mask_spec, describe_structure_difference


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


def _list_paths(paths: list[str]) -> str:
    shown = ", ".join(repr(p) for p in paths[:20])
    return shown + (f" (+{len(paths) - 20} more)" if len(paths) > 20 else "")


def check_patterns_used(fn: str, what: str, patterns: Sequence[str], paths: list[str]) -> None:
    """Raises a ``ValueError`` when a glob pattern matches no parameter path, listing the paths
    that exist (a typo in a mask would otherwise silently apply to nothing: ``"*kernel"`` on a
    model whose weights are called ``w``). A tree without leaves is not an error.
    """
    unused = [q for q in patterns if not any(fnmatch.fnmatchcase(p, q) for p in paths)]
    if unused and paths:
        raise ValueError(
            f"{fn}: the {what} pattern{'s' if len(unused) > 1 else ''} "
            f"{', '.join(repr(u) for u in unused)} match{'' if len(unused) > 1 else 'es'} no "
            f"parameter; the parameter paths are: {_list_paths(paths)}"
        )


LabelSpec = PyTree | Callable[[PyTree], PyTree] | Mapping[str, Any]


def _is_pattern_dict(spec: Any) -> bool:
    return (
        isinstance(spec, Mapping)
        and spec
        and all(isinstance(k, str) and any(c in k for c in "*?[") for k in spec)
    )


def is_mask_function(spec: Any) -> bool:
    """Whether a mask or label spec is a function of the parameters (optax's rule): callable,
    and not a callable pytree (an equinox-style module) whose leaves are values."""
    if not callable(spec) or isinstance(spec, Mapping):
        return False
    leaves = jax.tree.leaves(spec)
    return bool(leaves) and all(callable(x) for x in leaves)


def resolve_labels(fn: str, labels: LabelSpec, params: PyTree, *, prefix: bool = False) -> PyTree:
    """Turns a label spec into a tree of labels with the structure of ``params``.

    ``labels`` may be a pytree with the structure of ``params`` (or a prefix of it, a label then
    covering a whole subtree), a function ``params -> pytree``, or a mapping from glob patterns
    on parameter paths to labels (``{"*bias": "no_decay", "*": "decay"}``; first match wins).
    A pattern that labels no parameter raises a ``ValueError`` listing the parameter paths.
    With ``prefix=True`` a prefix tree is returned as it is (after checking it is one).
    """
    if is_mask_function(labels):
        labels = labels(params)
    elif _is_pattern_dict(labels):
        patterns = labels
        check_patterns_used(fn, "label", list(patterns), leaf_paths(params))
        return jax.tree_util.tree_map_with_path(
            lambda p, _: match_patterns(path_str(p), patterns), params
        )
    full = broadcast_prefix(fn, labels, params, what="labels")
    return labels if prefix else full


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


def _is_patterns(mask: Any) -> bool:
    return isinstance(mask, Sequence) and bool(mask) and all(isinstance(m, str) for m in mask)


def resolve_mask(fn: str, mask: Any, params: PyTree, *, static: bool = False) -> PyTree:
    """Turns a mask spec into a tree of booleans with the structure of ``params``.

    ``mask`` may be a pytree of booleans (or a prefix of one), a function ``params -> pytree``,
    or a sequence of glob patterns on parameter paths (``True`` where one matches). A pattern
    that matches no parameter raises a ``ValueError`` listing the parameter paths; a mask that
    is an array (rather than a tree of booleans) raises a ``TypeError`` saying what a mask may
    be.

    With ``static=True`` (``masked``, ``partition``, ``freeze``, which decide at trace time
    which leaves an inner transformation sees) every flag must be a Python boolean, and a
    prefix tree is returned as given (after checking it is a prefix), so masked subtrees stay
    whole, as in optax. Otherwise flags may be jax booleans, used with ``jnp.where``.
    """
    check_mask_spec(fn, "mask", mask, none=False)
    if isinstance(mask, str):
        mask = [mask]
    if _is_patterns(mask):
        patterns = list(mask)
        check_patterns_used(fn, "mask", patterns, leaf_paths(params))
        return jax.tree_util.tree_map_with_path(
            lambda p, _: any(fnmatch.fnmatchcase(path_str(p), q) for q in patterns), params
        )
    if is_mask_function(mask):
        mask = mask(params)
    full = broadcast_prefix(fn, mask, params, what="mask")
    if not static:
        return full
    for path, flag in jax.tree_util.tree_flatten_with_path(mask)[0]:
        if not isinstance(flag, bool | np.bool_):
            where = f" at {jax.tree_util.keystr(path)}" if path else ""
            raise TypeError(
                f"{fn}: mask must be {MASK_RULE}; got {type(flag).__name__} {flag!r:.60}{where} "
                f"(an array cannot be a mask: the leaves a transformation sees are chosen when "
                f"it is traced)"
            )
    return mask
