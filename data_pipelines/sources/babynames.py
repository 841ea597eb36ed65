"""US baby names (Social Security Administration, national data).

Raw files: the SSA's `names.zip` unpacked into `baby_names/`: one headerless
CSV per year, `yob{YYYY}.txt`, each line `name,sex,count` (sex `F` or `M`;
names given to at least 5 babies), sorted by sex then count. The converter
reads the years in YEARS (1880-2023, the release's range; later files in
the archive are ignored). At least one year must be present, and the years
present must be consecutive: a gap means a partly unpacked archive, and the
error lists the missing files. With every year present the task is the
release's; fewer years give a smaller range (and descriptions that say so).

One train task (docs/method.md#task-list), babynames: N_CONFIGS instances,
each a seeded random configuration: sex (balanced, boys, girls), sampling
(uniform or proportional to the number of babies), top k (10, 100, 1000,
5000) and time span (all years, or one year; the chance falls linearly from
"all" through the latest year to the earliest). An instance's rows are its
top-k names (boys then girls for `balanced`, k/2 each), every one of them
in each episode, with one description stating the configuration.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator, Sequence

from data_pipelines.schema import (BuildContext, Download, Instance,
                                   MissingRawFileError, RawFile, Row,
                                   TaskSpec)
from data_pipelines.sources import _common

YEARS = range(1880, 2024)
_SSA = "https://www.ssa.gov/oact/babynames/names.zip"
NAMES_ZIP = Download(target="baby_names/names.zip", url=_SSA, unpack="zip",
                     unpack_to="baby_names/")
RAW_FILES = tuple(
    RawFile(path=f"baby_names/yob{year}.txt",
            published_at=f"{_SSA} (yob{year}.txt in the archive)",
            download=NAMES_ZIP) for year in YEARS)
SEXES = ("balanced", "M", "F")
SAMPLINGS = ("uniform", "population")
TOP_KS = (10, 100, 1000, 5000)
N_CONFIGS = 500
ALL = "all"
_SEX_WORD = {"balanced": "", "M": "boy ", "F": "girl "}


def _present_years(task: str, ctx: BuildContext) -> list[int]:
  """The years whose files exist: a non-empty run of consecutive years."""
  if ctx.raw_dir is None:
    raise MissingRawFileError(task, None, RAW_FILES)
  found = [f for f in RAW_FILES
           if os.path.isfile(os.path.join(ctx.raw_dir, f.path))]
  if not found:
    raise MissingRawFileError(task, ctx.raw_dir, RAW_FILES)
  first, last = YEARS.index(_year(found[0])), YEARS.index(_year(found[-1]))
  gaps = [f for f in RAW_FILES[first:last + 1] if f not in found]
  if gaps:
    raise MissingRawFileError(task, ctx.raw_dir, gaps)
  return [_year(f) for f in found]


def _year(raw: RawFile) -> int:
  return int(raw.path[-8:-4])


def _read_year(path: str) -> dict[tuple[str, str], int]:
  """(name, sex) -> number of babies, from one headerless year file.

  Every line is a name: the release reads these files with `header=0` and
  so drops each year's first line, its most popular girl's name; we keep it
  (docs/method.md#baby-names-first-row).
  """
  counts: dict[tuple[str, str], int] = {}
  with open(path, newline="", encoding="utf-8-sig") as f:
    for line, fields in enumerate(csv.reader(f), 1):
      if not fields:
        continue
      where = f"line {line}"
      if len(fields) != 3:
        raise ValueError(f"{path}, {where}: {len(fields)} fields; expected "
                         "name,sex,count.")
      name, sex, count = fields
      if not name.strip():
        raise _common.bad_value(path, where, "name", "empty")
      if sex not in ("F", "M"):
        raise _common.bad_value(path, where, "sex",
                                f"expected F or M, got {sex!r}")
      try:
        n = int(count)
      except ValueError:
        n = -1
      if n < 1:
        raise _common.bad_value(path, where, "count",
                                f"expected a positive integer, got {count!r}")
      counts[name, sex] = counts.get((name, sex), 0) + n
  return counts


def _top(counts: dict[tuple[str, str], int], sex: str,
         k: int) -> list[tuple[str, int]]:
  """The k names of `sex` with most babies (ties by name), with counts."""
  ranked = sorted(((n, c) for (n, s), c in counts.items() if s == sex),
                  key=lambda nc: (-nc[1], nc[0]))
  return ranked[:k]


def _weighted_order(rng, names: Sequence[str],
                    weights: Sequence[float]) -> list[str]:
  """A draw of all `names` without replacement, each pick ∝ its weight.

  Exponential keys (Efraimidis-Spirakis): sorting by log(u)/w is the same
  distribution as drawing one name at a time.
  """
  keys = [math.log(1.0 - rng.random()) / w for w in weights]
  order = sorted(range(len(names)), key=lambda i: -keys[i])
  return [names[i] for i in order]


def _description(sampling: str, k: int, sex: str, span: str) -> str:
  if sampling == "population":
    return (f"The following are drawn randomly from among the top {k} baby "
            f"{_SEX_WORD[sex]}names in the US {span}, proportional to their "
            "population frequency.")
  return (f"The following are drawn from the list of top {k} baby "
          f"{_SEX_WORD[sex]}names in the US {span}")


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """N_CONFIGS seeded configurations, each one instance of its top names."""
  task = "babynames"
  years = _present_years(task, ctx)
  # "all" first, then the latest year to the earliest, chosen with
  # weights n, n-1, ..., 1, as the release does.
  spans: list[int | str] = [ALL, *reversed(years)]
  weights = range(len(spans), 0, -1)
  rng = _common.seeded_rng(ctx, task, "configs")
  configs = [(rng.choice(SEXES), rng.choice(SAMPLINGS), rng.choice(TOP_KS),
              rng.choices(spans, weights=weights)[0])
             for _ in range(N_CONFIGS)]

  # How many top names each (span, sex) needs; each year is read once and
  # only its top names kept; "all" sums every present year.
  need: dict[tuple[int | str, str], int] = {}
  for sex, _, k, span in configs:
    for s, n in ((("M", k // 2), ("F", k // 2)) if sex == "balanced"
                 else ((sex, k),)):
      need[span, s] = max(need.get((span, s), 0), n)
  tops: dict[tuple[int | str, str], list[tuple[str, int]]] = {}
  total: dict[tuple[str, str], int] = {}
  for year in years:
    counts = _read_year(os.path.join(ctx.raw_dir, f"baby_names/yob{year}.txt"))
    for key, n in counts.items():
      total[key] = total.get(key, 0) + n
    for s in ("M", "F"):
      if (year, s) in need:
        tops[year, s] = _top(counts, s, need[year, s])
  for s in ("M", "F"):
    if (ALL, s) in need:
      tops[ALL, s] = _top(total, s, need[ALL, s])

  for i, (sex, sampling, k, span) in enumerate(configs):
    groups = ([tops[span, "M"][:k // 2], tops[span, "F"][:k // 2]]
              if sex == "balanced" else [tops[span, sex][:k]])
    names = [n for group in groups for n, _ in group]
    if sampling == "population":
      # Within each sex in proportion to babies; each sex half the mass
      # when balanced.
      w = []
      for group in groups:
        mass = sum(c for _, c in group) * len(groups)
        w.extend(c / mass for _, c in group)
      names = _weighted_order(_common.seeded_rng(ctx, task, i), names, w)
    else:
      _common.seeded_rng(ctx, task, i).shuffle(names)
    span_text = (f"from {years[0]} - {years[-1]}" if span == ALL
                 else f"in {span}")
    yield Instance(
        id=f"{i:03d}_top_k={k}_ts={span}_sex={sex}_sampling={sampling}",
        # The names in their drawn order (uniform or population-weighted,
        # without replacement), shown as stored: the task does not shuffle
        # its rows again (docs/method.md#baby-names-order).
        rows=[Row(output=n) for n in names],
        descriptions=[_description(sampling, k, sex, span_text)],
        extra={"sex": sex, "sampling": sampling, "top_k": k,
               "timespan": str(span)})


TASKS = [
    TaskSpec(name="babynames", suite_split="train", kind="icl",
             generate=generate, raw_files=RAW_FILES,
             shuffle_rows=False,  # the stored order is the draw
             about="SSA baby names: the top-k names of a random sex, year "
             "range and sampling rule."),
]
