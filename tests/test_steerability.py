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
      {"example_index": 1, "scored_index": 0, "loss": 2.0, "all_acc": 0.0,
       "first_acc": 1.0, "confidence": pytest.approx(0.9), "num_tokens": 2},
      {"example_index": 2, "scored_index": 1, "loss": 2.5, "all_acc": 1.0,
       "first_acc": 1.0, "confidence": pytest.approx(0.6), "num_tokens": 3},
  ]
  with pytest.raises(ValueError, match="expected 8"):
    steerability.split_outputs(mask, {k: v[:-1] for k, v in scores.items()}, 0)


def _record(episode, scored, loss, all_acc, first=0):
  return {"episode": episode, "example_index": first + scored,
          "scored_index": scored, "loss": loss, "all_acc": all_acc,
          "first_acc": 1.0, "confidence": 0.5, "num_tokens": 1}


def test_fixed_k_headline_by_hand():
  """The release's figure (tsor13/spectrum@5a33588
  src/spectrum/icl_classes/eval_icl.py:339-343 keeps example_ind ≤ k,
  442-450 averages example_ind ≥ 1 per output) with k = 2: episode 0 (with
  a description) gives scored outputs 1, 2; episode 1 (none: its first
  output is context, so scored index j is example index j + 1) also 1, 2."""
  fixed = [_record(0, j, loss, acc) for j, loss, acc in
           [(0, 9.0, 0.0), (1, 1.0, 1.0), (2, 2.0, 0.0)]]
  fixed += [_record(1, j, loss, acc, first=1) for j, loss, acc in
            [(0, 9.0, 0.0), (1, 3.0, 1.0), (2, 6.0, 1.0)]]
  # The all-outputs figure: every output with example index ≥ 1 of the
  # capped episodes (here one episode, example indices 0..3).
  capped = [_record(5, j, loss, 0.0) for j, loss in enumerate([9.0, 4.0, 2.0, 0.0])]
  out = steerability.steerability_metrics(capped, fixed, k=2, fixed_k_episodes=2)
  assert out["loss"] == (1 + 2 + 3 + 6) / 4 == 3.0
  assert out["all_acc"] == 3 / 4 and out["num_outputs"] == 4
  assert (out["k"], out["fixed_k_episodes"]) == (2, 2)
  assert out["all_outputs"]["loss"] == 2.0 and out["all_outputs"]["num_outputs"] == 3
  none = steerability.steerability_metrics(capped, [], k=None)
  assert none["loss"] is None and none["num_outputs"] == 0


def _release_last(messages):
  """The release's max example index of an episode short enough not to be
  cut: its loss-bearing outputs less one (eval_icl.py:600-606)."""
  outputs = sum(m.role == "output" for m in messages)
  return outputs - 1 - (messages[0].role != "description")


def test_steerability_exact_aggregates(eval_suite):
  scorer = FakeScorer()
  result = steerability.steerability(make_bundle(scorer), eval_suite, ["coins_test"],
                                     num_episodes=5, max_tokens=4096, batch=2,
                                     progress=False)
  task = result["tasks"]["coins_test"]
  episodes = task_episodes(eval_suite, "coins_test", 5, seed=0)
  assert task["episodes"] == 5 and task["dropped"] == 0
  later, first_index_zero = 0, 0
  for _, messages in episodes:
    later += sum(m.role == "output" for m in messages) - 1
    first_index_zero += messages[0].role == "description"
  # Each output "Heads"/"Tails" + <end_of_turn>: 6 loss tokens at −1 each;
  # greedy misses the terminal, so all_acc 0 and first_acc 1; ECE |1 − .75|.
  everything = task_episodes(eval_suite, "coins_test", None, seed=0)
  last = [_release_last(m) for _, m in everything]
  # By hand: k=1 → 15, k=2 → 2·12 = 24, k=3 → 3·6 = 18, k=4 → 4·2 = 8,
  # k=5 → 5: k = 2, 12 episodes.
  assert last == [3, 1, 1, 2, 2, 4, 1, 5, 2, 3, 2, 2, 0, 2, 3, 3]
  assert (task["k"], task["fixed_k_episodes"]) == (2, 5)  # 5 of the 12 drawn
  assert task["num_outputs"] == 2 * 5
  assert task["loss"] == pytest.approx(6.0)
  assert task["all_acc"] == 0.0 and task["first_acc"] == 1.0
  assert task["all_outputs"] == {"loss": pytest.approx(6.0), "all_acc": 0.0,
                                 "first_acc": 1.0, "num_outputs": later}
  assert task["ece"] == pytest.approx(0.25)
  curve = task["curve"]
  assert curve["example_index"][0] == (0 if first_index_zero else 1)
  assert curve["loss"] == pytest.approx([6.0] * len(curve["loss"]))
  assert sum(curve["count"]) == later + first_index_zero
  assert task["calibration"]["count"][7] == later  # 0.75 is in [0.7, 0.8)
  assert result["summary"]["pooled_ece"] == pytest.approx(0.25)
  assert result["summary"]["loss"] == pytest.approx(6.0)
  assert result["summary"]["all_outputs"]["loss"] == pytest.approx(6.0)


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
  assert task["all_outputs"]["loss"] == pytest.approx(6.0)
  # The fixed-k episodes are not capped: every one gives k outputs.
  assert task["num_outputs"] == task["k"] * task["fixed_k_episodes"] > 0


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
  assert gemma["k"] == colon["k"] == 2
  assert gemma["fixed_k_episodes"] == colon["fixed_k_episodes"] == 6
  for task in (gemma, colon):
    assert task["num_outputs"] == task["k"] * task["fixed_k_episodes"]


def test_k_is_chosen_at_the_release_length_cap(eval_suite):
  """Release: k is chosen on episodes cut at 2048 tokens (eval_icl.py:577);
  an output counts only when complete (:603-605)."""
  everything = task_episodes(eval_suite, "coins_test", None, seed=0)
  assert steerability.K_MAX_TOKENS == 2048 and steerability.K_TEMPLATE == "gemma"
  last = steerability.release_max_indices(everything, TOKENIZER)
  assert list(last.values()) == [_release_last(m) for _, m in everything]


def test_fixed_k_rescores_an_episode_the_model_truncated_before_k(eval_suite):
  everything = task_episodes(eval_suite, "coins_test", None, seed=0)
  scorer = FakeScorer()
  bundle = make_bundle(scorer)
  full, _ = steerability.score_outputs(bundle, everything, None, 16, "t", False)
  k, at_k, kept = steerability._fixed_k_outputs(  # pylint: disable=protected-access
      bundle, everything, full, TOKENIZER, None, 0, 16, "t", False)
  assert scorer.episode_calls == [len(everything)] and (k, kept) == (2, 12)
  # This model's own pass lost every output after the first (a short cap):
  short = [o for o in full if o["scored_index"] < 1]
  k2, at_k2, kept2 = steerability._fixed_k_outputs(  # pylint: disable=protected-access
      bundle, everything, short, TOKENIZER, None, 0, 16, "t", False)
  assert (k2, kept2) == (k, kept)
  assert scorer.episode_calls[-1] == kept  # the kept episodes, re-scored cut after k
  def key(outputs):
    return sorted((o["episode"], o["scored_index"], o["loss"]) for o in outputs
                  if 1 <= o["scored_index"] <= k)
  assert key(at_k2) == key(at_k) and len(key(at_k)) == k * kept


def test_cut_after_example():
  msgs = [Message("description", "d"), Message("output", "a"), Message("input", "i"),
          Message("output", "b"), Message("output", "c")]
  assert steerability.cut_after_example(msgs, 1) == msgs[:4]
  assert steerability.cut_after_example(msgs, 0) == msgs[:2]
  assert steerability.cut_after_example(msgs, 5) == msgs
