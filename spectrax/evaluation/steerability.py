"""Steerability (docs/method.md#steerability): teacher-forced loss and accuracy per output vs. position.

Each task's test episodes are scored teacher-forced; every output after the
first is a prediction from the earlier examples. The headline is the
release's fixed-k figure: k and the episodes that reach it are chosen once
from a reference tokenisation (as the release's `--auto_fixed_examples`), so
every model is compared on the same examples. Beside it: the mean over
every output of the sampled episodes (`all_outputs`), a curve per example
index, and calibration.
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
                                              sample_indices, task_episodes)

# How the release chooses k (tsor13/spectrum@5a33588
# src/spectrum/icl_classes/eval_icl.py:558-636, `get_example_k`): every
# episode of the task in its "spectrum" format for Gemma 3 (spectrax's
# `gemma` template), cut at 2048 tokens (`select_max_length`).
K_TEMPLATE = "gemma"
K_MAX_TOKENS = 2048


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
    One dict per loss span in order: `example_index` (its position among
    the episode's outputs), `scored_index` (its position among the
    loss-bearing outputs: the release's `example_inds`), `loss` (summed
    NLL), `all_acc`, `first_acc`, `confidence` (top-1 probability at the
    first token, paired with `first_acc` for calibration) and `num_tokens`.
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
        "scored_index": j,
        "loss": float(-np.sum(np.asarray(scores["logprob"][a:b], np.float64))),
        "all_acc": float(greedy.all()),
        "first_acc": float(greedy[0]),
        "confidence": float(scores["top_prob"][a]),
        "num_tokens": int(b - a),
    })
  return out


def _first_index(messages: Sequence[Message]) -> int:
  """The example index of an episode's first loss-bearing output: without a
  description the first output is context (docs/method.md#loss-spans)."""
  return 0 if messages and messages[0].role == "description" else 1


def _tokenize_for_scoring(bundle: ModelBundle, episodes, max_tokens: int | None):
  """(index, tokenized episode, first example index) of the episodes that
  keep a loss token, and the episode counts."""
  tokenized = []
  counts = dict.fromkeys(("episodes", "dropped", "truncated", "mismatch"), 0)
  for index, messages in episodes:
    ep = tokenize_episode(messages, bundle.formatter(), bundle.tokenizer,
                          max_tokens=max_tokens)
    counts["truncated"] += int(ep.truncated)
    counts["mismatch"] += int(ep.mismatch)
    if ep.num_loss_tokens == 0:
      counts["dropped"] += 1
      continue
    tokenized.append((index, ep, _first_index(messages)))
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


def steerability_metrics(outputs: list[dict], fixed_k_outputs: Sequence[dict] = (),
                         k: int | None = None, fixed_k_episodes: int = 0,
                         bins: int = 10) -> dict[str, Any]:
  """Steerability (docs/method.md#steerability): aggregation of one task's per-output records.

  Args:
    outputs: `split_outputs` records (with `episode`) of the sampled
      episodes, capped at the suite's `max_tokens`.
    fixed_k_outputs: records of the episodes that reach k, cut after k
      (`_fixed_k_outputs`).
    k: the release's k (None: the task has no fixed-k figure).
    fixed_k_episodes: how many episodes `fixed_k_outputs` come from.
    bins: calibration bins.

  Returns:
    The headline `loss`, `all_acc`, `first_acc` (and `num_outputs`): the
    release's fixed-k figure, means over the outputs with scored index
    1 … k of the kept episodes (tsor13/spectrum@5a33588
    src/spectrum/icl_classes/eval_icl.py:339-343, 442-450). `k`,
    `fixed_k_episodes`. `all_outputs`: the same means over every output
    with example index ≥ 1 of `outputs`. `ece` and `calibration` over those
    outputs too; `curve`: the means per example index (all indices).
  """
  later = [o for o in outputs if o["example_index"] >= 1]
  conf = [o["confidence"] for o in later]
  correct = [o["first_acc"] for o in later]
  at_k = [o for o in fixed_k_outputs if k and 1 <= o["scored_index"] <= k]
  return {
      **_summary(at_k),
      "k": k,
      "fixed_k_episodes": fixed_k_episodes,
      "all_outputs": _summary(later),
      "ece": metrics_lib.expected_calibration_error(conf, correct, bins),
      "calibration": metrics_lib.calibration_bins(conf, correct, bins),
      "curve": _curve(outputs),
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


def release_max_indices(episodes, reference) -> dict[int, int]:
  """Per episode index, the scored index of its last complete loss-bearing
  output at the release's k-selection length (`K_TEMPLATE`,
  `K_MAX_TOKENS`); episodes left without loss are absent, as the release
  drops them before choosing k (tsor13/spectrum@5a33588
  src/spectrum/icl_classes/data_cache.py:192-201; the completeness rule is
  eval_icl.py:600-606)."""
  last = {}
  for index, messages in episodes:
    ep = tokenize_episode(messages, K_TEMPLATE, reference,
                          max_tokens=K_MAX_TOKENS, check_joint=False)
    if ep.num_loss_tokens:
      last[index] = ep.num_examples - 1 - _first_index(messages)
  return last


def _fixed_k_outputs(bundle: ModelBundle, everything, outputs: list[dict],
                     reference, num_episodes: int | None, seed: int,
                     batch: int, desc: str, progress: bool):
  """The release's fixed-k episodes (docs/method.md#steerability) and their outputs, cut after k.

  k and the kept episodes come from every episode of the task
  (`release_max_indices`, `metrics.choose_fixed_k`); then, as the
  release's `--max_eval_examples` (eval_icl.py:83-90, applied after the
  keep at :862-879), a seeded `num_episodes` of the kept ones, cut after
  scored index k as its `truncate_to_fixed_examples` (data_cache.py:211-229)
  and scored without a length cap (eval_icl.py:868). An episode's outputs come from `outputs` when this model's capped
  pass reached scored index k (a causal model scores a prefix the same
  either way); otherwise the episode cut after k is scored uncapped.

  Returns:
    `(k, outputs with scored index ≤ k, number of episodes)`; `(None, [], 0)`
    where the release has no k.
  """
  last = release_max_indices(everything, reference)
  chosen = metrics_lib.choose_fixed_k(list(last.values()))
  if chosen is None:
    return None, [], 0
  k, keep_from = chosen
  kept = [(i, m) for i, m in everything if last.get(i, -1) >= keep_from]
  kept = [kept[j] for j in sample_indices(len(kept), num_episodes, seed)]
  ids = {i for i, _ in kept}
  reached = {o["episode"] for o in outputs if o["scored_index"] == k} & ids
  at_k = [o for o in outputs if o["episode"] in reached and o["scored_index"] <= k]
  # With k raised to 2 (keep_from 1), an episode without a third loss-bearing
  # output even uncapped keeps what it has (the release stops with an error).
  missing = [(i, cut_after_example(m, k + _first_index(m))) for i, m in kept
             if i not in reached]
  if missing:
    extra, _ = score_outputs(bundle, missing, None, batch, f"{desc} (cut at k)", progress)
    at_k.extend(o for o in extra if o["scored_index"] <= k)
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
  """Means of the tasks' headlines (fixed-k) and all-outputs figures, and
  calibration over all their outputs."""
  conf = [o["confidence"] for o in pooled]
  correct = [o["first_acc"] for o in pooled]
  keys = ("loss", "all_acc", "first_acc")
  summary = {key: mean_or_none(t[key] for t in per_task) for key in keys}
  summary["all_outputs"] = {key: mean_or_none(t["all_outputs"][key] for t in per_task)
                            for key in keys}
  summary["ece"] = mean_or_none(t["ece"] for t in per_task)
  summary["calibration"] = metrics_lib.calibration_bins(conf, correct, bins)
  summary["pooled_ece"] = metrics_lib.expected_calibration_error(conf, correct, bins)
  return summary


def steerability(bundle: ModelBundle, suite: Suite,
                 tasks: Sequence[str] | None = None, *,
                 num_episodes: int | None = 1000, max_tokens: int = 1024,
                 batch: int = 32, seed: int = 0, bins: int = 10,
                 progress: bool = True) -> dict[str, Any]:
  """Steerability (docs/method.md#steerability) on each task's test split (see `steerability_metrics`).

  Args:
    tasks: ICL task names (default: `default_icl_tasks`).
    num_episodes: episodes per task (None: all), for each figure: of all
      episodes for `all_outputs`, of those reaching k for the headline.
    max_tokens: length cap of the `all_outputs` episodes, cut at example
      boundaries (the fixed-k episodes are cut after k instead).
    batch: episodes per `score_episodes` call.
  """
  tasks = list(tasks) if tasks is not None else default_icl_tasks(suite)
  result: dict[str, Any] = {"template": bundle.template, "tasks": {}}
  # k is chosen from the suite's own tokenizer, the same for every model and
  # template compared (docs/method.md#steerability).
  reference = (load_tokenizer(suite.tokenizer_path) if suite.tokenizer_path
               else bundle.tokenizer)
  pooled = []
  for task in tasks:
    everything = task_episodes(suite, task, None, seed)
    episodes = [everything[j] for j in sample_indices(len(everything), num_episodes, seed)]
    desc = f"{bundle.name} {task}"
    outputs, counts = score_outputs(bundle, episodes, max_tokens, batch, desc,
                                    progress)
    k, at_k, kept = _fixed_k_outputs(bundle, everything, outputs, reference,
                                     num_episodes, seed, batch, desc, progress)
    result["tasks"][task] = {
        **steerability_metrics(outputs, at_k, k, kept, bins), **counts,
        "suite_split": suite.tasks[task]["suite_split"]}
    pooled.extend(o for o in outputs if o["example_index"] >= 1)
  result["summary"] = _summary_across_tasks(list(result["tasks"].values()),
                                            pooled, bins)
  return result
