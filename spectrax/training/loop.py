r"""Trains a model: `python -m spectrax.train --config=CONFIG --workdir=DIR`.

  python -m spectrax.train --config=configs/tiny.py --workdir=runs/tiny
  python -m spectrax.train --config=configs/gemma12b.py --workdir=DIR \
      --config.init_from_hf=/ckpt/gemma-3-12b-pt

Restarting with the same workdir resumes from its latest checkpoint and
continues exactly. SIGTERM saves a checkpoint and exits 0. Metrics go to
DIR/metrics.jsonl and TensorBoard event files in DIR.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np
from flax import nnx
from ml_collections import config_flags

from data_pipelines.schema import MANIFEST
from spectrax.data import tokenizer_training
from spectrax.data.suite_reader import Suite
from spectrax.training import flops as flops_lib
from spectrax.training import hardware
from spectrax.training import run_config
from spectrax.parallel import sharding
from spectrax.checkpoints.training_state import Checkpointer
from spectrax.training.metrics_log import MetricsWriter, Progress, StepTimer
from spectrax.models import init_model, load_hf, transfer_special_tokens
from spectrax.parallel import distributed
from spectrax.data.pipeline import (Pipeline, empty_batch, local_iterator,
                               make_global_batch, shard_pipelines)
from spectrax.training.preemption import PreemptionGuard
from spectrax.checkpoints.state_tree import flatten_state, unflatten_state
from spectrax.data.tokenizer import snapshot_tokenizer
from spectrax.training.step import BATCH_KEYS, Trainer, make_optimizer

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Run config (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory; on several hosts, one every process can "
    "reach (a shared filesystem or a gcsfuse mount).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for multi-process "
    "runs the platform does not set up (see spectrax/distributed.py).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None,
                                      "Processes in the run (with "
                                      "--coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index "
                                   "(with --coordinator_address).")


RUN_FILE = "run.json"  # template, tokenizer and model config, for loaders
TOKENIZER_DIR = "tokenizer"  # the run's copy of its tokenizer


class NonFiniteError(RuntimeError):
  pass


def ensure_suite(c) -> None:
  """Builds the synthetic suite when the config asks and it is missing."""
  if jax.process_count() > 1:  # Process 0 builds; the others wait for it.
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    if jax.process_index() == 0:
      _ensure_suite(c)
    multihost_utils.sync_global_devices("spectrax.train: suite ready")
    if not os.path.exists(os.path.join(c.suite_dir, MANIFEST)):
      raise run_config.ConfigError(
          f"process {jax.process_index()} cannot see the suite at "
          f"suite_dir={c.suite_dir!r} that process 0 has: every host needs "
          "it (a shared filesystem, or build it on each host).")
    return
  _ensure_suite(c)


def _ensure_suite(c) -> None:
  if not os.path.exists(os.path.join(c.suite_dir, MANIFEST)):
    if not c.build_suite_if_missing:
      raise run_config.ConfigError(
          f"no suite at suite_dir={c.suite_dir!r}: build it with `python -m "
          f"data_pipelines.build --out={c.suite_dir}` or set "
          "--config.build_suite_if_missing=true.")
    from data_pipelines import build, registry  # pylint: disable=g-import-not-at-top
    print(f"building the synthetic Spectrum Suite into {c.suite_dir} ...",
          flush=True)
    names = registry.synthetic_task_names()
    build.build(c.suite_dir, registry.select(registry.all_tasks(), names),
                seed=0, raw_dir=None)
  if run_config.tokenizer_path(c) is None and Suite(c.suite_dir).tokenizer_path is None:
    print(f"training the suite's default tokenizer into {c.suite_dir} ...",
          flush=True)
    tokenizer_training.train_default_tokenizer(c.suite_dir)


def estimate_steps(pipeline: Pipeline, batch_size: int, seq_len: int,
                   epochs: int) -> tuple[int, float]:
  """Steps for `epochs` passes, from the mean length of sampled episodes."""
  episodes = pipeline.episodes()
  n = min(256, len(episodes))
  idx = np.linspace(0, len(episodes) - 1, n).astype(int)
  lengths = [len(episodes[int(i)]["inputs"]) for i in idx]
  mean_len = float(np.mean(lengths))
  tokens = pipeline.num_episodes * mean_len * epochs
  return max(1, math.ceil(tokens / 0.96 / (batch_size * seq_len))), mean_len


def evaluate(eval_fn, params, c, tokenizer, sharding_, batches: int) -> float:
  """Mean NLL per loss token over the first `batches` held-out batches."""
  cfg = run_config.data_config(c, split="test", tokenizer=tokenizer)
  it = local_iterator(shard_pipelines(cfg, c.data.shards, jax.process_index(),
                                      jax.process_count()))
  nll = count = 0.0
  rows = cfg.batch_size // jax.process_count()
  for _ in range(batches):
    batch = next(it, None)
    # Every process runs the same steps: a drained one sends empty rows.
    if distributed.all_processes(batch is None):
      break
    if batch is None:
      batch = empty_batch(rows, cfg.seq_len)
    n, k = eval_fn(params, make_global_batch(
        {k: batch[k] for k in BATCH_KEYS}, sharding_))
    nll += float(n)
    count += float(k)
  it.close()
  return nll / max(count, 1.0)


def say(message: str) -> None:
  """Console output of the run: process 0 only."""
  if distributed.is_primary():
    print(message, flush=True)


def initial_params(c, model_cfg, mesh, rules):
  if c.init_from_hf:
    model = load_hf(c.init_from_hf, mesh=mesh, rules=rules,
                    param_dtype=model_cfg.param_dtype, dtype=model_cfg.dtype,
                    attention_backend=model_cfg.attention_backend,
                    remat_policy=model_cfg.remat_policy)
    if c.transfer_special_tokens_from:
      from spectrax.data import templates  # pylint: disable=g-import-not-at-top
      tokens = templates.get_template(c.data.template).special_tokens
      copied = transfer_special_tokens(model, c.transfer_special_tokens_from,
                                       tokens, base_tokenizer_dir=c.init_from_hf)
      say(f"copied special-token rows from {c.transfer_special_tokens_from}:"
            f" {copied}")
  else:
    model = init_model(model_cfg, mesh=mesh, rules=rules, seed=c.train.seed)
  return nnx.state(model, nnx.Param)


def train(c, workdir: str, *, stop_after: int | None = None) -> dict:
  """Runs (or resumes) training; returns the final summary.

  `stop_after` (default: `config.train.stop_after`, 0 = never) ends the run
  after that step as a preemption would (a checkpoint, no final evaluation);
  running again continues it. For job queues with time limits, and tests.
  """
  run_config.validate(c)
  stop_after = stop_after or c.train.get("stop_after", 0) or None
  ensure_suite(c)
  os.makedirs(workdir, exist_ok=True)
  primary = distributed.is_primary()
  if primary:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(c.to_json_best_effort(indent=1))

  tokenizer = run_config.tokenizer_path(c)
  data_cfg = run_config.data_config(c, tokenizer=tokenizer)
  try:
    pipelines = shard_pipelines(data_cfg, c.data.shards, jax.process_index(),
                                jax.process_count())
  except ValueError as e:
    raise run_config.ConfigError(str(e)) from e
  pipeline = pipelines[0]
  pipeline.check_fits()
  model_cfg = run_config.model_config(c, pipeline.tokenizer.vocab_size)
  if primary:
    # The run directory carries its tokenizer: it can be moved or copied
    # (from a pod to a workstation) and still load (spectrax.load_model).
    copy = snapshot_tokenizer(pipeline.tokenizer_path,
                              os.path.join(workdir, TOKENIZER_DIR))
    with open(os.path.join(workdir, RUN_FILE), "w") as f:
      json.dump({"template": c.data.template,
                 "tokenizer": os.path.relpath(copy, workdir),
                 "tokenizer_source": os.path.abspath(pipeline.tokenizer_path),
                 "model_config": json.loads(model_cfg.to_json())}, f, indent=1)
  try:
    mesh = sharding.make_mesh(c.mesh.to_dict())
  except ValueError as e:
    raise run_config.ConfigError(f"mesh: {e} (--config.mesh.fsdp=-1 takes "
                                 "all remaining devices).") from e
  run_config.check_mesh(c, mesh)
  rules = tuple(tuple(r) for r in c.sharding_rules)

  num_steps = c.train.num_steps
  if num_steps == 0:
    num_steps, mean_len = estimate_steps(pipeline, data_cfg.batch_size,
                                         data_cfg.seq_len, c.data.num_epochs)
    say(f"one pass of {c.data.num_epochs} epoch(s) ~ {num_steps} steps "
        f"({pipeline.num_episodes} episodes, mean {mean_len:.0f} tokens)")
  optimizer, schedule = make_optimizer(run_config.optimizer_config(c),
                                       num_steps)
  trainer = Trainer(model_cfg, optimizer, mesh, rules,
                    microbatches=c.train.microbatches,
                    chunk_size=c.train.loss_chunk_size,
                    skip_nonfinite=c.train.skip_nonfinite_steps)
  data_iter = local_iterator(pipelines)
  local_rows = data_cfg.batch_size // jax.process_count()
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"),
                      save_every=c.train.checkpoint_every,
                      keep=c.train.keep_checkpoints)
  abstract = trainer.abstract_state()
  start = 0
  if ckpt.latest_step() is not None:
    flat, start = ckpt.restore(flatten_state(abstract), data_iter)
    state = unflatten_state(flat, abstract)
    say(f"resumed from step {start} ({workdir}/checkpoints)")
  else:
    state = trainer.init_state(initial_params(c, model_cfg, mesh, rules))

  step_fn = trainer.step_fn()
  eval_fn = trainer.eval_fn()
  writer = MetricsWriter(workdir, is_primary=primary)
  writer.truncate_after(start)
  peak, peak_source = (c.train.peak_flops_per_device, "config") \
      if c.train.peak_flops_per_device else hardware.peak_flops_per_device()
  peak_total = peak * jax.device_count()
  logging.info("peak %.3g FLOP/s per device (%s)", peak, peak_source)

  first_eval_path = os.path.join(workdir, "first_eval.json")
  first = None
  # Decided from the restored step, the same on every process (a file check
  # would race with process 0 writing it, and evaluation is a collective).
  if c.train.eval_every and start == 0:
    first = evaluate(eval_fn, state["params"], c, tokenizer,
                     trainer.batch_sharding, c.train.eval_batches)
    writer.write(start, {"eval_loss": first})
    if primary:
      with open(first_eval_path, "w") as f:
        json.dump({"step": start, "eval_loss": first}, f)

  def save(step, force=False):
    return ckpt.save(step, state=flatten_state(state), data_iterator=data_iter,
                     config_dict=json.loads(c.to_json_best_effort()),
                     force=force)

  timer = StepTimer()
  window_start = time.perf_counter()
  progress = Progress(num_steps, start, is_primary=primary)
  window = {"tokens": 0, "flops": 0, "nonfinite": 0}
  pending = None  # (step, metrics) of the previous step: checked one late.
  step = start
  skipped = 0
  with PreemptionGuard() as guard:
    while step < num_steps:
      with timer.data_wait():
        batch = next(data_iter, None)
      # Stop when every process has run out; until then a drained process
      # sends empty rows, so all processes run the same steps.
      if distributed.all_processes(batch is None):
        say(f"data exhausted after step {step}")
        break
      if batch is None:
        batch = empty_batch(local_rows, data_cfg.seq_len)
      segment_ids = batch["segment_ids"]
      window["tokens"] += flops_lib.num_real_tokens(segment_ids)
      window["flops"] += float(flops_lib.train_step_flops(model_cfg, segment_ids))
      global_batch = make_global_batch({k: batch[k] for k in BATCH_KEYS},
                                       trainer.batch_sharding)
      state, metrics = step_fn(state, global_batch)
      step += 1
      if pending is not None:
        skipped += _check_finite(pending, c, ckpt)
      pending = (step, metrics)
      if step % c.train.log_every == 0 or step == num_steps:
        m = jax.device_get(metrics)
        skipped += _check_finite((step, metrics), c, ckpt)
        pending = None
        timer.lap()
        times = timer.summary()
        now = time.perf_counter()
        elapsed = max(now - window_start, 1e-9)
        window_start = now
        # Tokens, FLOPs and data counters of every process's rows.
        data_stats = data_iter.stats.as_dict()
        data_stats.pop("packing_efficiency")
        totals = distributed.sum_over_processes(
            {"tokens": int(window["tokens"]), "flops": window["flops"],
             **{f"data/{k}": v for k, v in data_stats.items()}})
        totals["data/packing_efficiency"] = (
            totals["data/nonpad_tokens"] / max(totals["data/tokens"], 1))
        record = {
            "loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
            "learning_rate": float(schedule(step - 1)),
            "loss_tokens": float(m["loss_tokens"]),
            "tokens_per_sec": totals.pop("tokens") / elapsed,
            "mfu": totals.pop("flops") / elapsed / peak_total,
            "data_wait_fraction": times.get("data_wait_fraction", 0.0),
            "skipped_steps": skipped,
            **totals,
        }
        window = {"tokens": 0, "flops": 0, "nonfinite": 0}
        writer.write(step, record)
        progress.update(step, {"loss": f"{record['loss']:.4f}",
                               "mfu": f"{record['mfu']:.1%}"})
      else:
        timer.lap()
      if (c.train.eval_every and step % c.train.eval_every == 0 and
          step < num_steps):
        writer.write(step, {"eval_loss": evaluate(
            eval_fn, state["params"], c, tokenizer, trainer.batch_sharding,
            c.train.eval_batches)})
      save(step)
      if guard.should_stop(step) or step == stop_after:
        say(f"preempted: saving step {step} and exiting")
        save(step, force=True)
        break
  if pending is not None:
    skipped += _check_finite(pending, c, ckpt)
  progress.close()
  save(step, force=True)
  ckpt.wait()
  summary = {"step": step, "skipped_steps": skipped}
  if c.train.eval_every and step >= num_steps:
    final = evaluate(eval_fn, state["params"], c, tokenizer,
                     trainer.batch_sharding, c.train.eval_batches)
    writer.write(step, {"eval_loss": final})
    if first is None:  # Resumed: the first evaluation was written earlier.
      with open(first_eval_path) as f:
        first = json.load(f)["eval_loss"]
    summary.update(first_eval_loss=first, final_eval_loss=final)
    say(f"held-out loss on test-split episodes: {first:.4f} at the start "
          f"-> {final:.4f} after {step} steps")
    if primary:
      with open(os.path.join(workdir, "final_eval.json"), "w") as f:
        json.dump(summary, f)
  writer.close()
  ckpt.close()
  data_iter.close()
  return summary


def _check_finite(pending, c, ckpt) -> int:
  """0 if the step was finite, 1 if skipped; raises when not skipping."""
  step, metrics = pending
  if bool(jax.device_get(metrics["finite"])):
    return 0
  if c.train.skip_nonfinite_steps:
    logging.warning("step %d: non-finite loss or gradient, step skipped", step)
    return 1
  last = ckpt.latest_step()
  raise NonFiniteError(
      f"step {step}: the loss or gradient is not finite (loss="
      f"{float(jax.device_get(metrics['loss']))}, grad_norm="
      f"{float(jax.device_get(metrics['grad_norm']))}). The last good "
      f"checkpoint is step {last} in {ckpt.directory}. Lower "
      "optimizer.learning_rate, check the data, or set "
      "--config.train.skip_nonfinite_steps=true to skip such steps.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if _WORKDIR.value is None:
    raise app.UsageError("--workdir is required: the run directory.")
  try:
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                           _PROCESS_ID.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  try:
    train(_CONFIG.value, _WORKDIR.value)
  except (run_config.ConfigError, NonFiniteError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  app.run(main)
