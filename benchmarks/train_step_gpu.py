r"""Training-step tokens/s and MFU of a ~1B config on the local accelerator.

  python benchmarks/train_step_gpu.py --hidden=2048 --layers=16 --seq=2048 \
      --batch=8 --attention=cudnn

bf16 compute, float32 master weights and AdamW state, full remat, a packed
batch of ~900-token episodes (as the Spectrum Suite gives), every local
device in one FSDP mesh. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.harness import arg, time_train_steps  # noqa: E402




def main():
  import jax
  from flax import nnx
  from spectrax.training import flops as flops_lib
  from spectrax.training import hardware
  from spectrax.parallel import sharding
  from spectrax.models import ModelConfig, init_model
  from spectrax.training.step import OptimizerConfig, Trainer, make_optimizer
  hidden, layers = arg("hidden", 2048), arg("layers", 16)
  seq, rows, steps = arg("seq", 2048), arg("batch", 8), arg("steps", 10)
  cfg = ModelConfig.from_hf(dict(
      model_type="llama", hidden_size=hidden, intermediate_size=4 * hidden,
      num_hidden_layers=layers, num_attention_heads=hidden // 128,
      num_key_value_heads=max(1, hidden // 512), head_dim=128,
      vocab_size=arg("vocab", 128_256), rms_norm_eps=1e-5, rope_theta=500000.0,
      max_position_embeddings=8192, tie_word_embeddings=False,
      hidden_act="silu"), dtype=arg("dtype", "bfloat16"),
      attention_backend=arg("attention", "cudnn"), remat_policy="full")
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  opt, _ = make_optimizer(OptimizerConfig(learning_rate=1e-5), 100)
  trainer = Trainer(cfg, opt, mesh, sharding.DEFAULT_RULES,
                    microbatches=arg("microbatches", 1))
  state = trainer.init_state(nnx.state(init_model(cfg, mesh=mesh), nnx.Param))
  rng = np.random.default_rng(0)
  seg = np.zeros((rows, seq), np.int32)
  pos = np.zeros((rows, seq), np.int32)
  for r in range(rows):  # ~900-token episodes, last one cut by the row end
    at, s = 0, 1
    while at < seq - 8:
      n = min(int(rng.integers(700, 1024)), seq - at)
      seg[r, at:at + n], pos[r, at:at + n] = s, np.arange(n)
      at, s = at + n, s + 1
  tokens = rng.integers(0, cfg.vocab_size, (rows, seq + 1)).astype(np.int32)
  batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
           "loss_mask": (seg > 0).astype(np.float32), "segment_ids": seg,
           "positions": pos}
  gb = {k: jax.device_put(v, trainer.batch_sharding) for k, v in batch.items()}
  step = trainer.step_fn()
  state, m, compile_s, dt = time_train_steps(step, state, gb, steps)
  peak, source = hardware.peak_flops_per_device()
  f = flops_lib.train_step_flops(cfg, seg)
  result = {"device": jax.devices()[0].device_kind,
            "devices": jax.device_count(), "parameters": cfg.num_params(),
            "seq": seq, "rows": rows, "attention": cfg.attention_backend,
            "step_s": dt, "compile_s": compile_s,
            "tokens_per_sec": flops_lib.num_real_tokens(seg) / dt,
            "mfu": f / dt / (peak * jax.device_count()),
            "peak_flops_per_device": peak, "peak_source": source,
            "loss": float(m["loss"])}
  print(f"{result['tokens_per_sec']:.0f} tokens/s, MFU {result['mfu']:.1%}")
  print(json.dumps(result))


if __name__ == "__main__":
  main()
