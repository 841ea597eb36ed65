"""NYTimes books (Meister et al., 2024): how likely a group is to read a book.

Raw file: `nytimes/NYTIMES_proportions.json` from github
nicolemeister/benchmarking-distributional-alignment (pinned at COMMIT): one
JSON object keyed by book title ("The Bee Sting By Paul Murray"); each book
has `genre`, `summary`, `MC_options` (the four option strings
`1: Very unlikely` ... `4: Very likely`) and, per group (`Democrat`,
`Republican`, `Male`, `Female`), an object of response counts keyed by option
string.

One task (docs/method.md#distributional-tasks, docs/method.md#distributional-alignment):
  nytimes: one instance per (book, group) = 940; options `1`..`4`, target the
    group's response shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   TaskSpec)
from data_pipelines.sources import _common

NAME = "nytimes"
REPO = "nicolemeister/benchmarking-distributional-alignment"
FILE = "nytimes/NYTIMES_proportions.json"
# The last commit touching the file (identical at the repository's head).
COMMIT = "240de03d7c42651b0338e9a133627cdd6427bf8e"
RAW = RawFile(
    path=FILE,
    published_at=f"https://github.com/{REPO}/blob/{COMMIT}/{FILE} "
    "(Meister et al., 2024, arXiv:2411.05403)",
    download=Download(
        target=FILE,
        url=f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/{FILE}",
        sha256="854d0321e338ed5acc6c70efe4276f471822308f1c87235b0e72bfac830a46de",
        size=316996))

# The release's strings (data: copied exactly).
GROUPS = ("Democrat", "Republican", "Male", "Female")
RESPONDENT = "You are a random survey respondent. Respondent demographic: {group}"
QUESTION = ("How likely are you to read this book?\nBook: {title}\n"
            "Genre: {genre}\nSummary: {summary}")
OUTPUT_NAME = "Reading Likelihood (1, 2, 3, 4)"


class _Book(NamedTuple):
  index: int  # 0-based position in the file
  title: str
  genre: str
  summary: str
  options: list[str]  # "1: Very unlikely", ...
  counts: dict[str, dict[str, int]]  # group -> option string -> count


def _text(path: str, where: str, field: str, value: Any) -> str:
  if not isinstance(value, str):
    raise _common.bad_value(path, where, field,
                            f"expected a string, got {value!r}")
  return value


def _read(path: str) -> Iterator[_Book]:
  """Parses and checks every book of the proportions file, in file order."""
  with open(path, encoding="utf-8") as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}, line {e.lineno}: not valid JSON: "
                       f"{e.msg}") from e
  if not isinstance(data, dict):
    raise ValueError(f"{path}: expected a JSON object of books keyed by "
                     f"title, got {type(data).__name__}.")
  for index, (title, book) in enumerate(data.items()):
    where = f"book {index + 1} ({title[:60]!r})"
    if not isinstance(book, dict):
      raise ValueError(f"{path}, {where}: expected an object, got "
                       f"{type(book).__name__}.")
    for field in ("genre", "summary", "MC_options"):
      if field not in book:
        raise _common.bad_value(path, where, field, "the field is absent")
    options = book["MC_options"]
    if (not isinstance(options, list) or not options
        or not all(isinstance(o, str) and ":" in o for o in options)):
      raise _common.bad_value(path, where, "MC_options",
                              "expected a list of option strings like "
                              f"'1: Very unlikely', got {options!r}")
    counts = {}
    # The release skips a group the book lacks; so do we.
    for group in (g for g in GROUPS if g in book):
      group_counts = book[group]
      if not isinstance(group_counts, dict):
        raise _common.bad_value(path, where, group,
                                f"expected an object of counts, got "
                                f"{group_counts!r}")
      # The release divides by the sum over *all* keys but only reads the
      # option keys, so a stray key would silently deflate the shares; here
      # it is an error.
      stray = [k for k in group_counts if k not in options]
      if stray:
        raise _common.bad_value(path, where, group,
                                f"counts for {stray} are not among the "
                                f"options {options}")
      for option, n in group_counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
          raise _common.bad_value(path, where, group,
                                  f"{option!r}: expected a count, got {n!r}")
      counts[group] = group_counts
    yield _Book(index, title, _text(path, where, "genre", book["genre"]),
                _text(path, where, "summary", book["summary"]), options,
                counts)


def question(book: _Book) -> str:
  """The book's question: its details, then the option strings."""
  text = QUESTION.format(title=book.title, genre=book.genre,
                         summary=book.summary)
  # As in the release: a line that is just `Answer:` is dropped (none is in
  # the published file).
  text = "\n".join(line for line in text.split("\n")
                   if line.strip() != "Answer:")
  return text + "\nOptions:" + "".join(f"\n{o}" for o in book.options)


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per (book, group), books in file order, groups in GROUPS."""
  (path,) = _common.raw_paths(NAME, ctx, (RAW,))
  for book in _read(path):
    text = question(book)
    letters = [o.split(":")[0] for o in book.options]
    for group, counts in book.counts.items():
      total = sum(counts.values())
      # No responses carry no distribution; the release scores a uniform
      # target instead (docs/method.md#distributional-tasks).
      if total == 0:
        continue
      yield Instance(id=f"b{book.index}:{group}",
                     descriptions=[RESPONDENT.format(group=group)],
                     question=text, options=letters,
                     target=[counts.get(o, 0) / total for o in book.options],
                     extra={"output_name": OUTPUT_NAME})


TASKS = [
    TaskSpec(name=NAME, suite_split="test", kind="distributional",
             generate=generate, raw_files=(RAW,),
             about="NYTimes books: score how likely a group (Democrat, "
             "Republican, Male, Female) is to read a book, options 1-4."),
]
