"""Several hosts: one Python process per host (or per GPU), joined by ``jax.distributed``.

After :func:`initialize`, ``jax.devices()`` lists the devices of every process, and a mesh
over them (``jax.make_mesh((jax.device_count(),), ("data",))``) makes :func:`optlab.fit`
train data-parallel across the hosts: every process runs the same program on the same data
(each loads the whole training set; the batches are split over the devices, not over the
files), and the gradient all-reduce crosses the network. Every process must call ``fit``
with the same arguments.

Where the settings come from, first found wins (each field separately):

1. the arguments of :func:`initialize`;
2. optlab's variables ``OPTLAB_COORDINATOR`` (``host:port`` of process 0),
   ``OPTLAB_NUM_PROCESSES``, ``OPTLAB_PROCESS_ID``, ``OPTLAB_LOCAL_DEVICE_IDS``
   (comma-separated);
3. JAX's variables ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``,
   ``JAX_LOCAL_DEVICE_IDS``;
4. what JAX detects from a cluster manager (SLURM's ``srun``, Open MPI's ``mpirun``,
   Kubernetes, Cloud TPU): the fields still unset are left to ``jax.distributed``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from optlab.core.validation import check_int_range

_NAMES = {
    "coordinator_address": ("OPTLAB_COORDINATOR", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("OPTLAB_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("OPTLAB_PROCESS_ID", "JAX_PROCESS_ID"),
    "local_device_ids": ("OPTLAB_LOCAL_DEVICE_IDS", "JAX_LOCAL_DEVICE_IDS"),
}
# A cluster manager JAX detects by itself, by the variables its launcher sets.
_CLUSTERS = {
    "slurm": ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_PROCID"),
    "openmpi": ("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
}


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """The settings :func:`initialize` resolved, and where each came from.

    Attributes:
      coordinator_address: ``host:port`` of process 0's coordinator (None: left to JAX).
      num_processes: the number of processes (None: left to JAX).
      process_id: this process's index (None: left to JAX).
      local_device_ids: the local devices this process uses (None: all).
      sources: for each field set, ``"argument"``, ``"OPTLAB_..."`` or ``"JAX_..."`` (the
        variable read).
      cluster: the cluster manager whose variables are present (``"slurm"``, ``"openmpi"``)
        or None.
    """

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    local_device_ids: tuple[int, ...] | None = None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cluster: str | None = None


def _parse(fn: str, name: str, variable: str, text: str) -> Any:
    text = text.strip()
    try:
        if name == "coordinator_address":
            return text
        if name == "local_device_ids":
            return tuple(int(part) for part in text.split(","))
        return int(text)
    except ValueError:
        raise ValueError(
            f"{fn}: the environment variable {variable} must be "
            + ("comma-separated integers" if name == "local_device_ids" else "an integer")
            + f", got {variable}={text!r}"
        ) from None


def _check(fn: str, config: DistributedConfig) -> None:
    address = config.coordinator_address
    if address is not None:
        host, _, port = address.rpartition(":")
        if not (isinstance(address, str) and host and port.isdigit()):
            raise ValueError(
                f"{fn}: coordinator_address must be 'host:port' (process 0's address), got "
                f"coordinator_address={address!r}"
            )
    if config.num_processes is not None:
        check_int_range(fn, "num_processes", config.num_processes, 1)
    if config.process_id is not None:
        check_int_range(fn, "process_id", config.process_id, 0)
        if config.num_processes is not None and config.process_id >= config.num_processes:
            raise ValueError(
                f"{fn}: process_id must be below num_processes={config.num_processes}, got "
                f"process_id={config.process_id}"
            )
    for i in config.local_device_ids or ():
        check_int_range(fn, "local_device_ids", i, 0)


def resolve(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> DistributedConfig:
    """The settings :func:`initialize` would use, without initializing anything.

    Args:
      coordinator_address: ``host:port`` of process 0 (it binds that port).
      num_processes: the number of processes.
      process_id: this process's index, in ``[0, num_processes)``.
      local_device_ids: the local devices this process uses.
      environ: the environment to read (default: ``os.environ``).

    Returns:
      A :class:`DistributedConfig` (the module docstring gives the order of the sources).

    Raises:
      TypeError, ValueError: a bad argument or variable (named).

    Examples:
      >>> config = resolve(process_id=1, environ={
      ...     "OPTLAB_COORDINATOR": "node0:1234", "JAX_NUM_PROCESSES": "2"})
      >>> print(config.coordinator_address, config.num_processes, config.process_id)
      node0:1234 2 1
      >>> print(dict(config.sources))
      {'coordinator_address': 'OPTLAB_COORDINATOR', 'num_processes': 'JAX_NUM_PROCESSES', \
'process_id': 'argument'}
    """
    fn = "initialize"
    env = os.environ if environ is None else environ
    given = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
        "local_device_ids": local_device_ids,
    }
    if coordinator_address is not None and not isinstance(coordinator_address, str):
        raise TypeError(
            f"{fn}: coordinator_address must be a 'host:port' string, got "
            f"coordinator_address={coordinator_address!r}"
        )
    if isinstance(local_device_ids, int):
        given["local_device_ids"] = (local_device_ids,)
    elif local_device_ids is not None:
        given["local_device_ids"] = tuple(local_device_ids)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, value in given.items():
        if value is not None:
            values[name], sources[name] = value, "argument"
            continue
        for variable in _NAMES[name]:
            if env.get(variable, "").strip():
                values[name] = _parse(fn, name, variable, env[variable])
                sources[name] = variable
                break
    cluster = next((name for name, keys in _CLUSTERS.items() if all(k in env for k in keys)), None)
    config = DistributedConfig(**values, sources=sources, cluster=cluster)
    _check(fn, config)
    return config


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
    *,
    initialization_timeout: int = 300,
) -> DistributedConfig:
    """Joins this process to a multi-process JAX job (``jax.distributed.initialize``).

    Call it first, before any other JAX call, in every process (each with its own
    ``process_id``). Settings not given are read from the environment (see the module
    docstring); on a CPU-only job the collectives run over Gloo (TCP).

    Args:
      coordinator_address: ``host:port`` of process 0 (it binds that port).
      num_processes: the number of processes.
      process_id: this process's index, in ``[0, num_processes)``.
      local_device_ids: the local devices this process uses (e.g. one GPU per process).
      initialization_timeout: seconds to wait for every process to join.

    Returns:
      The :class:`DistributedConfig` used.

    Raises:
      TypeError, ValueError: a bad setting (named), before anything starts.
      RuntimeError: JAX's initialization failed (e.g. already initialized).
    """
    check_int_range("initialize", "initialization_timeout", initialization_timeout, 1)
    config = resolve(coordinator_address, num_processes, process_id, local_device_ids)
    if jax.config.jax_cpu_collectives_implementation is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=config.coordinator_address,
        num_processes=config.num_processes,
        process_id=config.process_id,
        local_device_ids=None if config.local_device_ids is None else list(config.local_device_ids),
        initialization_timeout=initialization_timeout,
    )
    return config


def shutdown() -> None:
    """Leaves the multi-process job (``jax.distributed.shutdown``); a no-op when not joined."""
    jax.distributed.shutdown()
