"""`diversity`: the 22 valid-output-coverage tasks (docs/method.md#diversity-tasks, docs/method.md#valid-output-coverage).

One instance per generation task (`us_states_full_names`, `prime_numbers`,
...): its description, its 3 example outputs, and its finite valid set when
there is one. The evaluator samples generations and checks them with the
instance's `extra["match"]` mode against `options` (or with the rule in
`extra["validity_rule"]` for `match == "function"`).

The data is `diversity_tasks.json` beside this file, a copy of the project's
transcription of the authors' task modules, shipped so that building needs
no download.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import BuildContext, Instance, Row, TaskSpec

NAME = "diversity"
DATA_FILE = pathlib.Path(__file__).with_name("diversity_tasks.json")
# Authors' default when a task sets no max_new_tokens (docs/method.md#diversity-tasks).
DEFAULT_MAX_NEW_TOKENS = 128


def load_tasks(path: pathlib.Path = DATA_FILE) -> dict[str, dict[str, Any]]:
  """Reads the task table: task key -> its fields (see the file's `_about`)."""
  with open(path, encoding="utf-8") as f:
    return json.load(f)["tasks"]


def task_instance(key: str, task: dict[str, Any]) -> Instance:
  """The instance of one generation task.

  Raises:
    ValueError: if the task does not have exactly 3 string examples.
  """
  examples = task.get("examples")
  if (not isinstance(examples, list) or len(examples) != 3
      or not all(isinstance(e, str) for e in examples)):
    raise ValueError(f"diversity task {key!r}: expected 3 string examples, "
                     f"got {examples!r}.")
  extra = {
      "match": task["match"],
      "max_new_tokens": int(task.get("max_new_tokens")
                            or DEFAULT_MAX_NEW_TOKENS),
      "validity_rule": task["validity_rule"],
      "task_class": task["task_class"],
  }
  # car_make_model has no finite valid set; its validity function needs the
  # reference (make, model) pairs, so they travel with the instance.
  if "reference_make_model_pairs" in task:
    extra["reference_make_model_pairs"] = task["reference_make_model_pairs"]
  return Instance(id=key,
                  descriptions=[task["description"]],
                  rows=[Row(output=e) for e in examples],
                  options=list(task.get("valid") or []),
                  extra=extra)


def _generate(ctx: BuildContext) -> Iterator[Instance]:
  """All 22 tasks in key order. Nothing is random, so `ctx.seed` is unused."""
  del ctx
  for key, task in sorted(load_tasks().items()):
    yield task_instance(key, task)


SPEC = TaskSpec(
    name=NAME,
    suite_split="test",
    kind="diversity",
    generate=_generate,
    about="22 valid-output-coverage generation tasks (US states, primes, "
          "colours, ...).",
)
