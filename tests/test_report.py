"""Tests of spectrax/evaluation/report.py on hand-made suite results."""

import json
import os
import re

import pytest

from spectrax.evaluation import report
from spectrax.evaluation.steerability import steerability_metrics


def _steerability(shift):
  outputs = [{"episode": e, "example_index": j, "loss": 2.0 - shift * j,
              "all_acc": float(j % 2), "first_acc": 1.0,
              "confidence": 0.6 + 0.1 * (j % 3), "num_tokens": 3}
             for e in range(3) for j in range(4)]
  fixed = [{**o, "scored_index": o["example_index"]} for o in outputs
           if o["example_index"] <= 2]
  task = {**steerability_metrics(outputs, fixed, k=2, fixed_k_episodes=3),
          "episodes": 3, "dropped": 0, "truncated": 0, "mismatch": 0,
          "suite_split": "test"}
  return {"template": "gemma", "tasks": {"coins/test": task},
          "summary": {"loss": task["loss"], "all_acc": task["all_acc"],
                      "first_acc": task["first_acc"],
                      "all_outputs": task["all_outputs"], "ece": task["ece"],
                      "pooled_ece": task["ece"],
                      "calibration": task["calibration"]}}


def _distributional(p):
  example = {"id": "urn_0", "question": "Draw.", "options": ["red", "blue"],
             "target": [0.25, 0.75], "model": [p, 1 - p],
             "js_divergence": 0.1}
  task = {"num_questions": 1, "metrics": {"js_divergence": 0.1,
                                          "coverage": 0.5},
          "boundary_mismatch": 0, "truncated": 0, "examples": [example]}
  return {"template": "gemma", "tasks": {"urn": task},
          "summary": {"js_divergence": 0.1}}


DIVERSITY = {
    "template": "gemma", "num_samples": 4,
    "tasks": {"rng_1_10": {"both": {
        "percent_valid": 0.5, "yield": 2, "unique_gens_pct": 1.0,
        "usable_unique": 0.5, "raw_unique": 1.0, "pairwise_collision": None,
        "coverage": 0.2, "top": [{"text": "<3>", "count": 1, "valid": True}]}}},
    "summary": {"both": {"percent_valid": 0.5, "yield": 2,
                         "unique_gens_pct": 1.0, "usable_unique": 0.5,
                         "raw_unique": 1.0, "pairwise_collision": None,
                         "coverage": 0.2}},
}
CAPABILITIES = {"template": "gemma",
                "tasks": {"mmlu": {"mode": "option_loglik", "accuracy": 0.5,
                                   "accuracy_all": 0.5, "num_questions": 4}},
                "summary": {"accuracy": 0.5}}


def test_report_writes_json_pngs_and_html(tmp_path):
  results = {
      "base": {"steerability": _steerability(0.0),
               "distributional": _distributional(0.5),
               "diversity": DIVERSITY, "capabilities": CAPABILITIES},
      "tuned": {"steerability": _steerability(0.3),
                "distributional": _distributional(0.3)},
  }
  out = str(tmp_path / "report")
  path = report.write_report(results, out)
  assert path == os.path.join(out, "report.html")
  with open(os.path.join(out, "metrics.json")) as f:
    assert json.load(f) == results
  with open(path, encoding="utf-8") as f:
    page = f.read()
  images = re.findall(r'<img src="([^"]+)"', page)
  assert images == ["steerability_coins_test.png", "calibration.png",
                    "distributional_js.png", "distributional_urn.png"]
  for name in images:
    with open(os.path.join(out, name), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  for heading in ("steerability", "Distributional", "coverage",
                  "Capabilities"):
    assert heading in page
  # The headline is the fixed-k figure (k = 2: outputs 1, 2 of each
  # episode, losses 1.7 and 1.4 for "tuned"), then the all-outputs figure
  # (outputs 1..3: 1.7, 1.4, 1.1; all_acc 1, 0, 1).
  assert ("<td>tuned</td><td>gemma</td><td>1.55</td><td>0.5</td><td>1</td>"
          "<td>1.4</td><td>0.6667</td><td>1</td>") in page
  assert "<th>loss (all outputs)</th>" in page
  assert "&lt;3&gt;" in page  # generations are escaped
  assert "<td>tuned</td>" in page


def test_report_of_one_suite_and_no_models(tmp_path):
  path = report.write_report({"m": {"capabilities": CAPABILITIES}},
                             str(tmp_path))
  with open(path, encoding="utf-8") as f:
    page = f.read()
  assert "<img" not in page and "<td>mmlu</td>" in page
  with pytest.raises(ValueError, match="at least one model"):
    report.write_report({}, str(tmp_path))
