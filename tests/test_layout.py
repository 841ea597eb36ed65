"""The scorer's host-side layout: blocks -> fixed-shape packed rows."""

import numpy as np
import pytest

from spectrax.scoring.layout import (Block, Placement, bucket_for, layout,
                                     slots_for)


def _block(prompt, *options, score_prompt=False):
  return Block(np.array(prompt, np.int32),
               [np.array(o, np.int32) for o in options], score_prompt)


def _lists(batch):
  return {k: v.tolist() for k, v in batch.items()}


def test_prompt_once_then_options_hand_worked():
  # Prompt 11 12 13; options "21 22" and "31". Each option is its own
  # segment whose prefix segment is the prompt's, positions continuing at 3.
  # Slots: option 1's first token is predicted at the prompt's last index 2,
  # its second at index 3; option 2's only token at index 2 again.
  out = layout([_block([11, 12, 13], [21, 22], [31])], buckets=[8, 16],
               rows_per_batch=2, teacher_forced=False)
  assert out.placements == [Placement(batch=0, row=0, spans=((0, 2), (2, 3)))]
  assert len(out.batches) == 1
  assert _lists(out.batches[0]) == {
      "tokens": [[11, 12, 13, 21, 22, 31, 0, 0], [0] * 8],
      "positions": [[0, 1, 2, 3, 4, 3, 0, 0], [0] * 8],
      "segment_ids": [[1, 1, 1, 2, 2, 3, 0, 0], [0] * 8],
      "prefix_segment_ids": [[0, 0, 0, 1, 1, 1, 0, 0], [0] * 8],
      # A row of 8 has 8 // 2 = 4 slots; the second row is padding.
      "score_index": [[2, 3, 2, 0], [0] * 4],
      "score_target": [[21, 22, 31, 0], [0] * 4],
  }
  assert all(v.dtype == np.int32 for v in out.batches[0].values())


def test_teacher_forced_block_scores_its_own_tokens():
  out = layout([_block([5, 6, 7, 8], score_prompt=True)], buckets=[4],
               rows_per_batch=1, teacher_forced=True)
  assert out.placements == [Placement(0, 0, ((0, 3),))]
  assert _lists(out.batches[0]) == {
      "tokens": [[5, 6, 7, 8]], "positions": [[0, 1, 2, 3]],
      "segment_ids": [[1, 1, 1, 1]], "prefix_segment_ids": [[0, 0, 0, 0]],
      "score_index": [[0, 1, 2, 0]], "score_target": [[6, 7, 8, 0]]}


def test_bucket_is_the_smallest_holding_tokens_and_slots():
  assert (slots_for(8, False), slots_for(9, False), slots_for(1, False),
          slots_for(8, True)) == (4, 4, 1, 8)
  # 6 tokens, 3 scored: fits 8 (4 slots).
  assert bucket_for(_block([1, 2, 3], [4, 5], [6]), [16, 8], False) == 8
  # 6 tokens but 5 scored: more than 8 // 2, so the 16 bucket.
  assert bucket_for(_block([1], [4, 5, 6, 7, 8]), [16, 8], False) == 16
  # Teacher forced, a row's every position is a slot.
  assert bucket_for(_block([1] * 8, score_prompt=True), [16, 8], True) == 8
  assert bucket_for(_block([1] * 17, score_prompt=True), [16, 8], True) is None


def test_first_fit_decreasing_rows_and_batches_by_bucket():
  # Bucket 8 (4 slots): blocks of 6, 3, 4 and 2 tokens (slots 2, 1, 1, 1).
  # Decreasing: 6 opens row A, 4 opens row B, 3 joins B (7), 2 joins A (8).
  # Inside a row, blocks keep input order. A 12-token block goes to 16.
  blocks = [_block([1, 2, 3, 4], [5, 6]),      # 0: 6 tokens
            _block([7, 8], [9]),               # 1: 3 tokens
            _block([10, 11, 12], [13]),        # 2: 4 tokens
            _block([20] * 10, [21, 22]),       # 3: 12 tokens -> 16
            _block([14], [15])]                # 4: 2 tokens
  out = layout(blocks, buckets=[8, 16], rows_per_batch=1, teacher_forced=False)
  assert [b["tokens"].shape for b in out.batches] == [(1, 8), (1, 8), (1, 16)]
  assert out.batches[0]["tokens"].tolist() == [[1, 2, 3, 4, 5, 6, 14, 15]]
  assert out.batches[1]["tokens"].tolist() == [[7, 8, 9, 10, 11, 12, 13, 0]]
  assert out.batches[0]["segment_ids"].tolist() == [[1, 1, 1, 1, 2, 2, 3, 4]]
  assert out.batches[1]["prefix_segment_ids"].tolist() == [
      [0, 0, 1, 0, 0, 0, 3, 0]]
  assert out.placements == [
      Placement(0, 0, ((0, 2),)), Placement(1, 0, ((0, 1),)),
      Placement(1, 0, ((1, 2),)), Placement(2, 0, ((0, 2),)),
      Placement(0, 0, ((2, 3),))]


def test_a_block_that_fits_no_bucket_names_it():
  with pytest.raises(ValueError) as e:
    layout([_block([1, 2]), _block([1] * 7, [2, 3])], buckets=[4, 8],
           rows_per_batch=1, teacher_forced=False,
           describe=lambda i: f"request r{i}")
  assert str(e.value) == (
      "request r1: 9 tokens with 2 scored tokens do not fit the largest "
      "bucket (8 tokens, 4 scored); add a larger bucket "
      "(Scorer(buckets=...)) or shorten the request")
