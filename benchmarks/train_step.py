r"""Training-step throughput: spectrax vs transformers' PyTorch, same model.

  python benchmarks/train_step.py [--layers=4] [--hidden=256] [--batch=8] [--seq=256] [--lora_rank=16]

One run, one machine: a Llama-style config (GQA, SwiGLU) at float32, the
same random packed batch, AdamW. spectrax runs its jitted sharded step on
every local device (FSDP); PyTorch runs `LlamaForCausalLM` forward +
backward + `torch.optim.AdamW` on the CPU with all threads, unpacked
(PyTorch's causal LM has no packed-segment attention, so it gets the same
tokens as one sequence per row: the same FLOPs per token at this length).
Prints tokens/s and MFU for both (same FLOP count, `spectrax.flops`) and the
ratio; then spectrax's LoRA step on the same model and batch (rank
`--lora_rank` on all seven projections, the base frozen; MFU with the LoRA
FLOP count: no weight gradients for the base) next to its full fine-tune.
The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.harness import arg, time_train_steps  # noqa: E402




LAYERS, HIDDEN = arg("layers", 4), arg("hidden", 256)
BATCH, SEQ, STEPS = arg("batch", 8), arg("seq", 256), arg("steps", 10)
LORA_RANK = arg("lora_rank", 16)
VOCAB = 4096
HF = dict(model_type="llama", hidden_size=HIDDEN, intermediate_size=4 * HIDDEN,
          num_hidden_layers=LAYERS, num_attention_heads=HIDDEN // 64,
          num_key_value_heads=max(1, HIDDEN // 128), head_dim=64,
          vocab_size=VOCAB, rms_norm_eps=1e-5, rope_theta=10000.0,
          max_position_embeddings=4096, tie_word_embeddings=False,
          hidden_act="silu")


def batch():
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, VOCAB, (BATCH, SEQ + 1)).astype(np.int32)
  return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
          "loss_mask": np.ones((BATCH, SEQ), np.float32),
          "segment_ids": np.ones((BATCH, SEQ), np.int32),
          "positions": np.tile(np.arange(SEQ, dtype=np.int32), (BATCH, 1))}


def run_spectrax(b, lora=None):
  import jax  # pylint: disable=g-import-not-at-top
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import sharding  # pylint: disable=g-import-not-at-top
  from spectrax.models import ModelConfig, init_model  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import OptimizerConfig, Trainer, make_optimizer  # pylint: disable=g-import-not-at-top
  cfg = ModelConfig.from_hf(HF)
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  opt, _ = make_optimizer(OptimizerConfig(learning_rate=1e-4), 100)
  trainer = Trainer(cfg, opt, mesh, sharding.DEFAULT_RULES, lora=lora)
  params = nnx.state(init_model(cfg, mesh=mesh), nnx.Param)
  if lora is not None:  # the base frozen (float32 here: param and compute dtype agree)
    trainer.set_frozen(params)
    params = trainer.init_adapters()
  state = trainer.init_state(params)
  step = trainer.step_fn()
  gb = {k: jax.device_put(v, trainer.batch_sharding) for k, v in b.items()}
  _, m, compile_s, seconds = time_train_steps(step, state, gb, STEPS)
  return cfg, seconds, compile_s, float(m["loss"])


def run_torch(b):
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  cfg = transformers.LlamaConfig(**{k: v for k, v in HF.items()
                                    if k != "model_type"})
  model = transformers.LlamaForCausalLM(cfg).float()
  opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
  inputs = torch.from_numpy(b["inputs"]).long()
  targets = torch.from_numpy(b["targets"]).long()

  def step():
    logits = model(input_ids=inputs).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB),
                                             targets.reshape(-1))
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss)

  step()
  t = time.perf_counter()
  for _ in range(STEPS):
    loss = step()
  return (time.perf_counter() - t) / STEPS, loss, torch.get_num_threads()


def main():
  from spectrax.training import flops as flops_lib  # pylint: disable=g-import-not-at-top
  from spectrax.training import hardware  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  b = batch()
  from spectrax.models import lora as lora_lib  # pylint: disable=g-import-not-at-top
  cfg, jax_s, compile_s, jax_loss = run_spectrax(b)
  lora = lora_lib.LoraConfig(rank=LORA_RANK, alpha=2.0 * LORA_RANK)
  _, lora_s, lora_compile_s, lora_loss = run_spectrax(b, lora)
  torch_s, torch_loss, threads = run_torch(b)
  step_flops = flops_lib.train_step_flops(cfg, b["segment_ids"])
  lora_flops = flops_lib.train_step_flops(cfg, b["segment_ids"], lora=lora)
  peak, source = hardware.peak_flops_per_device()
  machine_peak = peak * jax.local_device_count()
  tokens = BATCH * SEQ
  result = {
      "config": {"layers": LAYERS, "hidden": HIDDEN, "batch": BATCH,
                 "seq": SEQ, "vocab": VOCAB,
                 "parameters": cfg.num_params()},
      "device": jax.devices()[0].device_kind,
      "spectrax_tokens_per_sec": tokens / jax_s,
      "spectrax_mfu": step_flops / jax_s / machine_peak,
      "spectrax_compile_s": compile_s,
      "spectrax_lora_rank": LORA_RANK,
      "spectrax_lora_tokens_per_sec": tokens / lora_s,
      "spectrax_lora_mfu": lora_flops / lora_s / machine_peak,
      "spectrax_lora_compile_s": lora_compile_s,
      "lora_over_full_tokens_per_sec": jax_s / lora_s,
      "lora_flops_over_full": lora_flops / step_flops,
      "torch_tokens_per_sec": tokens / torch_s,
      "torch_mfu": step_flops / torch_s / machine_peak,
      "torch_threads": threads,
      "ratio_spectrax_over_torch": torch_s / jax_s,
      "peak_flops_machine": machine_peak, "peak_source": source,
      "loss_spectrax_last": jax_loss, "loss_torch_last": torch_loss,
      "loss_spectrax_lora_last": lora_loss,
  }
  print(f"spectrax {result['spectrax_tokens_per_sec']:.0f} tok/s "
        f"(MFU {result['spectrax_mfu']:.1%}) | torch "
        f"{result['torch_tokens_per_sec']:.0f} tok/s (MFU "
        f"{result['torch_mfu']:.1%}) | ratio "
        f"{result['ratio_spectrax_over_torch']:.2f}x")
  print(f"spectrax LoRA rank {LORA_RANK}: {result['spectrax_lora_tokens_per_sec']:.0f} tok/s "
        f"(MFU {result['spectrax_lora_mfu']:.1%}, {result['lora_flops_over_full']:.2f}x the "
        f"FLOPs) vs full fine-tuning {result['spectrax_tokens_per_sec']:.0f} tok/s: "
        f"{result['lora_over_full_tokens_per_sec']:.2f}x")
  print(json.dumps(result))


if __name__ == "__main__":
  main()
