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

from absl import flags

from spectrax import cli
from spectrax.data import batch_view
from spectrax.data import templates
from spectrax.data import tokenizer_training
from spectrax.data.pipeline import DataConfig, Pipeline
from spectrax.data.suite_reader import SuiteError

_SUITE = flags.DEFINE_string("suite", "suite", "Built suite directory.")
_TEMPLATE = flags.DEFINE_enum("template", "gemma", sorted(templates.TEMPLATES),
                              "Episode template.")
_TOKENIZER = flags.DEFINE_string("tokenizer", None,
                                 "HF directory or .model (default: suite's).")
_TASKS = flags.DEFINE_list("tasks", [], "Tasks (default: train-suite ICL).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 1024, "Packed row length.", lower_bound=2)
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 1024, "Episode token cap.", lower_bound=2)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Rows per batch.", lower_bound=1)
_BATCHES = flags.DEFINE_integer("batches", 20, "Batches to time.", lower_bound=1)
_ROWS = flags.DEFINE_integer("rows", 1, "Rows to print decoded.", lower_bound=0)
_CHARS = flags.DEFINE_integer("chars", 1500, "Characters to print per row.", lower_bound=1)
_WORKERS = flags.DEFINE_integer("workers", 0, "Grain worker processes.", lower_bound=0)


def _pipeline() -> Pipeline:
  """The pipeline the flags describe; ValueError for a setting that cannot work."""
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
  return pipeline


def main(argv):
  del argv
  try:
    pipeline = _pipeline()
  except ValueError as e:
    raise cli.UserError(str(e)) from e
  for line in batch_view.describe(pipeline, rows=_ROWS.value, chars=_CHARS.value,
                                  batches=_BATCHES.value):
    print(line, flush=True)


if __name__ == "__main__":
  cli.run(main, expected=(FileNotFoundError, SuiteError))
