"""Which rows go into episode i of a task: the plan of a task's episodes.

A `TaskPlan` fixes, for one task split and seed, how many episodes an epoch
has and what each is: its instance, its set of rows (an independent draw or
a chunk of one pass over the instance) and which of the set's orderings it
shows (docs/method.md#episodes-per-instance). `plan_messages` then draws
episode i's messages. Both are pure functions of (task source, seed, episode
index), with no Grain or jax, so the training pipeline's worker processes
and the evaluation suites rebuild exactly the same episode anywhere.

Planning reads only the per-instance row counts of the task's metadata, not
its records.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spectrax.data import episode_sampling as sampling
from spectrax.data.episodes import Message
from spectrax.data.suite_reader import TaskSource


@dataclasses.dataclass
class TaskPlan:
  """What each of a task split's episodes is, in instance order.

  Attributes:
    instance: [E] the instance each episode comes from.
    row_set: [E] which set of that instance's rows: the draw (independent
      draws) or the chunk (chunked passes).
    ordering: [E] which of the set's orderings the episode shows.
    chunk_start, chunk_size: [E] where a chunk lies in the instance's pass
      order (chunked passes only; -1 otherwise).
  """

  source: TaskSource
  seed: int
  instance: np.ndarray
  row_set: np.ndarray
  ordering: np.ndarray
  chunk_start: np.ndarray
  chunk_size: np.ndarray

  @property
  def num_episodes(self) -> int:
    return len(self.instance)

  @classmethod
  def make(cls, source: TaskSource, seed: int) -> "TaskPlan":
    if not source.num_rows or sum(source.num_rows) == 0:
      raise ValueError(
          f"task {source.name!r} has no outputs in split {source.split!r}; "
          "remove it from data.tasks or rebuild it with rows.")
    spec = source.sampling
    columns: list[tuple[int, int, int, int]] = []  # instance, set, start, size
    for i, n in enumerate(source.num_rows):
      if n == 0:
        continue
      if spec.chunk_all_rows:
        sizes = sampling.chunk_sizes(spec, n, seed=seed, task=source.name,
                                     instance=i)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        columns.extend((i, c, int(s), size)
                       for c, (s, size) in enumerate(zip(starts, sizes)))
      else:
        columns.extend((i, d, -1, -1)
                       for d in range(spec.episodes_per_instance))
      if spec.max_episodes and len(columns) * spec.orderings >= spec.max_episodes:
        break
    table = np.repeat(np.array(columns, np.int64).reshape(-1, 4),
                      spec.orderings, axis=0)
    ordering = np.tile(np.arange(spec.orderings), len(columns))
    if spec.max_episodes:
      table, ordering = table[:spec.max_episodes], ordering[:spec.max_episodes]
    return cls(source=source, seed=seed, instance=table[:, 0],
               row_set=table[:, 1], ordering=ordering,
               chunk_start=table[:, 2], chunk_size=table[:, 3])

  def instance_of(self, episode_index: int) -> int:
    return int(self.instance[episode_index])

  def episodes_of(self, instance: int) -> np.ndarray:
    """The episode indices of one instance."""
    return np.flatnonzero(self.instance == instance)


def plan_messages(plan: TaskPlan, episode_index: int) -> list[Message]:
  """The messages of episode `episode_index` of `plan`: its rows, drawn with
  the randomness of (seed, task, instance, row set, ordering)."""
  if not 0 <= episode_index < plan.num_episodes:
    raise IndexError(f"task {plan.source.name!r} has {plan.num_episodes} "
                     f"episodes; there is no episode {episode_index}.")
  source, e = plan.source, episode_index
  spec = source.sampling
  instance, row_set = int(plan.instance[e]), int(plan.row_set[e])
  record = source[instance]
  n = len(record.outputs)
  keys = dict(seed=plan.seed, task=source.name, instance=instance)
  if spec.chunk_all_rows:
    start = int(plan.chunk_start[e])
    rows = sampling.pass_order(spec, n, **keys)[start:start + int(plan.chunk_size[e])]
  else:
    rows = sampling.drawn_set(spec, n, draw=row_set, **keys)
  return sampling.episode_messages(
      record.inputs, record.outputs, rows,
      record.descriptions or source.default_descriptions, spec,
      row_set=row_set, ordering=int(plan.ordering[e]), **keys)
