"""Distributional alignment (docs/method.md#distributional-alignment): per-option log-likelihoods vs. target shares.

Each question's options are scored as continuations of its prompt; the
model's distribution over them is compared with the target distribution.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from spectrax.data import templates as templates_lib
from spectrax.data.episodes import format_episode
from spectrax.data.suite_reader import Suite
from spectrax.evaluation import metrics as metrics_lib
from spectrax.evaluation.suite_inputs import (ModelBundle, mean_or_none,
                                              progress_bar, sample_indices,
                                              score_request, task_records)

_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_SUMMARY_METRICS = ("js_divergence", "kl_divergence", "total_variation",
                   "mode_match", "coverage")


def is_ordinal(options: Sequence[str]) -> bool:
  """Options that are increasing numbers (a rating scale)."""
  if len(options) < 2 or not all(_NUMBER.fullmatch(o.strip())
                                 for o in options):
    return False
  values = [float(o) for o in options]
  return all(a < b for a, b in zip(values, values[1:]))


def question_messages(record) -> list[dict[str, str]]:
  """Description (if any) then the question as the input message."""
  messages = []
  if record.descriptions:
    messages.append({"role": "description", "content": record.descriptions[0]})
  if record.question:
    messages.append({"role": "input", "content": record.question})
  if not messages:
    raise ValueError(f"distributional instance {record.id!r} has neither a "
                     "description nor a question; rebuild its task.")
  return messages


def distributional_request(request_id: str, record, template):
  """The scoring request of one distributional question.

  `template` is a template name or object (the chat template with the
  release's distributional settings, `ModelBundle.formatter`). With the
  colon template the release names the output after the task
  (docs/method.md#distributional-alignment): `\n\nOutput` becomes `\nOutput`, then every `Output` becomes
  the record's `output_name` (e.g. `Response (letter)`), options after a space.
  """
  messages = question_messages(record)
  output_name = (record.extra or {}).get("output_name")
  if getattr(template, "name", template) != "colon" or not output_name:
    return score_request(id=request_id, options=list(record.options), messages=messages,
                         template=template, target=list(record.target))
  colon = templates_lib.get_template("colon")
  prompt = "".join(text for text, _ in format_episode(
      messages, "colon", add_generation_prompt=True))
  prompt = prompt.replace("\n\nOutput", "\nOutput").replace("Output", output_name)
  return score_request(id=request_id, prompt=prompt, target=list(record.target),
                       options=[colon.content_prefix + o for o in record.options])


def _example(record, result, js_divergence: float) -> dict[str, Any]:
  """One question's target and model distributions, for plots."""
  probs = np.exp(np.asarray(result.logprobs, np.float64))
  total = probs.sum()
  return {
      "id": record.id, "question": record.question,
      "options": list(record.options), "target": list(record.target),
      "model": (probs / total).tolist() if total > 0 else None,
      "js_divergence": js_divergence}


def _task_result(bundle: ModelBundle, suite: Suite, task: str,
                 num_questions: int | None, num_examples: int, seed: int,
                 progress: bool) -> dict[str, Any]:
  """One task's per-question metrics, their means, and the shown examples."""
  source = suite.source(task, "test")
  records = task_records(source, sample_indices(len(source), num_questions, seed))
  template = bundle.formatter("distributional")
  requests = [distributional_request(f"{task}/{r.id}", r, template)
              for r in records]
  shown = set(sample_indices(len(records), num_examples, seed + 1))
  per_question, examples = [], []
  mismatched = truncated = 0
  scored = bundle.scorer.score(requests)
  for i, (rec, res) in enumerate(progress_bar(zip(records, scored, strict=True),
                                              f"{bundle.name} {task}",
                                              len(records), progress)):
    m = metrics_lib.distributional_metrics(rec.target, res.logprobs,
                                           ordinal=is_ordinal(rec.options))
    per_question.append(m)
    mismatched += any(res.boundary_mismatch)
    truncated += bool(res.truncated)
    if i in shown:
      examples.append(_example(rec, res, m["js_divergence"]))
  names = sorted({k for m in per_question for k in m})
  return {
      "num_questions": len(per_question),
      "metrics": {k: mean_or_none(m.get(k) for m in per_question) for k in names},
      "boundary_mismatch": mismatched,
      "truncated": truncated,
      "examples": examples,
  }


def distributional(bundle: ModelBundle, suite: Suite,
                   tasks: Sequence[str] | None = None, *,
                   num_questions: int | None = 1000, num_examples: int = 4,
                   seed: int = 0, progress: bool = True) -> dict[str, Any]:
  """docs/method.md#distributional-alignment: each option scored as a continuation of the prompt.

  The prompt is the description and question formatted with the model's
  template plus the generation prompt; the scorer formats it (and puts the
  colon template's space before each option). Metrics are per question,
  then means per task; `examples` keeps `num_examples` seeded questions'
  target and model distributions for plots.
  """
  tasks = list(tasks) if tasks is not None else suite.task_names(
      None, "distributional")
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  for task in tasks:
    result["tasks"][task] = _task_result(bundle, suite, task, num_questions,
                                         num_examples, seed, progress)
  result["summary"] = {
      k: mean_or_none(t["metrics"].get(k) for t in result["tasks"].values())
      for k in _SUMMARY_METRICS}
  return result
