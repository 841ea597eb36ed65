r"""Trains a model: `python -m spectrax.train --config=CONFIG --workdir=DIR`.

  python -m spectrax.train --config=configs/tiny.py --workdir=runs/tiny
  python -m spectrax.train --config=configs/gemma12b.py --workdir=DIR \
      --config.init_from_hf=/ckpt/gemma-3-12b-pt

Restarting with the same workdir resumes from its latest checkpoint and
continues exactly. SIGTERM saves a checkpoint and exits 0. Metrics go to
DIR/metrics.jsonl and TensorBoard event files in DIR. A config mistake, a
restart with another model, a workdir another training holds, unreadable
checkpoints or a non-finite loss print one `error: ...` line and exit 2.
"""

from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from spectrax import cli
from spectrax.checkpoints.run_dir import RunDirError
from spectrax.checkpoints.training_state import (CheckpointRestoreError,
                                                 ProcessCountMismatchError)
from spectrax.checkpoints.workdir_lock import WorkdirLockedError
from spectrax.data.suite_reader import SuiteError
from spectrax.models.attention import AttentionBackendError
from spectrax.models.config import HFCheckpointError
from spectrax.parallel import distributed
from spectrax.training import loop
from spectrax.training import run_config

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Run config (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory; on several hosts, one every process can "
    "reach (a shared filesystem or a gcsfuse mount).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for multi-process "
    "runs the platform does not set up (see spectrax/parallel/distributed.py).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Processes in the run (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index (with --coordinator_address).")


def main(argv):
  del argv
  if _WORKDIR.value is None:
    raise cli.UserError("--workdir is required: the run directory.")
  if _CONFIG.value is None:
    raise cli.UserError("--config is required: a run config, e.g. "
                        "--config=configs/tiny.py.")
  try:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                           _PROCESS_ID.value)
  except ValueError as e:
    raise cli.UserError(str(e)) from e
  loop.train(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  cli.run(main, expected=(run_config.ConfigError, loop.NonFiniteError,
                          RunDirError, WorkdirLockedError,
                          CheckpointRestoreError, ProcessCountMismatchError,
                          SuiteError, HFCheckpointError,
                          AttentionBackendError))
