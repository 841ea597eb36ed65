"""Tests of spectrax/data/episode_planning.py: which rows make episode i."""

from __future__ import annotations

import collections.abc
import os
import subprocess
import sys

import numpy as np
import pytest

from spectrax.data.episode_planning import TaskPlan, plan_messages
from spectrax.data.episode_sampling import SamplingSpec
from spectrax.data.episodes import tokenize_episode, training_arrays
from spectrax.data.pipeline import DataConfig, Pipeline
from spectrax.data.suite_reader import InstanceRecord, Suite


def _record(i: int, num_rows: int, descriptions=()) -> InstanceRecord:
  """Instance i of a "j + i" task with `num_rows` rows."""
  return InstanceRecord(
      id=f"i{i}", descriptions=list(descriptions),
      inputs=[f"{j} + {i}" for j in range(num_rows)],
      outputs=[str(i + j) for j in range(num_rows)],
      question="", options=[], target=[], extra={})


class ListSource(collections.abc.Sequence):
  """An in-memory stand-in for `suite_reader.TaskSource`."""

  def __init__(self, records, sampling, name="sums", default_descriptions=()):
    self.records = list(records)
    self.sampling = sampling
    self.name = name
    self.split = "train"
    self.default_descriptions = list(default_descriptions)
    self.num_rows = [len(r.outputs) for r in self.records]

  def __len__(self):
    return len(self.records)

  def __getitem__(self, index):
    return self.records[index]


def _sums(sampling=SamplingSpec(mean_k=4)) -> ListSource:
  """Instances of 5, 12, 0 and 2 rows; only the first has its own description."""
  return ListSource([_record(0, 5, ["Add."]), _record(1, 12), _record(2, 0),
                     _record(3, 2)], sampling, default_descriptions=["Sum them."])


def _as_pairs(messages):
  return [(m.role, m.content) for m in messages]


def test_episodes_per_instance_follow_expected_k():
  # mean_k 4: round(5/4)=1, round(12/4)=3, none for 0 rows, round(2/2)=1.
  plan = TaskPlan.make(_sums())
  assert plan.starts.tolist() == [0, 1, 4, 4] and plan.num_episodes == 5
  # fixed_k 5: round(5/5)=1, round(12/5)=2, round(2/2)=1.
  assert TaskPlan.make(_sums(SamplingSpec(fixed_k=5))).num_episodes == 4
  # No k: every episode shows all rows, one per instance with rows.
  assert TaskPlan.make(_sums(SamplingSpec())).starts.tolist() == [0, 1, 2, 2]


def test_instance_of_boundaries_skip_an_instance_without_rows():
  plan = TaskPlan.make(_sums())
  assert [plan.instance_of(e) for e in range(plan.num_episodes)] == [0, 1, 1, 1, 3]


def test_plan_messages_golden():
  """The episodes the trainer has always drawn (rebuilt from (seed, task,
  episode index)); an instance's own descriptions win over the task's."""
  plan = TaskPlan.make(_sums())
  assert _as_pairs(plan_messages(plan, 0, 0))[:3] == [
      ("description", "Add."), ("input", "0 + 0"), ("output", "0")]
  assert _as_pairs(plan_messages(plan, 0, 1)) == [
      ("input", "8 + 1"), ("output", "9"), ("input", "11 + 1"), ("output", "12")]
  assert _as_pairs(plan_messages(plan, 0, 4)) == [
      ("description", "Sum them."), ("input", "1 + 3"), ("output", "4"),
      ("input", "0 + 3"), ("output", "3")]
  assert _as_pairs(plan_messages(plan, 7, 3)) == [("input", "10 + 1"), ("output", "11")]


def test_plan_messages_depend_on_seed_and_episode_only():
  first, again = TaskPlan.make(_sums()), TaskPlan.make(_sums())
  episodes = range(first.num_episodes)
  assert all(plan_messages(first, 3, e) == plan_messages(again, 3, e) for e in episodes)
  assert [plan_messages(first, 0, e) for e in episodes] != [
      plan_messages(first, 7, e) for e in episodes]
  # Episodes of one instance differ from each other.
  assert plan_messages(first, 0, 1) != plan_messages(first, 0, 2)


def test_a_task_without_rows_is_an_error(tiny_suite_dir):
  with pytest.raises(ValueError, match="task 'sums' has no outputs in split 'train'"):
    TaskPlan.make(ListSource([_record(0, 0)], SamplingSpec(mean_k=4)))
  # `long` holds no instance out for the test split.
  with pytest.raises(ValueError, match="task 'long' has no outputs in split 'test'"):
    TaskPlan.make(Suite(tiny_suite_dir).source("long", "test"))


def test_the_pipeline_tokenizes_the_planned_messages(tiny_suite_dir):
  config = DataConfig(suite_dir=tiny_suite_dir, tasks=("coins", "sums"),
                      seq_len=128, max_tokens=129, seed=3)
  pipeline = Pipeline(config)
  for task_index, plan in enumerate(pipeline.plans):
    for episode in (0, 1, plan.num_episodes - 1):
      got = pipeline.episode_fn.map((task_index, episode))
      ep = tokenize_episode(plan_messages(plan, config.seed, episode), config.template,
                            pipeline.tokenizer, max_tokens=config.max_tokens)
      for key, value in training_arrays(ep).items():
        np.testing.assert_array_equal(got[key], value)


def test_planning_imports_neither_grain_nor_jax():
  """It runs in Grain worker processes, which must stay light."""
  code = ("import sys, spectrax.data.episode_planning; "
          "print(sorted(m for m in ('grain', 'jax') if m in sys.modules))")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, cwd=repo)
  assert out.stdout.strip() == "[]"
