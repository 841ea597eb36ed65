"""`urn`: a distributional-alignment evaluation task (docs/method.md#urn, docs/method.md#distributional-alignment).

An urn holds 2-5 colours of balls, described in words; the question asks for
the colour of one random ball, and the target is each colour's share. Never
trained on (test split).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

import numpy as np

from data_pipelines.schema import BuildContext, Instance, TaskSpec
from data_pipelines.synthetic.common import instance_rng

NAME = "urn"
N_URNS = 1000
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "brown",
           "black", "white")
QUESTION = "Draw a ball at random, and tell me the color (lowercase)."
# The label the authors' colon format puts in place of `Output`.
OUTPUT_NAME = "Response (color)"


def _check_counts(counts: Mapping[str, int]) -> None:
  if not counts:
    raise ValueError("an urn needs at least one colour.")
  for colour, count in counts.items():
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
      raise ValueError(f"count of {colour!r} must be a positive int, got "
                       f"{count!r}.")


def urn_description(counts: Mapping[str, int]) -> str:
  """Describes an urn in words, colours in the mapping's order.

  `{blue: 2, black: 4, brown: 1}` gives `There is an urn with the following
  balls shuffled together: 2 blue balls, 4 black balls and 1 brown ball.`
  (no Oxford comma; singular `ball` for a count of 1).
  """
  _check_counts(counts)
  parts = [f"{n} {colour} {'ball' if n == 1 else 'balls'}"
           for colour, n in counts.items()]
  listed = parts[0] if len(parts) == 1 else (
      ", ".join(parts[:-1]) + " and " + parts[-1])
  return ("There is an urn with the following balls shuffled together: "
          f"{listed}.")


def urn_target(counts: Mapping[str, int]) -> list[float]:
  """Each colour's share of the balls, in the mapping's order."""
  _check_counts(counts)
  total = sum(counts.values())
  return [n / total for n in counts.values()]


def urn_instance(instance_id: str, counts: Mapping[str, int]) -> Instance:
  """The evaluation instance of one urn: options are its colours."""
  return Instance(id=instance_id,
                  descriptions=[urn_description(counts)],
                  question=QUESTION,
                  options=list(counts),
                  target=urn_target(counts),
                  extra={"output_name": OUTPUT_NAME})


def draw_counts(rng: np.random.Generator) -> dict[str, int]:
  """2-5 distinct colours in random order; count ~ U{1..m}, m ~ U{1..10}.

  The two-stage draw skews counts towards small numbers, as in the release.
  """
  n_colours = int(rng.integers(2, 6))
  picked = rng.choice(len(COLOURS), size=n_colours, replace=False).tolist()
  caps = rng.integers(1, 11, size=n_colours)
  counts = rng.integers(1, caps + 1)
  return {COLOURS[c]: int(n) for c, n in zip(picked, counts.tolist())}


def _generate(name: str, ctx: BuildContext) -> Iterator[Instance]:
  """Urn i: its colours and counts from its own generator."""
  for i in range(N_URNS):
    yield urn_instance(f"{name}_{i:04d}",
                       draw_counts(instance_rng(ctx.seed, name, i)))


SPEC = TaskSpec(
    name=NAME,
    suite_split="test",
    kind="distributional",
    generate=functools.partial(_generate, NAME),
    about="1000 urns of 2-5 colours described in words; target = ball "
          "shares.",
)
