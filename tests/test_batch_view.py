"""spectrax/data/batch_view.py: a packed row as readable text."""

import json

import numpy as np

from cli_runs import assert_one_error_line, foreign_info_lines, run_cli
from spectrax.data import batch_view


class LetterTokenizer:
  """Token i is the i-th letter; decode joins them."""

  def decode(self, ids):
    return "".join(chr(ord("a") + i) for i in ids)


def test_render_row_brackets_loss_spans_and_separates_episodes():
  # Two episodes ("abcd" with loss on "cd", "efg" with loss on "g") and 2 pads.
  tokens = [[0, 1, 2, 3], [4, 5, 6]]
  masks = [[0, 0, 1, 1], [0, 0, 1]]
  inputs, targets, loss_mask, segment_ids = [], [], [], []
  for s, (toks, mask) in enumerate(zip(tokens, masks), 1):
    inputs += toks[:-1]
    targets += toks[1:]
    loss_mask += mask[1:]
    segment_ids += [s] * (len(toks) - 1)
  pad = 2
  batch = {"inputs": np.array([inputs + [0] * pad]),
           "targets": np.array([targets + [0] * pad]),
           "loss_mask": np.array([loss_mask + [0] * pad], np.float32),
           "segment_ids": np.array([segment_ids + [0] * pad])}
  assert (batch_view.render_row(batch, 0, LetterTokenizer())
          == "ab⟦cd⟧ │ ef⟦g⟧ │ [2 padding positions]")


def test_show_batches_cli_prints_rows_and_counters(tiny_suite_dir):
  proc = run_cli("spectrax.show_batches", f"--suite={tiny_suite_dir}", "--tasks=coins",
                 "--seq_len=128", "--max_tokens=128", "--batch_size=2", "--batches=3",
                 "--rows=2", "--chars=100")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.splitlines()
  assert lines[0] == "tasks: coins"
  assert sum(line.startswith("--- row ") for line in lines) == 2
  assert "⟦" in proc.stdout
  stats = json.loads(lines[-1])
  assert stats["rows"] == 6 and stats["tokens"] == 6 * 128
  assert not foreign_info_lines(proc.stderr), proc.stderr[-3000:]
  assert_one_error_line(run_cli("spectrax.show_batches", f"--suite={tiny_suite_dir}",
                                "--seq_len=64", "--max_tokens=1000"),
                        "data.max_tokens=1000 does not fit")
