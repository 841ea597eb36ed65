r"""Shows packed training batches: `python -m spectrax.show_batches --suite=DIR`.

  python -m spectrax.show_batches --suite=suite --template=gemma --seq_len=1024
  python -m spectrax.show_batches --suite=suite --tokenizer=/models/gemma-3-12b-pt

Prints a few packed rows decoded with the loss spans bracketed as ⟦…⟧ and
episode boundaries marked, then the pipeline counters and throughput over
`--batches` batches: what the trainer will see, before spending accelerator
time.
"""

from __future__ import annotations

import dataclasses

import json
import time

from absl import app
from absl import flags
import numpy as np

from spectrax.data import tokenizer_training
from spectrax.data.pipeline import DataConfig, Pipeline

_SUITE = flags.DEFINE_string("suite", "suite", "Built suite directory.")
_TEMPLATE = flags.DEFINE_string("template", "gemma", "gemma|qwen|llama|colon")
_TOKENIZER = flags.DEFINE_string("tokenizer", None,
                                 "HF directory or .model (default: suite's).")
_TASKS = flags.DEFINE_list("tasks", [], "Tasks (default: train-suite ICL).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 1024, "Packed row length.")
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 1024, "Episode token cap.")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Rows per batch.")
_BATCHES = flags.DEFINE_integer("batches", 20, "Batches to time.")
_ROWS = flags.DEFINE_integer("rows", 1, "Rows to print decoded.")
_CHARS = flags.DEFINE_integer("chars", 1500, "Characters to print per row.")
_WORKERS = flags.DEFINE_integer("workers", 0, "Grain worker processes.")


def render_row(batch: dict[str, np.ndarray], row: int, tokenizer) -> str:
  """One packed row as text: ⟦loss spans⟧, `│` between episodes."""
  seg = batch["segment_ids"][row]
  out: list[str] = []
  for s in np.unique(seg[seg > 0]):
    idx = np.where(seg == s)[0]
    # Text of the episode: its first input (BOS) then every target.
    ids = [int(batch["inputs"][row, idx[0]])] + batch["targets"][row, idx].tolist()
    mask = [0.0] + batch["loss_mask"][row, idx].tolist()
    text, run, in_loss = [], [], False
    for tok, m in zip(ids, mask):
      if bool(m) != in_loss and run:
        piece = tokenizer.decode(run)
        text.append(f"⟦{piece}⟧" if in_loss else piece)
        run = []
      in_loss = bool(m)
      run.append(tok)
    if run:
      piece = tokenizer.decode(run)
      text.append(f"⟦{piece}⟧" if in_loss else piece)
    out.append("".join(text))
  pad = int((seg == 0).sum())
  return " │ ".join(out) + (f" │ [{pad} padding positions]" if pad else "")


def main(argv):
  del argv
  config = DataConfig(suite_dir=_SUITE.value, template=_TEMPLATE.value,
                      tokenizer=_TOKENIZER.value, tasks=tuple(_TASKS.value),
                      seq_len=_SEQ_LEN.value, max_tokens=_MAX_TOKENS.value,
                      batch_size=_BATCH.value, worker_count=_WORKERS.value,
                      num_epochs=None)
  if not _TOKENIZER.value:  # Models trained from scratch use the suite's own.
    config = dataclasses.replace(
        config, tokenizer=tokenizer_training.ensure_default_tokenizer(_SUITE.value))
  pipeline = Pipeline(config)
  pipeline.check_fits()
  print(f"tasks: {', '.join(pipeline.task_names)}")
  print(f"episodes per epoch: {pipeline.num_episodes}; tokenizer: "
        f"{pipeline.tokenizer_path} ({pipeline.tokenizer.vocab_size} tokens)")
  it = pipeline.iterator()
  start = time.perf_counter()
  first = next(it)
  for r in range(min(_ROWS.value, first["inputs"].shape[0])):
    text = render_row(first, r, pipeline.tokenizer)
    cut = "…" if len(text) > _CHARS.value else ""
    print(f"\n--- row {r} (shapes {dict((k, v.shape) for k, v in first.items())})")
    print(text[:_CHARS.value] + cut)
  for _ in range(_BATCHES.value - 1):
    next(it)
  elapsed = time.perf_counter() - start
  stats = it.stats.as_dict()
  stats["tokens_per_sec"] = round(stats["tokens"] / elapsed)
  it.close()
  print("\n" + json.dumps(stats))


if __name__ == "__main__":
  app.run(main)
