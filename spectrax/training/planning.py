r"""Plans a run without its hardware: `python -m spectrax.plan --config=CONFIG`.

  python -m spectrax.plan --config=configs/gemma12b.py --devices=64 --accelerator=v5p
  python -m spectrax.plan --config=configs/gemma12b.py:gpu --devices=8 --accelerator=h200

Prints parameter, optimizer-state and activation memory per device, FLOPs
per step and the estimated step time, so an OOM shows up before queueing.

How: the train step is compiled ahead of time on a simulated mesh of
`--devices` CPU devices with the model cut to 2 and to 4 layers (the real
widths, vocabulary, batch and mesh); XLA's per-device memory analysis of the
two compilations gives the fixed and the per-layer cost, extrapolated
linearly to the real depth (layers are scanned, so each costs the same).
Parameters and optimizer state are also counted exactly from
`jax.eval_shape` of the full model and its shardings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

from absl import app
from absl import flags

_DEVICES = flags.DEFINE_integer(
    "devices", 0, "Devices of the target run (default: mesh sizes, or 8).")
_ACCEL = flags.DEFINE_string(
    "accelerator", "", "v4|v5e|v5p|v6e|h100|h200|a100 (default: from the "
    "config's attention backend: splash -> v5p, cudnn -> h200).")
_MFU = flags.DEFINE_float("assumed_mfu", 0.4, "MFU for the step-time estimate.")

# Dense bf16 peak FLOP/s and memory per chip.
ACCELERATORS = {
    "v4": (275e12, 32e9), "v5e": (197e12, 16e9), "v5p": (459e12, 95e9),
    "v6e": (918e12, 32e9), "h100": (989e12, 80e9), "h200": (989e12, 141e9),
    "a100": (312e12, 80e9),
}
GIB = 1024**3


def _device_count(c) -> int:
  if _DEVICES.value:
    return _DEVICES.value
  sizes = [v for v in c.mesh.to_dict().values() if v > 0]
  n = math.prod(sizes) if sizes else 1
  return n if all(v > 0 for v in c.mesh.to_dict().values()) else max(n, 8)


def _compile_memory(c, model_cfg, layers: int, mesh):
  """Per-device bytes (arguments, temporaries) of the compiled step."""
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import BATCH_KEYS, Trainer, make_optimizer  # pylint: disable=g-import-not-at-top
  # Fused kernels (cuDNN, splash) do not compile for CPU: plan with the
  # dense reference, which over-counts attention temporaries (it holds the
  # [length, length] scores) -- an upper bound.
  cut = dataclasses.replace(model_cfg, num_layers=layers,
                            layer_windows=model_cfg.layer_windows[:layers],
                            attention_backend="dense")
  optimizer, _ = make_optimizer(run_config.optimizer_config(c), 1000)
  trainer = Trainer(cut, optimizer, mesh,
                    tuple(tuple(r) for r in c.sharding_rules),
                    microbatches=c.train.microbatches,
                    chunk_size=c.train.loss_chunk_size)
  state = trainer.abstract_state()
  shape = (c.data.batch_size, c.data.seq_len)
  batch = {k: jax.ShapeDtypeStruct(
      shape, "float32" if k == "loss_mask" else "int32",
      sharding=trainer.batch_sharding) for k in BATCH_KEYS}
  compiled = trainer.step_fn().lower(state, batch).compile()
  mem = compiled.memory_analysis()
  return (mem.argument_size_in_bytes, mem.temp_size_in_bytes, trainer)


def plan(c, devices: int, accelerator: str, assumed_mfu: float) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.training import flops as flops_lib  # pylint: disable=g-import-not-at-top
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import sharding  # pylint: disable=g-import-not-at-top
  if c.init_from_hf:
    vocab = 0
  else:
    vocab = int(c.model.hf_config.get("vocab_size", 0) or 32000)
  probe = ml_copy(c)
  probe.init_from_hf = c.init_from_hf if os.path.exists(
      os.path.join(c.init_from_hf or "/nonexistent", "config.json")) else ""
  if not probe.init_from_hf and not probe.model.preset and \
      not probe.model.hf_config.to_dict():
    raise ValueError("the config names no architecture: set model.preset.")
  model_cfg = run_config.model_config(probe, vocab)
  mesh = sharding.make_mesh(c.mesh.to_dict(), devices=jax.devices()[:devices])
  run_config.check_mesh(c, mesh)
  # Two depths large enough that XLA keeps the layer loop rolled; the
  # per-layer cost is their difference (clamped: buffer reuse can make it
  # negative for temporaries, which then do not grow with depth).
  lo, hi = 2, 4
  a_lo, t_lo, trainer = _compile_memory(c, model_cfg, lo, mesh)
  a_hi, t_hi, _ = _compile_memory(c, model_cfg, hi, mesh)
  layers = model_cfg.num_layers
  args = a_hi + (layers - hi) * (a_hi - a_lo) / (hi - lo)
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
  full = Trainer(model_cfg, full_optimizer, mesh,
                 tuple(tuple(r) for r in c.sharding_rules)).abstract_state()
  params_bytes = per_device(full["params"])
  opt_bytes = per_device(full["opt_state"])
  peak, hbm = ACCELERATORS[accelerator]
  tokens = c.data.batch_size * c.data.seq_len * 0.96
  step_flops = flops_lib.train_step_flops_estimate(
      model_cfg, tokens, min(900.0, c.data.max_tokens))
  ideal = step_flops / (devices * peak)
  total = args + temp
  return {
      "model": {"family": model_cfg.family, "parameters": model_cfg.num_params(),
                "layers": layers, "vocab": model_cfg.vocab_size},
      "devices": devices, "accelerator": accelerator,
      "mesh": dict(mesh.shape),
      "per_device_gib": {
          "parameters": params_bytes / GIB,
          "optimizer_state": opt_bytes / GIB,
          "activations_and_temporaries": temp / GIB,
          "total_compiled": total / GIB,
          "accelerator_memory": hbm / GIB},
      "fits": total < 0.92 * hbm,
      "tokens_per_step": tokens,
      "flops_per_step": step_flops,
      "step_time_s_at_100pct_mfu": ideal,
      f"step_time_s_at_{int(assumed_mfu * 100)}pct_mfu": ideal / assumed_mfu,
  }


def ml_copy(c):
  import copy  # pylint: disable=g-import-not-at-top
  return copy.deepcopy(c)


def main(argv):
  del argv
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  c = flags.FLAGS["config"].value
  devices = _device_count(c)
  accelerator = _ACCEL.value or {"splash": "v5p", "cudnn": "h200"}.get(
      c.model.attention_backend, "v5p")
  if accelerator not in ACCELERATORS:
    raise app.UsageError(f"--accelerator={accelerator!r}: use one of "
                         f"{sorted(ACCELERATORS)}.")
  del config_flags
  result = plan(c, devices, accelerator, _MFU.value)
  mem = result["per_device_gib"]
  print(f"{result['model']['family']} {result['model']['parameters'] / 1e9:.2f}B"
        f" parameters on {devices} x {accelerator} (mesh {result['mesh']})")
  for k, v in mem.items():
    print(f"  {k:30s} {v:8.2f} GiB per device")
  print(f"  {'fits':30s} {result['fits']}  (attention planned with the dense "
        "backend: an upper bound for flash kernels)")
  print(f"  tokens/step {result['tokens_per_step']:.3g}, FLOPs/step "
        f"{result['flops_per_step']:.3g}, step time "
        f"{result['step_time_s_at_100pct_mfu']:.2f} s at 100% MFU, "
        f"{result['step_time_s_at_100pct_mfu'] / _MFU.value:.2f} s at "
        f"{_MFU.value:.0%}")
  if not result["fits"]:
    print("  -> does not fit: raise train.microbatches, use remat_policy=full, "
          "or shard more (mesh.fsdp / mesh.tensor).")
  print(json.dumps(result))
  return 0


def configure_devices() -> None:
  """Simulates the target's device count on CPU before jax starts."""
  n = 8
  for arg in sys.argv[1:]:
    if arg.startswith("--devices="):
      n = int(arg.split("=", 1)[1])
  os.environ["JAX_PLATFORMS"] = "cpu"
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_num_cpu_devices", max(n, 8))


