"""The Number Game (Bigelow & Piantadosi, 2016): does a number fit a set?

Raw file: `numbergame/numbergame_data.csv` from the Harvard Dataverse
(doi:10.7910/DVN/A8ZWLF), one row per binary response, with columns `id`
(participant), `set` (the shown numbers joined by `_`, e.g. `16_8_2_64`),
`target` (an integer), `rating` (1 = yes, 0 = no) and optionally `p` (the
share of yes for that set and target; derived from the ratings when absent).

Three tasks (docs/method.md#number-game, docs/method.md#distributional-tasks):
  numbergame_individual: one instance per participant, (set, target) -> Yes/No.
  numbergame_perc: one instance, (set, target) -> percent who said yes.
  numbergame_distributional: one instance per (set, target) with at least 9
    responses; options Yes/No, target the response shares.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

RAW = RawFile(
    path="numbergame/numbergame_data.csv",
    published_at="https://doi.org/10.7910/DVN/A8ZWLF (Harvard Dataverse, "
    "Bigelow & Piantadosi 2016, JOPD doi:10.5334/jopd.19)",
    download=Download(
        target="numbergame/numbergame_data.csv",
        manual="The Harvard Dataverse serves it behind its terms of use: open "
        "https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/"
        "DVN/A8ZWLF, accept the terms and download the response data as CSV "
        "(columns id, set, target, rating and optionally p; one row per "
        "yes/no response); save it as numbergame_data.csv."))

GIVEN = ("given_numbers", "target_number")
PERC_DESCRIPTIONS = (
    "The following is a number game task. People were shown a set of "
    "numbers, and asked whether a target number was likely to be generated "
    "by the same process as the set. Your goal is to predict the percentage "
    "of people who would say yes to the target number.",
    "Inputs: given_numbers (a set of numbers), target_number (a number which "
    "potentially belongs to the set). Outputs: perc (the percentage of "
    "people who would say that the target number belongs to the same set).",
)
PARTICIPANT = (
    "You are a randomly selected participant in a study. You will be given a "
    "set of numbers which all belong to the same set or pattern, and will be "
    "given a target number which may or may not belong to the same set or "
    "pattern. Answer Yes if you think that the target number belongs to the "
    "same set, otherwise answer No.")
MIN_RESPONSES = 9  # per (set, target) for the distributional task


def _generic_descriptions(given: tuple[str, ...],
                          gen: str) -> tuple[str, ...]:
  """The release's default descriptions for a multivariate task (docs/method.md#descriptions)."""
  given_str = ", ".join(given)
  return (f"The following are given: {given_str}. You must generate {gen}.",
          f"Given: {given_str}. Generate: {gen}.",
          f"Inputs: {given_str}. Outputs: {gen}.")


INDIVIDUAL_DESCRIPTIONS = _generic_descriptions(GIVEN, "target_belongs_to_set")


class _Response(NamedTuple):
  participant: str
  numbers: str  # "16, 8, 2, 64"
  target: str  # "32"
  rating: int  # 1 = yes, 0 = no
  p: float | None  # the file's share of yes, when it has a `p` column


def _number(path: str, where: str, column: str, text: str) -> float:
  try:
    return float(text)
  except ValueError:
    raise _common.bad_value(path, where, column,
                            f"not a number: {text!r}") from None


def _read(path: str) -> Iterator[_Response]:
  """The responses with a 0/1 rating, in file order."""
  for line, rec in _common.read_csv(path, ("id", "set", "target", "rating")):
    where = f"line {line}"
    # A missing rating is a response that was not given; the authors'
    # distributional loader drops these rows too.
    if rec["rating"].strip() in _common.MISSING:
      continue
    rating = _number(path, where, "rating", rec["rating"])
    if rating not in (0, 1):
      raise _common.bad_value(path, where, "rating",
                              f"expected 0 or 1, got {rec['rating']!r}")
    target = _number(path, where, "target", rec["target"])
    if not target.is_integer():
      raise _common.bad_value(path, where, "target",
                              f"expected an integer, got {rec['target']!r}")
    # Empty parts (a trailing `_`) are dropped, as the distributional loader
    # does; the release's ICL loaders would keep them as empty numbers.
    parts = [n.strip() for n in rec["set"].split("_") if n.strip()]
    if not parts:
      raise _common.bad_value(path, where, "set",
                              f"expected numbers joined by '_', got "
                              f"{rec['set']!r}")
    if rec["id"].strip() in _common.MISSING:
      raise _common.bad_value(path, where, "id", "the participant id is empty")
    p = None
    if "p" in rec and rec["p"].strip() not in _common.MISSING:
      p = _number(path, where, "p", rec["p"])
      if not 0 <= p <= 1:
        raise _common.bad_value(path, where, "p",
                                f"expected a share in [0, 1], got {rec['p']!r}")
    yield _Response(rec["id"], ", ".join(parts), str(int(target)), int(rating),
                    p)


def _given(r: _Response) -> str:
  return serialise_fields({"given_numbers": r.numbers,
                           "target_number": r.target})


def generate_individual(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per participant (order of first appearance)."""
  (path,) = _common.raw_paths("numbergame_individual", ctx, (RAW,))
  rows: dict[str, list[Row]] = {}
  for r in _read(path):
    rows.setdefault(r.participant, []).append(
        Row(input=_given(r), output="Yes" if r.rating else "No"))
  for participant, person_rows in rows.items():
    yield Instance(id=participant, rows=person_rows)


def _by_question(path: str) -> dict[tuple[str, str], list[_Response]]:
  groups: dict[tuple[str, str], list[_Response]] = {}
  for r in _read(path):
    groups.setdefault((r.numbers, r.target), []).append(r)
  return groups


def generate_perc(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every distinct (set, target) -> percent of yes."""
  (path,) = _common.raw_paths("numbergame_perc", ctx, (RAW,))
  rows = []
  for responses in _by_question(path).values():
    first = responses[0]
    # The file's `p` (of the first row, as the release de-duplicates) when
    # present, else the observed share of yes.
    p = first.p
    if p is None:
      p = sum(r.rating for r in responses) / len(responses)
    rows.append(Row(input=_given(first), output=f"{round(100 * p)}%"))
  yield Instance(id="all", rows=rows)


def generate_distributional(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per (set, target) with at least MIN_RESPONSES responses."""
  (path,) = _common.raw_paths("numbergame_distributional", ctx, (RAW,))
  for (numbers, target), responses in _by_question(path).items():
    if len(responses) < MIN_RESPONSES:
      continue
    yes = sum(r.rating for r in responses) / len(responses)
    yield Instance(id=f"{numbers}|{target}", descriptions=[PARTICIPANT],
                   question=f"Example set: {numbers}\nTarget number: {target}",
                   options=["Yes", "No"], target=[yes, 1 - yes],
                   extra={"output_name": "Target Number Membership (Yes/No)"})


TASKS = [
    TaskSpec(name="numbergame_individual", suite_split="test", kind="icl",
             generate=generate_individual,
             default_descriptions=INDIVIDUAL_DESCRIPTIONS, raw_files=(RAW,),
             about="Number Game: one participant's yes/no judgements of "
             "whether a target fits a set."),
    TaskSpec(name="numbergame_perc", suite_split="test", kind="icl",
             generate=generate_perc, mean_k=128, chunk_all_rows=True,
             default_descriptions=PERC_DESCRIPTIONS, raw_files=(RAW,),
             about="Number Game: percent of people who say a target fits a "
             "set."),
    TaskSpec(name="numbergame_distributional", suite_split="test",
             kind="distributional", generate=generate_distributional,
             raw_files=(RAW,),
             about="Number Game: score Yes/No against the share of "
             "participants who said the target fits the set."),
]
