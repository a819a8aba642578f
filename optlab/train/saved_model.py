"""The trained model as an artifact: ``save_model`` / ``load_model``, without any optimizer.

A saved model is a folder holding ``model.json`` — the architecture
(:func:`optlab.nn.model_config`, rebuilt by :func:`optlab.nn.from_config`), for every array of
the model's state (parameters, BatchNorm statistics, RNG streams) its path, shape, dtype and
SHA-256, and the size and SHA-256 of every file under ``arrays/`` — and ``arrays/``, the
arrays in orbax's format. The folder is written under a temporary name and renamed into
place, so it is either complete or absent; loading checks every file, then every array,
against its checksum and refuses a damaged folder.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from optlab.core.validation import as_path, check_bool
from optlab.train.checkpoint import (
    IntegrityError,
    array_digest,
    file_manifest,
    json_digest,
    verify_files,
)

MODEL_FILE = "model.json"
FORMAT = "optlab.model/1"


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _path_name(path: tuple) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def _named_leaves(model: nnx.Module) -> tuple[list[tuple[str, Any]], Any]:
    """``[(path name, leaf)]`` of the model's whole state, and the tree's structure."""
    pure = nnx.to_pure_dict(nnx.state(model))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    return [(_path_name(p), leaf) for p, leaf in leaves], treedef


def _model_config(model: nnx.Module) -> dict[str, Any]:
    from optlab.nn import model_config

    try:
        config = model_config(model)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"save_model: {type(model).__name__} is not a model optlab.nn can describe ({err}); "
            "save_model supports the optlab.nn models (MLP, MultiInputMLP, Ensemble, ...), "
            "whose architecture optlab.nn.model_config records; save any other nnx module's "
            "nnx.state(model) with orbax yourself"
        ) from None
    return json.loads(json.dumps(config))


def save_model(model: nnx.Module, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Saves a trained model (architecture and arrays, no optimizer) to ``directory``.

    Args:
      model: an ``optlab.nn`` model (a plain nnx module is refused: its architecture cannot
        be recorded).
      directory: the folder to create.
      overwrite: replace a saved model already in ``directory`` (without it, a non-empty
        ``directory`` is refused).

    Returns:
      The folder written.

    Raises:
      TypeError: ``model`` is not an ``optlab.nn`` model, or a bad argument type.
      ValueError: ``directory`` is not empty and ``overwrite`` is False.
    """
    fn = "save_model"
    if not isinstance(model, nnx.Module):
        raise TypeError(f"{fn}: model must be a flax.nnx.Module, got {type(model).__name__}")
    as_path(fn, "directory", directory)
    check_bool(fn, "overwrite", overwrite)
    target = Path(directory).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise ValueError(
            f"{fn}: {target} already exists and is not empty; pass overwrite=True to replace it "
            "or choose another directory"
        )
    config = _model_config(model)
    named, _ = _named_leaves(model)
    flat, manifest = {}, []
    for i, (name, leaf) in enumerate(named):
        array = np.asarray(jax.device_get(jax.random.key_data(leaf) if _is_key(leaf) else leaf))
        flat[f"{i:05d}"] = array
        manifest.append(
            {
                "name": name,
                "shape": list(array.shape),
                "dtype": array.dtype.name,
                "prng_key": _is_key(leaf),
                "sha256": array_digest(array),
            }
        )
    record = {
        "format": FORMAT,
        "config": config,
        "config_sha256": json_digest(config),
        "arrays": manifest,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    writer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        writer.save(tmp / "arrays", args=ocp.args.Composite(arrays=ocp.args.StandardSave(flat)))
        record["files"] = file_manifest(tmp / "arrays")
        (tmp / MODEL_FILE).write_text(json.dumps(record, indent=1))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(target)
    finally:
        writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _find(fn: str, path: Path) -> Path:
    for root in (path, path / "model"):
        if (root / MODEL_FILE).is_file():
            return root
    raise FileNotFoundError(
        f"{fn}: no saved model in {path} (expected {path / MODEL_FILE} or "
        f"{path / 'model' / MODEL_FILE}, written by save_model or optlab train --output)"
    )


def load_model(run_or_model_directory: str | os.PathLike) -> nnx.Module:
    """Loads a model saved by :func:`save_model` (or the ``model/`` of an ``optlab train`` run).

    The architecture is rebuilt from its description (no optimizer, no training code needed)
    and every array is checked against its checksum before it is used.

    Args:
      run_or_model_directory: the folder :func:`save_model` wrote, or a run folder holding
        it as ``model/``.

    Returns:
      The nnx model, in evaluation mode (call ``model.train()`` to train it further).

    Raises:
      FileNotFoundError: no saved model there.
      ValueError: the folder is damaged (one line naming the file and what is wrong).
    """
    fn = "load_model"
    as_path(fn, "run_or_model_directory", run_or_model_directory)
    root = _find(fn, Path(run_or_model_directory))
    try:
        record = json.loads((root / MODEL_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{fn}: {root / MODEL_FILE} is unreadable ({type(err).__name__})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{fn}: {root / MODEL_FILE} is not a model saved by optlab.save_model")
    config, manifest = record.get("config"), record.get("arrays")
    if json_digest(config) != record.get("config_sha256") or not isinstance(manifest, list):
        raise ValueError(f"{fn}: {root / MODEL_FILE} is damaged (its description was altered)")
    try:
        verify_files(root / "arrays", record.get("files"), MODEL_FILE)
    except IntegrityError as why:
        raise ValueError(f"{fn}: {root} is damaged: {why}") from None
    reader = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    try:
        restored = reader.restore(
            root / "arrays", args=ocp.args.Composite(arrays=ocp.args.StandardRestore())
        )["arrays"]
    except Exception as err:  # orbax/tensorstore raise many types for damaged files
        raise ValueError(
            f"{fn}: {root / 'arrays'} is damaged and cannot be read ({type(err).__name__})"
        ) from None
    finally:
        reader.close()
    if len(restored) != len(manifest):
        raise ValueError(f"{fn}: {root} is damaged: {len(restored)} arrays for {len(manifest)}")
    saved = {}
    for i, entry in enumerate(manifest):
        array = np.asarray(restored[f"{i:05d}"])
        if array_digest(array) != entry["sha256"]:
            raise ValueError(
                f"{fn}: {root} is damaged: array {entry['name']} does not match its checksum"
            )
        saved[entry["name"]] = array
    from optlab.nn import from_config

    model = from_config(config)
    named, treedef = _named_leaves(model)
    if [n for n, _ in named] != [e["name"] for e in manifest]:
        raise ValueError(
            f"{fn}: {root}: the arrays saved do not fit the architecture rebuilt from its "
            "description (was it saved by another version of optlab?)"
        )
    leaves = []
    for name, ref in named:
        array = saved[name]
        if _is_key(ref):
            data = jnp.asarray(array, jax.random.key_data(ref).dtype)
            leaves.append(jax.random.wrap_key_data(data, impl=jax.random.key_impl(ref)))
            continue
        if array.shape != ref.shape or array.dtype != ref.dtype:
            raise ValueError(
                f"{fn}: {root}: array {name} is {array.shape} {array.dtype} but the architecture "
                f"needs {ref.shape} {ref.dtype}"
            )
        leaves.append(jnp.asarray(array))
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, treedef.unflatten(leaves))
    nnx.update(model, state)
    model.eval()
    return model
