"""Haikus (github docmarionum1/haikurnn): three-line poems with syllable counts.

Raw file: `haikus/haikus.csv`, the repository's input/poems/haikus.csv:
columns `0`, `1`, `2` (the three lines), `source` (the collection, e.g.
tempslibres, sballas8) and `0_syllables`, `1_syllables`, `2_syllables`
(a count per line, or several alternatives such as "2,3"; the first is used).

One train task, haikus (docs/method.md#haikus), built from three groups of
instances, as the release's three generators:
  syllables/<source>: input = the counts ("5, 7, 5"), output = the poem;
  include_word/<source>: input = {"include_word": a random word of the
    poem, "syllables": ...}, output = the poem;
  poems: the distinct poems (outputs only).
Every row once, in chunks of 64 (the release's n_per=-1, n_iter=64), and at
most 200 chunks per group (its max_total=200 per generator): the cap is
applied here, as it is per group, not per task.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

REPO = "docmarionum1/haikurnn"
COMMIT = "082f0e0708a721d405accd597bed418c7e09a25a"
_URL = (f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/input/poems/"
        "haikus.csv")
HAIKUS = RawFile(path="haikus/haikus.csv", published_at=_URL,
                 download=Download(target="haikus/haikus.csv", url=_URL))
CHUNK = 64  # examples per episode
MAX_EPISODES = 200  # per group of instances
LINES = ("0", "1", "2")
SYLLABLES = ("0_syllables", "1_syllables", "2_syllables")

SYLLABLES_DESCRIPTION = "haikus.\npoem ~ syllables"
INCLUDE_WORD_DESCRIPTION = "haikus.\npoem ~ include_word, syllables"
POEMS_DESCRIPTION = "haikus."


def _count(path: str, line: int, column: str, text: str) -> str:
  """The first syllable count of a cell ("5" -> "5", "2,3" -> "2")."""
  try:
    counts = ast.literal_eval("[" + text.strip() + "]")
  except (ValueError, SyntaxError) as e:
    raise _common.bad_value(path, f"line {line}", column,
                            f"not a syllable count ({e}): {text!r}") from e
  if not counts or not all(isinstance(c, (int, float)) for c in counts):
    raise _common.bad_value(path, f"line {line}", column,
                            f"expected one or more numbers, got {text!r}")
  return str(counts[0])


def _read(path: str) -> list[tuple[str, str, str]]:
  """(source, poem, syllables) per usable record, in file order."""
  out = []
  for line, rec in _common.read_csv(path, (*LINES, "source", *SYLLABLES)):
    # A record missing a line or its source is skipped; the release would
    # print a missing line as "nan" (docs/method.md#haikus).
    if any(rec[c].strip() in ("", "nan", "NaN") for c in (*LINES, "source")):
      continue
    # Lines are kept as written (leading spaces are the poet's indentation).
    poem = "\n".join(rec[c] for c in LINES)
    syllables = ", ".join(_count(path, line, c, rec[c]) for c in SYLLABLES)
    out.append((rec["source"], poem, syllables))
  return out


def _cap(ctx: BuildContext, group: str,
         instances: list[Instance]) -> Iterator[Instance]:
  """At most MAX_EPISODES chunks of CHUNK rows over the group, in order.

  The release stops a generator after max_total episodes: whole instances
  while they fit, then the first chunks of the next one's shuffled rows,
  i.e. a random subset of its rows (drawn here with a seeded RNG).
  """
  budget = MAX_EPISODES
  for inst in instances:
    if budget == 0:
      return
    chunks = math.ceil(len(inst.rows) / CHUNK)
    if chunks > budget:
      keep = sorted(_common.seeded_rng(ctx, "haikus", group, inst.id).sample(
          range(len(inst.rows)), budget * CHUNK))
      inst.rows = [inst.rows[i] for i in keep]
      chunks = budget
    budget -= chunks
    yield inst


def generate(ctx: BuildContext) -> Iterator[Instance]:
  (path,) = _common.raw_paths("haikus", ctx, (HAIKUS,))
  records = _read(path)
  sources = list(dict.fromkeys(source for source, _, _ in records))
  syllables = [
      Instance(id=f"syllables/{s}", descriptions=[SYLLABLES_DESCRIPTION],
               rows=[Row(input=syl, output=poem)
                     for source, poem, syl in records if source == s])
      for s in sources]
  yield from _cap(ctx, "syllables", syllables)
  rng = _common.seeded_rng(ctx, "haikus", "include_word")
  words = [rng.choice(poem.split()) for _, poem, _ in records]
  include = [
      Instance(id=f"include_word/{s}",
               descriptions=[INCLUDE_WORD_DESCRIPTION],
               rows=[Row(input=serialise_fields({"include_word": word,
                                                 "syllables": syl}),
                         output=poem)
                     for (source, poem, syl), word in zip(records, words)
                     if source == s])
      for s in sources]
  yield from _cap(ctx, "include_word", include)
  poems = dict.fromkeys(poem for _, poem, _ in records)
  if not poems:
    return
  yield from _cap(ctx, "poems", [
      Instance(id="poems", descriptions=[POEMS_DESCRIPTION],
               rows=[Row(output=poem) for poem in poems])])


TASKS = [
    TaskSpec(name="haikus", suite_split="train", kind="icl",
             generate=generate, fixed_k=CHUNK, chunk_all_rows=True,
             raw_files=(HAIKUS,),
             about="Haikus: poems from one collection, given their "
             "syllable counts (and a word to include), or on their own."),
]
