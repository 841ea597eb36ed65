"""What every evaluation suite draws on: the model under test and seeded task data.

  ModelBundle     one model's scorer, sampler, tokenizer and template
  task_episodes   a task's test episodes, drawn as the trainer draws them
  task_records    a task's instances

Every random choice (which episodes, which questions) is seeded by `seed`
alone, so every model of one run sees the same data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import tqdm

from spectrax.data.chat_template import CHAT, ChatTemplate
from spectrax.data.episode_planning import TaskPlan, plan_messages
from spectrax.data.episodes import Message
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import Tokenizer

# The test-suite ICL tasks scored as capability sets (docs/method.md#capabilities) rather than
# for steerability.
CAPABILITY_TASKS = ("mmlu", "gpqa", "hellaswag", "winogrande", "arc", "drop",
                    "truthful_qa")


@dataclasses.dataclass
class ModelBundle:
  """What the suites need of one model.

  Attributes:
    name: the model's label in results.
    template: the template its episodes and prompts are formatted with.
    tokenizer: its tokenizer (steerability tokenises episodes itself).
    scorer: has `score(requests)` and `score_episodes(token_lists)` (see
      spectrax/scoring/scorer.py).
    sampler: has `sample(prompts, ...)` (spectrax/scoring/sampler.py); only
      the diversity suite needs it.
    chat: with template "chat", the `ChatTemplate` bound to the model's
      tokenizer (docs/method.md#chat-template).
  """

  name: str
  template: str
  tokenizer: Tokenizer
  scorer: Any
  sampler: Any = None
  chat: Any = None

  def formatter(self, purpose: str = "icl"):
    """What episodes and prompts are formatted with: the template's name, or
    for "chat" the chat template with the release's settings for `purpose`
    ("icl", "distributional" or "diversity")."""
    if self.template != CHAT:
      return self.template
    if self.chat is None:
      self.chat = ChatTemplate(self.tokenizer)
    return self.chat.with_prompting(purpose)


def progress_bar(iterable: Iterable, desc: str, total: int | None, progress: bool):
  return tqdm.tqdm(iterable, desc=desc, total=total, disable=not progress,
                   leave=False)


def mean_or_none(values: Iterable[float | None]) -> float | None:
  """The mean of the values that are not None; None when there are none."""
  kept = [v for v in values if v is not None]
  return float(np.mean(kept)) if kept else None


def score_request(**kwargs):
  """A `ScoreRequest`, imported on use: the scorer module pulls in the
  jitted model code."""
  from spectrax.scoring.scorer import ScoreRequest  # pylint: disable=g-import-not-at-top
  return ScoreRequest(**kwargs)


def task_records(source, indices: Iterable[int] | None = None) -> list:
  """Records of a TaskSource by index (all by default)."""
  return [source[i] for i in (range(len(source)) if indices is None
                              else indices)]


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
  """`limit` of range(n) drawn without replacement, sorted (all when
  `limit` is None or at least n)."""
  if limit is None or limit >= n:
    return list(range(n))
  return sorted(np.random.default_rng(seed).choice(n, limit, replace=False)
                .tolist())


def task_episodes(suite: Suite, task: str, num_episodes: int | None,
                  seed: int, split: str = "test"
                  ) -> list[tuple[int, list[Message]]]:
  """Seeded (episode index, messages) of a task split, drawn as the trainer
  draws them (docs/method.md#episode-sampling), `num_episodes` of them at most."""
  plan = TaskPlan.make(suite.source(task, split), seed)
  return [(i, plan_messages(plan, i))
          for i in sample_indices(plan.num_episodes, num_episodes, seed)]
