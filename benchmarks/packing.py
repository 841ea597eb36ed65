r"""Packing density and pipeline throughput on the synthetic Spectrum Suite.

  python benchmarks/packing.py [--suite=DIR]

For seq_len 1024 and 2048 (episodes capped at 1024 tokens, gemma template,
the suite's default tokenizer), over one whole epoch of the same episodes:
  * non-padding fraction of our packing (retained best-fit, and Grain's
    first-fit for reference);
  * the authors' layout: one right-padded episode per row, batch 8, padded
    to the longest episode in the batch (HF collator) and to max_length;
  * offline best-fit-decreasing on the same episodes (an upper bound for
    packing whole episodes);
  * pipeline throughput in tokens/s for one worker (the main process), and
    what one TPU v5p host (4 chips) needs to train a 12B model at 50% MFU.
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import bisect
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.harness import arg  # noqa: E402
from absl import flags as absl_flags  # noqa: E402

from data_pipelines import build, registry  # noqa: E402
from spectrax.data import tokenizer_training  # noqa: E402
from spectrax.data.pipeline import DataConfig, Pipeline  # noqa: E402




def ensure_suite(path: str | None) -> str:
  if path and os.path.exists(os.path.join(path, "suite.json")):
    return path
  path = path or os.path.join(tempfile.gettempdir(), "spectrax_bench_suite")
  if not os.path.exists(os.path.join(path, "suite.json")):
    print(f"building the synthetic suite into {path} ...", flush=True)
    names = registry.synthetic_task_names()
    build.build(path, registry.select(registry.all_tasks(), names), seed=0,
                raw_dir=None)
  tokenizer_training.ensure_default_tokenizer(path)
  return path


def best_fit_decreasing(lengths: np.ndarray, seq_len: int) -> float:
  """Offline best-fit-decreasing density: a bound for whole-episode packing."""
  rooms: list[int] = []  # Free space of each row, kept sorted.
  for n in sorted(lengths.tolist(), reverse=True):
    i = bisect.bisect_left(rooms, n)
    if i == len(rooms):
      bisect.insort(rooms, seq_len - n)
    else:
      room = rooms.pop(i)
      bisect.insort(rooms, room - n)
  return float(lengths.sum() / (len(rooms) * seq_len))


def authors_layout(lengths: np.ndarray, batch: int, max_length: int):
  """Non-padding fraction of one episode per row, batch `batch`."""
  n = len(lengths) // batch * batch
  groups = lengths[:n].reshape(-1, batch)
  longest = groups.max(axis=1, keepdims=True)
  to_longest = groups.sum() / (longest * batch).sum()
  to_max = groups.sum() / (n * max_length)
  return float(to_longest), float(to_max)


def measure(suite: str, seq_len: int, packing: str) -> dict:
  """One whole epoch, so rows still open in the packer cannot flatter it."""
  cfg = DataConfig(suite_dir=suite, template="gemma", seq_len=seq_len,
                   max_tokens=1024, batch_size=8, packing=packing,
                   num_epochs=1)
  it = Pipeline(cfg).iterator()
  start = time.perf_counter()
  for _ in it:
    pass
  elapsed = time.perf_counter() - start
  s = it.stats
  it.close()
  return {"non_padding": round(s.packing_efficiency, 4),
          "tokens_per_sec_per_worker": round(s.tokens / elapsed),
          "rows": s.rows,
          "episodes": s.episodes_seen,
          "truncated_fraction": round(s.episodes_truncated /
                                      max(1, s.episodes_seen), 3)}


def main():
  absl_flags.FLAGS.mark_as_parsed()
  suite = ensure_suite(arg("suite", ""))
  results = {"suite": suite}
  # Episode lengths of the stream itself, for the authors' layout and BFD.
  p = Pipeline(DataConfig(suite_dir=suite, template="gemma", seq_len=1024,
                          max_tokens=1024, batch_size=8))
  lengths = np.array([len(e["inputs"]) for e in p.episodes()])
  lengths = lengths[lengths > 0]
  results["episode_length_mean"] = round(float(lengths.mean()), 1)
  for seq_len in (1024, 2048):
    r = {"ours_retained_best_fit": measure(suite, seq_len, "retained_best_fit"),
         "grain_first_fit": measure(suite, seq_len, "first_fit"),
         "offline_best_fit_decreasing": round(
             best_fit_decreasing(lengths, seq_len), 4)}
    to_longest, to_max = authors_layout(lengths, 8, 1024)
    r["authors_padded_to_longest_in_batch"] = round(to_longest, 4)
    r["authors_padded_to_max_length"] = round(to_max, 4)
    results[f"seq_len_{seq_len}"] = r
    print(f"seq_len {seq_len}: ours {r['ours_retained_best_fit']['non_padding']}"
          f" | grain first-fit {r['grain_first_fit']['non_padding']}"
          f" | authors {r['authors_padded_to_longest_in_batch']} (longest), "
          f"{r['authors_padded_to_max_length']} (max_length)"
          f" | offline BFD bound {r['offline_best_fit_decreasing']}"
          f" | {r['ours_retained_best_fit']['tokens_per_sec_per_worker']} "
          "tokens/s/worker", flush=True)
  # A 12B model at 50% MFU on one v5p host (4 chips × 459 bf16 TFLOP/s)
  # consumes 4 * 459e12 * 0.5 / (6 * 12e9) tokens/s.
  needed = 4 * 459e12 * 0.5 / (6 * 12e9)
  results["tokens_per_sec_needed_12b_v5p_host"] = round(needed)
  results["headroom_one_worker"] = round(
      results["seq_len_1024"]["ours_retained_best_fit"]
      ["tokens_per_sec_per_worker"] / needed, 1)
  print(json.dumps(results))


if __name__ == "__main__":
  main()
