r"""Scores a JSONL of questions: per-option log-likelihoods, resumable.

  python -m spectrax.score --input=requests.jsonl --output=scores.jsonl \
      --hf_checkpoint=/ckpt/gemma-3-12b-pt
  python -m spectrax.score --input=requests.jsonl --output=scores.jsonl \
      --workdir=runs/gemma12b --step=2000 --config=configs/gemma12b.py:gpu

Rerun the same command after a crash: ids already in --output are skipped.
A malformed line stops the job before the model loads (`FILE:LINE: why`);
`--skip_bad` sets such lines aside in OUTPUT.rejected.jsonl. The formats and
the multi-host behaviour are described in spectrax/scoring/job.py.
"""

from __future__ import annotations

import json

from absl import flags

from spectrax import cli
from spectrax.checkpoints.run_dir import RunDirError
from spectrax.checkpoints.training_state import CheckpointRestoreError
from spectrax.evaluation.metrics import distributional_metrics
from spectrax.models.attention import AttentionBackendError
from spectrax.models.config import HFCheckpointError
from spectrax.parallel import distributed
from spectrax.scoring import job

_INPUT = flags.DEFINE_string("input", None, "Requests JSONL.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Scores JSONL (appended to; resumable).",
                              required=True)
_HF_CHECKPOINT = flags.DEFINE_string("hf_checkpoint", None, "An HF checkpoint directory.")
_WORKDIR = flags.DEFINE_string("workdir", None, "A spectrax training run directory.")
_STEP = flags.DEFINE_integer("step", None, "The --workdir checkpoint step (default: newest).",
                             lower_bound=0)
_SKIP_BAD = flags.DEFINE_bool(
    "skip_bad", False, "Set malformed lines aside in OUTPUT.rejected.jsonl instead of failing.")
_LEFT_TRUNCATE = flags.DEFINE_bool(
    "left_truncate", False, "Drop the start of prompts longer than the largest bucket (counted).")
_BUCKETS = flags.DEFINE_list("buckets", "256,512,1024,2048,4096",
                             "Row lengths, comma-separated.")
_ROWS_PER_BATCH = flags.DEFINE_integer(
    "rows_per_batch", 8, "Rows per step; rounded up to a multiple of the device count.",
    lower_bound=1)
_CONFIG = flags.DEFINE_string(
    "config", None, "A training config (configs/NAME.py[:ARG]) whose mesh.tensor, model.dtype "
    "and model.attention_backend to use; the flags below override it.")
_TENSOR = flags.DEFINE_integer("tensor", None, "Tensor-parallel ways (per host; default 1).",
                               lower_bound=1)
_DTYPE = flags.DEFINE_string("dtype", None, "Activation dtype override, e.g. bfloat16.")
_PARAM_DTYPE = flags.DEFINE_string("param_dtype", None, "Parameter dtype override.")
_ATTENTION = flags.DEFINE_string("attention_backend", None, "dense | xla | cudnn | splash.")
_NO_PROGRESS = flags.DEFINE_bool("no_progress", False, "No progress bar.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (multi-process runs the platform "
    "does not set up; see spectrax/parallel/distributed.py).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job.",
                                      lower_bound=1)
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.", lower_bound=0)

flags.register_validator(
    "buckets", lambda v: bool(v) and all(b.strip().isdigit() and int(b) > 0 for b in v),
    "give comma-separated integers > 0, e.g. --buckets=512,2048")


def main(argv):
  del argv
  if (_HF_CHECKPOINT.value is None) == (_WORKDIR.value is None):
    raise cli.UserError("give exactly one of --hf_checkpoint=DIR and --workdir=DIR.")
  if _STEP.value is not None and _WORKDIR.value is None:
    raise cli.UserError("--step goes with --workdir (an HF checkpoint has one set of weights).")
  try:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  except ValueError as e:
    raise cli.UserError(str(e)) from e
  summary = job.score_job(
      _INPUT.value, _OUTPUT.value, hf_checkpoint=_HF_CHECKPOINT.value, workdir=_WORKDIR.value,
      step=_STEP.value, skip_bad=_SKIP_BAD.value, left_truncate=_LEFT_TRUNCATE.value,
      buckets=tuple(int(b) for b in _BUCKETS.value), rows_per_batch=_ROWS_PER_BATCH.value,
      config=_CONFIG.value, tensor=_TENSOR.value, dtype=_DTYPE.value,
      param_dtype=_PARAM_DTYPE.value, attention_backend=_ATTENTION.value,
      progress=not _NO_PROGRESS.value, target_metrics=distributional_metrics)
  print(json.dumps(summary))


if __name__ == "__main__":
  cli.run(main, expected=(job.JobError, FileNotFoundError, RunDirError, CheckpointRestoreError,
                          HFCheckpointError,
                          AttentionBackendError))
