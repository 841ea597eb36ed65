"""Tests of spectrax/evaluation/metrics.py against float64 references written
here from the formulas of docs/method.md#evaluation, and hand-computed cases."""

import math

import numpy as np
import pytest

from spectrax.evaluation import metrics

EPS = 1e-6


def _smooth(x):
  x = np.asarray(x, np.float64) + EPS
  return x / x.sum()


def _ref(target, model):
  """Every docs/method.md#distributional-alignment metric, written out independently."""
  t, p = _smooth(target), _smooth(model)
  m = 0.5 * (t + p)
  kl = lambda a, b: sum(ai * math.log(ai / bi) for ai, bi in zip(a, b))
  cdf_t, cdf_p = np.cumsum(t), np.cumsum(p)
  return {
      "kl_divergence": kl(t, p),
      "reverse_kl": kl(p, t),
      "js_divergence": 0.5 * kl(t, m) + 0.5 * kl(p, m),
      "total_variation": 0.5 * sum(abs(a - b) for a, b in zip(t, p)),
      "wasserstein": sum(abs(a - b) for a, b in zip(cdf_t[:-1], cdf_p[:-1])),
      "cross_entropy": -sum(a * math.log(b) for a, b in zip(t, p)),
      "mode_match": float(int(np.argmax(t)) == int(np.argmax(p))),
  }


FUNCS = {
    "kl_divergence": metrics.kl_divergence,
    "reverse_kl": metrics.reverse_kl,
    "js_divergence": metrics.js_divergence,
    "total_variation": metrics.total_variation,
    "wasserstein": metrics.wasserstein,
    "cross_entropy": metrics.cross_entropy,
    "mode_match": metrics.mode_match,
}


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_float64_reference(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(2, 9))
  t, p = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n) * 0.3)
  ref = _ref(t, p)
  for name, fn in FUNCS.items():
    assert fn(t, p) == pytest.approx(ref[name], rel=1e-12, abs=1e-15), name


def test_hand_computed_cases():
  same = [0.2, 0.3, 0.5]
  assert metrics.kl_divergence(same, same) == 0.0
  assert metrics.js_divergence(same, same) == 0.0
  assert metrics.total_variation(same, same) == 0.0
  # JS([.5,.5],[.8,.2]) from the formula (midpoint [.65, .35]); the
  # ε-smoothing changes it by < 1e-6.
  js = 0.5 * (0.5 * math.log(0.5 / 0.65) + 0.5 * math.log(0.5 / 0.35)) + \
      0.5 * (0.8 * math.log(0.8 / 0.65) + 0.2 * math.log(0.2 / 0.35))
  assert js == pytest.approx(0.0506718, abs=1e-7)
  assert metrics.js_divergence([.5, .5], [.8, .2]) == pytest.approx(js, abs=1e-6)
  assert metrics.js_divergence([.5, .5], [.8, .2]) == \
      metrics.js_divergence([.8, .2], [.5, .5])
  # Disjoint supports: JS tends to ln 2, TV to 1; smoothing keeps them below.
  assert metrics.js_divergence([1, 0], [0, 1]) == pytest.approx(math.log(2),
                                                                abs=1e-4)
  assert metrics.js_divergence([1, 0], [0, 1]) <= math.log(2)
  assert metrics.total_variation([1, 0], [0, 1]) == pytest.approx(1, abs=1e-5)
  assert metrics.total_variation([.5, .5], [.8, .2]) == pytest.approx(0.3, abs=1e-6)
  assert metrics.wasserstein([1, 0, 0], [0, 0, 1]) == pytest.approx(2, abs=1e-5)
  assert metrics.wasserstein([1, 0, 0], [0, 1, 0]) == pytest.approx(1, abs=1e-5)
  assert metrics.cross_entropy([1, 0], [.5, .5]) == pytest.approx(math.log(2),
                                                                  abs=1e-5)
  assert metrics.mode_match([.1, .9], [.4, .6]) == 1.0
  assert metrics.mode_match([.1, .9], [.6, .4]) == 0.0


def test_metrics_reject_bad_input():
  with pytest.raises(ValueError, match="target has 2 options but model has 3"):
    metrics.js_divergence([.5, .5], [.2, .3, .5])
  with pytest.raises(ValueError, match="non-negative"):
    metrics.kl_divergence([-0.1, 1.1], [.5, .5])


def test_distributional_metrics_from_logprobs():
  target = [0.25, 0.75]
  logprobs = [math.log(0.1), math.log(0.3)]  # coverage 0.4, p = [.25, .75]
  out = metrics.distributional_metrics(target, logprobs)
  assert out["coverage"] == pytest.approx(0.4)
  assert out["js_divergence"] == pytest.approx(0.0, abs=1e-12)
  assert out["mode_match"] == 1.0
  assert "wasserstein" not in out
  assert set(out) == {"coverage", "kl_divergence", "reverse_kl",
                      "js_divergence", "total_variation", "cross_entropy",
                      "mode_match"}
  target, logprobs = [0.5, 0.3, 0.2], [-3.0, -1.0, -2.0]
  p = np.exp(logprobs) / np.exp(logprobs).sum()
  out = metrics.distributional_metrics(target, logprobs, ordinal=True)
  ref = _ref(target, p)
  for name in FUNCS:
    assert out[name] == pytest.approx(ref[name], rel=1e-12), name
  # All options underflow float64: still a proper distribution.
  out = metrics.distributional_metrics([0.5, 0.5], [-2000.0, -2000.0])
  assert out["coverage"] == 0.0
  assert out["js_divergence"] == pytest.approx(0.0, abs=1e-12)
  # No option possible at all (-inf everywhere): uniform, not a crash.
  out = metrics.distributional_metrics([0.75, 0.25], [-np.inf, -np.inf])
  assert out["coverage"] == 0.0
  assert out["total_variation"] == pytest.approx(0.25, abs=1e-5)


def test_diversity_metrics_golden():
  valid = {"a", "b", "c", "d", "e"}
  gens = ["a", "a", "b", "x", "a", "c", "y", "b"]
  # V = a a b a c b (6 of 8); unique V = {a, b, c}; all unique = 5.
  # equal pairs in V: C(3,2) for a + C(2,2) for b = 4 of C(6,2) = 15.
  assert metrics.diversity_metrics(gens, valid) == {
      "percent_valid": 6 / 8,
      "yield": 3,
      "unique_gens_pct": 3 / 6,
      "usable_unique": 3 / 8,
      "raw_unique": 5 / 8,
      "pairwise_collision": 4 / 15,
      "coverage": 3 / 5,
  }


def test_diversity_metrics_with_a_function_and_edge_cases():
  is_even = lambda s: s.isdigit() and int(s) % 2 == 0
  out = metrics.diversity_metrics(["2", "4", "4", "5"], is_even)
  assert out == {"percent_valid": 0.75, "yield": 2, "unique_gens_pct": 2 / 3,
                 "usable_unique": 0.5, "raw_unique": 0.75,
                 "pairwise_collision": 1 / 3, "coverage": None}
  # The release's edge cases (tsor13/spectrum@5a33588
  # src/spectrum/diverse_valid/eval_diverse_valid.py:142-150): nothing valid
  # -> unique_gens_pct 0; fewer than two valid -> pairwise_collision 0.
  out = metrics.diversity_metrics(["q"], {"a"})
  assert out["percent_valid"] == 0.0 and out["unique_gens_pct"] == 0.0
  assert out["pairwise_collision"] == 0.0 and out["coverage"] == 0.0
  out = metrics.diversity_metrics(["a", "q"], {"a", "b"})
  assert out["unique_gens_pct"] == 1.0 and out["pairwise_collision"] == 0.0
  with pytest.raises(ValueError, match="at least one generation"):
    metrics.diversity_metrics([], {"a"})


def test_choose_k_golden():
  # k=1: 1*5=5; k=2: 2*4=8; k=3: 3*3=9; k=4: 4*1=4; k=7: 7*1=7.
  assert metrics.choose_k([1, 2, 3, 3, 7]) == 3
  # Ties keep the smallest k: k=1 -> 2, k=2 -> 2.
  assert metrics.choose_k([1, 2]) == 1
  assert metrics.choose_k([5]) == 5
  assert metrics.choose_k([0, 0]) == 0
  assert metrics.choose_k([]) == 0


def test_choose_fixed_k_as_the_release():
  """tsor13/spectrum@5a33588 src/spectrum/icl_classes/eval_icl.py:614-632."""
  assert metrics.choose_fixed_k([1, 2, 3, 3, 7]) == (3, 3)
  # k=1: 1*14=14 beats k=2: 2*10=20? No: 20 > 14, so k=2 stands.
  assert metrics.choose_fixed_k([1] * 4 + [2] * 10) == (2, 2)
  # k=1: 1*30=30 beats k=2: 2*10=20; raised to 2 since 10 episodes reach 2,
  # keeping every episode that reached the original k=1.
  assert metrics.choose_fixed_k([1] * 20 + [2] * 10) == (2, 1)
  # Only 9 reach 2: the release raises an error; no figure.
  assert metrics.choose_fixed_k([1] * 20 + [2] * 9) is None
  assert metrics.choose_fixed_k([0, 0]) is None
  assert metrics.choose_fixed_k([]) is None


def test_ece_golden():
  conf = [0.95, 0.9, 0.15, 0.55, 0.6, 1.0]
  correct = [1, 0, 0, 1, 1, 1]
  # bin 1 (0.1-0.2): conf .15 acc 0 -> |.15|, n=1
  # bin 5 (0.5-0.6): conf .55 acc 1 -> .45, n=1
  # bin 6 (0.6-0.7): conf .6 acc 1 -> .4, n=1
  # bin 9 (0.9-1.0, closed): conf (.95+.9+1)/3=.95, acc 2/3 -> .28333, n=3
  expected = (0.15 + 0.45 + 0.4 + 3 * abs(0.95 - 2 / 3)) / 6
  assert metrics.expected_calibration_error(conf, correct) == pytest.approx(
      expected, abs=1e-12)
  table = metrics.calibration_bins(conf, correct, bins=10)
  assert table["count"] == [0, 1, 0, 0, 0, 1, 1, 0, 0, 3]
  assert table["accuracy"][9] == pytest.approx(2 / 3)
  assert table["confidence"][0] is None
  assert metrics.expected_calibration_error([], []) is None
  assert metrics.expected_calibration_error([0.7] * 10, [1] * 7 + [0] * 3) == \
      pytest.approx(0.0, abs=1e-12)
