"""`cards`: draws without replacement from a 52-card deck (docs/method.md#cards)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from data_pipelines.schema import BuildContext, Instance, Row, TaskSpec
from data_pipelines.synthetic.common import instance_rng

NAME = "cards"
N_EPISODES = 100
RANKS = ("2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K", "A")
SUITS = ("♣", "♦", "♥", "♠")
DECK = tuple(f"{rank}{suit}" for suit in SUITS for rank in RANKS)
DESCRIPTION = (
    "Draw cards at random from a standard 52-card deck without replacement. "
    "The deck contains all standard playing cards (2-10, J, Q, K, A) in four "
    "suits (♣, ♦, ♥, ♠).")


def _generate(name: str, ctx: BuildContext) -> Iterator[Instance]:
  """Instance i: the 52 cards in a random order.

  The episode sampler shuffles again and takes all 52 (fixed_k), so the
  instances differ only in order; they are pre-shuffled with the instance's
  own generator so that a reader that skips the shuffle still sees a random
  deck.
  """
  for i in range(N_EPISODES):
    rng = instance_rng(ctx.seed, name, i)
    order = rng.permutation(len(DECK)).tolist()
    yield Instance(id=f"{name}_{i:04d}",
                   rows=[Row(output=DECK[j]) for j in order])


SPEC = TaskSpec(
    name=NAME,
    suite_split="train",
    kind="icl",
    generate=functools.partial(_generate, NAME),
    fixed_k=52,
    default_descriptions=(DESCRIPTION,),
    about="Shuffled 52-card decks (e.g. 10♣, K♦, A♠), all 52 per episode.",
)
