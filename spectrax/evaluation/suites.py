"""The four evaluation suites of docs/method.md#evaluation by name, over a built Spectrum Suite.

Each suite takes a `ModelBundle` (a model's scorer, sampler, tokenizer and
template), the `Suite`, and sizes that keep runs short, and returns a
JSON-able dict: per task, then a `summary` across tasks.

  steerability    docs/method.md#steerability  teacher-forced loss/accuracy per output vs. position
  distributional  docs/method.md#distributional-alignment  per-option log-likelihoods vs. target shares
  diversity       docs/method.md#valid-output-coverage  samples of the 22 generation tasks, validity, coverage
  capabilities    docs/method.md#capabilities  multiple-choice accuracy from answer-letter scores

One module each (steerability.py, ...); what they share is in
suite_inputs.py, whose names the runner uses are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spectrax.evaluation.capabilities import capabilities
from spectrax.evaluation.distributional import distributional
from spectrax.evaluation.diversity import diversity
from spectrax.evaluation.steerability import steerability
from spectrax.evaluation.suite_inputs import (CAPABILITY_TASKS, ModelBundle,
                                              task_records)

__all__ = ["CAPABILITY_TASKS", "SUITES", "ModelBundle", "task_records"]

SUITES: dict[str, Callable[..., dict[str, Any]]] = {
    "steerability": steerability,
    "distributional": distributional,
    "diversity": diversity,
    "capabilities": capabilities,
}
