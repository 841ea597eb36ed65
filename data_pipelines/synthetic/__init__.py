"""Synthetic Spectrum Suite tasks: built from a seed, no raw files needed.

Train (docs/method.md#the-spectrum-suite): the 12 synthetic distributions. Test: `flight`
(simulated flight choices), the `urn` distributional task and the 22
`diversity` generation tasks (one spec).
Importing this package only defines specs; all drawing happens in
`TaskSpec.generate`.
"""

from data_pipelines.schema import TaskSpec
from data_pipelines.synthetic import (cards, coinflip, discrete, diversity,
                                      flight, normal, urn)

TASKS: list[TaskSpec] = [
    coinflip.SPEC,
    normal.SPEC,
    cards.SPEC,
    *discrete.SPECS,
    flight.SPEC,
    urn.SPEC,
    diversity.SPEC,
]

__all__ = ["TASKS"]
