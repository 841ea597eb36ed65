"""Checksums of a checkpoint's arrays: corrupted bytes are caught on restore.

A flipped byte inside an array file of a finalized checkpoint (a bad disk, a
partial copy) still decodes: orbax and tensorstore restore it without error,
and the run trains, scores or evaluates on garbage (often NaN). So every save
records, per array, two checksums of the array's raw bits, and every restore
recomputes them on what it read and compares.

Why this checksum: it is computed on device, on the arrays as they are
sharded, in one jitted pass (memory-bound like a single elementwise op: a few
ms per GB of parameters on an accelerator, so saving a 12B model does not
stall training, and each process only touches its own shards; the reduction
across processes is one all-reduce of two scalars per array). The arrays'
bits are reinterpreted as unsigned integers and summed with wrap-around
(mod 2**32). Integer addition is associative and commutative, so the result
is bit-exact whatever the sharding, the mesh or the order of the reduction:
a checkpoint saved on 256 chips verifies when restored on one CPU, with no
float tolerance to tune. A change to any one element changes its word by a
non-zero amount smaller than 2**32, so the word sum always changes; the sum
of squared words catches changes that cancel in the plain sum (two elements
moving by +d and -d). Several independent corruptions escape both only with
probability about 2**-64. A file-level hash (CRC of the bytes orbax wrote)
would have to read every file back after each save and again before each
restore, on every host; this needs neither.

A restore also checks that every floating-point array is finite, which also
covers checkpoints written before checksums existed.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from spectrax.checkpoints.state_tree import flatten_state

ALGORITHM = "uint32-wrapping-sum-and-sum-of-squares-v1"


class IntegrityError(ValueError):
  """A restored array does not match the checksum recorded when it was saved,
  or is not finite."""


def _words(x: jax.Array) -> jax.Array:
  """The array's bits as uint32 words (8-byte types give two per element)."""
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  size = x.dtype.itemsize
  if size == 8:
    return jax.lax.bitcast_convert_type(x, jnp.uint32)
  unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}[size]
  return jax.lax.bitcast_convert_type(x, unsigned).astype(jnp.uint32)


@jax.jit
def _summaries(arrays: dict[str, jax.Array]) -> dict[str, tuple]:
  def one(x):
    w = _words(x)
    finite = (jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact)
              else jnp.bool_(True))
    return (jnp.sum(w, dtype=jnp.uint32), jnp.sum(w * w, dtype=jnp.uint32),
            finite)
  return {name: one(x) for name, x in arrays.items()}


def _scalar(x: jax.Array):
  # Reductions come back replicated: any local shard holds the value, which
  # works in multi-process runs where the global array is not addressable.
  return np.asarray(x.addressable_data(0)).item()


def _arrays(tree: Any) -> dict[str, jax.Array]:
  """The `jax.Array` leaves by name (other leaves, e.g. Python ints, are
  stored as JSON by orbax and fail loudly when damaged)."""
  return {k: v for k, v in flatten_state(tree).items()
          if isinstance(v, jax.Array)}


def summarize(tree: Any) -> dict[str, dict]:
  """{name: {dtype, shape, sum, sumsq, finite}} for the `jax.Array` leaves of
  a state (flat or nested; names as `state_tree.flatten_state` gives them)."""
  arrays = _arrays(tree)
  out = jax.device_get(jax.tree.map(_scalar, _summaries(arrays)))
  return {name: {"dtype": str(x.dtype), "shape": list(x.shape),
                 "sum": int(out[name][0]), "sumsq": int(out[name][1]),
                 "finite": bool(out[name][2])}
          for name, x in arrays.items()}


def record(tree: Any) -> dict:
  """What a save stores (as JSON) next to the arrays."""
  return {"algorithm": ALGORITHM, "arrays": summarize(tree)}


def verify(tree: Any, recorded: dict | None) -> None:
  """Raises IntegrityError when a restored array is not finite or differs
  from its recorded checksum.

  `recorded` is what `record` stored, or None for a checkpoint written before
  checksums existed (only finiteness is checked). Arrays restored with
  another dtype or shape than saved (a runtime `param_dtype` override) can
  only be checked for finiteness.
  """
  saved = (recorded or {}).get("arrays", {})
  if recorded is not None and recorded.get("algorithm") != ALGORITHM:
    saved = {}  # A future algorithm: do not misreport a mismatch.
  problems = []
  for name, got in summarize(tree).items():
    if not got["finite"]:
      problems.append(f"{name} holds NaN or infinite values")
      continue
    want = saved.get(name)
    if (want is None or want["dtype"] != got["dtype"]
        or want["shape"] != got["shape"]):
      continue
    if (want["sum"], want["sumsq"]) != (got["sum"], got["sumsq"]):
      problems.append(f"{name} does not match the checksum recorded when it "
                      "was saved (its bytes changed on disk)")
  if problems:
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise IntegrityError("; ".join(problems[:3]) + more)
