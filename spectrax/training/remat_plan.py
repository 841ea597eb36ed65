r"""Memory and recomputation of each remat policy: the table of `python -m spectrax.plan`.

  policies = remat_plan.parse_policies("all")       # or "save_qkv,full"
  table = remat_plan.table(config, 8, "h200", 0.4, policies)
  print("\n".join(remat_plan.table_lines(table, config.model.remat_policy)))

Memory: each policy's train step is planned exactly as `planning.plan` plans
the config's own (two AOT compiles of the cut model on simulated CPU devices,
extrapolated to the real depth; dense attention, an upper bound for flash
kernels), so a row costs two compiles. The compiled figure can count a kept
tensor twice: where the backward reads a bfloat16 residual in float32 (Gemma
3's QK-norm input), XLA:CPU converts the whole stacked residual to a float32
copy before the backward loop (Gemma 3 12B, save_qkv: 6.0 GiB kept, +11.7 GiB
compiled over full; Llama 3.1 8B: 3.0 and +3.0). `saved_residuals_gib` is the
exact figure: what the backward keeps beyond full remat, in the compute dtype (the
leaves of one layer's `jax.vjp`, per row, x layers x rows per micro-batch,
split over every device; with dense attention, so for `none` and `dots` it
includes [length, length] scores a flash kernel never keeps). Full remat's
activations plus `saved` is the estimate without that copy.

Host offload: XLA:CPU has one memory space, so its compile keeps offloaded
residuals with the device temporaries. They are moved to the row's "host"
figure: the offloaded tensors of one layer (their shapes from the layer's
jaxpr), scaled the same way.

Recomputation (`layer_flops_factor`): the matmul FLOPs of one decoder
layer's forward and backward for one row of `data.seq_len` tokens, counted
in the jaxpr of its gradient under the policy, over the same count without
remat (attention as dense matmuls over the whole row; elementwise work not
counted). The forward and backward are separate scans, so XLA runs what the
jaxpr recomputes. The head and the loss are rematerialised chunk by chunk
under every policy and are not in the factor. With LoRA the gradient is taken
for the adapters and the layer input only, as the LoRA step does.
"""

from __future__ import annotations

import copy
import math
import time
from typing import NamedTuple

from spectrax.models import remat
from spectrax.training import planning

ALL = "all"


def parse_policies(text: str) -> tuple[str, ...]:
  """`--remat_policies`: "all", "" (none) or a comma list of policy names."""
  if text.strip() == ALL:
    return tuple(remat.POLICIES)
  names = tuple(n.strip() for n in text.split(",") if n.strip())
  unknown = [n for n in names if n not in remat.POLICIES]
  if unknown:
    raise planning.PlanError(f"--remat_policies={text}: unknown {', '.join(unknown)}; "
                             f"use {ALL}, or some of {', '.join(remat.POLICIES)}.")
  return names


def _dot_flops(eqn) -> int:
  (contract, _), _ = eqn.params["dimension_numbers"]
  lhs = eqn.invars[0].aval.shape
  return 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contract)


def _sub_jaxprs(value):
  """The jaxprs inside an equation parameter (a Jaxpr, ClosedJaxpr or a tuple of them)."""
  if hasattr(value, "eqns"):
    return [value]
  if hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
    return [value.jaxpr]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def _walk(jaxpr, names: dict) -> int:
  """Matmul FLOPs of ``jaxpr`` (scans times their length, conds their largest
  branch); records the aval of each ``checkpoint_name`` tag in ``names``."""
  total = 0
  for eqn in jaxpr.eqns:
    prim = eqn.primitive.name
    if prim == "dot_general":
      total += _dot_flops(eqn)
    elif prim == "name":
      names[eqn.params["name"]] = eqn.outvars[0].aval
    inner = [_walk(j, names) for v in eqn.params.values() for j in _sub_jaxprs(v)]
    if prim == "cond":
      total += max(inner, default=0)
    else:
      total += sum(inner) * (eqn.params["length"] if prim == "scan" else 1)
  return total


class LayerCost(NamedTuple):
  """One decoder layer under a policy, for one row (see ``layer_costs``)."""
  flops: int  # matmul FLOPs of forward + backward, recomputation included
  tag_bytes: dict  # {checkpoint_name tag: bytes}
  residual_bytes: int  # what the backward keeps, the layer's weights and input included


def layer_costs(model_cfg, policy: str, length: int, lora=None) -> LayerCost:
  """One decoder layer, one row of ``length`` tokens, under ``policy``.

  Traced only (no compile); attention is dense. The residuals are the
  leaves of the layer's ``jax.vjp`` (offloaded ones included).
  """
  import dataclasses  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from spectrax.models import lora as lora_lib  # pylint: disable=g-import-not-at-top
  from spectrax.models.config import GLOBAL_WINDOW  # pylint: disable=g-import-not-at-top
  from spectrax.models.transformer import DecoderLayer  # pylint: disable=g-import-not-at-top
  cfg = dataclasses.replace(model_cfg, attention_backend="dense", remat_policy=policy)
  graphdef, state = nnx.split(nnx.eval_shape(lambda: DecoderLayer(cfg, rngs=nnx.Rngs(0))))
  positions = jnp.arange(length, dtype=jnp.int32)[None]
  segment_ids = jnp.ones((1, length), jnp.int32)
  inv_freq = jnp.asarray(cfg.inv_freq_array()[0])
  x = jax.ShapeDtypeStruct((1, length, cfg.hidden_size), jnp.dtype(cfg.dtype))
  if lora is None:
    adapters = None
  else:
    adapters = {t: {k: jax.ShapeDtypeStruct(v.shape[1:], v.dtype) for k, v in ab.items()}
                for t, ab in lora_lib.abstract_adapters(cfg, lora).items()}

  def layer(trained, x, frozen):
    """Differentiated in ``trained``: the weights, or with LoRA the adapters only."""
    state, adapters = (trained, None) if lora is None else (frozen, trained)
    layer_lora = None if lora is None else lora_lib.LayerLora(lora, adapters, None)
    out = nnx.merge(graphdef, state)(x, positions, segment_ids, GLOBAL_WINDOW, inv_freq,
                                     lora=layer_lora)
    return out.astype(jnp.float32).sum()
  body = remat.apply(layer, policy)
  trained = state if lora is None else adapters
  jaxpr = jax.make_jaxpr(jax.grad(body, argnums=(0, 1)))(trained, x, state)
  names = {}
  flops = _walk(jaxpr.jaxpr, names)
  pullback = jax.eval_shape(
      lambda trained, x, frozen: jax.vjp(lambda t, y: body(t, y, frozen), trained, x)[1],
      trained, x, state)
  residuals = sum(math.prod(r.shape) * r.dtype.itemsize for r in jax.tree.leaves(pullback))
  return LayerCost(flops, {n: math.prod(a.shape) * a.dtype.itemsize for n, a in names.items()},
                   residuals)


def table(c, devices: int, accelerator: str, assumed_mfu: float, policies,
          known: dict | None = None) -> dict:
  """``{policy: row}`` for each of ``policies`` (in the table's order).

  A row, GiB per device: ``activations_and_temporaries_gib`` and
  ``total_compiled_gib`` as compiled (offloaded tensors excluded),
  ``saved_residuals_gib`` (what the policy keeps on the device beyond full
  remat, in the compute dtype), ``host_offload_gib``; and ``fits``,
  ``layer_flops_factor``, ``compile_s`` (its two compiles). ``known``:
  ``{policy: (planning.plan result, seconds)}`` already planned (the
  config's own), not compiled again. Needs ``devices`` jax devices.
  """
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  known = dict(known or {})
  model_cfg = planning.planned_model_config(c)
  lora = run_config.lora_config(c)

  def cost(policy):
    return layer_costs(model_cfg, policy, c.data.seq_len, lora)
  none, full = cost("none"), cost("full")
  # Per-row bytes of one layer -> GiB per device over the whole depth.
  per_device = (model_cfg.num_layers * (c.data.batch_size // c.train.microbatches)
                / devices / planning.GIB)
  hbm = planning.ACCELERATORS[accelerator][1]
  out = {}
  for policy in (p for p in remat.POLICIES if p in policies):
    if policy in known:
      result, seconds = known[policy]
    else:
      variant = copy.deepcopy(c)
      variant.model.remat_policy = policy
      start = time.perf_counter()
      result = planning.plan(variant, devices, accelerator, assumed_mfu)
      seconds = time.perf_counter() - start
    mem = result["per_device_gib"]
    layer = cost(policy)
    offloaded = sum(layer.tag_bytes[n] for n in remat.get(policy).offloaded)
    host = per_device * offloaded
    total = mem["total_compiled"] - host
    out[policy] = {
        "activations_and_temporaries_gib": mem["activations_and_temporaries"] - host,
        "saved_residuals_gib": per_device * (layer.residual_bytes - full.residual_bytes
                                             - offloaded),
        "host_offload_gib": host,
        "total_compiled_gib": total,
        "fits": total * planning.GIB < planning.USABLE_MEMORY_FRACTION * hbm,
        "layer_flops_factor": layer.flops / none.flops,
        "compile_s": seconds,
    }
  return out


def table_lines(rows: dict, own_policy: str) -> list[str]:
  """The table for people: one line per policy, GiB per device."""
  lines = ["remat policies, GiB per device (saved: what the policy keeps beyond full remat, "
           "in the compute dtype; layer FLOPs: over no remat):",
           f"  {'policy':26s} {'activations':>11s} {'saved':>7s} {'host':>6s} {'total':>7s} "
           f"{'fits':>5s} {'layer FLOPs':>11s} {'compile':>8s}"]
  for policy, r in rows.items():
    label = policy + (" (config)" if policy == own_policy else "")
    host = f"{r['host_offload_gib']:6.2f}" if r["host_offload_gib"] else f"{'-':>6s}"
    lines.append(f"  {label:26s} {r['activations_and_temporaries_gib']:11.2f} "
                 f"{r['saved_residuals_gib']:7.2f} {host} {r['total_compiled_gib']:7.2f} "
                 f"{'yes' if r['fits'] else 'no':>5s} {r['layer_flops_factor']:10.2f}x "
                 f"{r['compile_s']:7.0f}s")
  return lines
