"""Collectives of a compiled program, counted per run from its optimized HLO text.

  compiled = jax.jit(step).lower(*abstract_args).compile()
  ops, unknown_loops = hlo_stats.collectives(compiled.as_text())
  hlo_stats.summarize(ops)   # {"all-gather": {"ops": 6, "bytes": ..., ...}, ...}

Nothing here can time a collective on CPU; what it can do exactly is count
them, which is how a sharding mistake (a weight gathered per loop iteration,
a float32 gather that should be bfloat16) shows before a pod is booked.

How ops are counted: the module is walked from ``ENTRY`` through every
computation an instruction calls (``while`` body and condition, ``call``,
``fusion``, ``conditional`` branches, async wrappers). An op inside a
``while`` body runs ``known_trip_count`` times (XLA's annotation in the loop's
``backend_config``), multiplied through nested loops; a loop without the
annotation counts once and is reported in ``unknown_trip_counts``. Every
branch of a ``conditional`` is counted (an upper bound). Async pairs count
once, at their ``-start``.

Narrow floats on CPU: XLA:CPU has no bfloat16 collectives; its float
normalization widens them (``convert`` to float32, the collective, ``convert``
back), while GPU and TPU backends run them in bfloat16. An operand that is
such a widening ``convert`` (looked for through fusions and layout-only ops)
is reported in the narrow dtype, with ``upcast`` set; in a combined (tuple)
collective, operand by operand. Compile
with ``compiler_options={"xla_allow_excess_precision": False}``, or XLA may
drop a ``convert`` pair (narrowing then widening) and hide it.

How bytes are counted: an op's *payload* is the larger of its operands and
its result, i.e. the whole array each device ends up with (all-gather) or
contributes (reduce-scatter, all-reduce, all-to-all, collective-permute).
Wire bytes per device are a fixed fraction of it for a given group size n
(ring: ``(n-1)/n`` for all-gather and reduce-scatter, ``2(n-1)/n`` for
all-reduce), so payloads compare programs on the same mesh exactly.

Which devices: each op keeps its device groups (``replica_groups`` in any of
XLA's three spellings, or a permute's ``source_target_pairs``) as partition
ids, which index the mesh's devices in row-major order; ``mesh_axes(op,
mesh.shape)`` names the mesh axes a collective crosses (e.g. ``("data",)``
for the all-reduce that crosses nodes on a data x fsdp mesh).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re

import numpy as np

KINDS = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")

_ITEMSIZE = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
             "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
             "s4": 0.5, "u4": 0.5}
_ARRAY = re.compile(r"\b([a-z]+[0-9]*(?:e[0-9]m[0-9][a-z]*)?)\[([0-9,]*)\]")
_HEADER = re.compile(r"^(ENTRY\s+)?%?([^\s(]+)\s*\(.*\{\s*$")
_INSTR = re.compile(r"^\s*(ROOT\s+)?%?([^\s=]+)\s*=\s*(.*)$")
_CALLED = re.compile(r"\b(body|condition|calls|to_apply|true_computation|false_computation)"
                     r"=%?([^\s,}]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_TRIP = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"?([0-9]+)')
_IOTA = r"\[([0-9,]+)\]<=\[([0-9,]+)\](?:T\(([0-9,]+)\))?"
_GROUPS_IOTA = re.compile(r"replica_groups=" + _IOTA)
_GROUPS_LIST = re.compile(r"(?:replica_groups|source_target_pairs)=\{((?:\{[0-9,]*\},?)*)\}")
_GROUPS_MESH = re.compile(r"replica_groups=mesh\[([^\]]*)\]"
                          r"(?:,\s*device_ids=\(\[([0-9,]+)\](?:T\(([0-9,]+)\))?\))?"
                          r"\s*\{([^}]*)\}")


@dataclasses.dataclass(frozen=True)
class Collective:
  """One collective instruction of the optimized HLO.

  ``arrays``: the payload's ``(dtype, dims)``; ``bytes``: payload bytes of one
  execution; ``executions``: times it runs per program run (product of the
  enclosing loops' trip counts); ``computation``: where it sits; ``upcast``:
  the backend widened narrower float operands to float32 (``arrays`` and
  ``bytes`` give those in the narrow dtype, see the module doc); ``groups``:
  the partition ids of each device group (``()``: every device in one group;
  ``None``: not written in a spelling this module reads).
  """
  kind: str
  name: str
  arrays: tuple[tuple[str, tuple[int, ...]], ...]
  bytes: int
  executions: int
  computation: str
  upcast: bool = False
  groups: tuple[tuple[int, ...], ...] | None = None

  @property
  def dtypes(self) -> tuple[str, ...]:
    return tuple(sorted({d for d, _ in self.arrays}))


def _arrays(shape_text: str) -> list[tuple[str, tuple[int, ...]]]:
  """``(dtype, dims)`` of every array in an HLO shape (tuples flattened); layouts ignored."""
  out = []
  for dtype, dims in _ARRAY.findall(shape_text):
    if dtype in _ITEMSIZE or dtype.startswith("f8"):
      out.append((dtype, tuple(int(d) for d in dims.split(",") if d)))
  return out


def _ints(text: str) -> list[int]:
  return [int(v) for v in text.split(",") if v]


def _iota(dims: str, perm: str | None) -> np.ndarray:
  """XLA's iota device list ``[dims]T(perm)``: ``arange`` reshaped to dims, transposed."""
  shape = _ints(dims)
  ids = np.arange(math.prod(shape)).reshape(shape)
  return ids.transpose(_ints(perm)) if perm else ids


def _groups(attrs: str) -> tuple[tuple[int, ...], ...] | None:
  """The device groups of a collective's attributes (see ``Collective``)."""
  m = _GROUPS_MESH.search(attrs)
  if m:
    axes = re.findall(r"'([^']+)'\s*=\s*([0-9]+)", m.group(1))
    shape = [int(n) for _, n in axes]
    ids = (_iota(m.group(2), m.group(3)) if m.group(2) else np.arange(math.prod(shape)))
    ids = ids.reshape(shape)
    names = [a for a, _ in axes]
    crossed = [names.index(a) for a in re.findall(r"'([^']+)'", m.group(4))]
    kept = [i for i in range(len(names)) if i not in crossed]
    size = math.prod(shape[i] for i in crossed)
    return tuple(tuple(int(v) for v in g)
                 for g in ids.transpose(kept + crossed).reshape(-1, size))
  m = _GROUPS_IOTA.search(attrs)
  if m:
    shape = _ints(m.group(1))
    return tuple(tuple(int(v) for v in g)
                 for g in _iota(m.group(2), m.group(3)).reshape(shape[0], -1))
  m = _GROUPS_LIST.search(attrs)
  if m:
    return tuple(tuple(_ints(g)) for g in re.findall(r"\{([0-9,]*)\}", m.group(1)))
  return None


def mesh_axes(op: Collective, mesh_shape) -> tuple[str, ...]:
  """The mesh axes along which ``op``'s groups span devices, in mesh order.

  ``mesh_shape``: ``{axis: size}`` in the mesh's order (``mesh.shape``);
  partition ids index its devices row-major. A collective over every device
  (or in a spelling not read) crosses every axis of size > 1.
  """
  names, sizes = list(mesh_shape), list(mesh_shape.values())
  if not op.groups:
    return tuple(a for a, n in zip(names, sizes) if n > 1)
  crossed = set()
  for group in op.groups:
    coords = np.array(np.unravel_index(np.array(group), sizes))  # [axes, members]
    crossed |= {names[i] for i in range(len(names)) if len(set(coords[i])) > 1}
  return tuple(a for a in names if a in crossed)


def _nbytes(arrays) -> int:
  return int(sum(math.prod(dims) * _ITEMSIZE.get(dtype, 1) for dtype, dims in arrays))


def _split_shape(rest: str) -> tuple[str, str]:
  """``"f32[2]{0} add(...)"`` -> (shape text, the rest); tuple shapes keep their parentheses."""
  if rest.startswith("("):
    depth = 0
    for i, ch in enumerate(rest):
      depth += ch == "("
      depth -= ch == ")"
      if depth == 0:
        return rest[:i + 1], rest[i + 1:].lstrip()
  shape, _, tail = rest.partition(" ")
  return shape, tail


def _parse(text: str):
  """``(computations, entry, shapes, roots)`` of an HLO module.

  ``computations``: ``{name: [(instr, shape, opcode, operand names, attrs)]}``;
  ``shapes``: instruction or parameter name -> shape text; ``roots``:
  computation -> its ROOT instruction.
  """
  comps: dict[str, list] = {}
  shapes: dict[str, str] = {}
  roots: dict[str, str] = {}
  entry, current = None, None
  for line in text.splitlines():
    if current is None:
      m = _HEADER.match(line)
      if m:
        current = m.group(2)
        comps[current] = []
        if m.group(1):
          entry = current
        # Parameters' shapes, for operands that are parameters.
        for pname, pshape in re.findall(r"([^\s(,]+):\s*((?:\([^)]*\))|[^\s,)]+(?:\{[^}]*\})?)",
                                        line.split("->")[0]):
          shapes[pname.lstrip("%")] = pshape
      continue
    if line.strip() == "}":
      current = None
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, rest = m.group(2), m.group(3)
    shape, tail = _split_shape(rest)
    opcode, _, args = tail.partition("(")
    depth, end = 1, len(args)
    for i, ch in enumerate(args):
      depth += (ch == "(") - (ch == ")")
      if depth == 0:
        end = i
        break
    operands = re.findall(r"%([^\s,)]+)", args[:end])
    shapes[name] = shape
    comps[current].append((name, shape, opcode.strip(), operands, args[end:]))
    if m.group(1):
      roots[current] = name
  if entry is None:
    raise ValueError("no ENTRY computation in the HLO text")
  return comps, entry, shapes, roots


_PASS_THROUGH = ("bitcast", "copy", "transpose", "reshape", "get-tuple-element")


def _widened_from(name, instrs, roots) -> str | None:
  """The narrow float dtype if operand ``name`` is ``convert(x: narrow)`` to float32, else None.

  Looks through fusions (their root) and layout-only ops (bitcast, copy,
  transpose, reshape).
  """
  while True:
    instr = instrs.get(name)
    if instr is None:
      return None
    _, _, opcode, ins, attrs = instr
    if opcode == "fusion":
      m = re.search(r"calls=%?([^\s,}]+)", attrs)
      name = roots.get(m.group(1)) if m else None
    elif opcode in _PASS_THROUGH and ins:
      name = ins[0]
    elif opcode == "convert" and ins:
      src = _arrays(instrs[ins[0]][1]) if ins[0] in instrs else []
      dtypes = {d for d, _ in src}
      if len(dtypes) != 1 or _ITEMSIZE.get(next(iter(dtypes)), 4) >= 4:
        return None
      return dtypes.pop()
    else:
      return None


def _narrowed(payload, narrows):
  """``payload`` with each float32 array a widened operand carries in its narrow dtype.

  A combined (tuple) collective has one payload array per operand, in order;
  otherwise only a collective whose every operand is widened, from one
  dtype, is narrowed.
  """
  if len(narrows) != len(payload):
    kinds = set(narrows)
    narrows = [kinds.pop()] * len(payload) if len(kinds) == 1 else [None] * len(payload)
  return [(n if n and d == "f32" else d, dims) for (d, dims), n in zip(payload, narrows)]


def collectives(hlo_text: str) -> tuple[list[Collective], int]:
  """Every collective reachable from ``ENTRY``, with its executions per run (see the module doc).

  Returns the collectives and the number of ``while`` loops without a known
  trip count (counted once each: a lower bound then). Each call site of a
  computation counts separately.
  """
  comps, entry, shapes, roots = _parse(hlo_text)
  instrs = {i[0]: i for ops in comps.values() for i in ops}
  found: list[Collective] = []
  unknown = [0]

  def walk(comp: str, times: int, stack: tuple[str, ...]):
    if comp in stack or comp not in comps:
      return
    for name, shape, opcode, operands, attrs in comps[comp]:
      kind = opcode[:-len("-start")] if opcode.endswith("-start") else opcode
      if kind in KINDS:
        result = _arrays(shape)
        ins = [a for o in operands for a in _arrays(shapes.get(o, ""))]
        if opcode.endswith("-start") and len(result) > len(ins):
          # An async start's result is (operands, outputs[, context]).
          result = result[len(ins):]
        wide = max((result, ins), key=_nbytes)
        payload = _narrowed(wide, [_widened_from(o, instrs, roots) for o in operands])
        found.append(Collective(kind, name, tuple(payload), _nbytes(payload), times, comp,
                                payload != wide, _groups(attrs)))
      if opcode.endswith("-done"):
        continue
      inner = times
      if opcode == "while":
        m = _TRIP.search(attrs)
        if m:
          inner = times * int(m.group(1))
        else:
          unknown[0] += 1
      called = [c for _, c in _CALLED.findall(attrs)]
      for m in _BRANCHES.finditer(attrs):
        called += [c.strip().lstrip("%") for c in m.group(1).split(",") if c.strip()]
      for c in called:
        walk(c, inner, stack + (comp,))

  walk(entry, 1, ())
  return found, unknown[0]


def summarize(ops, select=None) -> dict:
  """Per collective kind: ``ops`` (executions per run), ``static_ops`` (instructions, per call site),
  ``bytes`` (payload bytes per run) and ``bytes_by_dtype``; ``select(op)`` filters."""
  out = {}
  for kind in KINDS:
    chosen = [o for o in ops if o.kind == kind and (select is None or select(o))]
    by_dtype = collections.Counter()
    for o in chosen:
      for dtype, dims in o.arrays:
        by_dtype[dtype] += _nbytes([(dtype, dims)]) * o.executions
    out[kind] = {"ops": sum(o.executions for o in chosen), "static_ops": len(chosen),
                 "bytes": sum(o.bytes * o.executions for o in chosen),
                 "bytes_by_dtype": dict(sorted(by_dtype.items()))}
  return out


def total_bytes(summary: dict) -> int:
  return sum(v["bytes"] for v in summary.values())

