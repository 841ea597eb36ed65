"""The data mixture of a built suite: how much of an epoch each task is.

`python -m spectrax.show_mixture --suite=DIR` prints this report. Per task,
test tasks too:

  instances           records in the split the task is read from (train-suite
                      tasks: `train`; test-suite tasks: `test`);
  episodes_per_epoch  `TaskPlan.num_episodes`, what one epoch of training (or
                      an evaluation pass) draws from the task;
  mean_tokens         tokens per episode, BOS included, after truncation to
                      `max_tokens`, with the default template and tokenizer
                      (the suite's SentencePiece model, trained here on first
                      use as training would); estimated from a seeded sample
                      of at most `sample` episodes (exact when the task has no
                      more). Episodes left with no loss token, which training
                      drops, are not counted;
  token_share         the task's share of an epoch's tokens among the
                      training tasks (the train-suite ICL tasks that
                      `spectrax.train` uses by default), episodes x mean_tokens.
"""

from __future__ import annotations

import dataclasses
import json
import zlib

import numpy as np

from spectrax.data import episode_planning
from spectrax.data.episodes import tokenize_episode
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import Tokenizer, load_tokenizer

# configs/base.py's data defaults: what training uses unless told otherwise.
DEFAULT_TEMPLATE = "gemma"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_SAMPLE = 64


@dataclasses.dataclass
class TaskMixture:
  """One task's line of the report."""

  task: str
  suite_split: str  # train | test: which half of the suite.
  kind: str
  split: str  # the records split counted.
  instances: int
  episodes_per_epoch: int
  sampled: int  # episodes tokenised for mean_tokens.
  mean_tokens: float | None  # None: no episode (e.g. a distributional task).
  mean_loss_tokens: float | None
  training: bool  # one of the default training tasks.
  token_share: float | None = None  # training tasks only.

  def as_json(self) -> dict:
    d = dataclasses.asdict(self)
    del d["task"]
    return d


def _sample_indices(task: str, num_episodes: int, sample: int,
                    seed: int) -> list[int]:
  if num_episodes <= sample:
    return list(range(num_episodes))
  rng = np.random.default_rng([seed, zlib.crc32(task.encode("utf-8")), 11])
  return sorted(rng.choice(num_episodes, size=sample, replace=False).tolist())


def task_mixture(suite: Suite, task: str, tokenizer: Tokenizer, *, seed: int,
                 template: str, max_tokens: int | None, sample: int,
                 training: bool) -> TaskMixture:
  entry = suite.tasks[task]
  split = "train" if entry["suite_split"] == "train" else "test"
  source = suite.source(task, split)
  row = TaskMixture(task=task, suite_split=entry["suite_split"],
                    kind=entry["kind"], split=split, instances=len(source),
                    episodes_per_epoch=0, sampled=0, mean_tokens=None,
                    mean_loss_tokens=None, training=training)
  if not source.num_rows or sum(source.num_rows) == 0:
    return row  # No rows to make episodes of (distributional tasks).
  plan = episode_planning.TaskPlan.make(source, seed)
  row.episodes_per_epoch = plan.num_episodes
  tokens, loss = [], []
  indices = _sample_indices(task, plan.num_episodes, sample, seed)
  for i in indices:
    messages = episode_planning.plan_messages(plan, i)
    ep = tokenize_episode(messages, template, tokenizer, max_tokens=max_tokens,
                          check_joint=False)
    if ep.num_loss_tokens:
      tokens.append(len(ep.tokens))
      loss.append(ep.num_loss_tokens)
  row.sampled = len(indices)
  if tokens:
    row.mean_tokens = float(np.mean(tokens))
    row.mean_loss_tokens = float(np.mean(loss))
  return row


def suite_mixture(suite_dir: str, *, seed: int = 0,
                  template: str = DEFAULT_TEMPLATE,
                  max_tokens: int | None = DEFAULT_MAX_TOKENS,
                  sample: int = DEFAULT_SAMPLE,
                  tokenizer_path: str | None = None) -> list[TaskMixture]:
  """Every task of the suite at `suite_dir`, sorted by name.

  Args:
    suite_dir: a built suite.
    seed: the episode seed (training's `data.seed`).
    template: the episode template.
    max_tokens: the episode cap (training's `data.max_tokens`); None: none.
    sample: at most this many episodes are tokenised per task.
    tokenizer_path: a tokenizer; None: the suite's default one, trained
      first if the suite has none yet.
  """
  if sample < 1:
    raise ValueError(f"sample={sample}: tokenise at least one episode a task.")
  suite = Suite(suite_dir)
  if not suite.tasks:
    raise ValueError(f"the suite at {suite_dir} has no tasks; build some "
                     "with python -m data_pipelines.build.")
  if tokenizer_path is None:
    from spectrax.data import tokenizer_training  # pylint: disable=g-import-not-at-top
    tokenizer_path = tokenizer_training.ensure_default_tokenizer(suite_dir)
  tokenizer = load_tokenizer(tokenizer_path)
  training = set(suite.task_names("train"))
  rows = [task_mixture(suite, name, tokenizer, seed=seed, template=template,
                       max_tokens=max_tokens, sample=sample,
                       training=name in training)
          for name in sorted(suite.tasks)]
  weight = {r.task: r.episodes_per_epoch * (r.mean_tokens or 0.0)
            for r in rows if r.training}
  total = sum(weight.values())
  for r in rows:
    if r.training:
      r.token_share = weight[r.task] / total if total else 0.0
  return rows


def format_report(rows: list[TaskMixture], *, sample: int, template: str,
                  max_tokens: int | None) -> str:
  """A table, a total line, then one JSON object keyed by task name (last
  line)."""
  cap = "no cap" if max_tokens is None else f"cut at {max_tokens}"
  head = (f"{'task':34s} {'split':11s} {'kind':14s} {'instances':>9s} "
          f"{'episodes':>9s} {'mean_tokens':>12s} {'token_share':>11s}")
  lines = [f"mixture: episodes per epoch as training plans them; mean tokens "
           f"per episode (template {template}, {cap}, default tokenizer), "
           f"* = estimated from a seeded sample of {sample} episodes; token "
           "share over the training tasks", head, "-" * len(head)]
  for r in rows:
    mean = "-"
    if r.mean_tokens is not None:
      estimated = r.sampled < r.episodes_per_epoch
      mean = f"{r.mean_tokens:.1f}" + ("*" if estimated else " ")
    share = "-" if r.token_share is None else f"{100 * r.token_share:.2f}%"
    lines.append(f"{r.task:34s} {r.suite_split + '/' + r.split:11s} "
                 f"{r.kind:14s} {r.instances:9d} {r.episodes_per_epoch:9d} "
                 f"{mean:>12s} {share:>11s}")
  trained = [r for r in rows if r.training]
  tokens = sum(r.episodes_per_epoch * (r.mean_tokens or 0) for r in trained)
  lines.append(f"{len(trained)} training task(s): "
               f"{sum(r.episodes_per_epoch for r in trained)} episodes, "
               f"~{tokens:,.0f} tokens per epoch")
  lines.append(json.dumps({r.task: r.as_json() for r in rows},
                          sort_keys=True))
  return "\n".join(lines)
