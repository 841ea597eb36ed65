"""Multi-process start-up: JAX's own multi-controller runtime (`jax.distributed`).

Every host runs the same program; `initialize()` connects them before any
other jax call. Where the settings come from, first match wins:

1. explicit arguments (the entry points' `--coordinator_address`,
   `--num_processes`, `--process_id` flags);
2. the environment: `SPECTRAX_COORDINATOR` (host:port),
   `SPECTRAX_NUM_PROCESSES`, `SPECTRAX_PROCESS_ID` (what `launch/local.sh`
   sets);
3. the platform, through JAX's cluster detection: Cloud TPU VMs (every
   worker of a slice), SLURM (`srun`), Open MPI, Kubernetes;
4. none of these: a single process, and `initialize()` does nothing.

On CPU, cross-process collectives use gloo (`jax_cpu_collectives_implementation`),
so the multi-host code paths run, and are tested, on one machine.

Failure: every process sends heartbeats to the coordinator; when one dies
(crash, OOM kill, lost host), the others terminate with "the JAX distributed
service detected fatal errors ... another task died" within
`heartbeat_timeout_seconds` (`SPECTRAX_HEARTBEAT_TIMEOUT`, default 60)
instead of hanging in a collective. A preempted run then resumes from its
last checkpoint when relaunched (README: "Running on a TPU pod").
"""

from __future__ import annotations

import dataclasses
import logging
import os

import jax

log = logging.getLogger(__name__)

ENV_COORDINATOR = "SPECTRAX_COORDINATOR"
ENV_NUM_PROCESSES = "SPECTRAX_NUM_PROCESSES"
ENV_PROCESS_ID = "SPECTRAX_PROCESS_ID"
ENV_CPU_DEVICES = "SPECTRAX_CPU_DEVICES"
ENV_HEARTBEAT = "SPECTRAX_HEARTBEAT_TIMEOUT"
# Comma-separated accelerator ids this process drives. JAX's SLURM detection
# gives each process only the GPU numbered SLURM_LOCALID; one process per
# node must name all of them (launch/gpu_slurm.sbatch does).
ENV_LOCAL_DEVICE_IDS = "SPECTRAX_LOCAL_DEVICE_IDS"
DEFAULT_HEARTBEAT_TIMEOUT = 60

# Environment variables by which JAX's cluster detection recognises a platform.
_CLUSTER_MARKERS = {
    "SLURM_JOB_ID": "SLURM",
    "OMPI_MCA_orte_hnp_uri": "Open MPI",
    "OMPI_COMM_WORLD_SIZE": "Open MPI",
    "KUBERNETES_SERVICE_HOST": "Kubernetes",
    "TPU_WORKER_HOSTNAMES": "Cloud TPU",
    "MEGASCALE_COORDINATOR_ADDRESS": "Cloud TPU multislice",
}


@dataclasses.dataclass(frozen=True)
class Settings:
  """How this process joins the run; `source` says where they came from."""

  coordinator_address: str | None
  num_processes: int | None
  process_id: int | None
  source: str  # "arguments", "environment", a platform name, or "single process"

  @property
  def multi_process(self) -> bool:
    return self.source != "single process"


def _int(value, name: str) -> int | None:
  if value is None or value == "":
    return None
  try:
    return int(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name}={value!r}: expected an integer") from None


def resolve(coordinator_address: str | None = None, num_processes: int | None = None,
            process_id: int | None = None, env=None) -> Settings:
  """Works out how this process joins the run, without starting anything.

  Raises:
    ValueError: a partial or inconsistent explicit setting, naming what to add.
  """
  env = os.environ if env is None else env
  given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
           "process_id": process_id}
  source = "arguments"
  if all(v is None for v in given.values()):
    given = {"coordinator_address": env.get(ENV_COORDINATOR) or None,
             "num_processes": _int(env.get(ENV_NUM_PROCESSES), ENV_NUM_PROCESSES),
             "process_id": _int(env.get(ENV_PROCESS_ID), ENV_PROCESS_ID)}
    source = "environment"
  if any(v is not None for v in given.values()):
    missing = [k for k, v in given.items() if v is None]
    if missing:
      names = ({"coordinator_address": ENV_COORDINATOR, "num_processes": ENV_NUM_PROCESSES,
                "process_id": ENV_PROCESS_ID} if source == "environment"
               else {k: f"--{k}" for k in given})
      raise ValueError(f"multi-process settings from the {source} are incomplete: set "
                       f"{', '.join(names[k] for k in missing)} too (all three, or none to "
                       "let the platform provide them)")
    n, i = given["num_processes"], given["process_id"]
    if n < 1 or not 0 <= i < n:
      raise ValueError(f"process_id={i} with num_processes={n}: need num_processes >= 1 and "
                       "0 <= process_id < num_processes")
    if ":" not in given["coordinator_address"]:
      raise ValueError(f"coordinator_address={given['coordinator_address']!r}: give host:port, "
                       "e.g. 10.0.0.2:8476 (process 0's host)")
    if n == 1:
      return Settings(None, None, None, "single process")
    return Settings(given["coordinator_address"], n, i, source)
  for marker, platform in _CLUSTER_MARKERS.items():
    if env.get(marker):
      if platform == "SLURM" and _int(env.get("SLURM_NTASKS", "1"), "SLURM_NTASKS") == 1:
        break  # A one-task SLURM job (e.g. an interactive shell) is one process.
      return Settings(None, None, None, platform)
  return Settings(None, None, None, "single process")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, heartbeat_timeout_seconds: int | None = None,
               cpu_devices: int | None = None) -> Settings:
  """Joins the multi-process run (see the module docstring); idempotent.

  Call before any other jax use. `cpu_devices` (or `SPECTRAX_CPU_DEVICES`)
  sets how many CPU devices this process exposes (testing on one machine).
  """
  settings = resolve(coordinator_address, num_processes, process_id)
  cpu_devices = cpu_devices or _int(os.environ.get(ENV_CPU_DEVICES), ENV_CPU_DEVICES)
  if cpu_devices:
    jax.config.update("jax_num_cpu_devices", cpu_devices)
  if not settings.multi_process:
    return settings
  if jax.distributed.is_initialized():
    return settings
  # Gloo for CPU collectives across processes; accelerators use their own.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  heartbeat = heartbeat_timeout_seconds or _int(os.environ.get(ENV_HEARTBEAT),
                                                ENV_HEARTBEAT) or DEFAULT_HEARTBEAT_TIMEOUT
  kwargs = dict(heartbeat_timeout_seconds=heartbeat)
  ids = os.environ.get(ENV_LOCAL_DEVICE_IDS, "").strip()
  if ids:
    try:
      kwargs["local_device_ids"] = [int(i) for i in ids.split(",")]
    except ValueError:
      raise ValueError(f"{ENV_LOCAL_DEVICE_IDS}={ids!r}: expected comma-separated integers, "
                       "e.g. 0,1,2,3,4,5,6,7") from None
  if settings.coordinator_address is not None:
    kwargs.update(coordinator_address=settings.coordinator_address,
                  num_processes=settings.num_processes, process_id=settings.process_id)
  jax.distributed.initialize(**kwargs)
  log.info("process %d of %d (%s), %d local / %d global devices", jax.process_index(),
           jax.process_count(), settings.source, jax.local_device_count(), jax.device_count())
  return settings


def is_primary() -> bool:
  """Process 0: the one that writes metrics, TensorBoard events and the console."""
  return jax.process_index() == 0


_LOW_BITS = 26


def sum_over_processes(values: dict[str, int | float]) -> dict[str, int | float]:
  """Sums per-process counters over all processes (a collective: every
  process must call it with the same keys). Integers stay exact up to 2^56;
  floats are summed in float32 (jax's default width), fine for rates."""
  if jax.process_count() == 1:
    return dict(values)
  # pylint: disable-next=g-import-not-at-top
  import numpy as np
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  ints = sorted(k for k, v in values.items() if isinstance(v, (int, np.integer)))
  floats = sorted(k for k in values if k not in set(ints))
  out: dict[str, int | float] = {}
  if ints:
    v = np.array([int(values[k]) for k in ints], np.int64)
    if (v < 0).any() or (v >= 1 << (31 + _LOW_BITS)).any():
      raise ValueError(f"sum_over_processes: counters must be in [0, 2^57): {dict(zip(ints, v))}")
    parts = np.stack([v >> _LOW_BITS, v & ((1 << _LOW_BITS) - 1)]).astype(np.int32)
    got = np.asarray(multihost_utils.process_allgather(parts)).astype(np.int64).sum(0)
    out.update({k: int(t) for k, t in zip(ints, (got[0] << _LOW_BITS) + got[1])})
  if floats:
    v = np.array([float(values[k]) for k in floats], np.float32)
    got = np.asarray(multihost_utils.process_allgather(v)).astype(np.float64).sum(0)
    out.update({k: float(t) for k, t in zip(floats, got)})
  return out


def all_processes(flag: bool) -> bool:
  """Whether `flag` holds on every process (a collective on several)."""
  if jax.process_count() == 1:
    return bool(flag)
  # pylint: disable-next=g-import-not-at-top
  import numpy as np
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.all(multihost_utils.process_allgather(np.array(bool(flag)))))
