"""Tests of spectrax/evaluation/diversity.py with a fake sampler (eval_fakes.py)."""

from __future__ import annotations

import pytest

from eval_fakes import CharTokenizer, FakeSampler, make_bundle
from spectrax.evaluation import diversity


def test_diversity_prompts_and_metrics(eval_suite):
  sampler = FakeSampler()
  result = diversity.diversity(
      make_bundle(sampler=sampler), eval_suite, ["us_states_full_names"],
      num_samples=6, seed=5, progress=False)
  [(prompts, kwargs)] = sampler.calls
  assert prompts[2] == (
      "<start_of_turn>description\nName a US state<end_of_turn>\n"
      "<start_of_turn>output\nKentucky<end_of_turn>\n"
      "<start_of_turn>output\nUtah<end_of_turn>\n"
      "<start_of_turn>output\nOregon<end_of_turn>\n<start_of_turn>output\n")
  assert prompts[0] == ("<start_of_turn>description\nName a US state"
                        "<end_of_turn>\n<start_of_turn>output\n")
  assert kwargs == {"num_samples": 6, "max_new_tokens": 15,
                    "temperature": 1.0, "top_p": 1.0, "top_k": 0,
                    "stop_strings": diversity.SAMPLING_STOPS,
                    "stop_token_ids": (CharTokenizer.EOS,), "seed": 5}
  # Cleaned as the release (cut at the first newline first): Utah Utah Ohio
  # Narnia "" 7 -> valid Utah Utah Ohio; "\nTexas" is empty and invalid.
  out = result["tasks"]["us_states_full_names"]["both"]
  assert {k: v for k, v in out.items() if k != "top"} == {
      "percent_valid": 3 / 6, "yield": 2, "unique_gens_pct": 2 / 3,
      "usable_unique": 2 / 6, "raw_unique": 5 / 6,
      "pairwise_collision": 1 / 3, "coverage": 2 / 50}
  assert out["top"][0] == {"text": "Utah", "count": 2, "valid": True}
  assert result["summary"]["examples"]["yield"] == 2


def test_summary_coverage_over_the_release_membership_tasks(eval_suite):
  """Release: coverage only for its 7 InclusionTasks (tsor13/spectrum@5a33588
  src/spectrum/diverse_valid/eval_diverse_valid.py:181-184), mean over those
  (eval_diverse_valid_all.py:226-230); 0 for unique_gens_pct and
  pairwise_collision when nothing is valid (eval_diverse_valid.py:142-150)."""
  result = diversity.diversity(
      make_bundle(sampler=FakeSampler()), eval_suite,
      ["us_states_full_names", "car_brand", "prime_numbers"], num_samples=6,
      variants=("description",), progress=False)
  tasks = result["tasks"]
  # car_brand (66 makes) hits nothing but has a finite set: coverage 0 per
  # task, left out of the mean; prime_numbers has no finite set.
  assert tasks["car_brand"]["description"]["coverage"] == 0.0
  assert tasks["prime_numbers"]["description"]["coverage"] is None
  # prime_numbers: only "7" is valid -> one valid, no pair: collision 0.
  assert tasks["prime_numbers"]["description"]["pairwise_collision"] == 0.0
  # car_brand: nothing valid -> unique_gens_pct 0 and collision 0, counted.
  assert tasks["car_brand"]["description"]["unique_gens_pct"] == 0.0
  summary = result["summary"]["description"]
  assert summary["coverage"] == pytest.approx(2 / 50)
  assert summary["unique_gens_pct"] == pytest.approx((2 / 3 + 0 + 1) / 3)
  assert summary["pairwise_collision"] == pytest.approx((1 / 3 + 0 + 0) / 3)


def test_diversity_errors_name_the_fix(eval_suite):
  with pytest.raises(ValueError, match="has no sampler"):
    diversity.diversity(make_bundle(), eval_suite, progress=False)
  with pytest.raises(ValueError, match=r"unknown diversity task\(s\) \['nope'\]"):
    diversity.diversity(make_bundle(sampler=FakeSampler()), eval_suite, ["nope"],
                        progress=False)
  with pytest.raises(ValueError, match="unknown diversity variant 'all'"):
    diversity.diversity_messages(None, "all")


def test_clean_generation():
  # Release: cut at the first newline (its sampler stops there), so a
  # leading newline leaves an empty, invalid answer.
  assert diversity.clean_generation("\n\n Utah \nOhio") == ""
  assert diversity.clean_generation(" Utah \nOhio") == "Utah"
  assert diversity.clean_generation("<pad>\nUtah") == ""
  assert diversity.clean_generation("Ohio<|eot_id|>x") == "Ohio"
  assert diversity.clean_generation("<pad> 13<|endoftext|>") == "13"
  assert diversity.clean_generation("  ") == ""
