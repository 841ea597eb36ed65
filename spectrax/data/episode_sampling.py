"""Episode sampling (docs/method.md#episode-sampling): one instance's rows → one episode's messages.

The release's generators decide, per task, how many episodes an instance
gives and which of its rows each holds (docs/method.md#episodes-per-instance):

  - k episodes per instance, each an independent draw of k rows
    (`episodes_per_instance`, the release's `n_per=k`);
  - every row once per pass, shuffled and cut into consecutive chunks
    (`chunk_all_rows`, the release's `n_per=-1`);
  - each drawn set emitted in several orders (`orderings`,
    `permutations_per_iter`), and a cap on a task's episodes (`max_episodes`,
    `max_total`).

Every draw here comes from a generator keyed by (seed, task, instance, set,
ordering) — never by the episode's position — so any episode can be rebuilt
in any worker, and data order is a pure function of the step. Truncation to
`max_tokens` happens at tokenisation (`episodes.tokenize_episode`) because it
needs token counts.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np

from spectrax.data.episodes import Message

# The streams of one task, kept apart by the first key after the task.
_CHUNK_SIZES, _PASS_ORDER, _ROW_SET, _EPISODE = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class SamplingSpec:
  """Per-task episode settings (from the suite's task metadata)."""

  mean_k: float | None = None  # k ~ Geometric(2/m) + Poisson(m/2).
  fixed_k: int | None = None  # Exactly k examples (when not None).
  p_desc: float = 0.6  # Probability of starting with a description.
  episodes_per_instance: int = 1  # Independent draws per instance.
  chunk_all_rows: bool = False  # Every row once per pass, in chunks of k.
  orderings: int = 1  # Orders each drawn set of rows is shown in.
  max_episodes: int | None = None  # Cap on a task split's episodes.
  shuffle_rows: bool = True  # False: rows keep the instance's order.

  def __post_init__(self):
    if self.mean_k is not None and self.fixed_k is not None:
      raise ValueError("set at most one of mean_k and fixed_k.")
    if self.mean_k is not None and self.mean_k < 2:
      raise ValueError(f"mean_k={self.mean_k} must be at least 2.")
    if self.fixed_k is not None and self.fixed_k < 1:
      raise ValueError(f"fixed_k={self.fixed_k} must be at least 1.")
    if not 0.0 <= self.p_desc <= 1.0:
      raise ValueError(f"p_desc={self.p_desc} must be within [0, 1].")
    for name in ("episodes_per_instance", "orderings"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be at least 1.")
    if self.max_episodes is not None and self.max_episodes < 1:
      raise ValueError(f"max_episodes={self.max_episodes} must be at least 1.")

  @classmethod
  def from_metadata(cls, m: dict) -> "SamplingSpec":
    """The settings a suite records per task (`TaskSpec.metadata`)."""
    if "chunk_all_rows" not in m:
      # A suite built before the release's per-task rules were recorded: its
      # episodes were about one per k rows, which chunked passes make exact.
      return cls(mean_k=m.get("mean_k"), fixed_k=m.get("fixed_k"),
                 p_desc=m.get("p_desc", 0.6), chunk_all_rows=True)
    return cls(mean_k=m.get("mean_k"), fixed_k=m.get("fixed_k"),
               p_desc=m.get("p_desc", 0.6),
               episodes_per_instance=m.get("episodes_per_instance", 1),
               chunk_all_rows=m["chunk_all_rows"],
               orderings=m.get("orderings", 1),
               max_episodes=m.get("max_episodes"),
               shuffle_rows=m.get("shuffle_rows", True))

  def expected_k(self, num_rows: int) -> float:
    if self.fixed_k is not None:
      return min(self.fixed_k, num_rows)
    if self.mean_k is not None:
      return min(self.mean_k, num_rows)
    return num_rows


def task_rng(seed: int, task: str, *key: int) -> np.random.Generator:
  """The generator of one decision of one task (e.g. one instance's chunks)."""
  return np.random.default_rng([seed, zlib.crc32(task.encode("utf-8")),
                                *key])


def draw_k(rng: np.random.Generator, spec: SamplingSpec, num_rows: int) -> int:
  if spec.fixed_k is not None:
    k = spec.fixed_k
  elif spec.mean_k is not None:
    half = spec.mean_k / 2
    k = int(rng.geometric(1.0 / half) + rng.poisson(half))
  else:
    k = num_rows
  return min(k, num_rows)


def chunk_sizes(spec: SamplingSpec, num_rows: int, *, seed: int, task: str,
                instance: int) -> list[int]:
  """Sizes of the consecutive chunks one pass over an instance is cut into:
  a fresh k per chunk, the last chunk whatever remains."""
  rng = task_rng(seed, task, _CHUNK_SIZES, instance)
  sizes, left = [], num_rows
  while left > 0:
    sizes.append(draw_k(rng, spec, left))
    left -= sizes[-1]
  return sizes


def pass_order(spec: SamplingSpec, num_rows: int, *, seed: int, task: str,
               instance: int) -> np.ndarray:
  """The order in which one pass visits an instance's rows."""
  return row_order(spec, task_rng(seed, task, _PASS_ORDER, instance), num_rows)


def row_order(spec: SamplingSpec, rng: np.random.Generator,
              num_rows: int) -> np.ndarray:
  return rng.permutation(num_rows) if spec.shuffle_rows else np.arange(num_rows)


def drawn_set(spec: SamplingSpec, num_rows: int, *, seed: int, task: str,
              instance: int, draw: int) -> np.ndarray:
  """Rows of an instance's `draw`-th independent set, in random order."""
  rng = task_rng(seed, task, _ROW_SET, instance, draw)
  order = row_order(spec, rng, num_rows)
  return order[:draw_k(rng, spec, num_rows)]


def episode_messages(rows_input: Sequence[str] | None,
                     rows_output: Sequence[str], rows: np.ndarray,
                     descriptions: Sequence[str], spec: SamplingSpec, *,
                     seed: int, task: str, instance: int, row_set: int,
                     ordering: int) -> list[Message]:
  """Messages of one episode: an optional description, then `rows` (indices
  into the instance's rows) in their order, reordered for every ordering
  but the first (each a different draw, as the release's permutations)."""
  rng = task_rng(seed, task, _EPISODE, instance, row_set, ordering)
  if ordering:
    rows = rng.permutation(rows)
  messages: list[Message] = []
  if descriptions and rng.random() < spec.p_desc:
    messages.append(
        Message("description", descriptions[int(rng.integers(len(descriptions)))]))
  for i in rows:
    if rows_input:
      messages.append(Message("input", rows_input[i]))
    messages.append(Message("output", rows_output[i]))
  return messages
