"""Tests of spectrax/data/episode_planning.py: which rows make episode i."""

from __future__ import annotations

import collections
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


def test_independent_draws_give_episodes_per_instance():
  plan = TaskPlan.make(_sums(SamplingSpec(mean_k=4, episodes_per_instance=3)), 0)
  # Three per instance with rows; instance 2 has none.
  assert plan.instance.tolist() == [0, 0, 0, 1, 1, 1, 3, 3, 3]
  assert plan.row_set.tolist() == [0, 1, 2] * 3
  assert TaskPlan.make(_sums(SamplingSpec()), 0).instance.tolist() == [0, 1, 3]


def test_chunked_passes_use_every_row_exactly_once():
  """The release's n_per=-1: 2000 rows, k ~ GP(32). Independent random sets
  of the same number would leave ~37% of rows unseen and repeat others."""
  source = ListSource([_record(0, 2000), _record(1, 3)],
                      SamplingSpec(mean_k=32, chunk_all_rows=True))
  plan = TaskPlan.make(source, seed=5)
  seen = collections.Counter()
  for e in plan.episodes_of(0):
    outputs = [m.content for m in plan_messages(plan, int(e))
               if m.role == "output"]
    assert len(outputs) == plan.chunk_size[e]
    seen.update(outputs)
  assert sorted(seen) == sorted(str(j) for j in range(2000))
  assert set(seen.values()) == {1}
  assert 40 <= len(plan.episodes_of(0)) <= 85
  # Another seed cuts other chunks.
  other = TaskPlan.make(source, seed=6)
  assert other.chunk_size.tolist() != plan.chunk_size.tolist()


def test_orderings_repeat_each_set_in_different_orders():
  """chemistry_esol in the release: 927 rows, chunks of 15, 5 orderings."""
  source = ListSource([_record(0, 927)], SamplingSpec(
      fixed_k=15, chunk_all_rows=True, orderings=5, p_desc=0.0))
  plan = TaskPlan.make(source, 0)
  assert plan.num_episodes == 62 * 5
  assert plan.ordering.tolist()[:10] == [0, 1, 2, 3, 4] * 2
  chunk = [[m.content for m in plan_messages(plan, e)] for e in range(5)]
  assert len({tuple(c) for c in chunk}) == 5
  assert all(sorted(c) == sorted(chunk[0]) for c in chunk)
  assert sorted(chunk[0]) != sorted(m.content for m in plan_messages(plan, 5))


def test_max_episodes_caps_in_instance_order():
  plan = TaskPlan.make(_sums(SamplingSpec(fixed_k=2, episodes_per_instance=4,
                                          max_episodes=6)), 0)
  assert plan.instance.tolist() == [0, 0, 0, 0, 1, 1]


def test_one_episode_per_coin():
  """coinflip and normal: one episode per instance, k ~ GP(128)."""
  from data_pipelines.synthetic import coinflip  # pylint: disable=g-import-not-at-top
  from data_pipelines.schema import BuildContext  # pylint: disable=g-import-not-at-top
  instances = list(coinflip.SPEC.generate(BuildContext(seed=0, raw_dir=None)))
  records = [InstanceRecord(id=x.id, descriptions=x.descriptions, inputs=[],
                            outputs=[r.output for r in x.rows], question="",
                            options=[], target=[], extra={})
             for x in instances[:50]]
  source = ListSource(records, SamplingSpec.from_metadata(
      coinflip.SPEC.metadata()), name="coinflip")
  plan = TaskPlan.make(source, 0)
  assert plan.instance.tolist() == list(range(50))
  flips = [sum(m.role == "output" for m in plan_messages(plan, e))
           for e in range(50)]
  assert 90 < np.mean(flips) < 170


def test_instance_of_and_episodes_of():
  plan = TaskPlan.make(_sums(SamplingSpec(fixed_k=5, chunk_all_rows=True)), 0)
  # 5 rows -> 1 chunk, 12 -> 3 (5, 5, 2), 0 -> none, 2 -> 1.
  assert [plan.instance_of(e) for e in range(plan.num_episodes)] == [0, 1, 1, 1, 3]
  assert plan.chunk_size.tolist() == [5, 5, 5, 2, 2]
  assert plan.episodes_of(1).tolist() == [1, 2, 3]
  with pytest.raises(IndexError, match="has 5 episodes; there is no episode 5"):
    plan_messages(plan, 5)


def test_plan_messages_golden():
  """Episodes rebuilt from (seed, task, instance, set, ordering); an
  instance's own descriptions win over the task's."""
  plan = TaskPlan.make(_sums(SamplingSpec(mean_k=4, chunk_all_rows=True)), 0)
  first = _as_pairs(plan_messages(plan, 0))
  assert first[0] == ("description", "Add.") or first[0][0] == "input"
  assert all(c != "Sum them." for _, c in first)
  last = _as_pairs(plan_messages(plan, plan.num_episodes - 1))
  assert {c for r, c in last if r == "input"} <= {"0 + 3", "1 + 3"}
  assert any(c == "Sum them." for e in range(plan.num_episodes)
             for _, c in _as_pairs(plan_messages(plan, e)))


def test_plan_messages_depend_on_seed_and_episode_only():
  sums = _sums(SamplingSpec(mean_k=4, episodes_per_instance=3))
  first, again = TaskPlan.make(sums, 3), TaskPlan.make(sums, 3)
  episodes = range(first.num_episodes)
  assert all(plan_messages(first, e) == plan_messages(again, e) for e in episodes)
  other = TaskPlan.make(sums, 7)
  assert [plan_messages(first, e) for e in episodes] != [
      plan_messages(other, e) for e in episodes]
  # Episodes of one instance differ from each other.
  assert plan_messages(first, 3) != plan_messages(first, 4)


def test_a_task_without_rows_is_an_error(tiny_suite_dir):
  with pytest.raises(ValueError, match="task 'sums' has no outputs in split 'train'"):
    TaskPlan.make(ListSource([_record(0, 0)], SamplingSpec(mean_k=4)), 0)
  # `long` holds no instance out for the test split.
  with pytest.raises(ValueError, match="task 'long' has no outputs in split 'test'"):
    TaskPlan.make(Suite(tiny_suite_dir).source("long", "test"), 0)


def test_the_pipeline_tokenizes_the_planned_messages(tiny_suite_dir):
  config = DataConfig(suite_dir=tiny_suite_dir, tasks=("coins", "sums"),
                      seq_len=128, max_tokens=129, seed=3)
  pipeline = Pipeline(config)
  for task_index, plan in enumerate(pipeline.plans):
    for episode in (0, 1, plan.num_episodes - 1):
      got = pipeline.episode_fn.map((task_index, episode))
      ep = tokenize_episode(plan_messages(plan, episode), config.template,
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
