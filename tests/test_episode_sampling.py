"""docs/method.md#episode-sampling episode sampling."""

import numpy as np
import pytest

from spectrax.data.episode_sampling import SamplingSpec, sample_episode


def _sample(spec, e, n=400, inputs=True, descriptions=("d1", "d2")):
  outputs = [f"y{i}" for i in range(n)]
  ins = [f"x{i}" for i in range(n)] if inputs else None
  return sample_episode(ins, outputs, list(descriptions), spec, seed=0,
                        task="t", episode_index=e)


def test_deterministic_and_index_dependent():
  spec = SamplingSpec(mean_k=16)
  assert _sample(spec, 3) == _sample(spec, 3)
  assert _sample(spec, 3) != _sample(spec, 4)


def test_k_distribution_mean_and_support():
  spec = SamplingSpec(mean_k=32)
  ks = [sum(m.role == "output" for m in _sample(spec, e)) for e in range(2000)]
  assert min(ks) >= 1
  assert abs(np.mean(ks) - 32) < 1.0  # Geometric(2/m) + Poisson(m/2): mean m.


def test_fixed_k_all_rows_and_pairs():
  ep = _sample(SamplingSpec(fixed_k=5, p_desc=0.0), 0)
  assert [m.role for m in ep] == ["input", "output"] * 5
  # Each input is followed by its own output.
  assert all(ep[i].content[1:] == ep[i + 1].content[1:] for i in range(0, 10, 2))
  ep = _sample(SamplingSpec(p_desc=0.0), 1, n=7, inputs=False)
  assert sorted(m.content for m in ep) == sorted(f"y{i}" for i in range(7))
  assert sum(m.role == "output" for m in
             _sample(SamplingSpec(fixed_k=50, p_desc=0.0), 0, n=7)) == 7


def test_description_probability_and_choice():
  spec = SamplingSpec(fixed_k=2, p_desc=0.4)
  firsts = [_sample(spec, e)[0] for e in range(3000)]
  descs = [m.content for m in firsts if m.role == "description"]
  assert abs(len(descs) / 3000 - 0.4) < 0.03
  assert set(descs) == {"d1", "d2"}
  assert not any(m.role == "description" for m in
                 _sample(SamplingSpec(fixed_k=2, p_desc=1.0), 0,
                         descriptions=()))


def test_spec_errors():
  with pytest.raises(ValueError, match="at most one of mean_k and fixed_k"):
    SamplingSpec(mean_k=4, fixed_k=3)
  with pytest.raises(ValueError, match="p_desc=1.5"):
    SamplingSpec(p_desc=1.5)
