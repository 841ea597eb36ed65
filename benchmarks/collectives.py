r"""Collectives of the real train step, per step, from its optimized HLO on simulated meshes.

  python benchmarks/collectives.py [--recipes=gemma12b,llama8b,qwen14b]
                                   [--meshes=gpu_node,gpu_2_nodes,v5p_128]
  python benchmarks/collectives.py --recipes=none [--vocab=8192] [--hidden=256] [--layers=2]
      [--seq=256] [--batch=16] [--microbatches=2] [--chunk=64] [--fsdp=8]   # a small model

Default: the train step of each recipe config (configs/gemma12b.py,
llama8b.py, qwen14b.py), compiled ahead of time on CPU devices as
`spectrax.plan` compiles it (`planning.compile_cut_step`: the run's widths,
vocabulary, batch of 512 x 2048 tokens, micro-batches, loss chunk, optimizer
and sharding rules; the dense attention reference for cuDNN / splash), on
three meshes:

  gpu_node     `:gpu` on one 8-GPU node: fsdp=8, 16 micro-batches
  gpu_2_nodes  `:gpu` on two nodes, as launch/gpu_slurm.sbatch runs it
               (mesh.dcn_data=2): data=2 x fsdp=8, 16 micro-batches
  v5p_128      `:tpu` on a v5p-128 slice (64 chips): fsdp=64, 1 micro-batch

The model is cut to 2 and 4 layers and each figure extrapolated linearly to
the real depth (`planning.to_depth`; layers are scanned, so each adds the
same collectives). Nothing is scaled down: at the real batch each compile
takes seconds. --recipes=none measures the small Gemma-style model instead
(tests/test_collectives.py uses its `compile_step` and `measure`).

What is counted (`spectrax.training.hlo_stats`): every all-gather,
all-reduce, reduce-scatter, all-to-all and collective-permute per step, ops
inside loops multiplied by their trip counts; bytes = each op's payload, the
whole array gathered or reduced (a reduce-scatter's input, an all-gather's
output); a bfloat16 collective that XLA:CPU widens to float32 is counted as
bfloat16, as GPUs and TPUs run it. XLA:CPU emits no reduce-scatter: a
gradient reduced to its shard shows as an all-reduce. "data" is the subset
whose device groups cross the data axis (between nodes / slices); "head" the
subset with a dimension of the vocabulary size (embedding / head and their
gradients; no other array of these models has that dimension).

Ideal volume of the sharding scheme (FSDP over `fsdp`, data parallelism
over `data`, no tensor parallelism), for P parameters of which P_c are the
weight matrices the step casts to the compute dtype
(`spectrax.training.step.cast_to_compute_dtype`), n micro-batches, a
compute dtype of `itemsize` bytes, F = fsdp and D = data sizes:

  ideal = n * (2 * P * itemsize + P_c * itemsize + (P - P_c) * 4)
          + [D > 1] * (P / F) * 4                                 bytes per step
  ideal_data = (P / F) * 4                                        (D > 1)

Per micro-batch every parameter is gathered once for the forward and once
for the backward in the compute dtype (the layers are rematerialised, so
the backward gathers again), and its gradient is reduce-scattered once over
FSDP in the dtype the step produces it in: the compute dtype for the cast
matrices (the backward of a bfloat16 matmul gives a bfloat16 weight
gradient), float32 for the rest (the embedding / head, whose gradient the
loss sums in float32, and the vectors). With a data axis each data row then
holds the float32 accumulated gradient shard (P / F per device) of its own
rows of the batch; the rows hold identical parameter shards and must apply
the same update, so each shard has to be summed across rows at least once
per step: one all-reduce of P / F float32 values (its payload). Any other
split moves as much (reduce-scatter plus all-gather is an all-reduce), and
summing it per micro-batch moves n times as much across the slow network.
Measured totals can fall below the ideal: XLA hoists loop-invariant gathers
(the head) out of the micro-batch loop, and an embedding table is read by
row lookups and its gradient scattered where its shard lives, so an untied
table is neither gathered nor reduced.

The last line is one JSON object: every entry and `worst_ratio`, the
largest of all `ratio` and `data_ratio` figures.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import arg  # noqa: E402

VOCAB, HIDDEN, LAYERS = arg("vocab", 8192), arg("hidden", 256), arg("layers", 2)
SEQ, BATCH, MICRO, CHUNK = arg("seq", 256), arg("batch", 16), arg("microbatches", 2), arg("chunk", 64)
FSDP, DTYPE = arg("fsdp", 8), arg("dtype", "bfloat16")
RECIPES = [r for r in arg("recipes", "gemma12b,llama8b,qwen14b").split(",") if r != "none"]
# name: (config argument, mesh overrides, devices)
MESHES = {
    "gpu_node": ("gpu", {}, 8),
    "gpu_2_nodes": ("gpu", {"dcn_data": 2}, 16),
    "v5p_128": ("tpu", {}, 64),
}
CHOSEN_MESHES = arg("meshes", ",".join(MESHES)).split(",")
# Keep convert pairs, so collectives XLA:CPU widens to float32 are still
# recognised as bfloat16 ones (spectrax/training/hlo_stats.py).
COMPILER_OPTIONS = {"xla_allow_excess_precision": False}


def compile_step(vocab=VOCAB, hidden=HIDDEN, layers=LAYERS, seq=SEQ, batch=BATCH,
                 microbatches=MICRO, chunk=CHUNK, fsdp=FSDP, dtype=DTYPE, data=1):
  """(compiled step, trainer) of the small model's train step on a (data, fsdp, 1) mesh of CPU devices."""
  import jax  # pylint: disable=g-import-not-at-top
  from spectrax.models import ModelConfig  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import sharding  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import (  # pylint: disable=g-import-not-at-top
      BATCH_KEYS, OptimizerConfig, Trainer, make_optimizer)
  cfg = ModelConfig.from_hf(dict(
      model_type="gemma3_text", hidden_size=hidden, intermediate_size=4 * hidden,
      num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
      num_key_value_heads=1, head_dim=64, vocab_size=vocab, sliding_window=64,
      sliding_window_pattern=2), dtype=dtype, param_dtype="float32")
  mesh = sharding.make_mesh({"data": data, "fsdp": fsdp, "tensor": 1},
                            devices=jax.devices()[:data * fsdp])
  opt, _ = make_optimizer(OptimizerConfig(), 100)
  trainer = Trainer(cfg, opt, mesh, sharding.DEFAULT_RULES, microbatches=microbatches,
                    chunk_size=chunk)
  abstract_batch = {k: jax.ShapeDtypeStruct((batch, seq), "float32" if k == "loss_mask" else "int32",
                                            sharding=trainer.batch_sharding) for k in BATCH_KEYS}
  compiled = trainer.step_fn().lower(trainer.abstract_state(), abstract_batch).compile(
      compiler_options=COMPILER_OPTIONS)
  return compiled, trainer


def param_counts(cfg) -> tuple[int, int]:
  """(all parameters, those the step casts to the compute dtype) of a model of `cfg`."""
  import jax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from spectrax.models import Transformer  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import cast_to_compute_dtype  # pylint: disable=g-import-not-at-top
  abstract = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
  leaves = jax.tree_util.tree_leaves_with_path(nnx.state(abstract, nnx.Param))
  total = sum(x.size for _, x in leaves)
  return total, sum(x.size for path, x in leaves if cast_to_compute_dtype(path, x))


def ideal_bytes(cfg, microbatches: int, fsdp: int, data: int) -> dict:
  """The ideal payload bytes per step of a model of `cfg` (module doc): in all,
  and across the data axis."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  params, cast = param_counts(cfg)
  itemsize = jnp.dtype(cfg.dtype).itemsize
  across_data = params / fsdp * 4 if data > 1 else 0
  per_micro = 2 * params * itemsize + cast * itemsize + (params - cast) * 4
  return {"ideal_bytes": microbatches * per_micro + across_data,
          "ideal_data_bytes": across_data}


def measure(compiled, cfg, microbatches=MICRO, mesh_shape=None) -> dict:
  """Collective counts and payload bytes per step: all, the head's and (with
  `mesh_shape`, `{axis: size}`) those crossing the data axis; and the ideal
  volume of a model of `cfg`'s parameters."""
  from spectrax.training import hlo_stats  # pylint: disable=g-import-not-at-top
  ops, unknown_loops = hlo_stats.collectives(compiled.as_text())
  every = hlo_stats.summarize(ops)
  head = hlo_stats.summarize(ops, select=lambda o: any(cfg.vocab_size in dims
                                                       for _, dims in o.arrays))
  mesh_shape = dict(mesh_shape or {"fsdp": FSDP})
  data = hlo_stats.summarize(ops, select=lambda o: "data" in hlo_stats.mesh_axes(o, mesh_shape))
  params = cfg.num_params()
  ideal = ideal_bytes(cfg, microbatches, mesh_shape.get("fsdp", 1), mesh_shape.get("data", 1))
  total = hlo_stats.total_bytes(every)
  return {"collectives": every, "head": head, "total_bytes": total,
          "head_bytes": hlo_stats.total_bytes(head), "data_bytes": hlo_stats.total_bytes(data),
          **ideal, "ratio_to_ideal": total / ideal["ideal_bytes"],
          "loops_without_trip_count": unknown_loops, "params": params}


def recipe_entry(recipe: str, mesh_name: str) -> dict:
  """Bytes per step by kind of config `recipe` on mesh `mesh_name`, at its real depth."""
  import importlib  # pylint: disable=g-import-not-at-top
  from spectrax.training import planning  # pylint: disable=g-import-not-at-top
  hardware, overrides, devices = MESHES[mesh_name]
  c = importlib.import_module(f"configs.{recipe}").get_config(hardware)
  c.mesh.update(overrides)
  model_cfg = planning.planned_model_config(c)
  mesh = planning.mesh_for(c, devices)
  measured, compile_s = [], 0.0
  for layers in planning.CUT_DEPTHS:
    t = time.perf_counter()
    compiled, trainer = planning.compile_cut_step(c, model_cfg, layers, mesh, COMPILER_OPTIONS)
    compile_s += time.perf_counter() - t
    measured.append(measure(compiled, trainer.model_cfg, c.train.microbatches, mesh.shape))
  lo, hi = measured
  depth = model_cfg.num_layers

  def extrapolated(key, kind=None):
    pick = (lambda m: m[key][kind]["bytes"]) if kind else (lambda m: m[key])
    return int(round(planning.to_depth(pick(lo), pick(hi), depth)))

  params = model_cfg.num_params()
  ideal = ideal_bytes(model_cfg, c.train.microbatches, mesh.shape.get("fsdp", 1),
                      mesh.shape.get("data", 1))
  total = extrapolated("total_bytes")
  data = extrapolated("data_bytes")
  return {
      "config": f"configs/{recipe}.py:{hardware}", "mesh_name": mesh_name,
      "mesh": dict(mesh.shape), "microbatches": c.train.microbatches,
      "params": params, "layers": depth,
      "bytes_by_kind": {k: extrapolated("collectives", k) for k in lo["collectives"]},
      "head_bytes": extrapolated("head_bytes"), "data_bytes": data, "total_bytes": total,
      **ideal, "ratio": total / ideal["ideal_bytes"],
      "data_ratio": data / ideal["ideal_data_bytes"] if ideal["ideal_data_bytes"] else None,
      "loops_without_trip_count": lo["loops_without_trip_count"] + hi["loops_without_trip_count"],
      "compile_s": round(compile_s, 1)}


def _gib(n) -> str:
  return f"{n / 2**30:9.1f}"


def recipes_main():
  from spectrax.training import planning  # pylint: disable=g-import-not-at-top
  planning.use_cpu_devices(max(MESHES[m][2] for m in CHOSEN_MESHES))
  entries = []
  print(f"{'config':28s} {'mesh':12s} " + " ".join(
      f"{k[:10]:>10s}" for k in ("all-gather", "all-reduce", "reduce-sca", "all-to-all",
                                 "permute", "data axis", "total", "ideal"))
        + "   ratio data_ratio compile_s   (GiB per step)")
  for recipe in RECIPES:
    for mesh_name in CHOSEN_MESHES:
      e = recipe_entry(recipe, mesh_name)
      entries.append(e)
      kinds = " ".join(f"{_gib(v):>10s}" for v in e["bytes_by_kind"].values())
      data_ratio = "-" if e["data_ratio"] is None else f"{e['data_ratio']:.2f}"
      print(f"{e['config']:28s} {mesh_name:12s} {kinds} {_gib(e['data_bytes']):>10s} "
            f"{_gib(e['total_bytes']):>10s} {_gib(e['ideal_bytes']):>10s} "
            f"{e['ratio']:7.2f} {data_ratio:>10s} {e['compile_s']:9.1f}", flush=True)
  worst = max(max(e["ratio"], e["data_ratio"] or 0) for e in entries)
  print(json.dumps({"entries": entries, "worst_ratio": worst}))


def small_main():
  from spectrax.training import planning  # pylint: disable=g-import-not-at-top
  planning.use_cpu_devices(FSDP)
  t = time.perf_counter()
  compiled, trainer = compile_step()
  compile_s = time.perf_counter() - t
  result = measure(compiled, trainer.model_cfg)
  for kind, v in result["collectives"].items():
    h = result["head"][kind]
    print(f"{kind:20s} {v['ops']:5d} ops {v['bytes'] / 2**20:10.2f} MiB "
          f"{v['bytes_by_dtype']}   head: {h['ops']:4d} ops {h['bytes'] / 2**20:9.2f} MiB")
  print(f"total {result['total_bytes'] / 2**20:.2f} MiB per step, head "
        f"{result['head_bytes'] / 2**20:.2f} MiB, ideal {result['ideal_bytes'] / 2**20:.2f} MiB "
        f"(ratio {result['ratio_to_ideal']:.2f})")
  result.update(config=dict(vocab=VOCAB, hidden=HIDDEN, layers=LAYERS, seq=SEQ, batch=BATCH,
                            microbatches=MICRO, chunk=CHUNK, fsdp=FSDP, dtype=DTYPE),
                compile_s=round(compile_s, 1))
  print(json.dumps(result))


if __name__ == "__main__":
  if RECIPES:
    recipes_main()
  else:
    small_main()
