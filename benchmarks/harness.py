"""Small helpers shared by the benchmark scripts: `--name=value` arguments
(no flag library, so they parse before anything heavy is imported) and a
wall-clock timer."""

import sys
import time


def arg(name, default):
  """The value of `--name=...` on the command line, as `type(default)`, else `default`."""
  for a in sys.argv[1:]:
    if a.startswith(f"--{name}="):
      return type(default)(a.split("=", 1)[1])
  return default


def timed(fn) -> float:
  """Seconds `fn()` takes."""
  t = time.perf_counter()
  fn()
  return time.perf_counter() - t


def time_train_steps(step, state, batch, steps: int):
  """Runs a jitted train step once (compile + run) then `steps` times.

  Returns `(state, metrics, compile_seconds, seconds_per_step)`.
  """
  import jax  # pylint: disable=g-import-not-at-top
  t = time.perf_counter()
  state, m = step(state, batch)
  jax.block_until_ready(m["loss"])
  compile_s = time.perf_counter() - t
  t = time.perf_counter()
  for _ in range(steps):
    state, m = step(state, batch)
  jax.block_until_ready(m["loss"])
  return state, m, compile_s, (time.perf_counter() - t) / steps
