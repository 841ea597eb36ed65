"""Episode sampling (docs/method.md#episode-sampling): one instance's rows → one episode's messages.

Deterministic from (seed, task, episode index) alone, so any episode can be
rebuilt in any worker, and data order is a pure function of the step.
Truncation to `max_tokens` happens at tokenisation (`episodes.tokenize_episode`)
because it needs token counts.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np

from spectrax.data.episodes import Message


@dataclasses.dataclass(frozen=True)
class SamplingSpec:
  """Per-task episode settings (from the suite's task metadata)."""

  mean_k: float | None = None  # k ~ Geometric(2/m) + Poisson(m/2).
  fixed_k: int | None = None  # Exactly k examples (when not None).
  p_desc: float = 0.6  # Probability of starting with a description.

  def __post_init__(self):
    if self.mean_k is not None and self.fixed_k is not None:
      raise ValueError("set at most one of mean_k and fixed_k.")
    if self.mean_k is not None and self.mean_k < 2:
      raise ValueError(f"mean_k={self.mean_k} must be at least 2.")
    if self.fixed_k is not None and self.fixed_k < 1:
      raise ValueError(f"fixed_k={self.fixed_k} must be at least 1.")
    if not 0.0 <= self.p_desc <= 1.0:
      raise ValueError(f"p_desc={self.p_desc} must be within [0, 1].")

  def expected_k(self, num_rows: int) -> float:
    if self.fixed_k is not None:
      return min(self.fixed_k, num_rows)
    if self.mean_k is not None:
      return min(self.mean_k, num_rows)
    return num_rows


def episode_rng(seed: int, task: str, episode_index: int) -> np.random.Generator:
  return np.random.default_rng(
      [seed, zlib.crc32(task.encode("utf-8")), episode_index])


def draw_k(rng: np.random.Generator, spec: SamplingSpec, num_rows: int) -> int:
  if spec.fixed_k is not None:
    k = spec.fixed_k
  elif spec.mean_k is not None:
    half = spec.mean_k / 2
    k = int(rng.geometric(1.0 / half) + rng.poisson(half))
  else:
    k = num_rows
  return min(k, num_rows)


def sample_episode(rows_input: Sequence[str] | None,
                   rows_output: Sequence[str],
                   descriptions: Sequence[str],
                   spec: SamplingSpec, *, seed: int, task: str,
                   episode_index: int) -> list[Message]:
  """Messages of one episode drawn from one instance's rows.

  Args:
    rows_input: the rows' inputs, or None/empty when the task has none.
    rows_output: the rows' outputs.
    descriptions: alternative descriptions (one drawn uniformly).
    spec: the task's sampling settings.
    seed, task, episode_index: the whole source of randomness.
  """
  rng = episode_rng(seed, task, episode_index)
  n = len(rows_output)
  order = rng.permutation(n)
  k = draw_k(rng, spec, n)
  messages: list[Message] = []
  if descriptions and rng.random() < spec.p_desc:
    messages.append(
        Message("description", descriptions[int(rng.integers(len(descriptions)))]))
  for i in order[:k]:
    if rows_input:
      messages.append(Message("input", rows_input[i]))
    messages.append(Message("output", rows_output[i]))
  return messages
