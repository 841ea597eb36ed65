"""Every task the suite builder knows: synthetic generators and real sources."""

from __future__ import annotations

from data_pipelines.schema import TaskSpec


def all_tasks() -> dict[str, TaskSpec]:
  """Built-in tasks by name (imports the generator packages lazily)."""
  from data_pipelines import sources  # pylint: disable=g-import-not-at-top
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  tasks: dict[str, TaskSpec] = {}
  for spec in list(synthetic.TASKS) + list(sources.TASKS):
    if spec.name in tasks:
      raise ValueError(f"two built-in tasks are named {spec.name!r}.")
    tasks[spec.name] = spec
  return tasks


def synthetic_task_names() -> list[str]:
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  return [spec.name for spec in synthetic.TASKS]


def select(tasks: dict[str, TaskSpec], names: list[str]) -> list[TaskSpec]:
  """The named tasks, or an error listing what exists."""
  unknown = [n for n in names if n not in tasks]
  if unknown:
    raise ValueError(f"unknown task(s) {unknown}; known tasks: "
                     f"{', '.join(sorted(tasks))}.")
  return [tasks[n] for n in names]
