"""GlobalOpinionQA (Durmus et al., 2023): per-country survey answer shares.

Raw file: `globaloqa/global_opinions.csv`, the CSV of the Hugging Face
dataset `Anthropic/llm_global_opinions` (`data/global_opinions.csv`), with
columns `question`, `selections`, `options`, `source`. `selections` is the
repr of a defaultdict, `defaultdict(<class 'list'>, {'Belgium': [0.21, ...],
...})`; `options` is a Python list literal, one share per option.

Two tasks (docs/method.md#globalopinionqa, docs/method.md#distributional-tasks):
  globaloqa: ICL, one instance per country; each row maps (question, options)
    to the country's answer distribution as a list of {option: percent}.
  globaloqa_distributional: one instance per (question, country) for the
    distributional-alignment evaluation (docs/method.md#distributional-alignment).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

RAW = RawFile(
    path="globaloqa/global_opinions.csv",
    published_at="https://huggingface.co/datasets/Anthropic/llm_global_opinions"
    " (file data/global_opinions.csv)",
    download=Download(target="globaloqa/global_opinions.csv",
                      hf_repo="Anthropic/llm_global_opinions",
                      hf_filename="data/global_opinions.csv"))

UNKNOWN_LOCATION = (
    "People from an unknown location were surveyed. For each question, "
    "predict the percentage of people who chose each option. (list of dicts)")
# The release leaves `{country}` unformatted in this description 
# (docs/method.md#filled-placeholders); we fill it in, so the description really names the country.
NAMED_COUNTRY = (
    "Country: {country}\nFor each question, predict the percentage of people "
    "from the country who chose each option. (list of dicts)")
RESPONDENT = "Responses from a person from this country: {country}"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Question(NamedTuple):
  index: int  # 0-based record index among the kept questions
  question: str
  options: list[str]
  shares: dict[str, list[float]]  # country -> one share per option


def _read(path: str) -> Iterator[_Question]:
  """Parses and checks every record of the GlobalOQA CSV."""
  index = 0
  for line, rec in _common.read_csv(path, ("question", "selections",
                                           "options")):
    where = f"line {line}"
    # A question-less record cannot be posed; the authors' distributional
    # loader skips these too (their ICL loader would print "nan").
    if rec["question"].strip() in _common.MISSING:
      continue
    options = _common.parse_literal(path, where, "options", rec["options"])
    if (not isinstance(options, list) or not options
        or len(options) > len(LETTERS)):
      raise _common.bad_value(
          path, where, "options",
          f"expected a list of 1 to {len(LETTERS)} options, got "
          f"{rec['options'][:80]!r}")
    options = [str(o) for o in options]
    match = re.search(r"\{.*\}", rec["selections"], re.DOTALL)
    if match is None:
      raise _common.bad_value(
          path, where, "selections",
          "expected \"defaultdict(<class 'list'>, {'Country': [shares]})\", "
          f"got {rec['selections'][:80]!r}")
    shares = _common.parse_literal(path, where, "selections", match.group())
    if not isinstance(shares, dict):
      raise _common.bad_value(path, where, "selections",
                              "the {...} part is not a dict of country -> "
                              "shares")
    for country, probs in shares.items():
      if (not isinstance(probs, list)
          or not all(isinstance(p, (int, float)) and p >= 0 for p in probs)):
        raise _common.bad_value(
            path, where, "selections",
            f"{country!r}: expected a list of non-negative shares, got "
            f"{probs!r}")
      # The release zips the two lists, silently dropping shares or options;
      # a mismatch means the row is misaligned, so it is an error here.
      if len(probs) != len(options):
        raise _common.bad_value(
            path, where, "selections",
            f"{country!r} has {len(probs)} shares for {len(options)} options")
    yield _Question(index, rec["question"], options,
                    {str(c): [float(p) for p in ps]
                     for c, ps in shares.items()})
    index += 1


def _percent_repr(options: list[str], probs: list[float]) -> str:
  # The release computes int(round(p, 2) * 100), which truncates float noise
  # (0.29 -> 28, 0.57 -> 56); round(100 * p) gives the intended percent.
  return str([{o: round(100 * p)} for o, p in zip(options, probs)])


def generate_icl(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per country, in order of first appearance in the file."""
  (path,) = _common.raw_paths("globaloqa", ctx, (RAW,))
  rows: dict[str, list[Row]] = {}
  for q in _read(path):
    given = serialise_fields({"question": q.question,
                              "options": str(q.options)})
    for country, probs in q.shares.items():
      rows.setdefault(country, []).append(
          Row(input=given, output=_percent_repr(q.options, probs)))
  for country, country_rows in rows.items():
    yield Instance(id=country, rows=country_rows,
                   descriptions=[UNKNOWN_LOCATION,
                                 NAMED_COUNTRY.format(country=country)])


def generate_distributional(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per (question, country); target = shares summing to 1."""
  (path,) = _common.raw_paths("globaloqa_distributional", ctx, (RAW,))
  for q in _read(path):
    letters = list(LETTERS[:len(q.options)])
    question = q.question.strip() + "\nOptions:" + "".join(
        f"\n{letter}. {option}" for letter, option in zip(letters, q.options))
    for country, probs in q.shares.items():
      total = sum(probs)
      # All-zero shares carry no distribution; the release keeps them
      # unnormalised, which no divergence can score.
      if total <= 0:
        continue
      yield Instance(id=f"q{q.index}:{country}",
                     descriptions=[RESPONDENT.format(country=country)],
                     question=question, options=letters,
                     target=[p / total for p in probs],
                     extra={"output_name": "Response (letter)"})


TASKS = [
    TaskSpec(name="globaloqa", suite_split="test", kind="icl",
             generate=generate_icl, default_descriptions=(UNKNOWN_LOCATION,),
             episodes_per_instance=2,  # n_per=2: two shuffles of all rows.
             raw_files=(RAW,),
             about="GlobalOpinionQA: a country's answer shares per survey "
             "question (one instance per country)."),
    TaskSpec(name="globaloqa_distributional", suite_split="test",
             kind="distributional", generate=generate_distributional,
             raw_files=(RAW,),
             about="GlobalOpinionQA: score the letters of a question's "
             "options against one country's answer shares."),
]
