"""Host-side layout for the scorer: tokenised requests -> fixed-shape packed rows.

Pure Python + numpy (no jax). One request becomes a *block*: its prompt
tokens once (one segment), then each option's tokens (one segment each, whose
``prefix_segment_ids`` point at the prompt's segment, positions continuing
from the prompt's end), so with the model's shared-prefix mask
(``spectrax/models/attention.py``) every option sees exactly ``prompt +
option``. A teacher-forced sequence (``Scorer.score_episodes``) is a block of
one segment.

Blocks go to the smallest length bucket that holds them and are packed
first-fit-decreasing into rows of that bucket; rows are grouped into batches
of ``rows_per_batch`` rows, the last batch filled with padding rows, so each
(bucket, slots) shape compiles once.

*Slots* are the positions whose next-token distribution is read: the
predicting index (the token before the scored one) and the scored token. A
row of length ``L`` has ``slots`` of them (``L // SLOT_FRACTION`` for option
scoring, so log-probabilities are computed only near option tokens; ``L`` for
teacher-forced sequences).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

# Option tokens may fill at most half a row (a request with more goes to a
# larger bucket), so the head matmul costs at most half of full logits.
SLOT_FRACTION = 2

ROW_KEYS = ("tokens", "positions", "segment_ids", "prefix_segment_ids")
SLOT_KEYS = ("score_index", "score_target")


@dataclasses.dataclass
class Block:
  """One unit to place in a row.

  Attributes:
    prompt: ``[p]`` int32, attended by every option (for a teacher-forced
      sequence: the whole sequence, and ``options`` is empty).
    options: per option ``[m_k]`` int32 token ids, each its own segment.
    score_prompt: score every prompt token after the first (teacher forcing).
  """

  prompt: np.ndarray
  options: list[np.ndarray] = dataclasses.field(default_factory=list)
  score_prompt: bool = False

  @property
  def length(self) -> int:
    return len(self.prompt) + sum(len(o) for o in self.options)

  @property
  def num_slots(self) -> int:
    own = len(self.prompt) - 1 if self.score_prompt else 0
    return own + sum(len(o) for o in self.options)


@dataclasses.dataclass(frozen=True)
class Placement:
  """Where a block's scored slots landed: ``spans[k]`` is the ``[start, stop)``
  slot range of option k (or, for a teacher-forced block, the single range of
  positions 1..p-1) in row ``row`` of batch ``batch``."""

  batch: int
  row: int
  spans: tuple[tuple[int, int], ...]


@dataclasses.dataclass
class Layout:
  """Batches (dicts of ``[rows, length]`` / ``[rows, slots]`` int32 arrays) and
  one ``Placement`` per block, in block order."""

  batches: list[dict[str, np.ndarray]]
  placements: list[Placement]


def slots_for(length: int, teacher_forced: bool) -> int:
  return length if teacher_forced else max(1, length // SLOT_FRACTION)


def bucket_for(block: Block, buckets: Sequence[int], teacher_forced: bool) -> int | None:
  """The smallest bucket holding ``block`` (tokens and slots), or None."""
  for b in sorted(buckets):
    if block.length <= b and block.num_slots <= slots_for(b, teacher_forced):
      return b
  return None


def _first_fit_decreasing(sizes: Sequence[tuple[int, int]], capacity: tuple[int, int]
                          ) -> list[list[int]]:
  """Indices of items grouped into bins; an item is (tokens, slots)."""
  order = sorted(range(len(sizes)), key=lambda i: (-sizes[i][0], i))
  bins: list[list[int]] = []
  free: list[list[int]] = []
  for i in order:
    t, s = sizes[i]
    for b, (ft, fs) in enumerate(free):
      if t <= ft and s <= fs:
        bins[b].append(i)
        free[b] = [ft - t, fs - s]
        break
    else:
      bins.append([i])
      free.append([capacity[0] - t, capacity[1] - s])
  for b in bins:
    b.sort()  # Input order inside a row: deterministic and easy to read.
  return bins


class _Row:
  """Fills one row's arrays block by block."""

  def __init__(self, length: int, slots: int):
    self.arrays = {k: np.zeros(length, np.int32) for k in ROW_KEYS}
    self.arrays.update({k: np.zeros(slots, np.int32) for k in SLOT_KEYS})
    self.cursor = self.slot = 0
    self.segment = 1

  def _put(self, tokens: np.ndarray, first_position: int, prefix_segment: int) -> int:
    """Writes one segment; returns its first row index."""
    start, n = self.cursor, len(tokens)
    a = self.arrays
    a["tokens"][start:start + n] = tokens
    a["positions"][start:start + n] = np.arange(first_position, first_position + n)
    a["segment_ids"][start:start + n] = self.segment
    a["prefix_segment_ids"][start:start + n] = prefix_segment
    self.cursor += n
    self.segment += 1
    return start

  def _score(self, indices: np.ndarray, targets: np.ndarray) -> tuple[int, int]:
    start, n = self.slot, len(indices)
    self.arrays["score_index"][start:start + n] = indices
    self.arrays["score_target"][start:start + n] = targets
    self.slot += n
    return start, start + n

  def add(self, block: Block) -> tuple[tuple[int, int], ...]:
    prompt_segment = self.segment
    p = len(block.prompt)
    first = self._put(block.prompt, 0, 0)
    if block.score_prompt:
      return (self._score(np.arange(first, first + p - 1), block.prompt[1:]),)
    spans = []
    for option in block.options:
      start = self._put(option, p, prompt_segment)
      m = len(option)
      # The first option token is predicted by the prompt's last token.
      indices = np.concatenate([[first + p - 1], np.arange(start, start + m - 1)])[:m]
      spans.append(self._score(indices, option))
    return tuple(spans)


def layout(blocks: Sequence[Block], buckets: Sequence[int], rows_per_batch: int, *,
           teacher_forced: bool, describe: Callable[[int], str] = str) -> Layout:
  """Packs ``blocks`` into batches of fixed-shape rows.

  Args:
    blocks: the blocks, in input order.
    buckets: row lengths to choose from.
    rows_per_batch: rows per batch (padding rows fill the last batch of each
      bucket).
    teacher_forced: blocks score their own tokens (``slots == length``).
    describe: names block i in errors (e.g. the request id).

  Returns:
    The ``Layout``; batches are ordered by bucket.

  Raises:
    ValueError: a block fits no bucket (callers truncate before this).
  """
  by_bucket: dict[int, list[int]] = {}
  for i, block in enumerate(blocks):
    b = bucket_for(block, buckets, teacher_forced)
    if b is None:
      top = max(buckets)
      raise ValueError(
          f"{describe(i)}: {block.length} tokens with {block.num_slots} scored tokens do not fit "
          f"the largest bucket ({top} tokens, {slots_for(top, teacher_forced)} scored); add a "
          "larger bucket (Scorer(buckets=...)) or shorten the request")
    by_bucket.setdefault(b, []).append(i)
  batches: list[dict[str, np.ndarray]] = []
  placements: list[Placement | None] = [None] * len(blocks)
  for length in sorted(by_bucket):
    members = by_bucket[length]
    slots = slots_for(length, teacher_forced)
    sizes = [(blocks[i].length, blocks[i].num_slots) for i in members]
    rows = _first_fit_decreasing(sizes, (length, slots))
    for first in range(0, len(rows), rows_per_batch):
      group = rows[first:first + rows_per_batch]
      filled = []
      for r, row_items in enumerate(group):
        row = _Row(length, slots)
        for j in row_items:
          i = members[j]
          placements[i] = Placement(len(batches), r, row.add(blocks[i]))
        filled.append(row.arrays)
      while len(filled) < rows_per_batch:  # Padding rows: segment 0 everywhere.
        filled.append(_Row(length, slots).arrays)
      batches.append({k: np.stack([f[k] for f in filled]) for k in ROW_KEYS + SLOT_KEYS})
  return Layout(batches, placements)  # type: ignore[arg-type]
