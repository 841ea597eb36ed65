"""Tests of spectrax/evaluation/capabilities.py with a fake scorer (eval_fakes.py)."""

from __future__ import annotations

import pytest

from eval_fakes import FakeScorer, make_bundle
from spectrax.evaluation import capabilities
from spectrax.evaluation.suite_inputs import task_episodes


def test_capabilities_accuracy(eval_suite):
  scorer = FakeScorer(preferred="B")
  result = capabilities.capabilities(make_bundle(scorer), eval_suite, num_episodes=3,
                                     progress=False)
  assert result["tasks"]["mmlu"]["mode"] == "option_loglik"
  assert result["tasks"]["mmlu"]["accuracy"] == 1.0
  # 12 rows, every one once, in chunks of 5: 5 + 5 + 2, three episodes.
  assert len(task_episodes(eval_suite, "mmlu", 3, seed=0)) == 3
  assert result["tasks"]["mmlu"]["num_questions"] == 12
  assert result["tasks"]["arc"]["accuracy"] == 0.0  # answers are all A
  # DROP-like free text: greedy exact match; the fake misses <end_of_turn>.
  assert result["tasks"]["drop"]["mode"] == "greedy_exact_match"
  assert result["tasks"]["drop"]["accuracy"] == 0.0
  mmlu = [r for r in scorer.requests if r.id.startswith("mmlu/")]
  assert {tuple(r.options) for r in mmlu} == {("A", "B", "C")}
  # Question j of an episode sees the j earlier questions and answers.
  first = [r for r in mmlu if r.id.endswith("/2")][0]
  assert [m["role"] for m in first.messages][-5:] == [
      "input", "output", "input", "output", "input"]
  assert result["summary"]["accuracy"] == pytest.approx(1 / 3)


def test_capability_option_labels():
  assert capabilities.option_labels("Question: x\nA. a\nB. b\n1. c") == ["A", "B"]
  assert capabilities.option_labels("Passage: A. b") == []
  # MMLU statement lists and numbered lists before the options are not options.
  assert capabilities.option_labels(
      "I. p\nII. q\nWhich are true?\nA. I\nB. II\nC. both\nD. none") == ["A", "B", "C", "D"]
  assert capabilities.option_labels("Steps:\n1. mix\n2. bake\nA. yes\nB. no") == ["A", "B"]
  assert capabilities.option_labels("Rate it\n1. bad\n2. ok\n3. good") == ["1", "2", "3"]
  assert capabilities.option_labels("A. a\nC. c") == []
  # Options whose text spans lines (GPQA): the run goes on.
  assert capabilities.option_labels(
      "Question: q\nA. x\nB. y\nC. a,\nb\nD. z") == ["A", "B", "C", "D"]
  assert capabilities.option_labels(
      "Question: q\nA. first\nline two\nB. y") == ["A", "B"]
