"""Atomic orbax checkpoints of a whole :class:`~optlab.train.state.TrainState`, for exact resume.

A checkpoint of epoch :math:`e` holds every array of the state (parameters, model state,
optimizer state with its schedule count and controller state, step, RNG key, update
multiplier), a JSON record (the epoch, the seed that fixes the data order, the history so far,
the callbacks' state) and optional extra arrays (e.g. early stopping's best weights). Orbax
writes a step into a temporary directory and renames it when complete; on top of that, only
directories holding orbax's metadata and both items are ever listed or loaded, so a partially
written checkpoint is never read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from optlab.train.state import TrainState

_ITEMS = ("state", "meta")
_METADATA_FILE = "_CHECKPOINT_METADATA"


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten_arrays(tree: Any) -> dict[str, Any]:
    """The leaves of ``tree`` as ``{"00000": array, ...}`` (PRNG keys as their raw data)."""
    leaves = jax.tree.leaves(tree)
    return {f"{i:05d}": (jax.random.key_data(x) if _is_key(x) else x) for i, x in enumerate(leaves)}


def unflatten_arrays(fn: str, flat: Mapping[str, Any], like: Any) -> Any:
    """Rebuilds a tree shaped like ``like`` from :func:`flatten_arrays` output, checking shapes."""
    leaves, treedef = jax.tree.flatten(like)
    if len(flat) != len(leaves):
        raise ValueError(
            f"{fn}: the checkpoint holds {len(flat)} arrays but this model and optimizer have "
            f"{len(leaves)}; was it written for another model or optimizer?"
        )
    out = []
    for i, ref in enumerate(leaves):
        saved = flat[f"{i:05d}"]
        if _is_key(ref):
            data = jnp.asarray(saved, jax.random.key_data(ref).dtype)
            out.append(jax.random.wrap_key_data(data, impl=jax.random.key_impl(ref)))
            continue
        ref_shape, ref_dtype = np.shape(ref), jnp.asarray(ref).dtype
        if np.shape(saved) != ref_shape or np.asarray(saved).dtype != ref_dtype:
            raise ValueError(
                f"{fn}: array {i} has shape {np.shape(saved)} and dtype {np.asarray(saved).dtype} "
                f"in the checkpoint but {ref_shape} and {ref_dtype} here; was it written for "
                "another model or optimizer?"
            )
        out.append(jnp.asarray(saved))
    return treedef.unflatten(out)


def _is_complete(path: Path) -> bool:
    return (
        path.is_dir()
        and path.name.isdigit()
        and (path / _METADATA_FILE).is_file()
        and all((path / item).is_dir() for item in _ITEMS)
    )


def complete_epochs(directory: str | os.PathLike) -> list[int]:
    """The epochs with a complete checkpoint in ``directory``, ascending (temporary or partial
    directories are ignored)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if _is_complete(p))


def latest_epoch(directory: str | os.PathLike) -> int | None:
    """The last epoch with a complete checkpoint in ``directory``, or None."""
    epochs = complete_epochs(directory)
    return epochs[-1] if epochs else None


class Checkpointer:
    """Saves and restores training states in one directory (an orbax ``CheckpointManager``).

    Args:
      directory: where checkpoints go, one sub-directory per epoch (created if needed).
      max_to_keep: keep only the last ``k`` checkpoints (None keeps all).
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int | None = None):
        if max_to_keep is not None and (isinstance(max_to_keep, bool) or max_to_keep < 1):
            raise ValueError(
                f"Checkpointer: max_to_keep must be None or an integer >= 1, got {max_to_keep!r}"
            )
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(
        self,
        epoch: int,
        state: TrainState,
        meta: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Writes the checkpoint of ``epoch`` (replacing one of the same epoch).

        Args:
          epoch: the checkpoint's number (fit uses the number of completed epochs).
          state: the training state.
          meta: a JSON-able dict.
          extra: named array trees saved alongside (trees without leaves are skipped).
        """
        if epoch in self._manager.all_steps():
            self._manager.delete(epoch)
        arrays = {"state": flatten_arrays(state)}
        extra = {k: flatten_arrays(v) for k, v in (extra or {}).items() if jax.tree.leaves(v)}
        if extra:
            arrays["extra"] = extra
        arrays = jax.device_get(arrays)
        self._manager.save(
            epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(arrays),
                meta=ocp.args.JsonSave(dict(meta or {})),
            ),
            force=True,
        )
        self._manager.wait_until_finished()
        return self.directory / str(epoch)

    def restore(
        self, state: TrainState, epoch: int | None = None
    ) -> tuple[TrainState, dict[str, Any], dict[str, Any]]:
        """Loads a checkpoint into a state shaped like ``state``.

        Args:
          state: a state built the same way (same model and transformation); its arrays are
            replaced, its static parts kept.
          epoch: which checkpoint; the latest complete one by default.

        Returns:
          ``(state, meta, extra)``: ``extra`` maps each name given to :meth:`save` to its flat
          dict of arrays (rebuild a tree with :func:`unflatten_arrays`).

        Raises:
          FileNotFoundError: no complete checkpoint (or not that epoch) in the directory.
        """
        available = complete_epochs(self.directory)
        if epoch is None:
            if not available:
                raise FileNotFoundError(
                    f"no complete checkpoint in {self.directory} (is it a checkpoint directory "
                    "written by ModelCheckpoint or optlab train?)"
                )
            epoch = available[-1]
        elif epoch not in available:
            raise FileNotFoundError(
                f"no complete checkpoint of epoch {epoch} in {self.directory}; complete: "
                f"{available}"
            )
        restored = self._manager.restore(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()),
        )
        arrays = restored["state"]
        new_state = unflatten_arrays("restore_checkpoint", arrays["state"], state)
        return new_state, dict(restored["meta"]), dict(arrays.get("extra") or {})

    def close(self) -> None:
        """Releases the manager's resources."""
        self._manager.close()


def save_checkpoint(
    directory: str | os.PathLike, epoch: int, state: TrainState, meta: dict[str, Any] | None = None
) -> Path:
    """Writes ``state`` (and a JSON ``meta``) as the checkpoint of ``epoch`` in ``directory``.

    Returns:
      The checkpoint's directory.
    """
    ckpt = Checkpointer(directory)
    try:
        return ckpt.save(epoch, state, meta)
    finally:
        ckpt.close()


def restore_checkpoint(
    directory: str | os.PathLike, state: TrainState, epoch: int | None = None
) -> tuple[TrainState, dict[str, Any]]:
    """Loads the latest complete (or the given) checkpoint into a state shaped like ``state``.

    Returns:
      ``(state, meta)``.
    """
    ckpt = Checkpointer(directory)
    try:
        new_state, meta, _ = ckpt.restore(state, epoch)
    finally:
        ckpt.close()
    return new_state, meta
