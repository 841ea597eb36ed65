"""Tests of spectrax/evaluation/steerability.py with a fake scorer (eval_fakes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from eval_fakes import TOKENIZER, FakeScorer, make_bundle
from spectrax.data.episodes import Message, tokenize_episode
from spectrax.data.suite_reader import Suite
from spectrax.evaluation import metrics, steerability
from spectrax.evaluation.suite_inputs import task_episodes


def test_split_outputs_on_a_hand_made_sequence():
  # tokens:   BOS c  c  L  L  c  L  L  L
  mask = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1], bool)
  scores = {  # for tokens 1..8
      "logprob": np.array([-9, -9, -0.5, -1.5, -9, -0.25, -0.25, -2.0]),
      "greedy": np.array([0, 0, 1, 0, 0, 1, 1, 1], bool),
      "top_prob": np.array([.1, .1, .9, .2, .1, .6, .3, .3]),
  }
  out = steerability.split_outputs(mask, scores, first_index=1)
  assert out == [
      {"example_index": 1, "loss": 2.0, "all_acc": 0.0, "first_acc": 1.0,
       "confidence": pytest.approx(0.9), "num_tokens": 2},
      {"example_index": 2, "loss": 2.5, "all_acc": 1.0, "first_acc": 1.0,
       "confidence": pytest.approx(0.6), "num_tokens": 3},
  ]
  with pytest.raises(ValueError, match="expected 8"):
    steerability.split_outputs(mask, {k: v[:-1] for k, v in scores.items()}, 0)


def test_steerability_exact_aggregates(eval_suite):
  scorer = FakeScorer()
  result = steerability.steerability(make_bundle(scorer), eval_suite, ["coins_test"],
                                     num_episodes=5, max_tokens=4096, batch=2,
                                     progress=False)
  task = result["tasks"]["coins_test"]
  episodes = task_episodes(eval_suite, "coins_test", 5, seed=0)
  assert task["episodes"] == 5 and task["dropped"] == 0
  assert scorer.episode_calls == [2, 2, 1]
  later, first_index_zero = 0, 0
  last_indices = []
  for _, messages in episodes:
    n_out = sum(m.role == "output" for m in messages)
    later += n_out - 1
    first_index_zero += messages[0].role == "description"
    last_indices.append(n_out - 1)
  # Each output "Heads"/"Tails" + <end_of_turn>: 6 loss tokens at −1 each;
  # greedy misses the terminal, so all_acc 0 and first_acc 1; ECE |1 − .75|.
  assert task["loss"] == pytest.approx(6.0)
  assert task["all_acc"] == 0.0 and task["first_acc"] == 1.0
  assert task["ece"] == pytest.approx(0.25)
  assert task["num_outputs"] == later
  curve = task["curve"]
  assert curve["example_index"][0] == (0 if first_index_zero else 1)
  assert curve["loss"] == pytest.approx([6.0] * len(curve["loss"]))
  assert sum(curve["count"]) == later + first_index_zero
  k = metrics.choose_k(last_indices)
  assert task["k"] == k
  assert task["at_k"]["num_episodes"] == sum(m >= k for m in last_indices)
  assert task["at_k"]["num_outputs"] == k * task["at_k"]["num_episodes"]
  assert task["calibration"]["count"][7] == later  # 0.75 is in [0.7, 0.8)
  assert result["summary"]["pooled_ece"] == pytest.approx(0.25)


def test_steerability_default_tasks_skip_capability_sets(eval_suite):
  assert steerability.default_icl_tasks(eval_suite) == ["coins_test"]


def test_default_tasks_of_a_synthetic_only_suite(tiny_suite_dir):
  # No test-suite ICL task: the held-out instances of train-suite tasks,
  # except `long`, which holds none out.
  assert steerability.default_icl_tasks(Suite(tiny_suite_dir)) == ["coins", "sums"]


def test_steerability_counts_truncated_and_dropped_episodes(eval_suite):
  max_tokens = 40
  result = steerability.steerability(make_bundle(), eval_suite, ["coins_test"],
                                     num_episodes=6, max_tokens=max_tokens,
                                     progress=False)
  task = result["tasks"]["coins_test"]
  kept = [tokenize_episode(m, "gemma", TOKENIZER, max_tokens=max_tokens)
          for _, m in task_episodes(eval_suite, "coins_test", 6, seed=0)]
  assert task["truncated"] == sum(e.truncated for e in kept) > 0
  assert task["dropped"] == sum(e.num_loss_tokens == 0 for e in kept)
  assert task["episodes"] + task["dropped"] == len(kept)
  assert task["loss"] == pytest.approx(6.0)


def test_steerability_k_and_episodes_do_not_depend_on_the_template(eval_suite):
  """docs/method.md#steerability: k and the episodes kept at k are chosen once (reference
  tokenisation), so models with other formats are compared on the same
  examples; a format too long for an episode re-scores it cut after k."""
  results = {}
  for template in ("gemma", "colon"):
    scorer = FakeScorer()
    results[template] = steerability.steerability(
        make_bundle(scorer, template=template), eval_suite, ["coins_test"],
        num_episodes=6, max_tokens=60, progress=False)["tasks"]["coins_test"]
  gemma, colon = results["gemma"], results["colon"]
  assert gemma["k"] == colon["k"] >= 1
  assert gemma["at_k"]["num_episodes"] == colon["at_k"]["num_episodes"] >= 1
  for task in (gemma, colon):
    assert task["at_k"]["num_outputs"] == task["k"] * task["at_k"]["num_episodes"]


def test_at_k_rescores_an_episode_the_model_truncated_before_k(eval_suite):
  episodes = task_episodes(eval_suite, "coins_test", 4, seed=0)
  scorer = FakeScorer()
  bundle = make_bundle(scorer)
  full, _ = steerability.score_outputs(bundle, episodes, None, 8, "t", False)
  k, at_k, kept = steerability._at_k(bundle, episodes, full, TOKENIZER, 4096, 8, "t", False)  # pylint: disable=protected-access
  assert scorer.episode_calls == [len(episodes)] and kept >= 1
  # This model's own pass lost every example after the first (a short cap):
  short = [o for o in full if o["example_index"] < 1]
  k2, at_k2, kept2 = steerability._at_k(bundle, episodes, short, TOKENIZER, 4096, 8, "t", False)  # pylint: disable=protected-access
  assert (k2, kept2) == (k, kept)
  assert scorer.episode_calls[-1] == kept  # the kept episodes, re-scored cut after k
  def key(outputs):
    return sorted((o["episode"], o["example_index"], o["loss"]) for o in outputs
                  if 1 <= o["example_index"] <= k)
  assert key(at_k2) == key(at_k) and len(key(at_k)) == k * kept


def test_cut_after_example():
  msgs = [Message("description", "d"), Message("output", "a"), Message("input", "i"),
          Message("output", "b"), Message("output", "c")]
  assert steerability.cut_after_example(msgs, 1) == msgs[:4]
  assert steerability.cut_after_example(msgs, 0) == msgs[:2]
  assert steerability.cut_after_example(msgs, 5) == msgs
