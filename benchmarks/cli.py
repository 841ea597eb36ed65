"""`--name=value` arguments for the benchmark scripts (no flag library, so
they run before anything else is imported)."""

import sys


def arg(name, default):
  """The value of `--name=...` on the command line, as `type(default)`, else `default`."""
  for a in sys.argv[1:]:
    if a.startswith(f"--{name}="):
      return type(default)(a.split("=", 1)[1])
  return default
