"""Which rows go into episode i of a task: the plan of a task's episodes.

A `TaskPlan` fixes how many episodes a task split yields per epoch and which
instance each comes from; `plan_messages` draws episode i's messages from
that instance. Both are pure functions of (task source, seed, episode
index), with no Grain or jax, so the training pipeline's worker processes
and the evaluation suites rebuild exactly the same episode anywhere.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spectrax.data.episode_sampling import sample_episode
from spectrax.data.episodes import Message
from spectrax.data.suite_reader import TaskSource


@dataclasses.dataclass
class TaskPlan:
  """Which instance each of a task's episodes comes from."""

  source: TaskSource
  starts: np.ndarray  # [num_instances] first episode index of each instance.
  num_episodes: int

  @classmethod
  def make(cls, source: TaskSource) -> "TaskPlan":
    """About one episode per `expected_k` rows, so an epoch sees each row
    about once (docs/method.md#episodes-per-instance: the authors' "all rows, chunked" tasks)."""
    if not source.num_rows or sum(source.num_rows) == 0:
      raise ValueError(
          f"task {source.name!r} has no outputs in split {source.split!r}; "
          "remove it from data.tasks or rebuild it with rows.")
    counts = np.array([
        0 if n == 0 else max(1, round(n / source.sampling.expected_k(n)))
        for n in source.num_rows], np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return cls(source=source, starts=starts, num_episodes=int(counts.sum()))

  def instance_of(self, episode_index: int) -> int:
    return int(np.searchsorted(self.starts, episode_index, side="right") - 1)


def plan_messages(plan: TaskPlan, seed: int, episode_index: int
                  ) -> list[Message]:
  """The messages of episode `episode_index` of `plan`, drawn from its
  instance's rows with the randomness of (seed, task, episode index)."""
  source = plan.source
  record = source[plan.instance_of(episode_index)]
  return sample_episode(
      record.inputs, record.outputs,
      record.descriptions or source.default_descriptions,
      source.sampling, seed=seed, task=source.name,
      episode_index=episode_index)
