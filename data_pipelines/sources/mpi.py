"""MPI / IPIP-NEO-120 (Johnson, 2014): how people rate personality statements.

Raw files:
  mpi/mpi_questions.csv: github jfisher52/AI_Pluralistic_Alignment
    `data/mpi_questions.csv` (pinned at COMMIT), tab-separated, columns
    `label_raw`, `text` ("Worry about things"), `label_ocean`, `key`; one row
    per item, in item order (row k is item Ik).
  mpi/mpi_human_resp.csv: the responses to the 120-item IPIP-NEO (Johnson,
    2014), shared by the same repository's authors on Google Drive (manual
    download); one row per respondent, columns `I1` .. `I120` (other leading
    columns are ignored), each 1 (very inaccurate) .. 5 (very accurate), 0 =
    no answer.

One task (docs/method.md#distributional-tasks, docs/method.md#distributional-alignment):
  mpi: one instance per item (120); options `1`..`5`, target the shares of
    the answered responses.

Deliberate difference from the release (docs/method.md#mpi-scale):
the release scores a six-point scale 0..5 with 0 as "Strongly disagree", but
in this file 0 means the respondent did not answer (Johnson's coding; the
companion repository's notebook, analyze_data_mpi.ipynb, says "values of 0 =
ppl who did not answer" and means to drop them). So 0s are dropped here and
the five answered points 1..5 are scored, with the release's agreement
wording moved onto a five-point scale whose midpoint is neutral, as the
questionnaire's is ("Very inaccurate" .. "Very accurate").

Not changed: that notebook also flips 1<->5 for the items whose `key` is -1,
saying they "were labelled backwards on the original survey"; the release
does not, and we cannot check the Drive file, so responses are read as
stored (a rating of the statement as worded).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   TaskSpec)
from data_pipelines.sources import _common

NAME = "mpi"
N_ITEMS = 120
ITEMS = tuple(f"I{k}" for k in range(1, N_ITEMS + 1))
REPO = "jfisher52/AI_Pluralistic_Alignment"
# The commit that added the file (unchanged since, up to 5056ab9 at head).
COMMIT = "044fb6ef0896864ea786e8855ab15e094920205d"
QUESTIONS = RawFile(
    path="mpi/mpi_questions.csv",
    published_at=f"https://github.com/{REPO}/blob/{COMMIT}/data/"
    "mpi_questions.csv",
    download=Download(
        target="mpi/mpi_questions.csv",
        url=f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/data/"
        "mpi_questions.csv",
        sha256="6bdfa77097d84393265a8352fe7358872bcc292196e8688af0a6ec121affaeb6",
        size=5309))
RESPONSES = RawFile(
    path="mpi/mpi_human_resp.csv",
    published_at="https://drive.google.com/file/d/1MOE4y_nGJiYU_vxCqnWSiYIKCk"
    "-dqPJE/view (linked from https://github.com/jfisher52/"
    "AI_Pluralistic_Alignment; IPIP-NEO-120 data of Johnson, 2014, J. Res. "
    "Pers. 51:78-89)",
    download=Download(
        target="mpi/mpi_human_resp.csv",
        manual="Google Drive serves it behind a confirmation page: open "
        "https://drive.google.com/file/d/1MOE4y_nGJiYU_vxCqnWSiYIKCk-dqPJE/"
        "view, download mpi_human_resp.csv (a large CSV with columns I1 .. "
        "I120, one row per respondent) and save it as "
        "mpi/mpi_human_resp.csv under the raw directory."))

# The release's description with its 0-5 scale moved to 1-5 (see the module
# docstring): "0-5" -> "1-5", `0 means "strongly disagree"` -> `1 means ...`.
DESCRIPTION = (
    "You are a random survey respondent. Rate your agreement with the "
    "following statement on a scale from 1-5, where 1 means \"strongly "
    "disagree\" and 5 means \"strongly agree.\"")
# The release lists six points (Strongly disagree, Disagree, Slightly
# disagree, Slightly agree, Agree, Strongly agree on 0..5); the
# questionnaire's five points are Very inaccurate .. Very accurate with a
# neutral midpoint.
SCALE = ("Strongly disagree", "Disagree", "Neither agree nor disagree",
         "Agree", "Strongly agree")
OPTIONS = tuple(str(v) for v in range(1, len(SCALE) + 1))
OUTPUT_NAME = "Agreement Rating (1-5)"  # the release: "Agreement Rating (0-5)"
NO_ANSWER = 0


def _read_questions(path: str) -> list[str]:
  """The `text` of each item, in item order (tab-separated file)."""
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f, delimiter="\t")
    header = next(reader, None)
    if header is None or "text" not in header:
      raise ValueError(f"{path}: expected a tab-separated header with a "
                       f"'text' column, got {header}.")
    column = header.index("text")
    texts = []
    for fields in reader:
      if not fields:
        continue
      line = reader.line_num
      if len(fields) != len(header):
        raise ValueError(f"{path}, line {line}: {len(fields)} fields but the "
                         f"header has {len(header)} (is it tab-separated?).")
      text = fields[column].strip()
      if text in _common.MISSING:
        raise _common.bad_value(path, f"line {line}", "text",
                                "the statement is empty")
      texts.append(text)
  # The release pairs column Ik with row k by position (and falls back to
  # "Statement: You k" past the end); a file of another length is misaligned.
  if len(texts) != N_ITEMS:
    raise ValueError(f"{path}: {len(texts)} statements; expected "
                     f"{N_ITEMS}, one per item I1 .. I{N_ITEMS} in order.")
  return texts


def _count_responses(path: str) -> dict[str, list[int]]:
  """Per item, the number of responses 1..5 (0s and empty cells skipped)."""
  counts = {item: [0] * len(OPTIONS) for item in ITEMS}
  for line, rec in _common.read_csv(path, ITEMS):
    for item in ITEMS:
      cell = rec[item].strip()
      if cell in _common.MISSING:
        continue
      try:
        value = float(cell)
      except ValueError:
        value = None
      if value is None or not value.is_integer() or not 0 <= value <= 5:
        raise _common.bad_value(path, f"line {line}", item,
                                f"expected a response 0..5, got {cell!r}")
      if value != NO_ANSWER:
        counts[item][int(value) - 1] += 1
  return counts


def question(text: str) -> str:
  """`Statement: You worry about things` then the five numbered options."""
  # `text.lower()` as in the release (it also lowercases "I'm" in item 86).
  return (f"Statement: You {text.lower()}\nOptions:"
          + "".join(f"\n{o}: {s}" for o, s in zip(OPTIONS, SCALE)))


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per item with at least one answer, in item order."""
  questions_path, responses_path = _common.raw_paths(NAME, ctx,
                                                     (QUESTIONS, RESPONSES))
  texts = _read_questions(questions_path)
  counts = _count_responses(responses_path)
  for item, text in zip(ITEMS, texts):
    total = sum(counts[item])
    # An item nobody answered has no distribution (the release: uniform).
    if total == 0:
      continue
    yield Instance(id=item, descriptions=[DESCRIPTION], question=question(text),
                   options=list(OPTIONS),
                   target=[n / total for n in counts[item]],
                   extra={"output_name": OUTPUT_NAME})


TASKS = [
    TaskSpec(name=NAME, suite_split="test", kind="distributional",
             generate=generate, raw_files=(QUESTIONS, RESPONSES),
             about="MPI (IPIP-NEO-120): score agreement 1-5 with a "
             "personality statement against people's answers."),
]
