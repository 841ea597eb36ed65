"""Steerability (docs/method.md#steerability): teacher-forced loss and accuracy per output vs. position.

Each task's test episodes are scored in one pass; every output after the
first is a prediction from the earlier examples. Headline means, a curve per
example index, calibration, and the same means at a k chosen once from a
reference tokenisation, so every model is compared on the same examples.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import numpy as np

from spectrax.data.episodes import Message, tokenize_episode
from spectrax.data.suite_reader import Suite
from spectrax.data.tokenizer import load_tokenizer
from spectrax.evaluation import metrics as metrics_lib
from spectrax.evaluation.suite_inputs import (CAPABILITY_TASKS, ModelBundle,
                                              mean_or_none, progress_bar,
                                              task_episodes)


def split_outputs(loss_mask: np.ndarray, scores: dict[str, np.ndarray],
                  first_index: int) -> list[dict[str, Any]]:
  """Per loss-bearing output of one episode: its loss and accuracies.

  Args:
    loss_mask: [n] bool, True where token i is predicted with loss (an
      output body plus its terminal token, docs/method.md#episodes-and-templates).
    scores: `Scorer.score_episodes` arrays for tokens 1..n-1, [n-1] each:
      `logprob` float32, `greedy` bool, `top_prob` float32.
    first_index: example index of the first loss span (0 with a
      description, 1 without: the first output is then context).

  Returns:
    One dict per loss span in order: `example_index`, `loss` (summed NLL),
    `all_acc`, `first_acc`, `confidence` (top-1 probability at the first
    token, paired with `first_acc` for calibration) and `num_tokens`.
  """
  mask = np.asarray(loss_mask, bool)[1:]
  for key in ("logprob", "greedy", "top_prob"):
    if len(scores[key]) != len(mask):
      raise ValueError(f"score_episodes returned {len(scores[key])} "
                       f"{key!r} values for an episode of {len(mask) + 1} "
                       f"tokens; expected {len(mask)} (tokens 1..n-1).")
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
  out = []
  for j, (a, b) in enumerate(zip(starts, ends)):
    greedy = np.asarray(scores["greedy"][a:b], bool)
    out.append({
        "example_index": first_index + j,
        "loss": float(-np.sum(np.asarray(scores["logprob"][a:b], np.float64))),
        "all_acc": float(greedy.all()),
        "first_acc": float(greedy[0]),
        "confidence": float(scores["top_prob"][a]),
        "num_tokens": int(b - a),
    })
  return out


def _tokenize_for_scoring(bundle: ModelBundle, episodes, max_tokens: int | None):
  """(index, tokenized episode, first example index) of the episodes that
  keep a loss token, and the episode counts."""
  tokenized = []
  counts = dict.fromkeys(("episodes", "dropped", "truncated", "mismatch"), 0)
  for index, messages in episodes:
    ep = tokenize_episode(messages, bundle.template, bundle.tokenizer,
                          max_tokens=max_tokens)
    counts["truncated"] += int(ep.truncated)
    counts["mismatch"] += int(ep.mismatch)
    if ep.num_loss_tokens == 0:
      counts["dropped"] += 1
      continue
    first = 0 if messages[0].role == "description" else 1
    tokenized.append((index, ep, first))
  counts["episodes"] = len(tokenized)
  return tokenized, counts


def score_outputs(bundle: ModelBundle, episodes, max_tokens: int | None,
                  batch: int, desc: str, progress: bool):
  """Tokenises and scores episodes; per-output records (`split_outputs`
  with each one's `episode` added) and episode counts."""
  tokenized, counts = _tokenize_for_scoring(bundle, episodes, max_tokens)
  outputs = []
  chunks = range(0, len(tokenized), batch)
  for start in progress_bar(chunks, desc, len(chunks), progress):
    chunk = tokenized[start:start + batch]
    scored = bundle.scorer.score_episodes([ep.tokens for _, ep, _ in chunk])
    for (index, ep, first), scores in zip(chunk, scored, strict=True):
      per_output = split_outputs(ep.loss_mask, scores, first)
      if len(per_output) != ep.num_examples - first:
        raise ValueError(
            f"{desc}: episode {index} has {ep.num_examples} examples but "
            f"{len(per_output)} loss spans; its template must separate "
            "outputs with context tokens.")
      for rec in per_output:
        rec["episode"] = index
      outputs.extend(per_output)
  return outputs, counts


def _summary(outputs: list[dict]) -> dict[str, Any]:
  return {
      "loss": mean_or_none(o["loss"] for o in outputs),
      "all_acc": mean_or_none(o["all_acc"] for o in outputs),
      "first_acc": mean_or_none(o["first_acc"] for o in outputs),
      "num_outputs": len(outputs),
  }


def _curve(outputs: list[dict]) -> dict[str, list]:
  """Means and counts per example index (all indices)."""
  by_index = collections.defaultdict(list)
  for o in outputs:
    by_index[o["example_index"]].append(o)
  indices = sorted(by_index)
  curve: dict[str, list] = {"example_index": indices}
  for key in ("loss", "all_acc", "first_acc"):
    curve[key] = [mean_or_none(o[key] for o in by_index[i]) for i in indices]
  curve["count"] = [len(by_index[i]) for i in indices]
  return curve


def steerability_metrics(outputs: list[dict], bins: int = 10, *,
                         k: int | None = None,
                         at_k_outputs: list[dict] | None = None,
                         at_k_episodes: int | None = None) -> dict[str, Any]:
  """Steerability (docs/method.md#steerability): aggregation of one task's per-output records.

  Args:
    outputs: `split_outputs` records, each with its `episode` added.
    bins: calibration bins.

  Returns:
    Headline `loss`, `all_acc`, `first_acc`, `ece` (and `calibration`
    bins): over outputs with example index ≥ 1. `curve`: the means per
    example index (all indices). `k`: choose_k of the episodes' last example
    indices; `at_k`: the headline over the episodes reaching k, examples
    1..k only. `steerability` passes `k`, `at_k_outputs` and
    `at_k_episodes` chosen independently of the model (see there).
  """
  later = [o for o in outputs if o["example_index"] >= 1]
  conf = [o["confidence"] for o in later]
  correct = [o["first_acc"] for o in later]
  # Truncation keeps whole examples, so an episode's last loss span is its
  # last complete example.
  last: dict[Any, int] = {}
  for o in outputs:
    last[o["episode"]] = max(last.get(o["episode"], -1), o["example_index"])
  if k is None:
    k = metrics_lib.choose_k(list(last.values()))
  if at_k_outputs is None:
    kept = {e for e, m in last.items() if k and m >= k}
    at_k = [o for o in later if o["episode"] in kept and o["example_index"] <= k]
    at_k_episodes = len(kept)
  else:
    at_k = [o for o in at_k_outputs if 1 <= o["example_index"] <= k]
  return {
      **_summary(later),
      "ece": metrics_lib.expected_calibration_error(conf, correct, bins),
      "calibration": metrics_lib.calibration_bins(conf, correct, bins),
      "curve": _curve(outputs),
      "k": k,
      "at_k": {**_summary(at_k), "num_episodes": at_k_episodes},
  }


def cut_after_example(messages: Sequence[Message], k: int) -> list[Message]:
  """The episode up to and including its example `k` (0-based output count)."""
  out, seen = [], -1
  for m in messages:
    out.append(m)
    if m.role == "output":
      seen += 1
      if seen == k:
        break
  return out


def _at_k(bundle: ModelBundle, episodes, outputs: list[dict], reference,
          max_tokens: int, batch: int, desc: str, progress: bool):
  """The steerability k (docs/method.md#steerability) and the outputs of the episodes that reach it, cut after k.

  k maximises k · #{episodes with ≥ k complete examples}, counting whole
  examples within `max_tokens` with the `reference` tokenizer and the colon
  format, so every model is scored on the same episodes and examples. An
  episode's outputs 1..k are taken from `outputs` when this model's own
  pass reached example k (a causal model scores a prefix the same either
  way); otherwise the episode cut after example k is scored uncapped.

  Returns:
    `(k, at_k outputs, number of kept episodes)`.
  """
  last = {index: tokenize_episode(messages, "colon", reference, max_tokens=max_tokens,
                                  check_joint=False).num_examples - 1
          for index, messages in episodes}
  k = metrics_lib.choose_k([v for v in last.values() if v >= 0])
  kept = {index for index, v in last.items() if k and v >= k}
  reached = {o["episode"] for o in outputs if o["example_index"] == k}
  at_k = [o for o in outputs if o["episode"] in kept & reached]
  missing = [(index, cut_after_example(messages, k)) for index, messages in episodes
             if index in kept - reached]
  if missing:
    extra, _ = score_outputs(bundle, missing, None, batch, f"{desc} (cut at k)", progress)
    at_k.extend(extra)
  return k, at_k, len(kept)


def default_icl_tasks(suite: Suite) -> list[str]:
  """Test-suite ICL tasks other than capability sets; without any (e.g. a
  synthetic-only suite), the train-suite ICL tasks' held-out instances."""
  tasks = [t for t in suite.task_names("test", "icl")
           if t not in CAPABILITY_TASKS]
  return tasks or [t for t in suite.task_names("train", "icl")
                   if sum(suite.source(t, "test").num_rows)]


def _summary_across_tasks(per_task: list[dict], pooled: list[dict],
                          bins: int) -> dict[str, Any]:
  """Means of the tasks' headlines, and calibration over all their outputs."""
  conf = [o["confidence"] for o in pooled]
  correct = [o["first_acc"] for o in pooled]
  summary = {key: mean_or_none(t[key] for t in per_task)
             for key in ("loss", "all_acc", "first_acc", "ece")}
  summary["calibration"] = metrics_lib.calibration_bins(conf, correct, bins)
  summary["pooled_ece"] = metrics_lib.expected_calibration_error(conf, correct, bins)
  return summary


def steerability(bundle: ModelBundle, suite: Suite,
                 tasks: Sequence[str] | None = None, *,
                 num_episodes: int | None = 100, max_tokens: int = 1024,
                 batch: int = 32, seed: int = 0, bins: int = 10,
                 progress: bool = True) -> dict[str, Any]:
  """Steerability (docs/method.md#steerability) on each task's test split (see `steerability_metrics`).

  Args:
    tasks: ICL task names (default: `default_icl_tasks`).
    num_episodes: episodes per task (None: all).
    max_tokens: episode length cap; episodes are cut at example boundaries.
    batch: episodes per `score_episodes` call.
  """
  tasks = list(tasks) if tasks is not None else default_icl_tasks(suite)
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  # k is chosen from the suite's own tokenizer and the plain colon format,
  # the same for every model and template compared (docs/method.md#steerability).
  reference = (load_tokenizer(suite.tokenizer_path) if suite.tokenizer_path
               else bundle.tokenizer)
  pooled = []
  for task in tasks:
    episodes = task_episodes(suite, task, num_episodes, seed)
    desc = f"{bundle.name} {task}"
    outputs, counts = score_outputs(bundle, episodes, max_tokens, batch, desc,
                                    progress)
    k, at_k, kept = _at_k(bundle, episodes, outputs, reference, max_tokens,
                          batch, desc, progress)
    result["tasks"][task] = {
        **steerability_metrics(outputs, bins, k=k, at_k_outputs=at_k,
                               at_k_episodes=kept), **counts,
        "suite_split": suite.tasks[task]["suite_split"]}
    pooled.extend(o for o in outputs if o["example_index"] >= 1)
  result["summary"] = _summary_across_tasks(list(result["tasks"].values()),
                                            pooled, bins)
  return result
