"""The trainer end to end: resume exactness, preemption, fallbacks, errors."""

import json
import logging
import os
import shutil
import socket
import signal
import subprocess
import sys
import time

import pytest

from conftest import tiny_train_config
from spectrax.training import run_config
from spectrax.training import loop as train_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_config = tiny_train_config


def _losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [(r["step"], r["loss"]) for r in rows if "loss" in r]


@pytest.fixture(scope="module")
def uninterrupted(tiny_run):
  return tiny_run


def test_metrics_and_learning(uninterrupted):
  workdir, summary = uninterrupted
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  train_rows = [r for r in rows if "loss" in r]
  assert [r["step"] for r in train_rows] == list(range(1, 9))
  for key in ("loss", "learning_rate", "grad_norm", "tokens_per_sec", "mfu",
              "data_wait_fraction", "data/packing_efficiency"):
    assert key in train_rows[0], key
  assert train_rows[0]["learning_rate"] == 0.0  # warmup from 0
  assert summary["final_eval_loss"] < summary["first_eval_loss"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  assert os.path.exists(os.path.join(workdir, "config.json"))


def test_resume_continues_exactly(tiny_suite_dir, tmp_path, uninterrupted):
  workdir = str(tmp_path)
  c = _config(tiny_suite_dir)
  first = train_lib.train(c, workdir, stop_after=4)
  assert first["step"] == 4 and "final_eval_loss" not in first
  resumed = train_lib.train(c, workdir)
  assert _losses(workdir) == _losses(uninterrupted[0])
  assert resumed["final_eval_loss"] == uninterrupted[1]["final_eval_loss"]


def _truncate_state(step_dir):
  for root, _, files in os.walk(os.path.join(step_dir, "state")):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(3)


def _flip_bytes(step_dir):
  from test_training_state import flip_bytes  # pylint: disable=g-import-not-at-top
  flip_bytes(step_dir, every_file=True)


@pytest.mark.parametrize("damage", [_truncate_state, _flip_bytes],
                         ids=["truncated", "flipped bytes"])
def test_corrupt_latest_checkpoint_falls_back(tiny_suite_dir, tmp_path,
                                               uninterrupted, caplog, damage):
  workdir = str(tmp_path)
  c = _config(tiny_suite_dir)
  train_lib.train(c, workdir, stop_after=6)
  damage(os.path.join(workdir, "checkpoints", "6"))
  with caplog.at_level(logging.WARNING):
    train_lib.train(c, workdir)
  assert _losses(workdir) == _losses(uninterrupted[0])
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  # One warning for the bad step, one for moving it aside; none of orbax's.
  assert len(warnings) == 2, warnings
  assert "checkpoints/6 is unreadable" in warnings[0]
  assert "trying the previous one" in warnings[0]
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "6.corrupt"))


def test_sigterm_saves_and_exits_zero(tiny_suite_dir, tmp_path):
  workdir = str(tmp_path)
  args = [sys.executable, "-m", "spectrax.train", "--config=configs/tiny.py",
          f"--workdir={workdir}", f"--config.suite_dir={tiny_suite_dir}",
          "--config.build_suite_if_missing=false",
          "--config.data.tasks=('coins','sums')", "--config.data.seq_len=64",
          "--config.data.max_tokens=65", "--config.data.batch_size=8",
          "--config.model.hf_config.hidden_size=32",
          "--config.model.hf_config.num_hidden_layers=2",
          "--config.train.num_steps=100000", "--config.train.log_every=1",
          "--config.train.eval_every=0", "--config.train.eval_suites=()",
          "--config.train.checkpoint_every=1000"]
  proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 240
  while time.time() < deadline and not (
      os.path.exists(metrics) and len(open(metrics).readlines()) >= 3):
    time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out[-3000:]
  assert "preempted" in out
  from spectrax.checkpoints.training_state import Checkpointer
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), save_every=1000,
                      keep=3)
  steps = len([l for l in open(metrics) if '"loss"' in l])
  assert ckpt.latest_step() >= steps >= 3
  ckpt.close()


@pytest.mark.parametrize("flags,message", [
    (["--config=configs/tiny.py", "--config.suite_dir=/nowhere",
      "--config.build_suite_if_missing=false"],
     "error: no suite at suite_dir='/nowhere': build it with"),
    (["--config=configs/tiny.py"], "error: --workdir is required"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, flags, message):
  if "--config.suite_dir=/nowhere" in flags:
    flags = flags + [f"--workdir={tmp_path}"]
  proc = subprocess.run([sys.executable, "-m", "spectrax.train", *flags],
                        cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr


def test_nan_guard_names_step_and_checkpoint(tiny_suite_dir, tmp_path,
                                             monkeypatch):
  from spectrax.training import step as train_step
  real = train_step.Trainer._loss

  def poisoned(self, params, batch):
    nll, count = real(self, params, batch)
    return nll * float("nan"), count
  monkeypatch.setattr(train_step.Trainer, "_loss", poisoned)
  with pytest.raises(train_lib.NonFiniteError,
                     match=r"step 1: the loss or gradient is not finite.*"
                           r"last good checkpoint is step None"):
    train_lib.train(_config(tiny_suite_dir, eval_every=0), str(tmp_path))


@pytest.mark.parametrize("field,value,message", [
    ("data.template", "chatml", "data.template='chatml'"),
    ("train.microbatches", 3, "train.microbatches=3 must divide"),
    ("optimizer.schedule", "step", "optimizer.schedule='step'"),
    ("init_from_hf", "/nowhere", "init_from_hf='/nowhere' has no config.json"),
])
def test_config_errors(tiny_suite_dir, field, value, message):
  c = _config(tiny_suite_dir)
  section, _, key = field.rpartition(".")
  (c[section] if section else c)[key] = value
  with pytest.raises(run_config.ConfigError, match=message):
    run_config.validate(c)


def test_real_model_config_requires_a_checkpoint():
  from configs import gemma12b
  c = gemma12b.get_config()
  with pytest.raises(run_config.ConfigError,
                     match="set --config.init_from_hf=/path/to/google/gemma"):
    run_config.validate(c)
  with pytest.raises(ValueError, match="config argument 'cpu'"):
    gemma12b.get_config("cpu")


def test_tokenizer_snapshot_skips_weights(tmp_path):
  from spectrax.data.tokenizer import snapshot_tokenizer  # pylint: disable=g-import-not-at-top
  src = tmp_path / "hf"
  src.mkdir()
  for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors",
               "model-00001-of-00002.safetensors", "model.safetensors.index.json"):
    (src / name).write_text("{}")
  out = snapshot_tokenizer(str(src), str(tmp_path / "copy"))
  assert sorted(os.listdir(out)) == ["config.json", "tokenizer.json", "tokenizer_config.json"]


def test_relative_workdir(tiny_suite_dir, tmp_path, monkeypatch):
  """The README's command passes `--workdir=runs/tiny`: a relative path."""
  monkeypatch.chdir(tmp_path)
  c = _config(tiny_suite_dir, num_steps=2, checkpoint_every=1, eval_every=0)
  assert train_lib.train(c, os.path.join("runs", "rel"))["step"] == 2
  from spectrax.checkpoints.training_state import Checkpointer  # pylint: disable=g-import-not-at-top
  ckpt = Checkpointer(os.path.join("runs", "rel", "checkpoints"), save_every=1, keep=3)
  assert ckpt.all_steps() == [1, 2]
  ckpt.close()
  resumed = train_lib.train(_config(tiny_suite_dir, num_steps=3, checkpoint_every=1,
                                    eval_every=0), os.path.join("runs", "rel"))
  assert resumed["step"] == 3


def _snapshot(workdir):
  """Bytes of run.json and config.json, and the checkpoint listing."""
  files = {n: open(os.path.join(workdir, n), "rb").read()
           for n in ("run.json", "config.json")}
  return files, sorted(os.listdir(os.path.join(workdir, "checkpoints")))


def test_nan_guard_names_the_last_good_checkpoint(tiny_suite_dir, tiny_run,
                                                  tmp_path, monkeypatch):
  """Steps are checked one step late; a checkpoint step is checked before
  it is saved, so the named checkpoint (8) really is good and no
  non-finite step 9 is saved."""
  workdir = str(shutil.copytree(tiny_run[0], tmp_path / "run"))
  from spectrax.training import step as train_step
  real = train_step.Trainer._loss

  def poisoned(self, params, batch):
    nll, count = real(self, params, batch)
    return nll * float("nan"), count
  monkeypatch.setattr(train_step.Trainer, "_loss", poisoned)
  c = _config(tiny_suite_dir, num_steps=12, log_every=100, eval_every=0,
              checkpoint_every=1)
  with pytest.raises(train_lib.NonFiniteError,
                     match=r"step 9: the loss or gradient is not finite.*"
                           r"last good checkpoint is step 8 in"):
    train_lib.train(c, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4", "6", "8"]
  assert not os.path.exists(os.path.join(workdir, "train.lock"))


def test_restart_with_another_model_changes_nothing(tiny_suite_dir, tiny_run, tmp_path):
  workdir = str(shutil.copytree(tiny_run[0], tmp_path / "run"))
  before = _snapshot(workdir)
  c = _config(tiny_suite_dir)
  c.model.hf_config.hidden_size = 48
  from spectrax.checkpoints.run_dir import RunDirError  # pylint: disable=g-import-not-at-top
  with pytest.raises(RunDirError, match=r"holds checkpoints of another model "
                                        r"\(hidden_size: 32 in the run, 48 now"):
    train_lib.train(c, workdir)
  assert _snapshot(workdir) == before
  assert not os.path.exists(os.path.join(workdir, "train.lock"))
  # The intact run still loads (the issue: scoring failed after such a start).
  from spectrax.checkpoints.loading import load_model  # pylint: disable=g-import-not-at-top
  assert load_model(workdir=workdir).name == "run@8"


def test_second_training_in_a_workdir_stops_naming_the_holder(tiny_suite_dir, tiny_run,
                                                              tmp_path):
  from conftest import tiny_train_flags  # pylint: disable=g-import-not-at-top
  workdir = str(shutil.copytree(tiny_run[0], tmp_path / "run"))
  holder = subprocess.Popen(["sleep", "600"])  # a live process on this host
  try:
    lock = {"host": socket.gethostname(), "pid": holder.pid,
            "started": "2026-12-02T10:00:00+00:00"}
    with open(os.path.join(workdir, "train.lock"), "w") as f:
      json.dump(lock, f)
    before = _snapshot(workdir)
    proc = subprocess.run(
        [sys.executable, "-m", "spectrax.train", "--config=configs/tiny.py",
         f"--workdir={workdir}", *tiny_train_flags(tiny_suite_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
  finally:
    holder.kill()
    holder.wait()
  assert proc.returncode == 2, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: {workdir} is in use by another training "
                         f"(host {socket.gethostname()}, pid {holder.pid}, "
                         "started 2026-12-02T10:00:00+00:00)"), last
  assert "Traceback" not in proc.stderr
  assert _snapshot(workdir) == before
  assert json.load(open(os.path.join(workdir, "train.lock"))) == lock


def test_stale_lock_of_a_dead_process_is_taken_over(tiny_suite_dir, tmp_path, caplog):
  dead = subprocess.Popen(["true"])
  dead.wait()
  workdir = str(tmp_path)
  with open(os.path.join(workdir, "train.lock"), "w") as f:
    json.dump({"host": socket.gethostname(), "pid": dead.pid,
               "started": "2026-12-02T10:00:00+00:00"}, f)
  c = _config(tiny_suite_dir, num_steps=1, eval_every=0)
  with caplog.at_level(logging.WARNING):
    assert train_lib.train(c, workdir)["step"] == 1
  assert any("taking over the lock" in r.getMessage()
             and f"pid {dead.pid}" in r.getMessage() for r in caplog.records)
  assert not os.path.exists(os.path.join(workdir, "train.lock"))


def test_cli_resume_past_a_corrupt_checkpoint_warns_once_quietly(tiny_suite_dir, tiny_run,
                                                                  tmp_path):
  """The issue: the one warning was buried in ~400 lines and 16 tracebacks of
  orbax logging. Re-running a finished run whose step 8 is truncated: step 6
  is used, steps 7-8 retrained, and stderr says so once, without tracebacks."""
  from conftest import tiny_train_flags  # pylint: disable=g-import-not-at-top
  workdir = str(shutil.copytree(tiny_run[0], tmp_path / "run"))
  _truncate_state(os.path.join(workdir, "checkpoints", "8"))
  proc = subprocess.run(
      [sys.executable, "-m", "spectrax.train", "--config=configs/tiny.py",
       f"--workdir={workdir}", *tiny_train_flags(tiny_suite_dir)],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout + proc.stderr
  assert "Traceback" not in out and "Future exception" not in out, out[-3000:]
  unreadable = [l for l in out.splitlines() if "is unreadable" in l]
  assert len(unreadable) == 1 and "checkpoints/8 is unreadable" in unreadable[0], out[-3000:]
  assert "resumed from step 6" in out
  with open(os.path.join(workdir, "final_eval.json")) as f:
    assert json.load(f)["final_eval_loss"] == pytest.approx(
        tiny_run[1]["final_eval_loss"], rel=1e-6)


def test_training_compiles_into_the_workdirs_cache(tiny_suite_dir, tmp_path, monkeypatch,
                                                   without_session_compilation_cache):
  """train() points JAX's persistent compilation cache at WORKDIR/jax_cache
  (tests/test_run_setup.py checks the cache itself)."""
  import jax  # pylint: disable=g-import-not-at-top
  seen = []

  class Stop(Exception):
    pass

  def set_up(c, workdir):
    del c, workdir
    seen.append(jax.config.jax_compilation_cache_dir)
    raise Stop
  monkeypatch.setattr(train_lib, "set_up", set_up)
  with pytest.raises(Stop):
    train_lib.train(_config(tiny_suite_dir), str(tmp_path))
  c = _config(tiny_suite_dir)
  c.train.compilation_cache = False
  with pytest.raises(Stop):
    train_lib.train(c, str(tmp_path))
  assert seen == [os.path.join(str(tmp_path), "jax_cache"), None]
  assert jax.config.jax_compilation_cache_dir is None
  assert not os.path.exists(os.path.join(str(tmp_path), "train.lock"))


def test_no_cross_process_agreement_per_step(tiny_suite_dir, tmp_path, monkeypatch):
  """The end of the data and stop requests are agreed inside the step
  (step.py's signals): the host asks all processes only once, for the
  workdir lock, however many steps run."""
  from spectrax.parallel import distributed  # pylint: disable=g-import-not-at-top
  calls = []
  real = distributed.all_processes

  def counted(flag):
    calls.append(flag)
    return real(flag)
  monkeypatch.setattr(distributed, "all_processes", counted)
  c = _config(tiny_suite_dir, num_steps=5, eval_every=0, log_every=5, checkpoint_every=5)
  assert train_lib.train(c, str(tmp_path))["step"] == 5
  assert calls == [True]
