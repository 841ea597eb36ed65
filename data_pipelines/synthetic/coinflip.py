"""`coinflip`: 1000 biased coins, outputs `Heads` / `Tails` (docs/method.md#coinflip)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from data_pipelines.schema import BuildContext, Instance, Row, TaskSpec
from data_pipelines.synthetic.common import instance_rng

NAME = "coinflip"
N_COINS = 1000
# Flips pre-drawn per coin. The authors draw GP(128) fresh flips per episode;
# here the episode sampler shuffles an instance's rows and takes k ~ GP(128)
# of them, so the pool only has to exceed almost every k (P(GP(128) > 512) is
# about 1e-3) and every episode that fits in 1024 tokens (~170 flips).
POOL_SIZE = 512
OPTIONS = ("Heads", "Tails")
_HEADS = Row(output="Heads")
_TAILS = Row(output="Tails")


def coin_descriptions(p: float) -> list[str]:
  """The 7 descriptions of a coin with P(Heads) = `p` (docs/method.md#coinflip).

  Deliberate differences from the release (docs/method.md#numbers-printed-cleanly): the shares are rounded
  to thousandths once and Tails gets the complement, so the two always sum
  to 1 and percentages print as `61.2%`, never `61.199999999999996%`.
  """
  heads_milli = round(p * 1000)
  heads, tails = heads_milli / 1000, (1000 - heads_milli) / 1000
  shares = f"{{'Heads': {heads!r}, 'Tails': {tails!r}}}"
  percents = (f"{{'Heads': '{heads_milli / 10:.1f}%', "
              f"'Tails': '{(1000 - heads_milli) / 10:.1f}%'}}")
  options = "['Heads', 'Tails']"
  # Which side is likelier compares the exact bias, as the authors do.
  if p > 0.5:
    likelier = "Heads is more likely than Tails."
  elif p < 0.5:
    likelier = "Tails is more likely than Heads."
  else:
    likelier = "Heads and Tails are equally likely."
  return [
      options,
      shares,
      f"Bernoulli({shares})",
      percents,
      f"Bernoulli({percents})",
      f"Options: {options}\n{likelier}",
      "Coin flip with Heads and Tails. It is potentially biased.",
  ]


def _generate(name: str, ctx: BuildContext) -> Iterator[Instance]:
  """Coin i: bias p ~ U(0,1), then POOL_SIZE flips, Heads with prob p."""
  for i in range(N_COINS):
    rng = instance_rng(ctx.seed, name, i)
    p = float(rng.uniform(0.0, 1.0))
    heads = rng.random(POOL_SIZE) < p
    yield Instance(id=f"{name}_{i:04d}",
                   rows=[_HEADS if h else _TAILS for h in heads.tolist()],
                   descriptions=coin_descriptions(p))


SPEC = TaskSpec(
    name=NAME,
    suite_split="train",
    kind="icl",
    generate=functools.partial(_generate, NAME),
    mean_k=128,
    about="1000 biased coins (bias ~ U(0,1)); outputs Heads/Tails.",
)
