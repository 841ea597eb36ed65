"""What every command line shares: quiet logs, and expected errors as one line.

Each entry point (`python -m spectrax.train`, `score`, `evaluate`, `convert`,
`plan`, `show_batches`) is a thin module: absl flags, then a call into the
library through `run`:

    def main(argv):
      ...
      raise cli.UserError("--step=7: no checkpoint 7 in runs/x; it has 400, 800.")

    if __name__ == "__main__":
      cli.run(main, expected=(FileNotFoundError,))

- An expected mistake (a bad flag value, a missing file, a wrong step) raises
  `UserError` (or one of the library's own expected errors, passed as
  `expected=`): it prints `error: <message>` -- what, where, the fix -- and
  exits 2, without a traceback. Anything else keeps its traceback.
- Third-party INFO logs (orbax, absl, grain, jax) are hidden unless the user
  asks for them with `--verbosity=0` (absl's flag; 1 for debug); spectrax's
  own INFO lines stay.
- Every option is a `--flag`: a positional argument is an error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from absl import app
from absl import flags
from absl import logging as absl_logging

EXIT_USER_ERROR = 2
_NOISY_LOGGERS = ("orbax", "absl", "grain", "jax", "etils", "tensorflow_datasets",
                  "tensorstore")


class UserError(Exception):
  """An expected mistake by the user: printed as one line, exit status 2."""


def quiet_logs() -> None:
  """Hides third-party INFO logs unless `--verbosity` was given."""
  verbosity = flags.FLAGS["verbosity"] if "verbosity" in flags.FLAGS else None
  if verbosity is not None and verbosity.present:
    return  # The user asked for a level: absl applies it.
  absl_logging.set_verbosity(absl_logging.WARNING)
  for name in _NOISY_LOGGERS:
    logging.getLogger(name).setLevel(logging.WARNING)
  logging.getLogger("spectrax").setLevel(logging.INFO)


def fail(message: str) -> None:
  """Prints one error line and exits 2 (for code outside `run`)."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv: Sequence[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f"{e} (--help lists the flags).")
    raise  # unreachable


def run(main: Callable[[list[str]], int | None], *,
        expected: tuple[type[BaseException], ...] = ()) -> None:
  """`absl.app.run(main)` with quiet logs and one-line expected errors."""

  def wrapped(argv: list[str]) -> int | None:
    quiet_logs()
    if len(argv) > 1:
      fail(f"unexpected arguments {argv[1:]}: every option is a --flag=value "
           "(--help lists them).")
    try:
      return main(argv)
    except (UserError, app.UsageError, *expected) as e:
      fail(str(e) or type(e).__name__)

  app.run(wrapped, flags_parser=_parse_flags)
