"""Packed batches made readable: what the trainer will see, before it runs.

`render_row` decodes one packed row with its loss spans bracketed as ⟦…⟧
and `│` between episodes; `describe` adds the pipeline's counters and
throughput (`python -m spectrax.show_batches`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np


def _decode_spans(tokenizer, ids: list[int], mask: list[float]) -> str:
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
  return "".join(text)


def render_row(batch: dict[str, np.ndarray], row: int, tokenizer) -> str:
  """One packed row as text: ⟦loss spans⟧, `│` between episodes.

  `batch` holds the packed arrays (`inputs`, `targets`, `loss_mask`,
  `segment_ids`, all [batch, seq_len]); `tokenizer` has `decode(ids)`.
  """
  seg = batch["segment_ids"][row]
  out: list[str] = []
  for s in np.unique(seg[seg > 0]):
    idx = np.where(seg == s)[0]
    # Text of the episode: its first input (BOS) then every target.
    ids = [int(batch["inputs"][row, idx[0]])] + batch["targets"][row, idx].tolist()
    mask = [0.0] + batch["loss_mask"][row, idx].tolist()
    out.append(_decode_spans(tokenizer, ids, mask))
  pad = int((seg == 0).sum())
  return " │ ".join(out) + (f" │ [{pad} padding positions]" if pad else "")


def describe(pipeline, *, rows: int, chars: int, batches: int) -> Iterator[str]:
  """Lines to print: tasks, `rows` decoded rows of the first batch (cut at
  `chars` characters), then the counters and tokens/s over `batches` batches
  as one JSON line."""
  yield f"tasks: {', '.join(pipeline.task_names)}"
  yield (f"episodes per epoch: {pipeline.num_episodes}; tokenizer: "
         f"{pipeline.tokenizer_path} ({pipeline.tokenizer.vocab_size} tokens)")
  it = pipeline.iterator()
  start = time.perf_counter()
  first = next(it)
  shapes = {k: v.shape for k, v in first.items()}
  for r in range(min(rows, first["inputs"].shape[0])):
    text = render_row(first, r, pipeline.tokenizer)
    cut = "…" if len(text) > chars else ""
    yield f"\n--- row {r} (shapes {shapes})"
    yield text[:chars] + cut
  for _ in range(batches - 1):
    next(it)
  elapsed = time.perf_counter() - start
  stats = it.stats.as_dict()
  stats["tokens_per_sec"] = round(stats["tokens"] / elapsed)
  it.close()
  yield "\n" + json.dumps(stats)
