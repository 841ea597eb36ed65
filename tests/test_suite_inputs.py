"""Tests of spectrax/evaluation/suite_inputs.py: the seeded data every suite draws."""

from __future__ import annotations

from spectrax.data.episode_planning import TaskPlan, plan_messages
from spectrax.evaluation.suite_inputs import (mean_or_none, sample_indices,
                                              task_episodes, task_records)


def test_sample_indices():
  assert sample_indices(5, None, seed=0) == [0, 1, 2, 3, 4]
  assert sample_indices(5, 9, seed=0) == [0, 1, 2, 3, 4]
  drawn = sample_indices(100, 7, seed=3)
  assert len(set(drawn)) == 7 and drawn == sorted(drawn) and max(drawn) < 100
  assert sample_indices(100, 7, seed=3) == drawn != sample_indices(100, 7, seed=4)


def test_task_episodes_are_the_planned_episodes(eval_suite):
  """The trainer's episodes of the test split: the same plan and messages."""
  plan = TaskPlan.make(eval_suite.source("coins_test", "test"), 2)
  every = task_episodes(eval_suite, "coins_test", None, seed=2)
  assert [i for i, _ in every] == list(range(plan.num_episodes))
  assert all(messages == plan_messages(plan, i) for i, messages in every)
  some = task_episodes(eval_suite, "coins_test", 3, seed=2)
  assert [i for i, _ in some] == sample_indices(plan.num_episodes, 3, seed=2)
  assert some == [every[i] for i, _ in some]
  assert task_episodes(eval_suite, "coins_test", 3, seed=5) != some


def test_task_records(eval_suite):
  source = eval_suite.source("urn", "test")
  assert [r.id for r in task_records(source)] == ["urn_0", "urn_1"]
  assert [r.id for r in task_records(source, [1])] == ["urn_1"]


def test_mean_or_none_skips_missing_values():
  assert mean_or_none([1.0, None, 3.0]) == 2.0
  assert mean_or_none([None]) is None and mean_or_none([]) is None
