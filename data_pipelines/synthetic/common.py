"""Helpers shared by the synthetic generators: seeding, GP draws, clean numbers.

docs/method.md#independent-parameters-per-instance: every instance draws its own parameters from its own generator, and
numbers are printed cleanly (no `np.int64(...)`, no float noise). Both rules
live here so each generator gets them the same way.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

from data_pipelines.schema import Row


def instance_rng(seed: int, task: str, index: int) -> np.random.Generator:
  """Returns the generator of instance `index` of `task` under build `seed`.

  Seeding from (seed, task name, index) makes an instance independent of which
  other tasks or instances are built, and of the order they are built in. The
  authors re-seed numpy's global RNG instead, which collapses `poisson` and
  `geometric` to one parameter set (docs/method.md#independent-parameters-per-instance); nothing here is global.

  Args:
    seed: the build seed (`BuildContext.seed`), a non-negative integer.
    task: the task name.
    index: the instance index within the task.

  Raises:
    ValueError: if `seed` or `index` is not a non-negative integer.
  """
  for label, value in (("seed", seed), ("index", index)):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
      raise ValueError(f"{label} must be an integer, got {value!r}.")
    if value < 0:
      raise ValueError(f"{label} must be non-negative, got {value}.")
  return np.random.default_rng([int(seed), zlib.crc32(task.encode()),
                                int(index)])


def gp(rng: np.random.Generator, mean: float) -> int:
  """One draw of GP(mean) = Geometric(p=2/mean) + Poisson(mean/2) (>= 1)."""
  return int(rng.geometric(2.0 / mean)) + int(rng.poisson(mean / 2.0))


def fmt_float(x: float, sig: int = 6) -> str:
  """Prints `x` as a plain decimal with about `sig` significant digits.

  Integer digits are never dropped (12345.678 -> `12346`), there is no
  exponent (a Poisson rate of 3e-7 stays readable as `0.0000003`), and
  trailing zeros go (`0.25`, not `0.250000`). The authors print the full
  float repr (`1803.3912837386433`); six digits state the parameter without
  the noise (docs/method.md#independent-parameters-per-instance).
  """
  x = float(x)
  if not math.isfinite(x):
    raise ValueError(f"cannot print non-finite parameter {x!r}.")
  if x == 0.0:
    return "0"
  digits = max(sig - 1 - math.floor(math.log10(abs(x))), 0)
  text = f"{round(x, digits):.{digits}f}"
  if "." in text:
    text = text.rstrip("0").rstrip(".")
  return "0" if text in ("-0", "") else text


def prob_dict(probs: Sequence[float], dp: int = 4) -> str:
  """Python dict repr `{0: 0.2029, 1: 0.0927}` of `probs` rounded to `dp`.

  Python floats (not numpy scalars) so numpy >= 2 cannot print
  `np.float64(...)`; `repr` of a rounded float is its shortest form.
  """
  return "{" + ", ".join(f"{i}: {round(float(p), dp)!r}"
                         for i, p in enumerate(probs)) + "}"


def rows_of_ints(values: np.ndarray) -> list[Row]:
  """Rows whose outputs are `str(int)` of `values`, in order.

  One `Row` per distinct value, shared by every position holding it: rows are
  immutable, and building one object per draw dominated build time.
  """
  values = np.asarray(values)
  if values.dtype.kind not in "iu":
    raise ValueError(f"expected integer draws, got dtype {values.dtype}.")
  uniq, inverse = np.unique(values, return_inverse=True)
  rows = [Row(output=str(v)) for v in uniq.tolist()]
  return [rows[j] for j in inverse.ravel().tolist()]


def rows_of_strings(outputs: Iterable[str]) -> list[Row]:
  """Rows with the given outputs, in order, one shared `Row` per text."""
  cache: dict[str, Row] = {}
  rows = []
  for text in outputs:
    row = cache.get(text)
    if row is None:
      row = cache[text] = Row(output=text)
    rows.append(row)
  return rows
