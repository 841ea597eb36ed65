"""Shared-prefix scoring (spectrax.scoring.scorer) vs naive one-forward-per-(prompt, option) scoring.

    python benchmarks/scorer.py                          # CPU, small llama-style model
    python benchmarks/scorer.py --hidden=1024 --layers=8 --requests=128   # on an accelerator

Distributional-style requests: prompts of --prompt_min..--prompt_max tokens,
4-10 options of 1-4 tokens. Both sides use the same randomly initialised
model, the same device, float32, jitted once per shape and warmed up:
  * ours: ``Scorer.score`` (prompt once per row, options after it).
  * naive: each (prompt, option) pair alone in a row padded to the same
    bucket, ``rows_per_batch`` rows per jitted forward, log-probabilities from
    ``spectrax.models.loss.chunked_token_stats`` at the option tokens (what the authors
    and lm-evaluation-harness do, minus their per-pair Python overhead).
Prints figures, then one JSON object on the last line: ``options_per_s_ours``,
``options_per_s_naive``, ``speedup``, ``max_abs_diff`` (summed log-probs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import timed  # noqa: E402

from spectrax.data.tokenizer import Tokenizer  # noqa: E402


class WordTokenizer(Tokenizer):
  """One token per whitespace-separated word (id from a hash), BOS = 1: exact
  boundaries, so both sides score the same tokens."""

  def __init__(self, vocab_size: int):
    super().__init__()
    self._vocab = vocab_size
    self.name = "words"

  @property
  def vocab_size(self) -> int:
    return self._vocab

  @property
  def bos_id(self) -> int:
    return 1

  @property
  def eos_id(self) -> int:
    return 2

  def _encode(self, text: str) -> list[int]:
    return [3 + zlib.crc32(w.encode()) % (self._vocab - 3) for w in text.split()]

  def id_to_piece(self, token_id: int) -> str:
    return f"<{token_id}>"

  def piece_to_id(self, piece: str) -> int | None:
    return None

  def decode(self, ids) -> str:
    return " ".join(self.id_to_piece(i) for i in ids)


def make_requests(n: int, lo: int, hi: int, seed: int = 0):
  from spectrax.scoring.scorer import ScoreRequest
  rng = np.random.RandomState(seed)
  words = [f"w{i}" for i in range(5000)]
  out = []
  for i in range(n):
    prompt = " ".join(rng.choice(words, rng.randint(lo, hi + 1)))
    options = [" " + " ".join(rng.choice(words, rng.randint(1, 5)))
               for _ in range(rng.randint(4, 11))]
    out.append(ScoreRequest(f"q{i}", options, prompt=prompt))
  return out


def naive_scorer(model, rows: int, length: int, slots: int = 8):
  """``pairs -> [n] summed log-probs``: one (prompt + option) per padded row, jitted once."""
  import jax
  from flax import nnx
  from spectrax.models.loss import chunked_token_stats
  graphdef, state = nnx.split(model)
  softcap = model.config.final_logit_softcap

  @jax.jit
  def forward(state, tokens, seg, idx, tgt):
    m = nnx.merge(graphdef, state)
    hidden = m(tokens, None, seg)
    return chunked_token_stats(hidden, m.head(), tgt, indices=idx, softcap=softcap)["logprob"]

  def score(pairs):
    outs = []
    for first in range(0, len(pairs), rows):
      group = pairs[first:first + rows]
      tokens = np.zeros((rows, length), np.int32)
      seg = np.zeros((rows, length), np.int32)
      idx = np.zeros((rows, slots), np.int32)
      tgt = np.zeros((rows, slots), np.int32)
      mask = np.zeros((rows, slots), bool)
      for r, (prompt, option) in enumerate(group):
        ids = prompt + option
        tokens[r, :len(ids)], seg[r, :len(ids)] = ids, 1
        m = len(option)
        idx[r, :m] = np.arange(len(prompt) - 1, len(ids) - 1)
        tgt[r, :m], mask[r, :m] = option, True
      outs.append((forward(state, tokens, seg, idx, tgt), mask, len(group)))
    sums = []
    for lp, mask, n in outs:
      lp = np.asarray(lp)
      sums.extend(float(lp[r][mask[r]].sum()) for r in range(n))
    return sums

  return score


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--layers", type=int, default=4)
  p.add_argument("--vocab", type=int, default=8192)
  p.add_argument("--requests", type=int, default=48)
  p.add_argument("--prompt_min", type=int, default=300)
  p.add_argument("--prompt_max", type=int, default=480)
  p.add_argument("--rows_per_batch", type=int, default=8)
  p.add_argument("--bucket", type=int, default=512)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--repeats", type=int, default=3)
  args = p.parse_args()

  import jax
  from spectrax.models import ModelConfig, init_model
  from spectrax.scoring.scorer import Scorer

  cfg = ModelConfig.from_hf(dict(
      model_type="llama", vocab_size=args.vocab, hidden_size=args.hidden,
      intermediate_size=4 * args.hidden, num_hidden_layers=args.layers,
      num_attention_heads=args.hidden // 64, num_key_value_heads=max(1, args.hidden // 128),
      head_dim=64, max_position_embeddings=4096), dtype=args.dtype)
  model = init_model(cfg, seed=0)
  tok = WordTokenizer(args.vocab)
  requests = make_requests(args.requests, args.prompt_min, args.prompt_max)
  n_options = sum(len(r.options) for r in requests)
  ours = Scorer(model, tok, buckets=(args.bucket,), rows_per_batch=args.rows_per_batch)
  pairs = [([1] + tok.encode(r.prompt), tok.encode(o)) for r in requests for o in r.options]
  naive = naive_scorer(model, args.rows_per_batch, args.bucket)

  ours_fn = lambda: [lp for res in ours.score(requests) for lp in res.logprobs]  # noqa: E731
  got, want = ours_fn(), naive(pairs)  # Compile and warm up.
  t_ours = min(timed(ours_fn) for _ in range(args.repeats))
  t_naive = min(timed(lambda: naive(pairs)) for _ in range(args.repeats))
  diff = float(np.abs(np.asarray(got) - np.asarray(want)).max())
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; model hidden={args.hidden} "
        f"layers={args.layers} vocab={args.vocab} {args.dtype}")
  print(f"{args.requests} requests, {n_options} options, prompts {args.prompt_min}-"
        f"{args.prompt_max} tokens, bucket {args.bucket} x {args.rows_per_batch} rows")
  print(f"ours  {n_options / t_ours:9.1f} options/s ({t_ours:.3f} s)")
  print(f"naive {n_options / t_naive:9.1f} options/s ({t_naive:.3f} s)")
  print(f"speed-up {t_naive / t_ours:.2f}x; max |ours - naive| {diff:.2e}")
  print(json.dumps({
      "device": jax.devices()[0].device_kind, "hidden": args.hidden, "layers": args.layers,
      "vocab": args.vocab, "dtype": args.dtype, "requests": args.requests, "options": n_options,
      "options_per_s_ours": round(n_options / t_ours, 1),
      "options_per_s_naive": round(n_options / t_naive, 1),
      "speedup": round(t_naive / t_ours, 2), "max_abs_diff": diff}))


if __name__ == "__main__":
  main()
