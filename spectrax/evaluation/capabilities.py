"""Capabilities (docs/method.md#capabilities): accuracy of the capability sets (MMLU, ARC, ...) as ICL episodes.

Multiple-choice questions are answered by the most likely option label;
free-text answers (DROP) by a greedy exact match of the whole answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from spectrax.data.episodes import Message, tokenize_episode
from spectrax.data.suite_reader import Suite
from spectrax.evaluation.steerability import score_outputs
from spectrax.evaluation.suite_inputs import (CAPABILITY_TASKS, ModelBundle,
                                              mean_or_none, progress_bar,
                                              score_request, task_episodes)

_OPTION_LINE = re.compile(r"^([A-Z]|\d{1,2})\. ", re.MULTILINE)


def _label_value(label: str) -> int:
  return int(label) if label.isdigit() else ord(label) - ord("A") + 1


def option_labels(question: str) -> list[str]:
  """The answer labels of a question: among its option lines, the last
  sequence of at least two counting up from A or 1 (`A. …`, `B. …` or
  `1. …`, `2. …`).

  Earlier labelled lines (an MMLU statement list `I. …`, a numbered list
  before the options) are not options.
  """
  # An option's text may span lines (GPQA answers often do): a line that is
  # not an option line continues the option before it, so the labels of a
  # question are one run, searched from its end.
  run = [m.group(1) for m in map(_OPTION_LINE.match, question.splitlines())
         if m]
  for start in range(len(run) - 1, -1, -1):
    if run[start] not in ("A", "1"):
      continue
    labels = [run[start]]
    for label in run[start + 1:]:
      prev = labels[-1]
      if label.isdigit() != prev.isdigit() or _label_value(label) != _label_value(prev) + 1:
        break
      labels.append(label)
    if len(labels) >= 2:
      return labels
  return []


def capability_questions(messages: Sequence[Message], num_examples: int
                         ) -> list[tuple[list[Message], list[str], str]]:
  """(prompt messages, option labels, answer) of the first `num_examples`
  examples: each prompt is everything before that example's output."""
  out = []
  for pos, m in enumerate(messages):
    if m.role != "output":
      continue
    if len(out) == num_examples:
      break
    question = messages[pos - 1].content if pos and \
        messages[pos - 1].role == "input" else ""
    out.append((list(messages[:pos]), option_labels(question), m.content))
  return out


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
  return [{"role": m.role, "content": m.content} for m in messages]


def _episode_questions(bundle: ModelBundle, task: str, episodes, max_tokens: int
                       ) -> list[tuple]:
  """(id, example index, labels, answer, prompt messages) of every question
  whose example fits within `max_tokens`."""
  questions = []
  for index, messages in episodes:
    kept = tokenize_episode(messages, bundle.formatter(), bundle.tokenizer,
                            max_tokens=max_tokens,
                            check_joint=False).num_examples
    for j, (prompt, labels, answer) in enumerate(
        capability_questions(messages, kept)):
      questions.append((f"{task}/{index}/{j}", j, labels, answer, prompt))
  return questions


def _choice_correct(bundle: ModelBundle, choice: list[tuple], desc: str,
                    progress: bool) -> list[tuple[int, float]]:
  """(example index, 1.0 if the most likely label is the answer else 0.0)."""
  template = bundle.formatter()
  requests = [score_request(id=qid, options=labels, messages=_as_dicts(prompt),
                            template=template)
              for qid, _, labels, _, prompt in choice]
  correct = []
  for q, res in progress_bar(zip(choice, bundle.scorer.score(requests), strict=True),
                             desc, len(choice), progress):
    correct.append((q[1], float(int(np.argmax(res.logprobs)) == q[2].index(q[3]))))
  return correct


def _task_result(bundle: ModelBundle, suite: Suite, task: str,
                 num_episodes: int | None, max_tokens: int, batch: int,
                 seed: int, progress: bool) -> dict[str, Any]:
  """One capability set's accuracy, scored by option labels when it has
  multiple-choice questions, else by greedy exact match."""
  episodes = task_episodes(suite, task, num_episodes, seed)
  desc = f"{bundle.name} {task}"
  questions = _episode_questions(bundle, task, episodes, max_tokens)
  # Multiple choice: the answer is one of the question's labels. A task
  # with any such question is scored that way; its other questions are
  # counted as `unparsed`, never silently scored another way.
  choice = [q for q in questions if len(q[2]) >= 2 and q[3] in q[2]]
  if choice:
    correct = _choice_correct(bundle, choice, desc, progress)
    mode, unparsed = "option_loglik", len(questions) - len(choice)
  else:
    outputs, _ = score_outputs(bundle, episodes, max_tokens, batch, desc, progress)
    correct = [(o["example_index"], o["all_acc"]) for o in outputs]
    mode, unparsed = "greedy_exact_match", 0
  return {
      "mode": mode,
      "accuracy": mean_or_none(c for j, c in correct if j >= 1),
      "accuracy_all": mean_or_none(c for _, c in correct),
      "num_questions": len(correct),
      "unparsed": unparsed,
  }


def capabilities(bundle: ModelBundle, suite: Suite,
                 tasks: Sequence[str] | None = None, *,
                 num_episodes: int | None = 1000, max_tokens: int = 1024,
                 batch: int = 32, seed: int = 0, progress: bool = True
                 ) -> dict[str, Any]:
  """docs/method.md#capabilities: accuracy of the capability sets as ICL episodes.

  Multiple-choice questions (labelled `A. …` lines) score each label as a
  continuation of the episode so far and pick the most likely; the others
  (DROP's free-text answers) count a greedy exact match of the answer
  (`all_acc`). `accuracy` is over questions with example index ≥ 1, like
  docs/method.md#steerability; `accuracy_all` includes the first.
  """
  tasks = list(tasks) if tasks is not None else [
      t for t in CAPABILITY_TASKS if t in suite.tasks]
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  for task in tasks:
    result["tasks"][task] = _task_result(bundle, suite, task, num_episodes,
                                         max_tokens, batch, seed, progress)
  result["summary"] = {"accuracy": mean_or_none(
      t["accuracy"] for t in result["tasks"].values())}
  return result
