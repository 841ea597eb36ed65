r"""Plans a run without its hardware (the library of `python -m spectrax.plan`).

  planning.use_cpu_devices(64)  # before jax starts
  result = planning.plan(config, 64, "v5p", assumed_mfu=0.4)
  print("\n".join(planning.summary_lines(result, 0.4)))

Gives parameter, optimizer-state and activation memory per device, FLOPs
per step and the estimated step time, so an OOM shows up before queueing.

How: the train step is compiled ahead of time on a simulated mesh of
`devices` CPU devices with the model cut to 2 and to 4 layers (the real
widths, vocabulary, batch and mesh); XLA's per-device memory analysis of the
two compilations gives the fixed and the per-layer cost, extrapolated
linearly to the real depth (layers are scanned, so each costs the same).
Parameters and optimizer state are also counted exactly from
`jax.eval_shape` of the full model and its shardings.

A LoRA config (`config.lora.rank > 0`) is planned as it trains: the frozen
base in the compute dtype ("parameters"), the float32 adapters and their
AdamW moments ("adapters", "optimizer_state"), and the activations of the
step with its remat policy; FLOPs count no weight gradients for the base.
XLA:CPU computes bf16 matmuls in float32 and so converts the scanned bf16
layer weights into a float32 copy (4 bytes per weight; an accelerator
multiplies bf16 directly); for a LoRA plan, whose base is bf16 throughout,
that copy is measured out of the temporaries ("cpu_upcast_excluded_gib").
The head's copy (a fixed cost) is left in: the figure stays an upper bound.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os

# Dense bf16 peak FLOP/s and memory per chip.
ACCELERATORS = {
    "v4": (275e12, 32e9), "v5e": (197e12, 16e9), "v5p": (459e12, 95e9),
    "v6e": (918e12, 32e9), "h100": (989e12, 80e9), "h200": (989e12, 141e9),
    "a100": (312e12, 80e9),
}
GIB = 1024**3
# A plan fits when its compiled total stays under this share of the
# accelerator's memory (the rest: XLA's and the runtime's own buffers).
USABLE_MEMORY_FRACTION = 0.92


class PlanError(ValueError):
  """A plan that cannot be made as asked (devices, accelerator, config)."""


def device_count(c, requested: int = 0) -> int:
  """`requested`, or the config's mesh size (at least 8 when an axis is -1)."""
  if requested < 0:
    raise PlanError(f"--devices={requested}: give a positive device count "
                    "(0: from the config's mesh).")
  if requested:
    return requested
  sizes = [v for v in c.mesh.to_dict().values() if v > 0]
  n = math.prod(sizes) if sizes else 1
  return n if all(v > 0 for v in c.mesh.to_dict().values()) else max(n, 8)


def accelerator_for(c, requested: str = "") -> str:
  """`requested`, or the one the config's attention backend implies."""
  accelerator = requested or {"splash": "v5p", "cudnn": "h200"}.get(
      c.model.attention_backend, "v5p")
  if accelerator not in ACCELERATORS:
    raise PlanError(f"--accelerator={accelerator!r}: use one of "
                    f"{sorted(ACCELERATORS)}.")
  return accelerator


def use_cpu_devices(n: int) -> None:
  """Simulates `n` devices on CPU; call before jax starts its backend."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_platforms", "cpu")
  jax.config.update("jax_num_cpu_devices", n)


# The two depths a cut step is compiled at: large enough that XLA keeps the
# layer loop rolled; a per-layer cost is their difference.
CUT_DEPTHS = (2, 4)


def to_depth(at_lo: float, at_hi: float, layers: int) -> float:
  """A cost measured at the `CUT_DEPTHS`, extrapolated linearly to `layers`
  (layers are scanned, so each costs the same)."""
  lo, hi = CUT_DEPTHS
  return at_hi + (layers - hi) * (at_hi - at_lo) / (hi - lo)


def compile_cut_step(c, model_cfg, layers: int, mesh, compiler_options=None):
  """`(compiled, trainer)`: config `c`'s train step, compiled ahead of time on
  `mesh` with the model cut to its first `layers` layers.

  Everything else is the run's: widths, vocabulary, batch, micro-batches,
  loss chunk, optimizer, sharding rules, LoRA. Fused attention kernels
  (cuDNN, splash) do not compile for CPU: the cut model uses the dense
  reference, which over-counts attention temporaries (it holds the
  [length, length] scores) -- an upper bound for memory, and no change to
  the step's parameter and gradient collectives.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import BATCH_KEYS, Trainer, make_optimizer  # pylint: disable=g-import-not-at-top
  cut = dataclasses.replace(model_cfg, num_layers=layers,
                            layer_windows=model_cfg.layer_windows[:layers],
                            attention_backend="dense")
  optimizer, _ = make_optimizer(run_config.optimizer_config(c), 1000)
  trainer = Trainer(cut, optimizer, mesh,
                    tuple(tuple(r) for r in c.sharding_rules),
                    microbatches=c.train.microbatches,
                    chunk_size=c.train.loss_chunk_size,
                    lora=run_config.lora_config(c))
  state = trainer.abstract_state()
  shape = (c.data.batch_size, c.data.seq_len)
  batch = {k: jax.ShapeDtypeStruct(
      shape, "float32" if k == "loss_mask" else "int32",
      sharding=trainer.batch_sharding) for k in BATCH_KEYS}
  lowered = trainer.step_fn().lower(state, batch)
  return lowered.compile(compiler_options=compiler_options), trainer


def _compile_memory(c, model_cfg, layers: int, mesh):
  """Per-device bytes (arguments, temporaries) of the compiled cut step."""
  compiled, trainer = compile_cut_step(c, model_cfg, layers, mesh)
  mem = compiled.memory_analysis()
  return (mem.argument_size_in_bytes, mem.temp_size_in_bytes, trainer)


def planned_model_config(c):
  """The run's architecture, without its checkpoint's weights: from the
  checkpoint's config.json when that is on this machine, else the config's
  preset / hf_config (a recipe config's `model.preset`)."""
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  if c.init_from_hf:
    vocab = 0
  else:
    vocab = int(c.model.hf_config.get("vocab_size", 0) or 32000)
  probe = copy.deepcopy(c)
  probe.init_from_hf = c.init_from_hf if os.path.exists(
      os.path.join(c.init_from_hf or "/nonexistent", "config.json")) else ""
  if not probe.init_from_hf and not probe.model.preset and \
      not probe.model.hf_config.to_dict():
    raise PlanError("the config names no architecture: set model.preset.")
  return run_config.model_config(probe, vocab)


def mesh_for(c, devices: int):
  """The config's mesh on the first `devices` jax devices, checked against its batch."""
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import sharding  # pylint: disable=g-import-not-at-top
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  if len(jax.devices()) < devices:
    raise PlanError(f"planning for {devices} devices needs as many jax devices; "
                    f"this process has {len(jax.devices())} (use_cpu_devices).")
  mesh = sharding.make_mesh(c.mesh.to_dict(), devices=jax.devices()[:devices])
  run_config.check_mesh(c, mesh)
  return mesh


def plan(c, devices: int, accelerator: str, assumed_mfu: float) -> dict:
  """Memory per device, FLOPs and step time of config `c` on `devices` chips.

  Needs `devices` jax devices (on CPU: `use_cpu_devices` first).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.models import lora as lora_lib  # pylint: disable=g-import-not-at-top
  from spectrax.training import flops as flops_lib  # pylint: disable=g-import-not-at-top
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  mesh = mesh_for(c, devices)
  model_cfg = planned_model_config(c)
  # Temporaries' per-layer cost is clamped: buffer reuse can make it
  # negative, and they then do not grow with depth.
  lo, hi = CUT_DEPTHS
  a_lo, t_lo, trainer = _compile_memory(c, model_cfg, lo, mesh)
  a_hi, t_hi, _ = _compile_memory(c, model_cfg, hi, mesh)
  layers = model_cfg.num_layers
  args = to_depth(a_lo, a_hi, layers)
  temp = max(t_lo, t_hi) + (layers - hi) * max(0, t_hi - t_lo) / (hi - lo)
  # Exact parameter / optimizer bytes per device from the full abstract state.
  full_optimizer = trainer.optimizer

  def per_device(tree):
    total = 0
    for leaf, sh in zip(jax.tree.leaves(tree), jax.tree.leaves(
        jax.tree.map(lambda x: x.sharding, tree))):
      shard = sh.shard_shape(leaf.shape)
      total += math.prod(shard) * leaf.dtype.itemsize
    return total

  from spectrax.training.step import Trainer  # pylint: disable=g-import-not-at-top
  lora = run_config.lora_config(c)
  full_trainer = Trainer(model_cfg, full_optimizer, mesh,
                         tuple(tuple(r) for r in c.sharding_rules), lora=lora)
  full = full_trainer.abstract_state()
  params_bytes = per_device(full["params"])
  opt_bytes = per_device(full["opt_state"])
  memory = {"parameters": params_bytes / GIB}
  if lora is not None:  # "parameters": the frozen base; the adapters apart
    memory = {"parameters": per_device(full_trainer.abstract_frozen_state()) / GIB,
              "adapters": params_bytes / GIB}
  peak, hbm = ACCELERATORS[accelerator]
  tokens = c.data.batch_size * c.data.seq_len * 0.96
  step_flops = flops_lib.train_step_flops_estimate(
      model_cfg, tokens, min(900.0, c.data.max_tokens), lora=lora)
  ideal = step_flops / (devices * peak)
  cpu_upcast = 0.0
  if (lora is not None and jax.default_backend() == "cpu"
      and model_cfg.dtype in ("bfloat16", "float16")):
    layer_weights = jax.tree_util.tree_leaves_with_path(full_trainer.abstract_frozen_state())
    cpu_upcast = 2.0 * per_device({  # the bf16 bytes twice: their float32 copy
        jax.tree_util.keystr(p): x for p, x in layer_weights
        if len(x.shape) >= 3 and "layers" in jax.tree_util.keystr(p)})
    temp = max(0.0, temp - cpu_upcast)
  total = args + temp
  return {
      "model": {"family": model_cfg.family, "parameters": model_cfg.num_params(),
                "layers": layers, "vocab": model_cfg.vocab_size},
      "devices": devices, "accelerator": accelerator,
      "mesh": dict(mesh.shape),
      "remat_policy": model_cfg.remat_policy,
      "microbatches": c.train.microbatches,
      "per_device_gib": {
          **memory,
          "optimizer_state": opt_bytes / GIB,
          "activations_and_temporaries": temp / GIB,
          "total_compiled": total / GIB,
          "accelerator_memory": hbm / GIB},
      "fits": total < USABLE_MEMORY_FRACTION * hbm,
      **({"cpu_upcast_excluded_gib": cpu_upcast / GIB} if cpu_upcast else {}),
      **({} if lora is None else {"lora": {
          "rank": lora.rank, "targets": ",".join(lora.targets),
          "adapter_parameters": lora_lib.num_adapter_params(model_cfg, lora),
          "base_dtype": model_cfg.param_dtype}}),
      "tokens_per_step": tokens,
      "flops_per_step": step_flops,
      "step_time_s_at_100pct_mfu": ideal,
      f"step_time_s_at_{int(assumed_mfu * 100)}pct_mfu": ideal / assumed_mfu,
  }


def summary_lines(result: dict, assumed_mfu: float) -> list[str]:
  """`plan`'s result for people: memory per device, fit, step time."""
  mem = result["per_device_gib"]
  model = result["model"]
  step_time = result["step_time_s_at_100pct_mfu"]
  lines = [f"{model['family']} {model['parameters'] / 1e9:.2f}B parameters on "
           f"{result['devices']} x {result['accelerator']} (mesh {result['mesh']})"]
  if "lora" in result:
    lo = result["lora"]
    lines.append(f"  LoRA rank {lo['rank']} on {lo['targets']}: {lo['adapter_parameters'] / 1e6:.1f}M "
                 f"trainable; frozen base in {lo['base_dtype']}, remat {result['remat_policy']}, "
                 f"{result['microbatches']} micro-batches")
  lines += [f"  {k:30s} {v:8.2f} GiB per device" for k, v in mem.items()]
  lines.append(f"  {'fits':30s} {result['fits']}  (attention planned with the dense "
               "backend: an upper bound for flash kernels)")
  lines.append(f"  tokens/step {result['tokens_per_step']:.3g}, FLOPs/step "
               f"{result['flops_per_step']:.3g}, step time {step_time:.2f} s at 100% "
               f"MFU, {step_time / assumed_mfu:.2f} s at {assumed_mfu:.0%}")
  if not result["fits"]:
    lines.append("  -> does not fit: raise train.microbatches, use remat_policy=full, "
                 "or shard more (mesh.fsdp / mesh.tensor).")
  return lines
