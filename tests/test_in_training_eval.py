"""The paper's numbers during training (`train.eval_suites`, in_training_eval.py).

A tiny run with the slices on writes steerability's fixed-k loss and the
distributional JS to metrics.jsonl and TensorBoard at the start, every
`eval_suites_every` steps and at the end; the values equal what
`spectrax.evaluation` (`runner.evaluate_model`, the `python -m
spectrax.evaluate` path) computes on that step's checkpoint for the same
slice; resuming stays exact with it on.
"""

import functools
import json
import math
import os

import numpy as np
import pytest

from conftest import _coins, _sums, tiny_train_config
from test_metrics_log import read_events, scalars
from spectrax.training import in_training_eval
from spectrax.training import loop as train_lib
from spectrax.training import run_config

EVAL_STEPS = [0, 4, 8]
HEADLINES = ("eval/steerability_fixed_k_loss", "eval/distributional_js")


def _urns(ctx):
  from data_pipelines.synthetic import urn  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(ctx.seed)
  for i in range(6):
    yield urn.urn_instance(f"urn_{i}", urn.draw_counts(rng))


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
  """Train ICL tasks `coins` and `sums` (their held-out instances are the
  steerability slice) and a 6-urn distributional `urn`."""
  from data_pipelines import build  # pylint: disable=g-import-not-at-top
  from data_pipelines.schema import TaskSpec  # pylint: disable=g-import-not-at-top
  from spectrax.data import tokenizer_training  # pylint: disable=g-import-not-at-top
  specs = [
      TaskSpec(name="coins", suite_split="train", kind="icl",
               generate=functools.partial(_coins, 60), mean_k=16, chunk_all_rows=True),
      TaskSpec(name="sums", suite_split="train", kind="icl", generate=_sums,
               mean_k=8, chunk_all_rows=True,
               default_descriptions=("Add the numbers.",)),
      TaskSpec(name="urn", suite_split="test", kind="distributional", generate=_urns),
  ]
  out = str(tmp_path_factory.mktemp("suite"))
  assert build.build(out, specs, seed=0, raw_dir=None) == []
  tokenizer_training.train_default_tokenizer(out, vocab_size=400)
  return out


def _config(suite_dir, **train):
  on = dict(eval_suites=("steerability", "distributional"), eval_suites_every=4,
            eval_suites_episodes=2, eval_suites_questions=4)
  return tiny_train_config(suite_dir, **{**on, **train})


@pytest.fixture(scope="module")
def run(suite_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  return workdir, train_lib.train(_config(suite_dir), workdir)


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [r for r in rows if "eval/suites_seconds" in r]


def test_plan_takes_held_out_tasks_and_refuses_unknown_ones(suite_dir):
  from spectrax.data.suite_reader import Suite  # pylint: disable=g-import-not-at-top
  suite = Suite(suite_dir)
  assert in_training_eval.plan_tasks(suite, ("steerability", "distributional")) == {
      "steerability": ["coins", "sums"], "distributional": ["urn"]}
  with pytest.raises(ValueError, match=r"names \['urn'\]"):
    in_training_eval.plan_tasks(suite, ("steerability",), ("sums", "urn"))
  assert in_training_eval.plan_tasks(suite, ("distributional", "steerability"), ("urn",)) == {
      "distributional": ["urn"]}
  with pytest.raises(ValueError, match="diversity"):
    in_training_eval.plan_tasks(suite, ("diversity",))


def test_config_errors_name_the_field(suite_dir):
  c = _config(suite_dir, eval_suites=("steerabilty",))
  with pytest.raises(run_config.ConfigError, match="train.eval_suites="):
    run_config.validate(c)
  c = _config(suite_dir, eval_suites_every=0)
  with pytest.raises(run_config.ConfigError, match="train.eval_suites_every=0"):
    run_config.validate(c)


def test_metrics_at_the_expected_steps_in_jsonl_and_tensorboard(run):
  workdir, summary = run
  records = _records(workdir)
  assert [r["step"] for r in records] == EVAL_STEPS
  for r in records:
    for name in HEADLINES + ("eval/steerability_fixed_k_first_acc",
                             "eval/distributional_tv"):
      assert isinstance(r[name], float) and math.isfinite(r[name]), (name, r)
    assert r["eval/suites_seconds"] > 0
    assert 0 < r["eval/suites_fraction"] <= 1
  assert 0 < summary["eval_suites_fraction"] <= 1
  assert summary["eval_suites_seconds"] == pytest.approx(
      sum(r["eval/suites_seconds"] for r in records), abs=0.01)
  logged = {(tag, step): value for tag, step, value in scalars(read_events(workdir))}
  for r in records:
    for name in HEADLINES + ("eval/suites_seconds", "eval/suites_fraction"):
      assert logged[(name, r["step"])] == pytest.approx(r[name], rel=1e-6)
  # The training metrics are untouched: one record per step.
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f if '"loss"' in line]
  assert steps == list(range(1, 9))


@pytest.mark.parametrize("step", [4, 8])
def test_values_equal_spectrax_evaluation_on_that_checkpoint(run, suite_dir, step):
  from spectrax.data.suite_reader import Suite  # pylint: disable=g-import-not-at-top
  from spectrax.evaluation import runner  # pylint: disable=g-import-not-at-top
  from spectrax.parallel import sharding  # pylint: disable=g-import-not-at-top
  workdir, _ = run
  c = _config(suite_dir)
  logged = {r["step"]: r for r in _records(workdir)}[step]
  # The independent path: load the checkpoint of `step` as `spectrax.evaluate` does.
  settings = runner.EvalSettings(
      suite="all", num_episodes=c.train.eval_suites_episodes,
      num_questions=c.train.eval_suites_questions, max_tokens=c.data.max_tokens)
  spec = runner.ModelSpec("m", "workdir", workdir, step=step)
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  out = runner.evaluate_model(spec, Suite(suite_dir), settings, mesh,
                              plan={"steerability": None, "distributional": None})
  expected = {**in_training_eval.headline("steerability", out["steerability"]),
              **in_training_eval.headline("distributional", out["distributional"])}
  assert sorted(out["steerability"]["tasks"]) == ["coins", "sums"]
  for name, value in expected.items():
    assert logged[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name


def test_resume_stays_exact_with_it_on(run, suite_dir, tmp_path):
  workdir = str(tmp_path)
  c = _config(suite_dir)
  first = train_lib.train(c, workdir, stop_after=4)
  assert first["step"] == 4
  train_lib.train(c, workdir)

  def numbers(w):
    with open(os.path.join(w, "metrics.jsonl")) as f:
      rows = [json.loads(line) for line in f]
    keep = ("loss", "grad_norm", "eval_loss", "eval/steerability_fixed_k_loss",
            "eval/steerability_fixed_k_first_acc", "eval/steerability_all_outputs_loss",
            "eval/distributional_js", "eval/distributional_tv")
    return [(r["step"], {k: r[k] for k in keep if k in r}) for r in rows]
  assert numbers(workdir) == numbers(run[0])
  assert [r["step"] for r in _records(workdir)] == EVAL_STEPS


@pytest.mark.slow
def test_every_process_of_a_two_process_run_evaluates(suite_dir, tmp_path):
  # Two processes of 4 CPU devices, one mesh over all 8: every process runs
  # the slices (collectives), process 0 writes; the numbers equal one process
  # with the same data shards, up to the order of cross-process reductions.
  from conftest import tiny_train_flags  # pylint: disable=g-import-not-at-top
  from test_distributed import _launch  # pylint: disable=g-import-not-at-top
  on = dict(eval_suites_every=4, eval_suites_episodes=2, eval_suites_questions=4)
  two = str(tmp_path / "two")
  _launch(two, [*tiny_train_flags(suite_dir, **on), "--config.train.eval_suites="
                "('steerability','distributional')"])
  one = str(tmp_path / "one")
  c = _config(suite_dir)
  c.data.shards = 2
  train_lib.train(c, one)
  got, want = _records(two), _records(one)
  assert [r["step"] for r in got] == EVAL_STEPS
  for g, w in zip(got, want):
    for name in HEADLINES:
      assert g[name] == pytest.approx(w[name], rel=1e-5), (g["step"], name)
  log1 = open(os.path.join(two, "logs", "process_1.log")).read()
  assert "steerability_fixed_k_loss" not in log1  # only process 0 prints
