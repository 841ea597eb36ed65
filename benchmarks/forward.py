"""Forward throughput of spectrax vs transformers (PyTorch) on CPU, and load_hf's host memory.

    python benchmarks/forward.py                 # llama-style small config
    python benchmarks/forward.py --family=gemma3 --batch=4 --length=512

Needs ``requirements-test.txt`` (torch). Prints figures, then one JSON object
on the last line:
  tokens_per_s_spectrax / tokens_per_s_torch / ratio: forward (logits) tokens/s,
    same config, same batch, float32, after warm-up; best of --repeats.
  max_abs_logit_diff: spectrax vs transformers on that batch.
  load_peak_anon_over_ckpt: peak growth of anonymous (non-file) host memory
    during ``load_hf`` divided by the checkpoint size, measured in a fresh
    process. On CPU the loaded parameters themselves live in host memory, so
    ~1.0 is the floor; a loader that reads the whole file first would show ~2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import timed  # noqa: E402


def hf_config(family: str, hidden: int, layers: int, vocab: int):
  import transformers
  common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden,
                num_hidden_layers=layers, num_attention_heads=hidden // 32,
                num_key_value_heads=hidden // 64, head_dim=32, max_position_embeddings=4096)
  if family == "gemma3":
    return transformers.Gemma3TextConfig(**common, sliding_window=128, query_pre_attn_scalar=32,
                                         sliding_window_pattern=2)
  if family == "qwen3":
    return transformers.Qwen3Config(**common)
  return transformers.LlamaConfig(**common, tie_word_embeddings=False)


def _anon_kb() -> int:
  with open("/proc/self/status") as fh:
    for line in fh:
      if line.startswith("RssAnon:"):
        return int(line.split()[1])
  return 0


def measure_load(directory: str) -> dict:
  """Runs in a fresh process: peak anonymous-memory growth during load_hf."""
  import jax
  from spectrax.models import load_hf
  # Warm up jax (backend, compile caches) on a tiny slice of work first.
  jax.block_until_ready(jax.numpy.zeros(4) + 1)
  base = _anon_kb()
  peak = [base]
  done = threading.Event()

  def sample():
    while not done.is_set():
      peak[0] = max(peak[0], _anon_kb())
      time.sleep(0.002)

  thread = threading.Thread(target=sample, daemon=True)
  thread.start()
  t = time.perf_counter()
  model = load_hf(directory)
  jax.block_until_ready(jax.tree.leaves(model.embed[...]))
  seconds = time.perf_counter() - t
  done.set()
  thread.join()
  peak[0] = max(peak[0], _anon_kb())
  return {"peak_anon_bytes": (peak[0] - base) * 1024, "seconds": seconds}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--family", default="llama", choices=["llama", "gemma3", "qwen3"])
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--layers", type=int, default=4)
  p.add_argument("--vocab", type=int, default=8192)
  p.add_argument("--batch", type=int, default=4)
  p.add_argument("--length", type=int, default=512)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--load_hidden", type=int, default=1024, help="size of the load-memory checkpoint")
  p.add_argument("--_measure_load", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args._measure_load:
    print(json.dumps(measure_load(args._measure_load)))
    return

  import jax
  import jax.numpy as jnp
  import torch
  import transformers
  from spectrax.models import load_hf

  torch.manual_seed(0)
  tokens = np.random.RandomState(0).randint(0, args.vocab, (args.batch, args.length))
  n_tokens = args.batch * args.length
  with tempfile.TemporaryDirectory() as tmp:
    cfg = hf_config(args.family, args.hidden, args.layers, args.vocab)
    cfg._attn_implementation = "sdpa"
    ref = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    ref.save_pretrained(os.path.join(tmp, "small"))
    model = load_hf(os.path.join(tmp, "small"))

    forward = jax.jit(lambda t: model.logits(t))
    jt = jnp.asarray(tokens, jnp.int32)
    ours = np.asarray(forward(jt))  # compile
    best_jax = min(timed(lambda: forward(jt).block_until_ready()) for _ in range(args.repeats))
    tt = torch.tensor(tokens)
    with torch.no_grad():
      theirs = ref(tt).logits.numpy()
      best_torch = min(timed(lambda: ref(tt)) for _ in range(args.repeats))
    diff = float(np.abs(ours - theirs).max())
    print(f"config: {args.family} hidden={args.hidden} layers={args.layers} vocab={args.vocab} "
          f"batch={args.batch}x{args.length}; torch threads={torch.get_num_threads()}")
    print(f"spectrax     {n_tokens / best_jax:10.0f} tokens/s ({best_jax * 1e3:.1f} ms/batch)")
    print(f"transformers {n_tokens / best_torch:10.0f} tokens/s ({best_torch * 1e3:.1f} ms/batch)")
    print(f"max |logit diff| {diff:.2e} (logit scale {np.abs(theirs).max():.2f})")

    # Load memory: a bigger checkpoint written by save_hf (no torch), loaded in a fresh process.
    from flax import nnx
    from spectrax.models import ModelConfig, Transformer, save_hf
    big_cfg = ModelConfig.from_hf(hf_config(args.family, args.load_hidden, 8, 32_000).to_dict())
    big = nnx.jit(lambda: Transformer(big_cfg, rngs=nnx.Rngs(0)))()
    big_dir = os.path.join(tmp, "big")
    save_hf(big, big_cfg, big_dir, max_shard_bytes=256 << 20)
    del big
    ckpt_bytes = sum(os.path.getsize(os.path.join(big_dir, f)) for f in os.listdir(big_dir)
                     if f.endswith(".safetensors"))
    out = subprocess.run([sys.executable, __file__, f"--_measure_load={big_dir}"], check=True,
                         capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    load = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = load["peak_anon_bytes"] / ckpt_bytes
    print(f"load_hf: checkpoint {ckpt_bytes / 2**20:.0f} MiB, peak host growth "
          f"{load['peak_anon_bytes'] / 2**20:.0f} MiB ({ratio:.2f}x), {load['seconds']:.1f} s")

  print(json.dumps({
      "family": args.family, "batch": args.batch, "length": args.length,
      "tokens_per_s_spectrax": round(n_tokens / best_jax, 1),
      "tokens_per_s_torch": round(n_tokens / best_torch, 1),
      "ratio": round(best_torch / best_jax, 3),
      "max_abs_logit_diff": diff,
      "load_ckpt_mib": round(ckpt_bytes / 2**20, 1),
      "load_peak_anon_over_ckpt": round(ratio, 3),
  }))


if __name__ == "__main__":
  main()
