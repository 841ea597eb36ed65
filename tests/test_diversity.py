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
  # Cleaned: Utah Utah Ohio Narnia Texas 7 -> valid Utah Utah Ohio Texas.
  out = result["tasks"]["us_states_full_names"]["both"]
  assert {k: v for k, v in out.items() if k != "top"} == {
      "percent_valid": 4 / 6, "yield": 3, "unique_gens_pct": 3 / 4,
      "usable_unique": 3 / 6, "raw_unique": 5 / 6,
      "pairwise_collision": 1 / 6, "coverage": 3 / 50}
  assert out["top"][0] == {"text": "Utah", "count": 2, "valid": True}
  assert result["summary"]["examples"]["yield"] == 3


def test_diversity_errors_name_the_fix(eval_suite):
  with pytest.raises(ValueError, match="has no sampler"):
    diversity.diversity(make_bundle(), eval_suite, progress=False)
  with pytest.raises(ValueError, match=r"unknown diversity task\(s\) \['nope'\]"):
    diversity.diversity(make_bundle(sampler=FakeSampler()), eval_suite, ["nope"],
                        progress=False)
  with pytest.raises(ValueError, match="unknown diversity variant 'all'"):
    diversity.diversity_messages(None, "all")


def test_clean_generation():
  assert diversity.clean_generation("\n\n Utah \nOhio") == "Utah"
  assert diversity.clean_generation("Ohio<|eot_id|>x") == "Ohio"
  assert diversity.clean_generation("<pad> 13<|endoftext|>") == "13"
  assert diversity.clean_generation("  ") == ""
