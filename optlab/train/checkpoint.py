"""Atomic, verified orbax checkpoints of a whole run, for exact resume.

A checkpoint of epoch :math:`e` (the folder ``<directory>/<e>``, :math:`e` the number of
completed epochs) holds every array of the :class:`~optlab.train.state.TrainState`
(parameters, model state, optimizer state with its schedule count and controller state, step,
RNG key, update multiplier), a JSON record (for :func:`optlab.fit`: the
:class:`~optlab.train.run.RunMeta`), optional extra arrays (e.g. early stopping's best
weights) and an integrity record, ``integrity.json``: the SHA-256 and size of every file orbax
wrote, a sharding-invariant checksum of every array (:func:`sharded_digests`) and the SHA-256
of the JSON record.

Sharded arrays stay sharded: orbax's sharded save writes each array from the devices that hold
it (in a job of several processes, every process writes its own shards; the folder must be on
a file system every process sees), and restoring reads each array straight into the sharding
of the state it restores into, whatever the device count it was written on (4 devices, then
2, or 2 processes, then 1). No array is gathered on one host for saving, checking or
restoring. The array checksums are computed on the devices, as a sum over elements of a hash
of (global index, bits) modulo :math:`2^{32}`: a sum does not depend on how the elements are
split, so the checksum of a restored array on another mesh equals the one written.

Writing: orbax writes the checkpoint into a staging folder (itself through a temporary folder
renamed when complete), the integrity record is added, and the staging folder is renamed to
``<e>``: a numbered folder is complete or absent. Restoring: each checkpoint, newest first, is
checked file by file against its record before orbax reads anything, then array by array; a
damaged one (flipped bits, a truncated, missing or garbled file) is skipped with one
:class:`DamagedCheckpointWarning` naming it and the checkpoint used instead. Only when no
checkpoint is intact does restoring fail, with a one-line ``ValueError``. Old checkpoints are
retired by renaming them out of the numbered namespace before deleting them, so an interrupted
deletion never leaves a half-deleted numbered folder; leftovers of interrupted writes and
deletions (and half-deleted numbered folders older than the newest checkpoint) are removed by
the next save.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from optlab.core.validation import as_path, check_int_range
from optlab.train.run import Run, RunMeta
from optlab.train.state import TrainState

_ITEMS = ("state", "meta")
_INTEGRITY = "integrity.json"
_INTEGRITY_FORMAT = "optlab.integrity/1"
_RETIRED = ".optlab-deleting-"
_STAGING = ".optlab-staging-"


class DamagedCheckpointWarning(UserWarning):
    """A checkpoint failed its integrity check and was skipped (the message names it)."""


class IntegrityError(ValueError):
    """A file or array does not match its integrity record (the message says which)."""


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def flatten_arrays(tree: Any) -> dict[str, Any]:
    """The leaves of ``tree`` as ``{"00000": array, ...}`` (PRNG keys as their raw data)."""
    leaves = jax.tree.leaves(tree)
    return {f"{i:05d}": (jax.random.key_data(x) if _is_key(x) else x) for i, x in enumerate(leaves)}


def _dtype(x: Any) -> np.dtype:
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _like(saved: Any, ref: Any) -> Any:
    """``saved`` with the placement of ``ref``: kept when it already has ``ref``'s sharding,
    else each device (of every process) takes its slice of the host value."""
    if not isinstance(ref, jax.Array):
        return jnp.asarray(saved)
    if isinstance(saved, jax.Array) and saved.sharding == ref.sharding:
        return saved
    host = np.asarray(saved)
    return jax.make_array_from_callback(host.shape, ref.sharding, lambda index: host[index])


def check_like(fn: str, saved: Mapping[str, tuple[tuple[int, ...], Any]], like: Any) -> None:
    """Raises ``ValueError`` unless the saved ``{name: (shape, dtype)}`` of
    :func:`flatten_arrays` output fit the leaves of ``like`` (PRNG keys as their key data)."""
    leaves = jax.tree.leaves(flatten_arrays(like))
    if len(saved) != len(leaves):
        raise ValueError(
            f"{fn}: the checkpoint holds {len(saved)} arrays but this model and optimizer have "
            f"{len(leaves)}; was it written for another model or optimizer?"
        )
    for i, ref in enumerate(leaves):
        shape, dtype = saved[f"{i:05d}"]
        ref_shape, ref_dtype = tuple(np.shape(ref)), _dtype(ref)
        if tuple(shape) != ref_shape or np.dtype(dtype) != ref_dtype:
            raise ValueError(
                f"{fn}: array {i} has shape {tuple(shape)} and dtype {np.dtype(dtype)} in the "
                f"checkpoint but {ref_shape} and {ref_dtype} here; was it written for another "
                "model or optimizer?"
            )


def unflatten_arrays(fn: str, flat: Mapping[str, Any], like: Any) -> Any:
    """Rebuilds a tree shaped like ``like`` from :func:`flatten_arrays` output, checking shapes;
    each array is placed like ``like``'s (on its mesh, sharded the same way)."""
    check_like(fn, {k: (np.shape(v), _dtype(v)) for k, v in flat.items()}, like)
    leaves, treedef = jax.tree.flatten(like)
    out = []
    for i, ref in enumerate(leaves):
        saved = flat[f"{i:05d}"]
        if _is_key(ref):
            data = _like(saved, jax.random.key_data(ref))
            out.append(jax.random.wrap_key_data(data, impl=jax.random.key_impl(ref)))
        else:
            out.append(_like(saved, ref))
    return treedef.unflatten(out)


_U32 = jnp.uint32


def _mix(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finalizer (a bijection of uint32 that spreads every bit)."""
    h = h ^ (h >> 16)
    h = h * _U32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * _U32(0xC2B2AE35)
    return h ^ (h >> 16)


def _checksum(x: jax.Array) -> jax.Array:
    """Two uint32 sums over the elements of ``x`` of hashes of (flat index, bits)."""
    if jnp.iscomplexobj(x):
        x = jnp.stack([x.real, x.imag], -1)
    if x.dtype == jnp.bool_:
        words = x.astype(_U32)
    elif x.dtype.itemsize < 4:
        narrow = {1: jnp.uint8, 2: jnp.uint16}[x.dtype.itemsize]
        words = jax.lax.bitcast_convert_type(x, narrow).astype(_U32)
    else:  # 4 bytes; 8-byte types gain a last axis of 2 words
        words = jax.lax.bitcast_convert_type(x, _U32)
    index = jnp.zeros(words.shape, _U32)
    stride = 1
    for axis in reversed(range(words.ndim)):
        iota = jax.lax.broadcasted_iota(_U32, words.shape, axis)
        index = index + iota * _U32(stride % 2**32)
        stride *= words.shape[axis]
    weight = _mix(index) | _U32(1)  # odd: a change of one element always changes the sum
    linear = jnp.sum(words * weight, dtype=_U32)
    mixed = jnp.sum(_mix(words ^ _mix(index + _U32(0x9E3779B9))), dtype=_U32)
    return jnp.stack([linear, mixed])


_checksums = jax.jit(lambda tree: jax.tree.map(_checksum, tree))


def _devices(x: Any) -> Any:
    if isinstance(x, jax.Array):
        return tuple(sorted(d.id for d in x.sharding.device_set))
    return ()


def sharded_digests(arrays: Mapping[str, Any]) -> dict[str, str]:
    r"""A checksum of each array's global value, computed where its shards live.

    For the :math:`N` elements :math:`x_i` of an array (as 32-bit words :math:`w_i`, :math:`i`
    the flat index) and MurmurHash3's finalizer :math:`h`,

    .. math::

        c_1 = \sum_i w_i\,(h(i) \mathbin{|} 1) \bmod 2^{32}, \qquad
        c_2 = \sum_i h(w_i \oplus h(i + \phi)) \bmod 2^{32}.

    Integer sums modulo :math:`2^{32}` are exact in any order, so the checksum does not depend
    on the sharding (XLA adds the per-device partial sums, across processes too): the digest
    of an array restored on another mesh equals the one written. :math:`c_1` changes whenever
    exactly one element changes (its weight is odd); :math:`c_2` is the nonlinear second half.
    The files themselves are covered by SHA-256 (:func:`file_manifest`). In a job of several
    processes every process must call it (it runs collectives).

    Args:
      arrays: ``{name: array}`` (jax arrays on any sharding, or host arrays).

    Returns:
      ``{name: "dtype|shape|checksum"}``.

    Examples:
      >>> import numpy as np
      >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
      >>> d = sharded_digests({"a": a, "b": a.T.copy(), "c": a.copy()})
      >>> d["a"] == d["c"], d["a"] == d["b"]
      (True, False)
    """
    groups: dict[Any, dict[str, Any]] = {}
    for name, value in arrays.items():
        groups.setdefault(_devices(value), {})[name] = value
    out: dict[str, str] = {}
    for group in groups.values():
        sums = _checksums(group)
        for name, pair in sums.items():
            first, second = (int(v) for v in np.asarray(pair.addressable_data(0)))
            value = group[name]
            out[name] = f"{np.dtype(value.dtype).str}|{tuple(value.shape)}|{first:08x}{second:08x}"
    return out


def _multi() -> bool:
    return jax.process_count() > 1


def _primary() -> bool:
    return jax.process_index() == 0


def _barrier(name: str) -> None:
    """Waits for every process of the job (nothing to wait for with one)."""
    if _multi():
        multihost_utils.sync_global_devices(f"optlab.checkpoint.{name}")


def _all_agree(ok: bool) -> bool:
    """Whether ``ok`` holds in every process (so that every process takes the same branch)."""
    if not _multi():
        return ok
    return bool(np.all(multihost_utils.process_allgather(np.int32(ok))))


def _token() -> str:
    """A random name part, the same in every process of the job."""
    value = np.uint32(uuid.uuid4().int % 2**32)
    if _multi():
        value = multihost_utils.broadcast_one_to_all(value)
    return f"{int(value):08x}"


def array_digest(array: Any) -> str:
    """SHA-256 of an array's dtype, shape and bytes (C order), as hex.

    Examples:
      >>> import numpy as np
      >>> a = np.arange(3, dtype=np.float32)
      >>> array_digest(a) == array_digest(a.copy()), array_digest(a) == array_digest(a[::-1])
      (True, False)
    """
    a = np.ascontiguousarray(np.asarray(array))
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    return h.hexdigest()


def json_digest(record: Any) -> str:
    """SHA-256 of a JSON-able record in canonical form (sorted keys), as hex."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _flat_items(arrays: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in arrays.items():
        if isinstance(v, Mapping):
            out.update(_flat_items(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _numbered(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def _is_complete(path: Path) -> bool:
    return (path / _INTEGRITY).is_file() and all((path / i).is_dir() for i in _ITEMS)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def file_manifest(root: Path) -> dict[str, list]:
    """``{relative path: [size, SHA-256]}`` of every file under ``root``."""
    return {name: [f.stat().st_size, file_digest(f)] for name, f in _files(root).items()}


def verify_files(root: Path, manifest: Any, record: str) -> None:
    """Checks every file of a :func:`file_manifest` (``record`` names the record holding it).

    Raises:
      IntegrityError: a file is missing, has another size or another checksum, or the
        manifest is garbled.
    """
    if not isinstance(manifest, dict):
        raise IntegrityError(f"{record} is garbled")
    for name, expected in sorted(manifest.items()):
        f = root / name
        if not f.is_file():
            raise IntegrityError(f"{name} is missing")
        if not (isinstance(expected, list) and len(expected) == 2):
            raise IntegrityError(f"{record} is garbled")
        if f.stat().st_size != expected[0]:
            raise IntegrityError(f"{name} has {f.stat().st_size} bytes, not {expected[0]}")
        if file_digest(f) != expected[1]:
            raise IntegrityError(f"{name} does not match its checksum")


def complete_epochs(directory: str | os.PathLike) -> list[int]:
    """The epochs with a complete checkpoint folder in ``directory``, ascending (temporary,
    retired or partial folders are left out; completeness is not integrity: see
    :meth:`Checkpointer.restore`)."""
    root = Path(directory)
    return [e for e in _numbered(root) if _is_complete(root / str(e))]


def latest_epoch(directory: str | os.PathLike) -> int | None:
    """The last epoch with a complete checkpoint folder in ``directory``, or None."""
    epochs = complete_epochs(directory)
    return epochs[-1] if epochs else None


def _retire(path: Path) -> None:
    """Deletes a folder by first renaming it out of the numbered namespace (atomic), so an
    interrupted deletion never leaves something that looks like a checkpoint."""
    if not path.exists():
        return
    retired = path.with_name(f"{path.name}{_RETIRED}{uuid.uuid4().hex[:8]}")
    path.rename(retired)
    shutil.rmtree(retired, ignore_errors=True)


class Checkpointer:
    """Saves and restores training states in one directory, one verified folder per epoch.

    Args:
      directory: where checkpoints go, one sub-directory per epoch (created on the first save).
      max_to_keep: keep only the last ``k`` checkpoints (None keeps all).

    Raises:
      TypeError: ``directory`` is not a path, or ``max_to_keep`` not None or an integer.
      ValueError: ``max_to_keep`` is below 1.
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int | None = None):
        as_path("Checkpointer", "directory", directory)
        if max_to_keep is not None:
            check_int_range("Checkpointer", "max_to_keep", max_to_keep, 1)
        self.directory = Path(directory).absolute()
        self.max_to_keep = max_to_keep
        self._orbax: Any = None
        self._cleaned = False
        self.restored_epoch: int | None = None

    @property
    def _checkpointer(self) -> Any:
        if self._orbax is None:
            handler = ocp.CompositeCheckpointHandler(
                state=ocp.StandardCheckpointHandler(), meta=ocp.JsonCheckpointHandler()
            )
            self._orbax = ocp.Checkpointer(handler)
        return self._orbax

    def epochs(self) -> list[int]:
        """The epochs with a complete checkpoint folder, ascending."""
        return complete_epochs(self.directory)

    def numbered(self) -> list[int]:
        """The epochs with a checkpoint folder, complete or not (damaged ones too), ascending."""
        return _numbered(self.directory)

    def clear(self) -> None:
        """Removes every checkpoint folder of the directory (each retired atomically)."""
        if _primary():
            for epoch in self.numbered():
                _retire(self.directory / str(epoch))
        _barrier("clear")

    def _clean_leftovers(self, below: int) -> None:
        """Removes retired folders, staging folders of interrupted writes, and incomplete
        numbered folders older than epoch ``below`` (half-deleted by an older version)."""
        for p in self.directory.iterdir():
            if not p.is_dir():
                continue
            if _RETIRED in p.name or _STAGING in p.name:
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.isdigit() and int(p.name) < below and not _is_complete(p):
                _retire(p)

    def save(
        self,
        epoch: int,
        state: TrainState,
        meta: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Writes the checkpoint of ``epoch`` (replacing one of the same epoch).

        Sharded arrays are written by the devices holding them (orbax's sharded save). In a
        job of several processes every process calls it with the same arguments (each writes
        its shards; process 0 writes the integrity record and renames the folder).

        Args:
          epoch: the checkpoint's number (fit uses the number of completed epochs).
          state: the training state.
          meta: a JSON-able dict.
          extra: named array trees saved alongside (trees without leaves are skipped).

        Returns:
          The checkpoint's folder.
        """
        check_int_range("Checkpointer.save", "epoch", epoch, 0)
        if _primary():
            self.directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"state": flatten_arrays(state)}
        extra = {k: flatten_arrays(v) for k, v in (extra or {}).items() if jax.tree.leaves(v)}
        if extra:
            arrays["extra"] = extra
        digests = sharded_digests(_flat_items(arrays))
        meta = json.loads(json.dumps(dict(meta or {})))  # the form it is read back in
        path = self.directory / str(epoch)
        staging = self.directory / f"{epoch}{_STAGING}{_token()}"
        _barrier(f"save.{staging.name}")
        try:
            self._checkpointer.save(
                staging,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
                ),
            )
            if _primary():
                integrity = {
                    "format": _INTEGRITY_FORMAT,
                    "algorithm": "sha256",
                    "files": file_manifest(staging),
                    "arrays": digests,
                    "meta": json_digest(meta),
                }
                (staging / _INTEGRITY).write_text(json.dumps(integrity, indent=1))
                _retire(path)
                staging.rename(path)
        finally:
            if _primary():
                shutil.rmtree(staging, ignore_errors=True)
        if _primary():
            if not self._cleaned:
                self._clean_leftovers(below=epoch)
                self._cleaned = True
            if self.max_to_keep is not None:
                for old in self.epochs()[: -self.max_to_keep]:
                    _retire(self.directory / str(old))
        _barrier(f"saved.{staging.name}")
        return path

    def _verify_files(self, path: Path) -> dict[str, Any]:
        """The integrity record of a checkpoint folder, after checking every file it lists
        (nothing is handed to orbax before this passes); raises ``IntegrityError``."""
        try:
            integrity = json.loads((path / _INTEGRITY).read_text())
        except FileNotFoundError:
            raise IntegrityError(f"{_INTEGRITY} is missing") from None
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise IntegrityError(f"{_INTEGRITY} is unreadable ({type(err).__name__})") from None
        if not (
            isinstance(integrity, dict)
            and integrity.get("format") == _INTEGRITY_FORMAT
            and all(isinstance(integrity.get(k), dict) for k in ("files", "arrays"))
        ):
            raise IntegrityError(f"{_INTEGRITY} is garbled")
        verify_files(path, integrity["files"], _INTEGRITY)
        return integrity

    def _read(self, path: Path, item: str, args: Any) -> Any:
        try:
            restored = self._checkpointer.restore(path, args=ocp.args.Composite(**{item: args}))
            return restored[item]
        except Exception as err:  # orbax/tensorstore raise many types for damaged files
            raise IntegrityError(f"{item} cannot be read ({type(err).__name__})") from None

    def _target(self, path: Path, like: Any) -> dict[str, Any]:
        """What orbax restores into: the state's arrays as ``jax.ShapeDtypeStruct`` with the
        shardings of ``like`` (so each device reads its own slice), extra arrays on the host.

        Raises:
          IntegrityError: orbax's metadata cannot be read.
          ValueError: the saved state does not fit ``like`` (another model or optimizer).
        """
        try:
            tree = self._checkpointer.metadata(path).item_metadata["state"].tree
            shapes = {k: (tuple(v.shape), v.dtype) for k, v in _flat_items(tree).items()}
        except Exception as err:  # a garbled metadata file: damage, not a user error
            why = f"state's metadata cannot be read ({type(err).__name__})"
            raise IntegrityError(why) from None
        saved = {k[len("state/") :]: v for k, v in shapes.items() if k.startswith("state/")}
        check_like("restore_checkpoint", saved, like)
        refs = flatten_arrays(like)
        target: dict[str, Any] = {}
        for name, (shape, dtype) in shapes.items():
            group, _, key = name.partition("/")
            ref = refs.get(key) if group == "state" else None
            sharding = ref.sharding if isinstance(ref, jax.Array) else None
            node = target
            for part in name.split("/")[:-1]:
                node = node.setdefault(part, {})
            node[name.split("/")[-1]] = jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
        return target

    def _load(self, epoch: int, like: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arrays (the state's placed like ``like``'s) and the JSON record of one
        checkpoint, verified; raises ``IntegrityError``."""
        path = self.directory / str(epoch)
        try:
            integrity = self._verify_files(path)
            failure = None
        except IntegrityError as why:
            integrity, failure = {}, why
        if not _all_agree(failure is None):  # damaged for one process: damaged for all
            raise failure or IntegrityError("another process found it damaged")
        meta = self._read(path, "meta", ocp.args.JsonRestore())
        if json_digest(meta) != integrity.get("meta"):
            raise IntegrityError("its JSON record does not match its checksum")
        arrays = self._read(path, "state", ocp.args.StandardRestore(self._target(path, like)))
        flat = _flat_items(arrays)
        expected = integrity["arrays"]
        if set(flat) != set(expected):
            raise IntegrityError("its arrays are not the ones its integrity record lists")
        digests = sharded_digests(flat)
        for name in sorted(flat):
            if digests[name] != expected[name]:
                raise IntegrityError(f"array {name} does not match its checksum")
        return arrays, meta

    def restore(
        self, state: TrainState, epoch: int | None = None
    ) -> tuple[TrainState, dict[str, Any], dict[str, Any]]:
        """Loads the newest intact checkpoint (or the given one) into a state like ``state``.

        Each array is read straight into the sharding of ``state``'s (any mesh, any device
        count: not necessarily the one it was written on); in a job of several processes every
        process calls it.

        Args:
          state: a state built the same way (same model and transformation), placed where the
            restored one should live; its arrays are replaced, its static parts kept.
          epoch: which checkpoint; by default the newest intact one (each newer damaged one is
            skipped with a :class:`DamagedCheckpointWarning` naming it).

        Returns:
          ``(state, meta, extra)``: ``extra`` maps each name given to :meth:`save` to its flat
          dict of host arrays (rebuild a tree with :func:`unflatten_arrays`); the epoch
          restored is ``self.restored_epoch``.

        Raises:
          FileNotFoundError: no checkpoint at all (or not that epoch) in the directory.
          ValueError: no intact checkpoint (one line naming each and what is wrong), or the
            checkpoint was written for another model or optimizer.
        """
        available = _numbered(self.directory)
        if epoch is None:
            if not available:
                raise FileNotFoundError(
                    f"no checkpoint in {self.directory} (is it a checkpoint directory written "
                    "by ModelCheckpoint or optlab train?)"
                )
            candidates = available[::-1]
        elif epoch not in available:
            raise FileNotFoundError(
                f"no checkpoint of epoch {epoch} in {self.directory}; there are: {available}"
            )
        else:
            candidates = [epoch]
        damaged = []
        for e in candidates:
            try:
                arrays, meta = self._load(e, state)
            except IntegrityError as why:
                damaged.append((e, why))
                continue
            for d, why in damaged:
                warnings.warn(
                    f"checkpoint {self.directory / str(d)} is damaged ({why}); skipped it and "
                    f"restored {self.directory / str(e)}",
                    DamagedCheckpointWarning,
                    stacklevel=2,
                )
            self.restored_epoch = e
            new_state = unflatten_arrays("restore_checkpoint", arrays["state"], state)
            return new_state, dict(meta), dict(arrays.get("extra") or {})
        raise ValueError(
            f"no intact checkpoint in {self.directory}: "
            + "; ".join(f"{d} is damaged ({why})" for d, why in damaged)
        )

    def close(self) -> None:
        """Releases orbax's resources."""
        if self._orbax is not None:
            self._orbax.close()
            self._orbax = None


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
    """Loads the newest intact (or the given) checkpoint into a state shaped like ``state``.

    Returns:
      ``(state, meta)``.
    """
    ckpt = Checkpointer(directory)
    try:
        new_state, meta, _ = ckpt.restore(state, epoch)
    finally:
        ckpt.close()
    return new_state, meta


# ---------------------------------------------------------------------------------------------
# A whole run of fit


def save_run(checkpointer: Checkpointer, run: Run, completed_epochs: int) -> Path:
    """Writes the whole run (state, :class:`~optlab.train.run.RunMeta`, callbacks' arrays) as
    the checkpoint of ``completed_epochs``."""
    keys = run.callback_keys()
    extra = {k: cb.get_arrays() for k, cb in zip(keys, run.callbacks, strict=True)}
    meta = run.meta(completed_epochs).to_json()
    return checkpointer.save(completed_epochs, run.state, meta, extra)


def restore_run(run: Run, directory: str | os.PathLike) -> int:
    """Loads the newest intact checkpoint of ``directory`` into ``run`` (state, history, the
    callbacks' state); returns the number of completed epochs.

    Raises:
      ValueError: no intact checkpoint, a checkpoint not written by fit, or one written with
        other settings (batch size, remainder policy...) than this run's.
    """
    ckpt = Checkpointer(directory)
    try:
        state, record, extra = ckpt.restore(run.state)
    finally:
        ckpt.close()
    source = f"fit: resume_from={str(directory)!r}"
    meta = RunMeta.from_json(record, source)
    for key in meta.config.MUST_MATCH:
        saved, here = getattr(meta.config, key), getattr(run.config, key)
        if saved != here:
            raise ValueError(
                f"{source} was written with {key}={saved!r}, but this call has {key}={here!r}; "
                "an exact resume needs the same value"
            )
    run.state = state
    run.config = meta.config
    run.history = run.history.from_dict(meta.history)
    run.tx_metric_value = meta.tx_metric_value
    for key, cb in zip(run.callback_keys(), run.callbacks, strict=True):
        if key in meta.callbacks:
            cb.set_state(meta.callbacks[key])
        if key in extra:
            cb.set_arrays(run, extra[key])
    run.resumed = True
    run.initial_epoch = meta.epoch
    return meta.epoch
