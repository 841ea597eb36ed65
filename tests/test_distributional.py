"""Tests of spectrax/evaluation/distributional.py with a fake scorer (eval_fakes.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from data_pipelines.synthetic import urn
from eval_fakes import FakeScorer, make_bundle
from spectrax.evaluation import distributional, metrics


def test_distributional_known_js(eval_suite):
  uniform = lambda r: [math.log(0.2)] * len(r.options)
  scorer = FakeScorer(option_logprobs=uniform)
  result = distributional.distributional(make_bundle(scorer, template="colon"),
                                         eval_suite, num_examples=1, progress=False)
  urn_result = result["tasks"]["urn"]
  targets = [[0.25, 0.75], [0.25, 0.25, 0.5]]
  expected_js = []
  for t in targets:
    u = [1 / len(t)] * len(t)
    expected_js.append(metrics.js_divergence(t, u))
  assert urn_result["num_questions"] == 2
  assert urn_result["metrics"]["js_divergence"] == pytest.approx(
      np.mean(expected_js), rel=1e-9)
  assert urn_result["metrics"]["coverage"] == pytest.approx(
      np.mean([0.4, 0.6]))
  assert "wasserstein" not in urn_result["metrics"]
  ratings = result["tasks"]["ratings_distributional"]["metrics"]
  assert ratings["wasserstein"] == pytest.approx(
      metrics.wasserstein([0.5, 0.5, 0], [1 / 3] * 3))
  [req] = [r for r in scorer.requests if r.id == "urn/urn_0"]
  # Colon: the release's prompt with the output named (docs/method.md#distributional-alignment).
  assert req.options == [" red", " blue"]
  assert req.prompt == distributional.distributional_request(
      "urn/urn_0", urn.urn_instance("urn_0", {"red": 1, "blue": 3}), "colon").prompt
  assert req.prompt.startswith("Description: " + urn.urn_description({"red": 1, "blue": 3}))
  assert req.prompt.endswith(urn.QUESTION + "\n" + urn.OUTPUT_NAME + ":")
  assert req.target == pytest.approx([0.25, 0.75])
  [example] = urn_result["examples"]
  assert example["model"] == pytest.approx([1 / len(example["options"])]
                                           * len(example["options"]))


def test_is_ordinal():
  assert distributional.is_ordinal(["1", "2", "3"])
  assert not distributional.is_ordinal(["3", "1"])
  assert not distributional.is_ordinal(["red", "blue"])


def test_colon_distributional_prompt_names_the_output():
  inst = urn.urn_instance("u", {"red": 1, "blue": 3})
  req = distributional.distributional_request("urn/u", inst, "colon")
  assert req.prompt == (
      "Description: There is an urn with the following balls shuffled together: 1 red ball "
      "and 3 blue balls.\n\nInput: Draw a ball at random, and tell me the color "
      "(lowercase).\nResponse (color):")
  assert req.options == [" red", " blue"] and req.messages is None
  chat = distributional.distributional_request("urn/u", inst, "gemma")
  assert chat.prompt is None and chat.template == "gemma" and chat.options == ["red", "blue"]
