"""Best-fit packing with retained rows: placement, row arrays, exact resume."""

import grain
import numpy as np
import pytest

from spectrax.data.packing import RetainingBestFitPackIterDataset


def _episodes(lengths):
  """Episode i: `tokens` of its length, all i + 1; `episode` = [i + 1]."""
  return [{"tokens": np.full(n, i + 1, np.int32),
           "episode": np.array([i + 1], np.int32)}
          for i, n in enumerate(lengths)]


def _packer(lengths, **kwargs):
  kwargs.setdefault("length_struct", {"tokens": 10, "episode": 3})
  kwargs.setdefault("meta_features", ("episode",))
  parent = grain.MapDataset.source(_episodes(lengths)).to_iter_dataset()
  return RetainingBestFitPackIterDataset(parent, **kwargs)


def _as_lists(row):
  return {k: v.tolist() for k, v in row.items()}


# Rows of 10 tokens, 2 open at once. Episodes of lengths 6 3 5 4 2 7 1:
#   e1 (6) opens A; e2 (3) fits A (room 1); e3 (5) opens B; e4 (4) fits B
#   (room 1); e5 (2) fits neither and both rows are open: the fullest (A, 9,
#   the older of two 9s) is emitted and e5 opens C; e6 (7) fits C (room 1);
#   e7 (1) fits B and C with room 0 each: B, the first. At the end B and C
#   are re-packed best-fit decreasing: e6 7, e3 5 (new row), e4 4 -> the 5,
#   e5 2 -> the 7, e7 1 -> the fuller of 9 and 9, the first.
HAND_WORKED = [
    {"tokens": [1, 1, 1, 1, 1, 1, 2, 2, 2, 0],
     "tokens_segment_ids": [1, 1, 1, 1, 1, 1, 2, 2, 2, 0],
     "tokens_positions": [0, 1, 2, 3, 4, 5, 0, 1, 2, 0],
     "episode": [1, 2, 0]},
    {"tokens": [6, 6, 6, 6, 6, 6, 6, 5, 5, 7],
     "tokens_segment_ids": [1, 1, 1, 1, 1, 1, 1, 2, 2, 3],
     "tokens_positions": [0, 1, 2, 3, 4, 5, 6, 0, 1, 0],
     "episode": [6, 5, 7]},
    {"tokens": [3, 3, 3, 3, 3, 4, 4, 4, 4, 0],
     "tokens_segment_ids": [1, 1, 1, 1, 1, 2, 2, 2, 2, 0],
     "tokens_positions": [0, 1, 2, 3, 4, 0, 1, 2, 3, 0],
     "episode": [3, 4, 0]},
]
LENGTHS = [6, 3, 5, 4, 2, 7, 1]


def test_best_fit_placement_hand_worked():
  rows = list(_packer(LENGTHS, num_packing_bins=2))
  assert [_as_lists(r) for r in rows] == HAND_WORKED
  assert {k: v.dtype for k, v in rows[0].items()} == {
      "tokens": np.int32, "tokens_segment_ids": np.int32,
      "tokens_positions": np.int32, "episode": np.int32}


def test_state_after_the_first_row_and_resume():
  it = iter(_packer(LENGTHS, num_packing_bins=2))
  next(it)
  # e3..e5 are still in open rows: resume replays the parent from e3 (index
  # 2), ordinals relative to it.
  state = it.get_state()
  assert state == {"parent": {"next_index": 2}, "origin": 2, "ordinal": 5,
                   "open": [[0, 1], [2]], "opened_at": [0, 2], "ready": [],
                   "exhausted": False}
  fresh = iter(_packer(LENGTHS, num_packing_bins=2))
  fresh.set_state(state)
  assert [_as_lists(r) for r in fresh] == HAND_WORKED[1:]


def test_max_age_emits_a_row_that_still_has_room():
  # Rows of 10, max_age 2: e1 (3) opens A, e2 (8) opens B, e3 (3) joins A;
  # A is now 2 episodes old and is emitted with 4 free; e4 (3) opens C and B,
  # 2 old, is emitted; e5 (2) joins C, emitted at the end.
  rows = list(_packer([3, 8, 3, 3, 2], num_packing_bins=4, max_age=2,
                      length_struct={"tokens": 10, "episode": 3}))
  assert [r["episode"].tolist() for r in rows] == [[1, 3, 0], [2, 0, 0],
                                                   [4, 5, 0]]
  assert rows[0]["tokens_segment_ids"].tolist() == [1, 1, 1, 2, 2, 2,
                                                    0, 0, 0, 0]


def test_a_meta_feature_budget_limits_episodes_per_row():
  # Four episodes of 2 tokens would fit one row of 10, but `episode` holds 3.
  rows = list(_packer([2, 2, 2, 2], num_packing_bins=2))
  assert [r["episode"].tolist() for r in rows] == [[1, 2, 3], [4, 0, 0]]


def test_every_state_resumes_to_the_same_rows():
  lengths = np.random.default_rng(0).integers(1, 11, size=60).tolist()
  kwargs = dict(num_packing_bins=3, max_age=5)
  expected = [_as_lists(r) for r in _packer(lengths, **kwargs)]
  it = iter(_packer(lengths, **kwargs))
  saw_ready = False
  for n in range(len(expected) + 1):
    state = it.get_state()
    saw_ready |= bool(state["ready"])
    resumed = iter(_packer(lengths, **kwargs))
    resumed.set_state(state)
    assert [_as_lists(r) for r in resumed] == expected[n:], f"after row {n}"
    if n < len(expected):
      assert _as_lists(next(it)) == expected[n]
  # Some states held emitted rows not yet returned (max_age emits several).
  assert saw_ready


def test_an_episode_longer_than_a_row_is_an_error():
  with pytest.raises(ValueError, match=(
      r"an episode's feature 'tokens' has 11 positions, more than the row "
      r"length 10; episodes must be truncated to fit \(data.max_tokens\).")):
    list(_packer([4, 11], num_packing_bins=2))
