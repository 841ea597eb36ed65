"""OpinionQA (Santurkar et al., 2023): Pew American Trends Panel responses.

Raw files: the CodaLab bundle `human_resp.tar.gz` extracted under
`opinionqa/human_resp/`. For each of the 15 waves in WAVES, the converter
reads `American_Trends_Panel_W{n}/info.csv` (columns `key`, `question`,
`references`: a Python list literal of the answer texts) and, for
opinionqa_individual, `American_Trends_Panel_W{n}/responses.csv` (one row per
respondent: a column per question key holding the answer text, and the
demographic columns in DEMOGRAPHICS).

The release also needs `opinions_qa/helpers.py` from github
tatsu-lab/opinions_qa, only for its wave list and demographic names
(docs/method.md#opinionqa-without-the-helper-file); both are written out below, so that file is not needed.

Two train tasks (docs/method.md#opinionqa): opinionqa_individual (one respondent's answer
letters) and opinionqa_questions (the questions of one wave).
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

WAVES = (26, 27, 29, 32, 34, 36, 41, 42, 43, 45, 49, 50, 54, 82, 92)
DEMOGRAPHICS = ("CREGION", "AGE", "SEX", "EDUCATION", "CITIZEN", "MARITAL",
                "RELIG", "RELIGATTEND", "POLPARTY", "INCOME", "POLIDEOLOGY",
                "RACE")
MAX_RESPONDENTS = 200  # per wave
P_DROP_DEMOGRAPHIC = 0.3  # each attribute left out of a description
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PUBLISHED = ("https://worksheets.codalab.org/bundles/"
              "0x050b7e72abb04d1f9b493c1743e580cf (human_resp.tar.gz, "
              "extracted to opinionqa/human_resp/)")

INDIVIDUAL = "The following are survey responses for a single individual."
WITH_DEMOGRAPHICS = "Survey responses from the following individual: {}"
QUESTIONS = "The following are survey questions."


# The bundle's blob: the `human_resp` tarball (~the release's manual
# download). Unpacked into opinionqa/human_resp/; the download command drops
# a top folder named `human_resp` if the tarball has one, so the tarball of
# the folder and the tarball of its contents both give
# opinionqa/human_resp/American_Trends_Panel_W{n}/.
DOWNLOAD = Download(
    target="opinionqa/human_resp.tar.gz",
    url="https://worksheets.codalab.org/rest/bundles/"
    "0x050b7e72abb04d1f9b493c1743e580cf/contents/blob/",
    unpack="tar.gz", unpack_to="opinionqa/human_resp")


def _raw(wave: int, name: str) -> RawFile:
  return RawFile(
      path=f"opinionqa/human_resp/American_Trends_Panel_W{wave}/{name}",
      published_at=_PUBLISHED, download=DOWNLOAD)


INFO_FILES = tuple(_raw(w, "info.csv") for w in WAVES)
RESPONSE_FILES = tuple(_raw(w, "responses.csv") for w in WAVES)


def _questions(path: str) -> list[tuple[str, str, dict[str, str]]]:
  """(key, templated question, answer text -> letter) per info.csv row."""
  out = []
  for line, rec in _common.read_csv(path, ("key", "question", "references")):
    where = f"line {line}"
    refs = _common.parse_literal(path, where, "references", rec["references"])
    if (not isinstance(refs, list) or not refs or len(refs) > len(LETTERS)
        or not all(isinstance(r, str) for r in refs)):
      raise _common.bad_value(
          path, where, "references",
          f"expected a list of 1 to {len(LETTERS)} answer texts, got "
          f"{rec['references'][:80]!r}")
    text = rec["question"] + "".join(
        f"\n{letter}: {ref}" for letter, ref in zip(LETTERS, refs))
    out.append((rec["key"], text, dict(zip(refs, LETTERS))))
  return out


def generate_individual(ctx: BuildContext) -> Iterator[Instance]:
  """Up to MAX_RESPONDENTS respondents per wave, answers in survey order."""
  task = "opinionqa_individual"
  paths = _common.raw_paths(task, ctx, INFO_FILES + RESPONSE_FILES)
  for wave, info_path, resp_path in zip(WAVES, paths, paths[len(WAVES):]):
    questions = _questions(info_path)
    people = []
    columns = tuple(dict.fromkeys([*(q[0] for q in questions),
                                   *DEMOGRAPHICS]))
    for line, rec in _common.read_csv(resp_path, columns):
      # Answers outside the listed references (blank, unknown codes) are
      # skipped, as in the release.
      rows = [Row(input=text, output=letters[rec[key]])
              for key, text, letters in questions if rec[key] in letters]
      if rows:
        people.append((line, rows, rec))
    chosen = people
    if len(people) > MAX_RESPONDENTS:
      chosen = _common.seeded_rng(ctx, task, wave).sample(people,
                                                          MAX_RESPONDENTS)
      chosen.sort(key=lambda person: person[0])
    for line, rows, rec in chosen:
      rng = _common.seeded_rng(ctx, task, wave, line)
      keep = [rng.random() >= P_DROP_DEMOGRAPHIC for _ in DEMOGRAPHICS]
      # Blank attributes are left out rather than shown as nan.
      shown = {k: rec[k] for k, kept in zip(DEMOGRAPHICS, keep)
               if kept and rec[k].strip() not in _common.MISSING}
      # Rows stay in survey order, as the release keeps them.
      yield Instance(id=f"W{wave}_{line}", rows=rows,
                     descriptions=[INDIVIDUAL,
                                   WITH_DEMOGRAPHICS.format(shown)])


def generate_questions(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per wave: its templated questions (outputs only)."""
  paths = _common.raw_paths("opinionqa_questions", ctx, INFO_FILES)
  for wave, path in zip(WAVES, paths):
    rows = [Row(output=text) for _, text, _ in _questions(path)]
    if rows:
      yield Instance(id=f"W{wave}", rows=rows)


TASKS = [
    TaskSpec(name="opinionqa_individual", suite_split="train", kind="icl",
             generate=generate_individual, default_descriptions=(INDIVIDUAL,),
             shuffle_rows=False,  # all answers, in survey order
             raw_files=INFO_FILES + RESPONSE_FILES,
             about="OpinionQA: one Pew panel respondent's answer letters."),
    TaskSpec(name="opinionqa_questions", suite_split="train", kind="icl",
             generate=generate_questions, default_descriptions=(QUESTIONS,),
             raw_files=INFO_FILES,
             about="OpinionQA: the survey questions of one Pew wave."),
]
