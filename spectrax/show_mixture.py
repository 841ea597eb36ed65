r"""The mixture of a built suite: `python -m spectrax.show_mixture --suite=DIR`.

  python -m spectrax.show_mixture --suite=suite                 # a table, then one JSON line
  python -m spectrax.show_mixture --suite=suite --sample=256 --template=colon

Per task (test tasks too): instances, episodes per epoch as training plans
them, mean tokens per episode (tokenised with the template and the suite's
default tokenizer, trained on first use) and each training task's share of
an epoch's tokens (`spectrax.data.mixture`). Reports only; builds nothing.
"""

from __future__ import annotations

from absl import flags

from spectrax import cli
from spectrax.data import mixture
from spectrax.data import templates
from spectrax.data.suite_reader import SuiteError

_SUITE = flags.DEFINE_string("suite", "suite", "Built suite directory.")
_SEED = flags.DEFINE_integer("seed", 0, "Episode seed (the training data seed).")
_TEMPLATE = flags.DEFINE_enum("template", "gemma", sorted(templates.TEMPLATES),
                              "Episode template.")
_MAX_TOKENS = flags.DEFINE_integer(
    "max_tokens", 1024, "Episode token cap (training's data.max_tokens; 0: none).",
    lower_bound=0)
_SAMPLE = flags.DEFINE_integer(
    "sample", 64, "Episodes tokenised per task to estimate its mean tokens.",
    lower_bound=1)


def main(argv):
  del argv
  max_tokens = _MAX_TOKENS.value or None
  try:
    rows = mixture.suite_mixture(_SUITE.value, seed=_SEED.value,
                                 template=_TEMPLATE.value,
                                 max_tokens=max_tokens, sample=_SAMPLE.value)
  except ValueError as e:
    raise cli.UserError(str(e)) from e
  print(mixture.format_report(rows, sample=_SAMPLE.value,
                              template=_TEMPLATE.value, max_tokens=max_tokens))


if __name__ == "__main__":
  cli.run(main, expected=(FileNotFoundError, SuiteError))
