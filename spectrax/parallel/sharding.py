"""Logical-axis sharding: mesh construction and the logical -> mesh rules table.

Model code names *logical* axes only (``batch``, ``length``, ``embed``,
``heads``, ``kv_heads``, ``head_dim``, ``mlp``, ``vocab``, ``layers``). A rules
table, one per run and kept in the config, maps each logical name to a mesh
axis, a tuple of mesh axes, or ``None`` (replicated)::

    RULES = (("batch", ("data", "fsdp")), ("embed", "fsdp"), ("heads", "tensor"), ...)

``shardings(tree, mesh, rules)`` turns a tree of annotated parameters into
``NamedSharding``s; ``axis_rules(mesh, rules)`` is the context under which the
model's activation constraints (``constrain``) take effect. Outside that
context ``constrain`` is a no-op, so single-device code needs no mesh.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

Rules = Sequence[tuple[str, Any]]

# FSDP over (data, fsdp) for the batch, weights' embed dim sharded over fsdp,
# Megatron-style tensor parallelism over heads/mlp/vocab.
DEFAULT_RULES: Rules = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("layers", None),
)


def make_mesh(axis_sizes: Mapping[str, int] | Sequence[tuple[str, int]],
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh with named axes; one size may be -1, meaning "all remaining devices".

  Example: ``make_mesh({"data": 1, "fsdp": -1, "tensor": 2})`` on 8 devices
  gives a (1, 4, 2) mesh.

  Raises:
    ValueError: if the sizes do not multiply to the device count, naming the
      sizes that would.
  """
  items = list(axis_sizes.items()) if isinstance(axis_sizes, Mapping) else list(axis_sizes)
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  names = [k for k, _ in items]
  sizes = [int(v) for _, v in items]
  free = [i for i, s in enumerate(sizes) if s == -1]
  fixed = math.prod(s for s in sizes if s != -1)
  bad = [f"{k}={s}" for k, s in items if s == 0 or s < -1]
  if bad or len(free) > 1 or fixed == 0 or n % fixed:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    raise ValueError(
        f"mesh axis sizes {dict(items)} do not fit {n} devices: sizes must be positive divisors "
        f"of {n} ({divisors}) multiplying to {n}, with at most one -1 for 'the rest'")
  if free:
    sizes[free[0]] = n // fixed
  elif fixed != n:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    raise ValueError(f"mesh axis sizes {dict(items)} multiply to {fixed} but there are {n} "
                     f"devices; choose sizes from {divisors} multiplying to {n}, or set one to -1")
  axis_types = (jax.sharding.AxisType.Auto,) * len(names)
  return jax.make_mesh(tuple(sizes), tuple(names), axis_types=axis_types, devices=devices)


def logical_to_spec(axes: Sequence[str | None], rules: Rules, mesh: Mesh | None = None) -> PartitionSpec:
  """Maps logical axis names to a ``PartitionSpec``.

  A mesh axis is used at most once per spec (the first logical axis that
  claims it wins, later ones are replicated), and mesh axes of size 1 are
  dropped so specs stay readable.
  """
  table = dict(rules)
  used: set[str] = set()
  out = []
  for name in axes:
    if name is not None and name not in table:
      raise ValueError(f"logical axis {name!r} has no rule; add ({name!r}, mesh_axis_or_None) "
                       f"to the rules table (rules cover {sorted(table)})")
    target = table.get(name) if name is not None else None
    targets = (target,) if isinstance(target, str) else tuple(target or ())
    if mesh is not None:
      unknown = [t for t in targets if t not in mesh.shape]
      if unknown:
        raise ValueError(f"rule for {name!r} names mesh axes {unknown} that the mesh lacks; "
                         f"mesh axes are {tuple(mesh.shape)}")
      targets = tuple(t for t in targets if mesh.shape[t] > 1)
    targets = tuple(t for t in targets if t not in used)
    used.update(targets)
    out.append(None if not targets else targets[0] if len(targets) == 1 else targets)
  return PartitionSpec(*out)


def _check_divisible(path: str, shape, spec: PartitionSpec, mesh: Mesh):
  for dim, entry in zip(shape, spec):
    axes = (entry,) if isinstance(entry, str) else tuple(entry or ())
    size = math.prod(mesh.shape[a] for a in axes)
    if dim % size:
      raise ValueError(f"{path}: dimension {dim} cannot be split over mesh axes {axes} (size "
                       f"{size}); change the rules table or the mesh sizes for this axis")


def logical_axes(variable) -> tuple[str | None, ...] | None:
  """The logical axes stored on an nnx Variable (``out_sharding`` metadata), or None."""
  meta = variable.get_metadata() if hasattr(variable, "get_metadata") else {}
  axes = meta.get("out_sharding")
  return tuple(axes) if axes else None


def shardings(tree, mesh: Mesh, rules: Rules):
  """NamedShardings for a tree whose leaves are annotated nnx Variables.

  Leaves without annotations (scalars, counters) are replicated explicitly,
  so the result can be passed as jit ``out_shardings`` as is.
  """
  from flax import nnx

  def one(path, leaf):
    axes = logical_axes(leaf) if isinstance(leaf, nnx.Variable) else None
    shape = getattr(leaf, "shape", ())
    if not axes:
      spec = PartitionSpec()
    else:
      spec = logical_to_spec(axes, rules, mesh)
      _check_divisible(jax.tree_util.keystr(path), shape, spec, mesh)
    sh = NamedSharding(mesh, spec)
    return leaf.replace(sh) if isinstance(leaf, nnx.Variable) else sh

  return jax.tree_util.tree_map_with_path(one, tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


class _Context(threading.local):
  mesh: Mesh | None = None
  rules: Rules = ()


_context = _Context()


@contextlib.contextmanager
def axis_rules(mesh: Mesh, rules: Rules = DEFAULT_RULES):
  """Within this context (at trace time), ``constrain`` applies the rules on ``mesh``."""
  old = (_context.mesh, _context.rules)
  _context.mesh, _context.rules = mesh, tuple(rules)
  try:
    yield
  finally:
    _context.mesh, _context.rules = old


def constrain(x: jax.Array, axes: Sequence[str | None]) -> jax.Array:
  """``with_sharding_constraint`` by logical names; a no-op outside ``axis_rules``."""
  if _context.mesh is None:
    return x
  spec = logical_to_spec(axes, _context.rules, _context.mesh)
  return jax.lax.with_sharding_constraint(x, NamedSharding(_context.mesh, spec))


def shard_batch_heads(fn: Callable, q, k, v, segment_ids, flag):
  """Runs a per-device attention kernel ``fn(q, k, v, segment_ids, flag)`` under ``shard_map``.

  Kernels such as splash attention are opaque to the SPMD partitioner; this
  splits batch and heads per the active rules (length stays whole). Without
  an ``axis_rules`` context it just calls ``fn``.
  """
  mesh = _context.mesh
  if mesh is None:
    return fn(q, k, v, segment_ids, flag)
  rules = _context.rules
  qspec = logical_to_spec(("batch", "length", "heads", "head_dim"), rules, mesh)
  kspec = logical_to_spec(("batch", "length", "kv_heads", "head_dim"), rules, mesh)
  sspec = PartitionSpec(qspec[0], None)
  return jax.shard_map(fn, mesh=mesh, in_specs=(qspec, kspec, kspec, sspec, PartitionSpec()),
                       out_specs=qspec, check_vma=False)(q, k, v, segment_ids, flag)


def host_local_array(x: jax.Array) -> np.ndarray:
  """A (possibly multi-process sharded) array fetched whole to host memory."""
  if x.is_fully_addressable:
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
