"""`normal`: 1000 normal distributions over many scales (docs/method.md#normal).

Each instance has its own mean, standard deviation and number of decimals d;
every output is a draw printed with exactly d decimals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np

from data_pipelines.schema import BuildContext, Instance, Row, TaskSpec
from data_pipelines.synthetic.common import instance_rng

NAME = "normal"
N_INSTANCES = 1000
# Draws pre-drawn per instance; the sampler takes k ~ GP(128) of them (see
# coinflip.POOL_SIZE for why 512 is enough).
POOL_SIZE = 512
_PARAM_FORMATS = (".5f", ".4f", ".3f", ".2f", ".4e", ".2e")
_PARAMETER_FREE = ("Normal distribution", "Floating point numbers",
                   "Decimal numbers", "Numbers")


def draw_parameters(rng: np.random.Generator) -> tuple[float, float, int]:
  """Draws (mean, std, decimals) as the authors' `random_mean_std` does.

  Mixture over u ~ U(0,1): [0,0.2) and [0.6,1): mean ~ U(0,100), std ~
  U(1,5); [0.2,0.4): the same, then mean *= exp(N(0,4)), std *= exp(N(0,3));
  [0.4,0.6): mean ~ ±Poisson(10), std ~ Poisson(20), inverted w.p. 1/2 (std
  may be 0, a point mass). Then both *= exp(U(-10,10)); decimals =
  Poisson(3) + 1.
  """
  u = rng.uniform()
  if 0.4 <= u < 0.6:
    mean = float(rng.poisson(10))
    std = float(rng.poisson(20))
    if rng.uniform() < 0.5:
      mean = -mean
    if rng.uniform() < 0.5 and std != 0:
      std = 1.0 / std
  else:
    mean = rng.uniform(0, 100)
    std = rng.uniform(1, 5)
    if 0.2 <= u < 0.4:
      mean *= np.exp(rng.normal(0, 4))
      std *= np.exp(rng.normal(0, 3))
  scale = np.exp(rng.uniform(-10, 10))
  decimals = int(rng.poisson(3)) + 1
  return float(mean * scale), float(std * scale), decimals


def normal_descriptions(mean: float, std: float, decimals: int) -> list[str]:
  """The authors' 126 descriptions: 6 number formats x 7 starts x 3 suffixes.

  Duplicates are kept on purpose: the sampler draws uniformly from the list,
  so 72/126 (4/7) of described episodes state no parameters, as in the
  release. Deliberate difference (docs/method.md#normal-descriptions-without-a-trailing-newline): the release writes
  `{start}\\n{suffix}` even for the empty suffix, leaving a trailing newline;
  here the empty suffix gives `{start}` alone.
  """
  suffixes = (f"Precision: {decimals}", f"{decimals} decimal places", "")
  out = []
  for fmt in _PARAM_FORMATS:
    m, s = format(mean, fmt), format(std, fmt)
    starts = (
        f"Normal distribution with mean {m} and std {s}.",
        "The following are draws from a normal distribution with mean "
        f"{m} and standard deviation {s}.",
        f"x~N({m}, {s})",
    ) + _PARAMETER_FREE
    for start in starts:
      for suffix in suffixes:
        out.append(f"{start}\n{suffix}" if suffix else start)
  return out


def _generate(name: str, ctx: BuildContext) -> Iterator[Instance]:
  """Instance i: its own (mean, std, d), then POOL_SIZE draws at d decimals."""
  for i in range(N_INSTANCES):
    rng = instance_rng(ctx.seed, name, i)
    mean, std, decimals = draw_parameters(rng)
    draws = rng.normal(mean, std, POOL_SIZE)
    # |mean| stays below ~1e20 with overwhelming probability; a non-finite
    # draw would print as `inf`, which is no number to learn from.
    if not np.all(np.isfinite(draws)):
      raise ValueError(f"{name} instance {i}: non-finite draw for "
                       f"mean={mean}, std={std}.")
    yield Instance(
        id=f"{name}_{i:04d}",
        rows=[Row(output=f"{x:.{decimals}f}") for x in draws.tolist()],
        descriptions=normal_descriptions(mean, std, decimals))


SPEC = TaskSpec(
    name=NAME,
    suite_split="train",
    kind="icl",
    generate=functools.partial(_generate, NAME),
    mean_k=128,
    p_desc=0.4,
    about="1000 normal distributions over many scales, printed at a random "
          "number of decimals.",
)
