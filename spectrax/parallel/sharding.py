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


# The one mesh-config key that is not an axis: how many nodes (GPU hosts) or
# TPU slices the data axis spans. See `make_mesh`.
DCN_DATA = "dcn_data"


def _divisors(n: int) -> list[int]:
  return [d for d in range(1, n + 1) if n % d == 0]


def _resolve_sizes(items: list[tuple[str, int]], n: int, where: str = "") -> list[int]:
  """The sizes with a -1 filled in so they multiply to `n` devices."""
  sizes = [int(v) for _, v in items]
  free = [i for i, s in enumerate(sizes) if s == -1]
  fixed = math.prod(s for s in sizes if s != -1)
  bad = [f"{k}={s}" for k, s in items if s == 0 or s < -1]
  if bad or len(free) > 1 or fixed == 0 or n % fixed:
    raise ValueError(
        f"mesh axis sizes {dict(items)} do not fit {n} devices{where}: sizes must be positive "
        f"divisors of {n} ({_divisors(n)}) multiplying to {n}, with at most one -1 for "
        "'the rest'")
  if free:
    sizes[free[0]] = n // fixed
  elif fixed != n:
    raise ValueError(f"mesh axis sizes {dict(items)} multiply to {fixed} but there are {n} "
                     f"devices{where}; choose sizes from {_divisors(n)} multiplying to {n}, or "
                     "set one to -1")
  return sizes


def granules(devices: Sequence[jax.Device]) -> list[list[jax.Device]]:
  """Devices grouped by the slow network between them: TPU slices (joined by
  DCN; chips within a slice talk over ICI), else processes (one per GPU node,
  joined by InfiniBand / Ethernet; GPUs within a node talk over NVLink).
  Sorted by slice / process index."""
  tpu = devices[0].platform == "tpu"
  groups: dict[int, list[jax.Device]] = {}
  for d in devices:
    key = getattr(d, "slice_index", 0) if tpu else d.process_index
    groups.setdefault(key, []).append(d)
  return [groups[k] for k in sorted(groups)]


def make_mesh(axis_sizes: Mapping[str, int] | Sequence[tuple[str, int]],
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A mesh with named axes; one size may be -1, meaning "all remaining devices".

  Example: ``make_mesh({"data": 1, "fsdp": -1, "tensor": 2})`` on 8 devices
  gives a (1, 4, 2) mesh.

  Node-local FSDP: with ``dcn_data=G`` (G > 1, or -1 for one per node / TPU
  slice) the other sizes describe *one* of G groups of nodes or slices (-1
  fills a group), and the ``data`` axis spans the groups: the mesh's data
  axis is ``G * data``. ``{"data": 1, "fsdp": -1, "tensor": 1, "dcn_data": 2}``
  on two 8-GPU nodes is data=2 x fsdp=8 with each node's GPUs on one data
  row, so parameters are gathered and gradients reduce-scattered over NVLink
  (or ICI) and only the data-parallel gradient all-reduce crosses the slow
  network. Groups are processes (GPU, one process per node), TPU slices, or,
  where there is only one (a single process simulating several nodes),
  equal runs of the device list. One group per granule uses
  ``mesh_utils.create_hybrid_device_mesh``; otherwise each group is laid out
  by ``mesh_utils.create_device_mesh`` and the groups are stacked on data.

  Raises:
    ValueError: if the sizes do not multiply to the device count, naming the
      sizes that would.
  """
  items = list(axis_sizes.items()) if isinstance(axis_sizes, Mapping) else list(axis_sizes)
  dcn = [int(v) for k, v in items if k == DCN_DATA]
  items = [(k, v) for k, v in items if k != DCN_DATA]
  devices = list(jax.devices() if devices is None else devices)
  names = tuple(k for k, _ in items)
  axis_types = (jax.sharding.AxisType.Auto,) * len(names)
  dcn_data = dcn[0] if dcn else 1
  units = granules(devices)
  if dcn_data == -1:
    dcn_data = len(units)
  if dcn_data == 1:
    sizes = _resolve_sizes(items, len(devices))
    return jax.make_mesh(tuple(sizes), names, axis_types=axis_types, devices=devices)
  return Mesh(hybrid_device_array(items, devices, dcn_data), names, axis_types=axis_types)


def hybrid_device_array(items: Sequence[tuple[str, int]], devices: Sequence[jax.Device],
                        dcn_data: int) -> np.ndarray:
  """The device array of a node-local mesh (see `make_mesh`): ``dcn_data``
  groups of nodes / slices stacked along the ``data`` axis."""
  # pylint: disable-next=g-import-not-at-top
  from jax.experimental import mesh_utils
  items = list(items)
  names = [k for k, _ in items]
  if "data" not in names:
    raise ValueError(f"{DCN_DATA}={dcn_data} spreads the data axis over nodes / slices, but "
                     f"the mesh {dict(items)} has no data axis")
  if dcn_data < 1:
    raise ValueError(f"{DCN_DATA}={dcn_data}: a whole number >= 1, or -1 for one per node / "
                     "slice")
  units = granules(devices)
  simulated = len(units) == 1
  tpu = devices[0].platform == "tpu"
  if simulated:  # One process or slice: split its devices (testing, planning).
    if len(devices) % dcn_data:
      raise ValueError(f"{DCN_DATA}={dcn_data} groups cannot split {len(devices)} devices "
                       f"evenly; use one of {_divisors(len(devices))}")
    per = len(devices) // dcn_data
    groups = [list(devices[i * per:(i + 1) * per]) for i in range(dcn_data)]
  else:
    kind = "TPU slices" if tpu else "processes (nodes)"
    if len(units) % dcn_data or (tpu and len(units) != dcn_data):
      allowed = [len(units)] if tpu else _divisors(len(units))
      raise ValueError(f"{DCN_DATA}={dcn_data}: the devices are on {len(units)} {kind}; use "
                       f"{DCN_DATA}={' or '.join(map(str, allowed))} (or -1 for one per "
                       f"{'slice' if tpu else 'process'})")
    if len({len(u) for u in units}) > 1:
      raise ValueError(f"{DCN_DATA}={dcn_data}: the {kind} have different device counts "
                       f"{[len(u) for u in units]}; a node-local mesh needs equal ones")
    per_group = len(units) // dcn_data
    groups = [sum(units[i * per_group:(i + 1) * per_group], [])
              for i in range(dcn_data)]
  where = f" per group of {DCN_DATA}={dcn_data} ({len(groups[0])} devices each)"
  ici = _resolve_sizes(items, len(groups[0]), where)
  axis = names.index("data")
  if not simulated and len(units) == dcn_data:
    dcn_shape = [dcn_data if i == axis else 1 for i in range(len(names))]
    return mesh_utils.create_hybrid_device_mesh(ici, dcn_shape, devices,
                                                process_is_granule=not tpu)
  return np.concatenate([mesh_utils.create_device_mesh(ici, g) for g in groups], axis=axis)


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


def without_axis(rules: Rules, axis: str) -> Rules:
  """``rules`` with mesh axis ``axis`` taken out of every target (a logical
  axis it alone sharded becomes replicated): the rules inside a
  ``jax.vmap(..., spmd_axis_name=axis)``, which shards the mapped dimension
  over ``axis`` itself."""
  out = []
  for name, target in rules:
    targets = (target,) if isinstance(target, str) else tuple(target or ())
    kept = tuple(t for t in targets if t != axis)
    out.append((name, None if not kept else kept[0] if len(kept) == 1 else kept))
  return tuple(out)


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
  if qspec[2] != kspec[2]:
    # A device's query heads must meet their own kv heads: query head i uses kv
    # head i // (heads // kv_heads), which holds per device only if both split alike.
    raise ValueError(
        f"attention kernels split per device need heads and kv_heads on the same mesh axes, but "
        f"the rules give heads -> {qspec[2]} and kv_heads -> {kspec[2]}; map both to the same "
        "axis (num_kv_heads must divide by its size) or use attention_backend 'xla' or 'dense'")
  sspec = PartitionSpec(qspec[0], None)
  return jax.shard_map(fn, mesh=mesh, in_specs=(qspec, kspec, kspec, sspec, PartitionSpec()),
                       out_specs=qspec, check_vma=False)(q, k, v, segment_ids, flag)


def host_local_array(x: jax.Array) -> np.ndarray:
  """A (possibly multi-process sharded) array fetched whole to host memory."""
  if x.is_fully_addressable:
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))
