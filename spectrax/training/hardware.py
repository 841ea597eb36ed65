"""Peak FLOP/s of the accelerator, the denominator of MFU.

Accelerators: the published dense (no sparsity) bf16 matmul peak per chip,
looked up from ``jax.Device.device_kind``. On TPU v4 and v5p one JAX device
is one chip (megacore); on v5e/v6e a chip has one TensorCore; on NVIDIA one
device is one GPU: so per chip = per device for every entry.

CPU: no published figure applies, so a float32 matmul rate is measured once
per machine (best of a few runs) and cached in ``cpu_peak.json`` under the
cache directory (``$SPECTRAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/spectrax``,
else ``~/.cache/spectrax``), keyed by CPU model and core count. The figure is
for the whole machine; when JAX exposes several CPU devices they share it.
CPU MFU is only a sanity check of the pipeline, not a benchmark.

Usage::

    peak, source = hardware.peak_flops_per_device()       # or (override=...)
    mfu = step_flops / (step_seconds * jax.device_count() * peak)
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
from absl import logging

# Dense bf16 FLOP/s per chip, from the vendors' spec sheets (the sparsity
# figures NVIDIA also prints are twice these).
PEAK_BF16_FLOPS = {
    "TPU v4": 275e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6e": 918e12,
    "H100 SXM": 989e12,
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H200": 989e12,  # same compute die as H100 SXM, more HBM
    "H200 NVL": 835e12,
    "A100": 312e12,  # every A100 variant (SXM4/PCIe, 40/80 GB)
}

# jax's TPU device_kind strings (jax.experimental.pallas.tpu names the same).
_TPU_KINDS = {
    "tpu v4": "TPU v4",
    "tpu v5 lite": "TPU v5e", "tpu v5e": "TPU v5e",
    "tpu v5": "TPU v5p", "tpu v5p": "TPU v5p",
    "tpu v6 lite": "TPU v6e", "tpu v6e": "TPU v6e",
}

# NVIDIA device_kind is the marketing name ("NVIDIA H100 80GB HBM3",
# "NVIDIA A100-SXM4-80GB"); the first matching substring wins, so the
# lower-clocked NVL/PCIe parts come before their family's default.
_GPU_RULES = (
    ("h100 nvl", "H100 NVL"), ("h100 pcie", "H100 PCIe"), ("h100", "H100 SXM"),
    ("h200 nvl", "H200 NVL"), ("h200", "H200"),
    ("a100", "A100"),
)

_CACHE_FILE = "cpu_peak.json"


def chip_name(device_kind: str) -> str | None:
  """The ``PEAK_BF16_FLOPS`` key for a ``jax.Device.device_kind``, or None if unknown."""
  kind = " ".join(device_kind.lower().replace("-", " ").split())
  if kind in _TPU_KINDS:
    return _TPU_KINDS[kind]
  if kind.startswith("tpu"):
    return None  # an unknown TPU generation must not fall through to a GPU rule
  for pattern, name in _GPU_RULES:
    if pattern in kind:
      return name
  return None


def table_peak_flops(device_kind: str) -> float | None:
  """Dense bf16 FLOP/s per device for a ``device_kind``, or None if the table lacks it."""
  name = chip_name(device_kind)
  return None if name is None else PEAK_BF16_FLOPS[name]


def cache_dir() -> str:
  """Where measured figures are cached (see the module docstring)."""
  if os.environ.get("SPECTRAX_CACHE_DIR"):
    return os.environ["SPECTRAX_CACHE_DIR"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "spectrax")


def cpu_key() -> str:
  """``"<cpu model> x<cores>"``: what a cached CPU figure is valid for."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass  # not Linux: platform's answer stands
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return f"{model} x{cores}"


def measure_cpu_peak(size: int = 2048, repeats: int = 4, trials: int = 3) -> float:
  """Best float32 matmul rate of the default CPU device, in FLOP/s.

  Args:
    size: the square matrices' side; 2048 keeps every core busy.
    repeats: chained matmuls per timed call (amortises dispatch).
    trials: timed calls; the fastest counts (others see OS noise).
  """
  cpu = jax.devices("cpu")[0]
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.device_put(jax.random.normal(ka, (size, size), jnp.float32), cpu)
  # Entries ~ N(0, 1/size) keep the chained product's scale ~1 (no inf/denormals).
  b = jax.device_put(jax.random.normal(kb, (size, size), jnp.float32) / math.sqrt(size), cpu)

  @jax.jit
  def chain(x, w):
    return jax.lax.fori_loop(0, repeats, lambda _, y: y @ w, x)

  chain(a, b).block_until_ready()  # compile outside the timing
  best = math.inf
  for _ in range(trials):
    start = time.perf_counter()
    chain(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 * repeats / best


def cpu_peak_flops(cache: str | None = None, size: int = 2048) -> tuple[float, str]:
  """Measured float32 FLOP/s of this machine (all cores), cached per CPU model and core count.

  Args:
    cache: the cache directory; default ``cache_dir()``.
    size: matmul side used when measuring (see ``measure_cpu_peak``).

  Returns:
    (FLOP/s, source) where source says whether it was measured or read back.
  """
  path = os.path.join(cache or cache_dir(), _CACHE_FILE)
  key = cpu_key()
  table = _read_cache(path)
  if key in table:
    return float(table[key]["flops"]), f"cached CPU float32 matmul rate ({path})"
  flops = measure_cpu_peak(size)
  table[key] = {"flops": flops, "matmul_size": size,
                "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
  _write_cache(path, table)
  return flops, f"measured CPU float32 matmul rate (cached in {path})"


def _read_cache(path: str) -> dict:
  try:
    with open(path) as f:
      table = json.load(f)
    return table if isinstance(table, dict) else {}
  except FileNotFoundError:
    return {}
  except (OSError, ValueError) as e:  # corrupt or unreadable: measure again
    logging.warning("ignoring unreadable CPU peak cache %s (%s); it will be rewritten", path, e)
    return {}


def _write_cache(path: str, table: dict) -> None:
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"  # atomic: concurrent processes never see half a file
    with open(tmp, "w") as f:
      json.dump(table, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
  except OSError as e:  # a read-only home must not stop training
    logging.warning("could not cache the CPU peak in %s (%s); set SPECTRAX_CACHE_DIR", path, e)


def peak_flops_per_device(override: float | None = None, *, device: jax.Device | None = None,
                          cache: str | None = None) -> tuple[float, str]:
  """Peak FLOP/s of one device, and where the figure came from.

  Args:
    override: FLOP/s per device to use instead of the table (e.g. a config
      field); must be > 0.
    device: the device to describe; default ``jax.devices()[0]``.
    cache: directory of the CPU measurement cache; default ``cache_dir()``.

  Returns:
    (FLOP/s, source). For an accelerator missing from the table the figure
    is NaN (MFU then reads NaN rather than a wrong number) and the source
    says how to fix it; a warning is logged too.

  Raises:
    ValueError: if ``override`` is not a positive number.
  """
  if override is not None:
    if not override > 0:
      raise ValueError(f"peak FLOP/s override must be > 0 per device, got {override!r}; "
                       "pass e.g. 459e12 for a TPU v5p chip, or None to look it up")
    return float(override), "override"
  device = device or jax.devices()[0]
  if device.platform == "cpu":
    flops, source = cpu_peak_flops(cache)
    shared = len(jax.devices("cpu"))
    if shared > 1:
      return flops / shared, f"{source}, shared by {shared} CPU devices"
    return flops, source
  name = chip_name(device.device_kind)
  if name is not None:
    return PEAK_BF16_FLOPS[name], f"table: {name} dense bf16 (device_kind {device.device_kind!r})"
  source = (f"unknown device_kind {device.device_kind!r}: pass its dense bf16 FLOP/s per device as "
            "the override (or add it to spectrax/hardware.py PEAK_BF16_FLOPS)")
  logging.warning("MFU will be NaN: %s", source)
  return math.nan, source
