"""The evaluation metrics of docs/method.md#evaluation, as pure numpy functions.

Distributional metrics (docs/method.md#distributional-alignment) compare a target distribution `t` with a model
distribution `p` over the same options. Both get ε = 1e-6 added to every
entry and are renormalised first, so no metric is infinite; logs are natural.
All arguments are 1-D sequences of floats; every function returns a Python
float, so results are JSON-able as they are.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Sequence

import numpy as np

EPSILON = 1e-6
LN2 = math.log(2.0)


def _smoothed(probs: Sequence[float], name: str) -> np.ndarray:
  """`probs + ε`, renormalised; float64 [n]."""
  x = np.asarray(probs, np.float64)
  if x.ndim != 1 or x.size == 0:
    raise ValueError(f"{name} must be a non-empty 1-D list of probabilities, "
                     f"got shape {x.shape}.")
  if not np.all(np.isfinite(x)) or np.any(x < 0):
    raise ValueError(f"{name} must hold finite non-negative numbers, got "
                     f"{x.tolist()}.")
  x = x + EPSILON
  return x / x.sum()


def _pair(target: Sequence[float], model: Sequence[float]
          ) -> tuple[np.ndarray, np.ndarray]:
  t, p = _smoothed(target, "target"), _smoothed(model, "model")
  if t.shape != p.shape:
    raise ValueError(f"target has {t.size} options but model has {p.size}; "
                     "give one probability per option to both.")
  return t, p


def _kl(a: np.ndarray, b: np.ndarray) -> float:
  return float(np.sum(a * np.log(a / b)))


def kl_divergence(target: Sequence[float], model: Sequence[float]) -> float:
  """KL(t ‖ p), nats."""
  t, p = _pair(target, model)
  return _kl(t, p)


def reverse_kl(target: Sequence[float], model: Sequence[float]) -> float:
  """KL(p ‖ t), nats."""
  t, p = _pair(target, model)
  return _kl(p, t)


def js_divergence(target: Sequence[float], model: Sequence[float]) -> float:
  """Jensen–Shannon divergence, nats: symmetric, within [0, ln 2]."""
  t, p = _pair(target, model)
  m = (t + p) / 2
  return 0.5 * (_kl(t, m) + _kl(p, m))


def total_variation(target: Sequence[float], model: Sequence[float]) -> float:
  """½ Σ |t − p|, within [0, 1]."""
  t, p = _pair(target, model)
  return float(0.5 * np.abs(t - p).sum())


def wasserstein(target: Sequence[float], model: Sequence[float]) -> float:
  """Wasserstein-1 between ordinal options at positions 0, 1, 2, …

  In option-index units: Σ_i |T_i − P_i| over the cumulative sums, so moving
  all mass from the first to the third of three options costs 2.
  """
  t, p = _pair(target, model)
  return float(np.abs(np.cumsum(t - p)[:-1]).sum())


def cross_entropy(target: Sequence[float], model: Sequence[float]) -> float:
  """H(t, p) = −Σ t log p, nats."""
  t, p = _pair(target, model)
  return float(-np.sum(t * np.log(p)))


def mode_match(target: Sequence[float], model: Sequence[float]) -> float:
  """1.0 when the model's most likely option is the target's (first index on
  ties, as `np.argmax`), else 0.0."""
  t, p = _pair(target, model)
  return float(np.argmax(t) == np.argmax(p))


def distributional_metrics(target: Sequence[float], logprobs: Sequence[float],
                           ordinal: bool = False) -> dict[str, float]:
  """Distributional-alignment metrics (docs/method.md#distributional-alignment) of one question from the options' summed log-probs.

  Args:
    target: [n] target shares of the options.
    logprobs: [n] summed log-probability of each option's tokens.
    ordinal: the options are ordered (e.g. a 1–7 scale); adds
      `wasserstein`, which is meaningless for unordered options.

  Returns:
    `coverage` (Σ exp(ll), the mass the model puts on the options at all)
    and each metric between the target and the normalised model
    distribution.
  """
  ll = np.asarray(logprobs, np.float64)
  if ll.ndim != 1 or ll.size == 0 or np.any(np.isnan(ll)):
    raise ValueError(f"logprobs must be a non-empty 1-D list of numbers, got "
                     f"{list(logprobs)}.")
  probs = np.exp(ll)
  coverage = float(probs.sum())
  if coverage > 0:
    model = probs / coverage
  elif np.isfinite(ll).any():  # Every option underflowed: normalise in log space.
    model = np.exp(ll - ll.max())
    model = model / model.sum()
  else:  # No option has any probability (all -inf): no preference at all.
    model = np.full(ll.shape, 1.0 / ll.size)
  out = {
      "coverage": coverage,
      "kl_divergence": kl_divergence(target, model),
      "reverse_kl": reverse_kl(target, model),
      "js_divergence": js_divergence(target, model),
      "total_variation": total_variation(target, model),
      "cross_entropy": cross_entropy(target, model),
      "mode_match": mode_match(target, model),
  }
  if ordinal:
    out["wasserstein"] = wasserstein(target, model)
  return out


ValidityLike = Collection[str] | Callable[[str], bool]


def _checker(valid: ValidityLike):
  """(is_valid, canonical, valid_set) of a set of strings or a check.

  A check may carry `valid_set` (its finite set, or None) and `canonical(text)`
  (the member a valid text matches), as `validity.ValidityCheck` does.
  """
  if callable(valid):
    canonical = getattr(valid, "canonical", None)
    valid_set = getattr(valid, "valid_set", None)
    return valid, canonical, valid_set
  members = frozenset(valid)
  return (members.__contains__, lambda s: s if s in members else None,
          members)


def diversity_metrics(generations: Sequence[str], valid: ValidityLike
                      ) -> dict[str, float | int | None]:
  """Valid-output-coverage metrics (docs/method.md#valid-output-coverage) of N generations; uniqueness is exact-string.

  Args:
    generations: the N post-processed generations.
    valid: the valid set (exact membership) or a function text -> bool.

  Returns:
    `percent_valid` |V|/N, `yield` #unique(V), `unique_gens_pct`
    #unique(V)/|V|, `usable_unique` #unique(V)/N, `raw_unique`
    #unique(all)/N, `pairwise_collision` (equal pairs in V)/C(|V|, 2), and
    `coverage` = distinct valid-set members hit / |valid set| (with exact
    matching this is #unique(V)/|valid set|; with case-insensitive matching
    "Ford" and "ford" hit one member). As in the release
    (tsor13/spectrum@5a33588 src/spectrum/diverse_valid/eval_diverse_valid.py:142-150),
    `unique_gens_pct` is 0 without a valid generation and
    `pairwise_collision` is 0 with fewer than two; `coverage` is None
    without a finite set.
  """
  n = len(generations)
  if n == 0:
    raise ValueError("diversity_metrics needs at least one generation.")
  is_valid, canonical, valid_set = _checker(valid)
  v = [g for g in generations if is_valid(g)]
  counts = Counter(v)
  n_unique = len(counts)
  pairs = len(v) * (len(v) - 1) // 2
  equal_pairs = sum(c * (c - 1) // 2 for c in counts.values())
  coverage = None
  if valid_set is not None and len(valid_set) and canonical is not None:
    hit = {canonical(g) for g in counts} - {None}
    coverage = len(hit) / len(valid_set)
  return {
      "percent_valid": len(v) / n,
      "yield": n_unique,
      "unique_gens_pct": n_unique / len(v) if v else 0.0,
      "usable_unique": n_unique / n,
      "raw_unique": len(set(generations)) / n,
      "pairwise_collision": equal_pairs / pairs if pairs else 0.0,
      "coverage": coverage,
  }


def choose_k(max_example_indices: Sequence[int]) -> int:
  """docs/method.md#steerability: the k maximising k · #{episodes whose max index ≥ k}.

  Args:
    max_example_indices: per episode, the 0-based index of its last complete
      example; an episode with index m has m examples after the first
      (context) one.

  Returns:
    The smallest maximiser over k = 1 … max index (the released code's
    scan), or 0 when no episode has an example after the first. Evaluation
    then keeps the episodes with index ≥ k, truncated after example k.
  """
  m = np.asarray(max_example_indices, np.int64)
  if m.size == 0 or m.max() < 1:
    return 0
  ks = np.arange(1, m.max() + 1)
  scores = ks * (m[None, :] >= ks[:, None]).sum(axis=1)
  return int(ks[np.argmax(scores)])


def choose_fixed_k(max_example_indices: Sequence[int], min_k: int = 2,
                   min_episodes: int = 10) -> tuple[int, int] | None:
  """docs/method.md#steerability: the release's k for its fixed-k figure, and which episodes it keeps.

  The release (tsor13/spectrum@5a33588
  src/spectrum/icl_classes/eval_icl.py:614-632) keeps the episodes whose
  max index reaches `choose_k`'s k, then raises a k ≤ 1 to `min_k` (2)
  when at least `min_episodes` (10) episodes reach `min_k`, and stops with
  an error otherwise.

  Args:
    max_example_indices: per episode, the 0-based index of its last complete
      loss-bearing output.

  Returns:
    `(k, keep_from)`: cut after index k, keeping the episodes whose max
    index is at least `keep_from` (k, or 1 when k was raised); None where
    the release has no figure.
  """
  m = np.asarray(max_example_indices, np.int64)
  k = choose_k(m)
  if k >= min_k:
    return k, k
  if k >= 1 and int((m >= min_k).sum()) >= min_episodes:
    return min_k, k
  return None


def calibration_bins(confidences: Sequence[float], correct: Sequence[bool],
                     bins: int = 10) -> dict[str, list]:
  """Equal-width confidence bins over [0, 1] (the last one closed).

  Returns:
    Per bin: `lower`, `upper`, `count`, `confidence` (mean) and `accuracy`
    (mean of `correct`); the means are None for an empty bin.
  """
  conf = np.asarray(confidences, np.float64)
  hit = np.asarray(correct, np.float64)
  if conf.shape != hit.shape or conf.ndim != 1:
    raise ValueError(f"confidences {conf.shape} and correct {hit.shape} must "
                     "be 1-D and of one length.")
  if bins < 1:
    raise ValueError(f"bins={bins} must be at least 1.")
  if np.any((conf < 0) | (conf > 1)):
    raise ValueError("confidences must lie in [0, 1].")
  index = np.minimum((conf * bins).astype(np.int64), bins - 1)
  out: dict[str, list] = {"lower": [], "upper": [], "count": [],
                          "confidence": [], "accuracy": []}
  for b in range(bins):
    sel = index == b
    count = int(sel.sum())
    out["lower"].append(b / bins)
    out["upper"].append((b + 1) / bins)
    out["count"].append(count)
    out["confidence"].append(float(conf[sel].mean()) if count else None)
    out["accuracy"].append(float(hit[sel].mean()) if count else None)
  return out


def expected_calibration_error(confidences: Sequence[float],
                               correct: Sequence[bool], bins: int = 10
                               ) -> float | None:
  """Σ_b (n_b / N) · |accuracy_b − confidence_b| over equal-width bins; None
  when there is nothing to calibrate."""
  table = calibration_bins(confidences, correct, bins)
  total = sum(table["count"])
  if total == 0:
    return None
  return float(sum(
      n / total * abs(a - c) for n, a, c in zip(
          table["count"], table["accuracy"], table["confidence"]) if n))
