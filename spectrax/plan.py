r"""Plans a run without its hardware: `python -m spectrax.plan --config=CONFIG`.

  python -m spectrax.plan --config=configs/gemma12b.py --devices=64 --accelerator=v5p
  python -m spectrax.plan --config=configs/gemma12b.py:gpu --devices=8 --accelerator=h200

Prints parameter, optimizer-state and activation memory per device, FLOPs
per step and the estimated step time, so an OOM shows up before queueing;
the last line is the same as JSON. The train step is compiled ahead of time
on `--devices` simulated CPU devices (spectrax/training/planning.py).

Then a table of every remat policy (`--remat_policies`, default all; "" for
none): activation memory, fit and the recomputation each costs
(spectrax/training/remat_plan.py). Each policy is two more compiles: about
2-3 minutes in all for Gemma 3 12B on 8 simulated devices.
"""

from __future__ import annotations

import json
import time

from absl import flags
from ml_collections import config_flags

from spectrax import cli
from spectrax.training import planning
from spectrax.training import remat_plan
from spectrax.training import run_config

_CONFIG = config_flags.DEFINE_config_file("config", None, "Run config (configs/*.py).",
                                          lock_config=True)
_DEVICES = flags.DEFINE_integer(
    "devices", 0, "Devices of the target run (default: mesh sizes, or 8).")
_ACCEL = flags.DEFINE_string(
    "accelerator", "", f"{'|'.join(planning.ACCELERATORS)} (default: from the "
    "config's attention backend: splash -> v5p, cudnn -> h200).")
_MFU = flags.DEFINE_float("assumed_mfu", 0.4, "MFU for the step-time estimate.",
                          lower_bound=0.01, upper_bound=1.0)
_REMAT = flags.DEFINE_string(
    "remat_policies", remat_plan.ALL, "Remat policies to compare with the config's own "
    "(spectrax/models/remat.py): 'all', a comma list (save_qkv,full), or '' for no "
    "table. Two compiles each.")


def main(argv):
  del argv
  c = _CONFIG.value
  if c is None:
    raise cli.UserError("--config is required: a run config, e.g. "
                        "--config=configs/gemma12b.py.")
  devices = planning.device_count(c, _DEVICES.value)
  accelerator = planning.accelerator_for(c, _ACCEL.value)
  policies = remat_plan.parse_policies(_REMAT.value)
  planning.use_cpu_devices(devices)
  start = time.perf_counter()
  result = planning.plan(c, devices, accelerator, _MFU.value)
  own = {c.model.remat_policy: (result, time.perf_counter() - start)}
  print("\n".join(planning.summary_lines(result, _MFU.value)), flush=True)
  if policies:
    result["remat"] = remat_plan.table(c, devices, accelerator, _MFU.value,
                                       policies + tuple(own), own)
    print("\n".join(remat_plan.table_lines(result["remat"], c.model.remat_policy)))
  print(json.dumps(result))


if __name__ == "__main__":
  cli.run(main, expected=(planning.PlanError, run_config.ConfigError))
