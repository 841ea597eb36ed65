"""Training: `train(config, workdir)` runs a run to its end, or resumes it.

The command line is `python -m spectrax.train` (spectrax/train.py). A run is
a few named steps: `set_up` (suite, data, run directory, mesh; run_setup.py),
`_Run` (restore or initialise the state, evaluate at the start),
`_Run.train_step` until done, preempted or told to stop, and `_Run.finish`
(a last checkpoint, the final evaluation, the summary files). Restarting
with the same workdir resumes from its latest checkpoint and continues
exactly. The run directory's layout is `spectrax.checkpoints.run_dir`.

Several processes agree on whether to go on without a collective of the
host's per step (one would wait for the device to finish the step, and
serialise every host with it). Each step takes every process's signals
(`Trainer.signals`: "my data ran out", "I was asked to stop") and returns
their agreement as metrics "drained" (all ran out) and "stop" (any asked);
the loop reads them with the step's finiteness once the next step is
queued, or at once on a step that logs, evaluates or saves (those wait for
the step anyway). Every process reads the same step's agreement at the same
point, so all take the same decision at the same step:

- stop (SIGTERM on any host): a checkpoint of the step at which the loop
  read it (that step or the next), then exit, as `stop_after` does; JAX's
  preemption sync point (Cloud TPU maintenance) is asked every step too: a
  local call, consistent across hosts (preemption.py);
- the end of the data: a process that ran out sends empty rows; the first
  step on which all had run out changes nothing (step.py), nor does the one
  queued after it before the loop knew; the run ends at the step before,
  with the same state, checkpoint and logs as one process reading the same
  data shards (which stops as soon as its iterator ends).

Once a run (start, restore, write access) and at log steps (the throughput
window's counters) the hosts still exchange small host arrays.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

from absl import logging
from etils import epath
import jax
import tqdm
from flax import nnx

from spectrax.checkpoints.run_dir import require_storage, write_atomic
from spectrax.checkpoints.state_tree import flatten_state, unflatten_state
from spectrax.checkpoints.training_state import Checkpointer
from spectrax.checkpoints.workdir_lock import WorkdirLock, WorkdirLockedError
from spectrax.data.pipeline import (empty_batch, local_iterator,
                                    make_global_batch, shard_pipelines)
from spectrax.data.suite_reader import Suite
from spectrax.models import init_model, load_hf, transfer_special_tokens
from spectrax.parallel import distributed
from spectrax.training import in_training_eval
from spectrax.training import lora_run, run_config
from spectrax.training.metrics_log import MetricsWriter, Progress, StepTimer
from spectrax.training.preemption import PreemptionGuard
from spectrax.training.run_setup import (RunSetup, compilation_cache, say, set_up,
                                         write_run_files)
from spectrax.training.step import BATCH_KEYS, Trainer, make_optimizer
from spectrax.training.throughput import ThroughputWindow, peak_flops_total


class NonFiniteError(RuntimeError):
  """A step's loss or gradient is not finite, and skipping is off."""


def evaluate(eval_fn, params, c, tokenizer, sharding_, batches: int) -> float:
  """Mean NLL per loss token over the first `batches` held-out batches."""
  cfg = run_config.data_config(c, split="test", tokenizer=tokenizer)
  it = local_iterator(shard_pipelines(cfg, c.data.shards, jax.process_index(),
                                      jax.process_count()))
  nll = count = 0.0
  rows = cfg.batch_size // jax.process_count()
  for _ in range(batches):
    batch = next(it, None)
    if batch is None:
      if jax.process_count() == 1:
        break
      # Every process runs all `batches` steps (agreeing to stop early would
      # be a collective per batch); a drained one sends empty rows, which
      # add nothing to the sums.
      batch = empty_batch(rows, cfg.seq_len)
    n, k = eval_fn(params, make_global_batch(
        {k: batch[k] for k in BATCH_KEYS}, sharding_))
    nll += float(n)
    count += float(k)
  it.close()
  return nll / max(count, 1.0)


_SHOWN = ("eval/steerability_fixed_k_loss", "eval/distributional_js")


def _suites_plan(c) -> dict[str, list[str]]:
  """`train.eval_suites`' slices and their tasks ({} when off)."""
  names = tuple(c.train.get("eval_suites", ()))
  if not names:
    return {}
  if c.get("lora") and c.lora.get("rank"):
    # The slices score a whole model; a LoRA run's params are its adapters
    # (merging them into a copy of the base each time is not built yet).
    say(f"train.eval_suites={names}: not run for a LoRA run (yet); evaluate "
        "its checkpoints with `python -m spectrax.evaluate "
        "--model=NAME=workdir:RUN@STEP`.")
    return {}
  try:
    plan = in_training_eval.plan_tasks(Suite(c.suite_dir), names,
                                       tuple(c.train.get("eval_suites_tasks", ())))
  except ValueError as e:
    raise run_config.ConfigError(str(e)) from e
  if not plan:
    say(f"train.eval_suites={names}: the suite at {c.suite_dir} has no task "
        "for them; no in-training evaluation.")
  return plan


def _suites_sizes(c) -> in_training_eval.SliceSizes:
  t = c.train
  return in_training_eval.SliceSizes(
      episodes=t.eval_suites_episodes, questions=t.eval_suites_questions,
      max_tokens=t.eval_suites_max_tokens or c.data.max_tokens)


def initial_params(c, model_cfg, mesh, rules):
  """Params of a fresh run: the HF checkpoint's, or randomly initialised."""
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
  require_storage(workdir)
  stop_after = stop_after or c.train.get("stop_after", 0) or None
  with _hold_workdir(workdir), compilation_cache(c, workdir):
    run = _Run(c, set_up(c, workdir))
    with PreemptionGuard() as guard:
      while run.step < run.num_steps and run.train_step(stop=guard.requested):
        if (guard.should_stop(run.step, agreed=run.stop_agreed)
            or run.step == stop_after):
          run.stop_early()
          break
    return run.finish()


@contextlib.contextmanager
def _hold_workdir(workdir: str):
  """Process 0 locks the run directory for the whole run; when it cannot,
  every process stops (agreed, so none is left waiting in a collective)."""
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  lock = WorkdirLock(workdir)
  error = None
  if distributed.is_primary():
    try:
      lock.acquire()
    except WorkdirLockedError as e:
      error = e
  if not distributed.all_processes(error is None):
    raise error or WorkdirLockedError(
        f"process 0 could not lock {workdir}; its error names the holder.")
  try:
    yield
  finally:
    lock.release()


class _Run:
  """One training run in progress: its state, data, logs and checkpoints."""

  def __init__(self, c, setup: RunSetup):
    self.c = c
    self.setup = setup
    self.num_steps = setup.num_steps
    self.primary = distributed.is_primary()
    optimizer, self.schedule = make_optimizer(run_config.optimizer_config(c),
                                              self.num_steps)
    self.trainer = Trainer(setup.model_cfg, optimizer, setup.mesh,
                           setup.rules, microbatches=c.train.microbatches,
                           chunk_size=c.train.loss_chunk_size,
                           skip_nonfinite=c.train.skip_nonfinite_steps,
                           lora=run_config.lora_config(c), seed=c.train.seed)
    self.data_iter = local_iterator(setup.pipelines)
    self.ckpt = Checkpointer(setup.run_dir.checkpoints,
                             save_every=c.train.checkpoint_every,
                             keep=c.train.keep_checkpoints)
    self._config_dict = json.loads(c.to_json_best_effort())
    self.suites_plan = _suites_plan(c)  # A config mistake fails before the state.
    self.state, self.step = self._restore_or_init()
    # The run has really started: only now may it (re)write its files.
    write_run_files(c, setup, lora=lora_run.run_info(self.trainer, self.lora_base))
    self.step_fn = self.trainer.step_fn()
    self.eval_fn = self.trainer.eval_fn()
    self.writer = MetricsWriter(setup.run_dir.path, is_primary=self.primary)
    self.writer.truncate_after(self.step)
    # In-training evaluation's share of this process's wall time.
    self.wall_start, self.suites_seconds = time.perf_counter(), 0.0
    self.suites = self._make_suites_eval()
    self.first_eval = self._evaluate_at_start()
    # The clocks start after that evaluation: it is not training time.
    self.timer = StepTimer()
    self.window = ThroughputWindow(setup.model_cfg,
                                   peak_flops_total(c.train.peak_flops_per_device),
                                   lora=self.trainer.lora)
    self.progress = Progress(self.num_steps, self.step, is_primary=self.primary)
    self.pending = None  # (step, metrics) of the previous step: read late.
    self.skipped = 0
    self.drained = False  # This process's data ran out (several processes).
    self.stop_agreed = False  # A step said some process was asked to stop.
    self.data_ended = False  # A step said every process's data ran out.

  def _restore_or_init(self) -> tuple[dict, int]:
    """The train state and its step: the latest checkpoint's, else fresh.

    LoRA: the frozen base is built and checked first; the state is the adapters'.
    """
    self.lora_base = None
    if self.trainer.lora is not None:
      self.lora_base = lora_run.prepare_base(self.c, self.setup, self.trainer, self.ckpt)
      self._config_dict[lora_run.CONFIG_KEY] = self.lora_base.to_json()
    if self.ckpt.latest_step() is None:
      s = self.setup
      params = (self.trainer.init_adapters() if self.trainer.lora is not None
                else initial_params(self.c, s.model_cfg, s.mesh, s.rules))
      return self.trainer.init_state(params), 0
    abstract = self.trainer.abstract_state()
    flat, start = self.ckpt.restore(flatten_state(abstract), self.data_iter)
    say(f"resumed from step {start} ({self.setup.run_dir.checkpoints})")
    return unflatten_state(flat, abstract), start

  # -- evaluation ------------------------------------------------------------

  def _eval_loss(self) -> float:
    return evaluate(self.eval_fn, self.state["params"], self.c,
                    self.setup.tokenizer, self.trainer.batch_sharding,
                    self.c.train.eval_batches)

  def _evaluate_at_start(self) -> float | None:
    """Held-out loss before the first step; None when resumed or disabled."""
    # Decided from the restored step, the same on every process (a file check
    # would race with process 0 writing it, and evaluation is a collective).
    if self.suites is not None and self.step == 0:
      self._evaluate_suites()
    if not (self.c.train.eval_every and self.step == 0):
      return None
    loss = self._eval_loss()
    self.writer.write(self.step, {"eval_loss": loss})
    if self.primary:
      write_atomic(self.setup.run_dir.first_eval_file,
                   json.dumps({"step": self.step, "eval_loss": loss}))
    return loss

  def _evaluate_at_end(self, summary: dict) -> None:
    """Adds the first and final held-out losses to `summary` and saves it."""
    final = self._eval_loss()
    self.writer.write(self.step, {"eval_loss": final})
    first = self.first_eval
    if first is None:  # Resumed: the first evaluation was written earlier.
      text = epath.Path(self.setup.run_dir.first_eval_file).read_text()
      first = json.loads(text)["eval_loss"]
    summary.update(first_eval_loss=first, final_eval_loss=final)
    say(f"held-out loss on test-split episodes: {first:.4f} at the start "
        f"-> {final:.4f} after {self.step} steps")
    if self.primary:
      write_atomic(self.setup.run_dir.final_eval_file, json.dumps(summary))

  # -- the loop body ---------------------------------------------------------

  def train_step(self, stop: bool = False) -> bool:
    """Data, update, log, evaluate, checkpoint; False when data ran out.

    `stop`: this process was asked to stop; the step tells every process
    (`stop_agreed`, read a step late).
    """
    batch = self._next_batch()
    if batch is None:
      say(f"data exhausted after step {self.step}")
      return False
    self.window.add(batch["segment_ids"])
    global_batch = make_global_batch({k: batch[k] for k in BATCH_KEYS},
                                     self.trainer.batch_sharding)
    signals = self.trainer.signals(self.setup.data_cfg.batch_size,
                                   drained=self.drained, stop=stop)
    self.state, metrics = self.step_fn(self.state, global_batch, signals)
    self.step += 1
    c = self.c.train
    log = self.step % c.log_every == 0 or self.step == self.num_steps
    evaluate = (c.eval_every and self.step % c.eval_every == 0
                and self.step < self.num_steps)
    suites = self.suites is not None and (self.step % c.eval_suites_every == 0
                                          or self.step == self.num_steps)
    recorded = log or evaluate or suites or self.step % c.checkpoint_every == 0
    # A step's outputs are read once the next step is queued, so the host
    # never stalls the device; a step that logs, evaluates or saves is read
    # at once, before anything records it (those wait for it anyway).
    self._settle()
    if not self.data_ended:
      self.pending = (self.step, metrics)
      if recorded:
        self._settle()
    if self.data_ended:
      say(f"data exhausted after step {self.step}")
      return False
    if log:
      self._log(metrics)
    else:
      self.timer.lap()
    # Evaluation and checkpoint time is left out of tokens/s and MFU.
    with self.window.paused():
      if evaluate:
        self.writer.write(self.step, {"eval_loss": self._eval_loss()})
      if suites:
        self._evaluate_suites()
      self.save()
    return True

  def _settle(self) -> None:
    """Reads the pending step's outputs: finiteness and what all processes
    agreed (data ran out everywhere, someone was asked to stop)."""
    if self.pending is None:
      return
    step, metrics = self.pending
    self.pending = None
    flags = jax.device_get({k: metrics[k] for k in ("finite", "drained", "stop")})
    if flags["drained"]:
      # That step, and one queued after it, left the state as it was: the
      # run ends at the step before, as one process reading the same data.
      self.step, self.data_ended = step - 1, True
      return
    self.skipped += self._check_finite(step, metrics, finite=bool(flags["finite"]))
    self.stop_agreed = self.stop_agreed or bool(flags["stop"])

  # -- the paper's numbers during training (in_training_eval.py) ------------

  def _make_suites_eval(self) -> in_training_eval.InTrainingEval | None:
    if not self.suites_plan:
      return None
    c, s = self.c, self.setup
    sizes = _suites_sizes(c)
    say(in_training_eval.describe(self.suites_plan, sizes,
                                  c.train.eval_suites_every))
    return in_training_eval.InTrainingEval(
        Suite(c.suite_dir), self.suites_plan, sizes,
        graphdef=self.trainer.graphdef, params=self.state["params"],
        tokenizer=s.pipelines[0].tokenizer, template=c.data.template,
        mesh=s.mesh, rules=s.rules)

  def _evaluate_suites(self) -> None:
    """Runs the slices on the current params (every process), logs them."""
    record, _ = self.suites.run(self.state["params"])
    self.suites_seconds += record["eval/suites_seconds"]
    wall = time.perf_counter() - self.wall_start
    record["eval/suites_fraction"] = self.suites_seconds / max(wall, 1e-9)
    self.writer.write(self.step, record)
    shown = [f"{name.removeprefix('eval/')} {value:.4f}"
             for name, value in record.items()
             if name in _SHOWN and value is not None]
    if self.primary:  # Above the progress bar, which tqdm redraws.
      tqdm.tqdm.write(
          f"step {self.step}: {', '.join(shown)} ({record['eval/suites_seconds']:.1f} s; "
          f"in-training evaluation {self.suites_seconds:.0f} s = "
          f"{record['eval/suites_fraction']:.1%} of {wall:.0f} s so far)")
      sys.stdout.flush()

  def _next_batch(self) -> dict | None:
    """This process's rows; None once a single process has run out.

    With several, a process that has run out sends empty rows (and says so
    to the step) until the step says every process has.
    """
    if not self.drained:
      with self.timer.data_wait():
        batch = next(self.data_iter, None)
      if batch is not None:
        return batch
      if jax.process_count() == 1:
        return None
      self.drained = True
    rows = self.setup.data_cfg.batch_size // jax.process_count()
    return empty_batch(rows, self.setup.data_cfg.seq_len)

  def _log(self, metrics) -> None:
    """One metrics record (a collective: every process logs the same steps)."""
    m = jax.device_get(metrics)
    self.timer.lap()
    times = self.timer.summary()
    rates = self.window.close(self.data_iter.stats.as_dict())
    record = {
        "loss": float(m["loss"]), "grad_norm": float(m["grad_norm"]),
        "learning_rate": float(self.schedule(self.step - 1)),
        "loss_tokens": float(m["loss_tokens"]),
        "tokens_per_sec": rates.pop("tokens_per_sec"),
        "mfu": rates.pop("mfu"),
        "data_wait_fraction": times.get("data_wait_fraction", 0.0),
        "skipped_steps": self.skipped,
        **rates,  # the data counters of every process
    }
    self.writer.write(self.step, record)
    self.progress.update(self.step, {"loss": f"{record['loss']:.4f}",
                                     "mfu": f"{record['mfu']:.1%}"})

  def _check_finite(self, step: int, metrics, finite: bool) -> int:
    """0 if the step was finite, 1 if skipped; raises when not skipping."""
    if finite:
      return 0
    if self.c.train.skip_nonfinite_steps:
      logging.warning("step %d: non-finite loss or gradient, step skipped",
                      step)
      return 1
    raise NonFiniteError(
        f"step {step}: the loss or gradient is not finite (loss="
        f"{float(jax.device_get(metrics['loss']))}, grad_norm="
        f"{float(jax.device_get(metrics['grad_norm']))}). The last good "
        f"checkpoint is step {self._last_good_step(step)} in "
        f"{self.ckpt.directory}. Lower optimizer.learning_rate, check the "
        "data, or set --config.train.skip_nonfinite_steps=true to skip such "
        "steps.")

  def _last_good_step(self, bad_step: int) -> int | None:
    """The newest checkpoint before `bad_step`: `save` checks the pending
    step before saving, so no checkpoint holds a non-finite state."""
    good = [s for s in self.ckpt.all_steps() if s < bad_step]
    return good[-1] if good else None

  # -- checkpoints, preemption and the end -----------------------------------

  def save(self, force: bool = False) -> bool:
    """A checkpoint of this step, on the `checkpoint_every` schedule or forced."""
    if force or self.step % self.c.train.checkpoint_every == 0:
      # The step is otherwise read one step late; a checkpoint must never
      # hold a state the NaN guard is about to reject.
      self._settle()
    return self.ckpt.save(self.step, state=flatten_state(self.state),
                          data_iterator=self.data_iter,
                          config_dict=self._config_dict, force=force)

  def stop_early(self) -> None:
    """Preempted or told to stop: a checkpoint now; running again resumes."""
    self._settle()
    say(f"preempted: saving step {self.step} and exiting")
    self.save(force=True)

  def finish(self) -> dict:
    """A last checkpoint, the final evaluation when the run is done, and the
    summary `{"step", "skipped_steps"[, "first_eval_loss", "final_eval_loss"]}`."""
    self._settle()
    self.progress.close()
    self.save(force=True)
    self.ckpt.wait()
    summary = {"step": self.step, "skipped_steps": self.skipped}
    if self.suites is not None:
      wall = time.perf_counter() - self.wall_start
      summary.update(eval_suites_seconds=round(self.suites_seconds, 3),
                     eval_suites_fraction=round(self.suites_seconds / max(wall, 1e-9), 4))
      say(f"in-training evaluation took {self.suites_seconds:.0f} s of {wall:.0f} s "
          f"({summary['eval_suites_fraction']:.1%} of this process's wall time)")
    if self.c.train.eval_every and self.step >= self.num_steps:
      self._evaluate_at_end(summary)
    self.writer.close()
    self.ckpt.close()
    self.data_iter.close()
    return summary
