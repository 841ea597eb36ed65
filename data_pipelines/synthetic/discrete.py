"""The nine numeric / categorical distributions of docs/method.md#numeric-and-categorical-distributions.

(The release's file has a tenth, `bernoulli`, that is not in the suite;
`coinflip` covers it.) Every task has 500 instances. An instance draws its
parameters, then a pool of GP(1024) values; the episode sampler uses all of
them (shuffled), truncated to the token budget, so `mean_k` and `fixed_k`
are both None. Descriptions state the parameters (several notations) or
only the family.

Deliberate differences from the release (docs/method.md#differences-from-the-authors-release), each also noted below:
- every instance draws independent parameters from its own generator: the
  release's `poisson` and `geometric` collapse to one parameter set for 499
  of 500 instances, and its `categorical` and `multinomial` share parameters;
- full-precision floats (`1803.3912837386433`) print with 6 significant
  digits (`common.fmt_float`); fixed formats (`.2f`, `.3f`) are kept;
- multinomial dict outputs print `{0: 1, 1: 4}`, never `{0: np.int64(1)}`;
- parameters are kept off the edges where numpy saturates or rejects them
  (p -> 0, a rate -> 0): p >= 1e-9 (clipped w.p. ~1e-9), Poisson rate
  >= 1e-6 (w.p. ~3e-5; every draw is 0 either way).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np

from data_pipelines.schema import BuildContext, Instance, Row, TaskSpec
from data_pipelines.synthetic.common import (fmt_float, gp, instance_rng,
                                             prob_dict, rows_of_ints,
                                             rows_of_strings)

N_INSTANCES = 500
POOL_MEAN = 1024  # pool size ~ GP(1024) per instance, as in the release.
# Smallest success probability / Poisson rate used. Below _MIN_PROB numpy's
# geometric saturates at 2**63 - 1 (and p = 0 is rejected); below _MIN_RATE
# Poisson draws are all 0 anyway and the printed rate would be a long run of
# zeros.
_MIN_PROB = 1e-9
_MIN_RATE = 1e-6

Draw = Callable[[np.random.Generator], tuple[list[Row], list[str]]]


def _beta_prob(rng: np.random.Generator) -> float:
  return float(np.clip(rng.beta(1, 1), _MIN_PROB, 1.0))


def poisson(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Poisson counts with rate λ ~ Gamma(shape 0.5, scale 2000)."""
  lam = max(float(rng.gamma(0.5, 2000)), _MIN_RATE)
  draws = rng.poisson(lam, gp(rng, POOL_MEAN))
  lam_text = fmt_float(lam)
  return rows_of_ints(draws), [
      f"Draws from a Poisson distribution with parameter {lam_text}.",
      "Poisson distribution",
      f"Poisson({lam_text})",
  ]


def geometric(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Number of trials up to the first success (>= 1), p ~ Beta(1,1)."""
  p = _beta_prob(rng)
  draws = rng.geometric(p, gp(rng, POOL_MEAN))
  p_text = fmt_float(p)
  return rows_of_ints(draws), [
      f"Draws from a geometric distribution with parameter {p_text}.",
      "Geometric distribution",
      f"Geometric({p_text})",
  ]


def binomial(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Successes in n ~ GP(1024) trials, p ~ Beta(1,1)."""
  p = _beta_prob(rng)
  n = gp(rng, POOL_MEAN)  # drawn before the pool size, as in the release.
  draws = rng.binomial(n, p, gp(rng, POOL_MEAN))
  p_text = fmt_float(p)
  return rows_of_ints(draws), [
      "Draws from a binomial distribution with parameters "
      f"n={n} and p={p_text}.",
      "Binomial distribution",
      f"Binomial({n}, {p_text})",
  ]


def negative_binomial(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Failures before r successes; r ~ Beta(1,1) (real, < 1), p ~ U(0,1)."""
  r = float(np.clip(rng.beta(1, 1), _MIN_PROB, 1.0))
  p = float(np.clip(rng.uniform(0, 1), _MIN_PROB, 1.0))
  draws = rng.negative_binomial(r, p, gp(rng, POOL_MEAN))
  return rows_of_ints(draws), [
      "Draws from a negative binomial distribution with parameters "
      f"r={r:.2f} and p={p:.2f}.",
      "Negative binomial distribution",
      f"NegativeBinomial({r:.2f}, {p:.2f})",
  ]


def _categories(rng: np.random.Generator) -> tuple[int, np.ndarray]:
  """K = max(GP(12), 2) categories with shares π ~ Dirichlet(1, ..., 1)."""
  k = max(gp(rng, 12), 2)
  return k, rng.dirichlet(np.ones(k))


def categorical(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Category indices 0..K-1 drawn with shares π."""
  k, pi = _categories(rng)
  draws = rng.choice(k, size=gp(rng, POOL_MEAN), p=pi)
  probs = prob_dict(pi)
  # `SingleVariableIID(...)` is the release's notation (its class name);
  # kept so descriptions match the release.
  return rows_of_ints(draws), [
      f"Draws from a categorical distribution with {k} categories and "
      f"probability vector {probs}.",
      "Categorical distribution",
      f"SingleVariableIID({k}, {probs})",
  ]


def multinomial_outputs(counts: np.ndarray, as_dict: bool) -> list[str]:
  """Prints count vectors as `['1', '0', '3']` or `{0: 1, 1: 0, 2: 3}`.

  The dict form is what the release prints under numpy < 2; under numpy >= 2
  it prints `{0: np.int64(1), ...}`, which we do not copy (docs/method.md#differences-from-the-authors-release).
  """
  counts = np.asarray(counts)
  k = counts.shape[1]
  top = int(counts.max(initial=0))
  # Look-up tables of every cell's text (counts are <= the number of
  # trials, so they are small); formatting each cell separately was the
  # slowest step of the whole synthetic build. Python ints, no numpy reprs.
  if as_dict:
    table = np.array([[f"{j}: {c}" for c in range(top + 1)]
                      for j in range(k)], dtype=object)
    cells = table[np.arange(k)[None, :], counts]
    return ["{" + ", ".join(row) + "}" for row in cells.tolist()]
  table = np.array([f"'{c}'" for c in range(top + 1)], dtype=object)
  return ["[" + ", ".join(row) + "]" for row in table[counts].tolist()]


def multinomial(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Count vectors of T ~ GP(32) draws over K categories with shares π.

  Each instance prints all its outputs in one of two formats (coin flip).
  """
  k, pi = _categories(rng)
  n_draws = gp(rng, POOL_MEAN)
  trials = gp(rng, 32)
  counts = rng.multinomial(trials, pi, size=n_draws)
  as_dict = bool(rng.uniform() < 0.5)
  probs = prob_dict(pi)
  return rows_of_strings(multinomial_outputs(counts, as_dict)), [
      f"Draws from a multinomial distribution with {k} categories, {trials} "
      f"total draws, and probability vector {probs}.",
      "Multinomial distribution",
      f"Multinomial({k}, {trials}, {probs})",
  ]


def hypergeometric(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Successes in n draws without replacement from N ~ GP(128) with K good.

  K and n are each uniform on 1..N.
  """
  population = gp(rng, 128)
  good = int(rng.integers(1, population + 1))
  n = int(rng.integers(1, population + 1))
  draws = rng.hypergeometric(good, population - good, n, gp(rng, POOL_MEAN))
  return rows_of_ints(draws), [
      "Draws from a hypergeometric distribution with population size "
      f"N={population}, number of positive draws K={good}, number of draws "
      f"n={n}.",
      "Hypergeometric distribution",
  ]


def geometric_beta(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Trials up to the first success (>= 1), p ~ Beta(1,1), p to 3 decimals."""
  p = _beta_prob(rng)
  draws = rng.geometric(p, gp(rng, POOL_MEAN))
  return rows_of_ints(draws), [
      f"Draws from a geometric distribution with success probability "
      f"p={p:.3f}.",
      "Geometric distribution",
  ]


def zipfian(rng: np.random.Generator) -> tuple[list[Row], list[str]]:
  """Zipf (power-law) values >= 1 with exponent α ~ U(1 + 1e-6, 2.5).

  For α near 1 the tail is so heavy that values reach ~9e18; numpy rejects
  draws above 2**63 - 1, so they stay exact int64 and print as integers.
  """
  alpha = float(rng.uniform(1 + 1e-6, 2.5))
  draws = rng.zipf(alpha, gp(rng, POOL_MEAN))
  if draws.min() < 1:  # an int64 wrap-around would show up as <= 0.
    raise ValueError(f"zipf draw overflowed for alpha={alpha}.")
  return rows_of_ints(draws), [
      f"Draws from a Zipfian distribution with alpha={alpha:.3f}.",
      "Zipfian distribution",
  ]


def _generate(name: str, draw: Draw, ctx: BuildContext) -> Iterator[Instance]:
  for i in range(N_INSTANCES):
    rows, descriptions = draw(instance_rng(ctx.seed, name, i))
    yield Instance(id=f"{name}_{i:04d}", rows=rows, descriptions=descriptions)


_ABOUT = {
    "poisson": "Poisson counts, rate ~ Gamma(0.5, 2000).",
    "geometric": "Geometric trial counts, p ~ Beta(1,1).",
    "binomial": "Binomial counts, n ~ GP(1024) trials, p ~ Beta(1,1).",
    "negative_binomial": "Negative-binomial failure counts, r ~ Beta(1,1), "
                         "p ~ U(0,1).",
    "categorical": "Category indices, K ~ max(GP(12), 2), shares ~ Dirichlet.",
    "multinomial": "Multinomial count vectors (list or dict), T ~ GP(32).",
    "hypergeometric": "Hypergeometric success counts, population ~ GP(128).",
    "geometric_beta": "Geometric trial counts, p ~ Beta(1,1) stated to 3 dp.",
    "zipfian": "Zipf values, alpha ~ U(1, 2.5); very heavy tails.",
}
_DRAWS: dict[str, Draw] = {
    "multinomial": multinomial,
    "geometric": geometric,
    "poisson": poisson,
    "binomial": binomial,
    "negative_binomial": negative_binomial,
    "categorical": categorical,
    "geometric_beta": geometric_beta,
    "hypergeometric": hypergeometric,
    "zipfian": zipfian,
}

SPECS = tuple(
    TaskSpec(
        name=name,
        suite_split="train",
        kind="icl",
        generate=functools.partial(_generate, name, draw),
        about=_ABOUT[name],
    ) for name, draw in _DRAWS.items())
