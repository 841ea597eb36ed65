r"""Collectives of the real train step on a simulated 8-device FSDP mesh, from its optimized HLO.

  python benchmarks/collectives.py [--vocab=8192] [--hidden=256] [--layers=2] [--seq=256]
                                   [--batch=16] [--microbatches=2] [--chunk=64] [--fsdp=8]

Compiles `Trainer.step_fn()` ahead of time (as `spectrax.plan` does) for a
small Gemma-style model (tied embeddings, bfloat16 compute, float32 master
weights) with accumulation over micro-batches and the chunked loss inside the
step, then counts every all-gather, all-reduce, reduce-scatter, all-to-all and
collective-permute per step with `spectrax.training.hlo_stats` (ops inside
loops multiplied by their trip counts; bytes = each op's payload, the whole
array gathered or reduced; a bfloat16 collective that XLA:CPU widens to
float32 is counted as bfloat16, as GPUs and TPUs run it). XLA:CPU emits no
reduce-scatter: a gradient reduced to its shard shows as an all-reduce.
"head" is the subset whose payload has a dimension of the vocabulary size: the
`[vocab, embed]` embedding/head and its gradient (no other array of this model
has that dimension unless sharded logits were gathered, which would show here
too).

Ideal volume of the sharding scheme (FSDP, no tensor parallelism): per
micro-batch every parameter is gathered once for the forward and once for
the backward in the compute dtype, and its gradient is reduce-scattered once
in float32:

  ideal = microbatches * params * (2 * itemsize(dtype) + 4)   bytes per step

The last line is one JSON object.
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


def compile_step(vocab=VOCAB, hidden=HIDDEN, layers=LAYERS, seq=SEQ, batch=BATCH,
                 microbatches=MICRO, chunk=CHUNK, fsdp=FSDP, dtype=DTYPE):
  """(compiled step, trainer) of the real train step on a (1, fsdp, 1) mesh of CPU devices."""
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
  mesh = sharding.make_mesh({"data": 1, "fsdp": fsdp, "tensor": 1},
                            devices=jax.devices()[:fsdp])
  opt, _ = make_optimizer(OptimizerConfig(), 100)
  trainer = Trainer(cfg, opt, mesh, sharding.DEFAULT_RULES, microbatches=microbatches,
                    chunk_size=chunk)
  abstract_batch = {k: jax.ShapeDtypeStruct((batch, seq), "float32" if k == "loss_mask" else "int32",
                                            sharding=trainer.batch_sharding) for k in BATCH_KEYS}
  # Keep convert pairs, so collectives XLA:CPU widens to float32 are still
  # recognised as bfloat16 ones (spectrax/training/hlo_stats.py).
  compiled = trainer.step_fn().lower(trainer.abstract_state(), abstract_batch).compile(
      compiler_options={"xla_allow_excess_precision": False})
  return compiled, trainer


def measure(compiled, cfg, microbatches=MICRO) -> dict:
  """Collective counts and payload bytes per step, all and the head's, and the ideal volume."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from spectrax.training import hlo_stats  # pylint: disable=g-import-not-at-top
  ops, unknown_loops = hlo_stats.collectives(compiled.as_text())
  every = hlo_stats.summarize(ops)
  head = hlo_stats.summarize(ops, select=lambda o: any(cfg.vocab_size in dims
                                                       for _, dims in o.arrays))
  params = cfg.num_params()
  ideal = microbatches * params * (2 * jnp.dtype(cfg.dtype).itemsize + 4)
  total = hlo_stats.total_bytes(every)
  return {"collectives": every, "head": head, "total_bytes": total,
          "head_bytes": hlo_stats.total_bytes(head), "ideal_bytes": ideal,
          "ratio_to_ideal": total / ideal, "loops_without_trip_count": unknown_loops,
          "params": params}


def main():
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
  main()
