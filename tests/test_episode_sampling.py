"""Tests of spectrax/data/episode_sampling.py (docs/method.md#episode-sampling)."""

import numpy as np
import pytest

from spectrax.data import episode_sampling as sampling
from spectrax.data.episode_sampling import SamplingSpec

KEYS = dict(seed=0, task="t")


def _messages(spec, rows, n=400, inputs=True, descriptions=("d1", "d2"),
              instance=0, row_set=0, ordering=0):
  outputs = [f"y{i}" for i in range(n)]
  ins = [f"x{i}" for i in range(n)] if inputs else None
  return sampling.episode_messages(ins, outputs, np.asarray(rows),
                                   list(descriptions), spec, instance=instance,
                                   row_set=row_set, ordering=ordering, **KEYS)


def test_k_distribution_mean_and_support():
  spec = SamplingSpec(mean_k=32)
  ks = [len(sampling.drawn_set(spec, 400, instance=0, draw=d, **KEYS))
        for d in range(2000)]
  assert min(ks) >= 1
  assert abs(np.mean(ks) - 32) < 1.0  # Geometric(2/m) + Poisson(m/2): mean m.


def test_drawn_sets_are_distinct_rows_and_deterministic():
  spec = SamplingSpec(fixed_k=5)
  a = sampling.drawn_set(spec, 400, instance=3, draw=1, **KEYS)
  assert len(set(a.tolist())) == 5
  np.testing.assert_array_equal(
      a, sampling.drawn_set(spec, 400, instance=3, draw=1, **KEYS))
  assert (a.tolist() != sampling.drawn_set(spec, 400, instance=3, draw=2,
                                           **KEYS).tolist())
  # No k: all rows, shuffled; at most all rows.
  assert sorted(sampling.drawn_set(SamplingSpec(), 7, instance=0, draw=0,
                                   **KEYS).tolist()) == list(range(7))
  assert len(sampling.drawn_set(SamplingSpec(fixed_k=50), 7, instance=0,
                                draw=0, **KEYS)) == 7


def test_chunk_sizes_cover_the_rows_exactly():
  sizes = sampling.chunk_sizes(SamplingSpec(fixed_k=15), 927, instance=0, **KEYS)
  assert sizes == [15] * 61 + [12]  # chemistry_esol: 62 chunks.
  sizes = sampling.chunk_sizes(SamplingSpec(mean_k=32), 2000, instance=0, **KEYS)
  assert sum(sizes) == 2000 and min(sizes) >= 1
  assert 40 <= len(sizes) <= 85  # about 2000 / 32
  assert sampling.chunk_sizes(SamplingSpec(), 9, instance=0, **KEYS) == [9]


def test_unshuffled_rows_keep_the_instance_order():
  spec = SamplingSpec(shuffle_rows=False)
  np.testing.assert_array_equal(
      sampling.pass_order(spec, 6, instance=0, **KEYS), np.arange(6))
  np.testing.assert_array_equal(
      sampling.drawn_set(spec, 6, instance=0, draw=0, **KEYS), np.arange(6))


def test_first_ordering_keeps_the_set_order_and_others_permute_it():
  spec = SamplingSpec(p_desc=0.0)
  rows = [5, 1, 9, 3, 7, 2, 8, 0]
  first = _messages(spec, rows)
  assert [m.content for m in first] == [x for r in rows for x in (f"x{r}", f"y{r}")]
  orders = {tuple(m.content for m in _messages(spec, rows, ordering=o))
            for o in range(5)}
  assert len(orders) == 5  # five different orders of the same set
  assert all(sorted(o) == sorted(m.content for m in first) for o in orders)
  # Each input is followed by its own output.
  later = _messages(spec, rows, ordering=3)
  assert all(later[i].content[1:] == later[i + 1].content[1:]
             for i in range(0, len(later), 2))


def test_description_probability_and_choice():
  spec = SamplingSpec(fixed_k=2, p_desc=0.4)
  firsts = [_messages(spec, [0, 1], instance=e)[0] for e in range(3000)]
  descs = [m.content for m in firsts if m.role == "description"]
  assert abs(len(descs) / 3000 - 0.4) < 0.03
  assert set(descs) == {"d1", "d2"}
  assert not any(m.role == "description" for m in
                 _messages(SamplingSpec(p_desc=1.0), [0], descriptions=()))


def test_from_metadata_reads_the_rules_and_old_suites():
  spec = SamplingSpec.from_metadata({
      "mean_k": None, "fixed_k": 15, "p_desc": 0.6, "chunk_all_rows": True,
      "episodes_per_instance": 1, "orderings": 5, "max_episodes": None,
      "shuffle_rows": True})
  assert spec == SamplingSpec(fixed_k=15, chunk_all_rows=True, orderings=5)
  # Built before the rules were recorded: every row once per pass.
  assert SamplingSpec.from_metadata({"mean_k": 8}) == SamplingSpec(
      mean_k=8, chunk_all_rows=True)


def test_spec_errors():
  with pytest.raises(ValueError, match="at most one of mean_k and fixed_k"):
    SamplingSpec(mean_k=4, fixed_k=3)
  with pytest.raises(ValueError, match="p_desc=1.5"):
    SamplingSpec(p_desc=1.5)
  with pytest.raises(ValueError, match="orderings=0 must be at least 1"):
    SamplingSpec(orderings=0)
  with pytest.raises(ValueError, match="max_episodes=0"):
    SamplingSpec(max_episodes=0)
