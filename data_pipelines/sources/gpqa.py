"""GPQA main (Rein et al., 2023) as ICL episodes of 20 questions (docs/method.md#capabilities).

Raw file: `gpqa/dataset/gpqa_main.csv` (448 questions) from `dataset.zip` in
the GitHub repository idavidrein/gpqa. The zip is password-protected (the
release's `data/download.sh` passes the password to `unzip -P`); the
download command cannot pass a password, so the file is a manual download.
Columns used: `Question`, `Correct Answer`, `Incorrect Answer 1` .. `Incorrect Answer 3` (text, may
span lines).

One instance of every question. The prompt is `Question: {q}` and the four
answers (stripped; blank ones dropped) in a seeded random order as
`A. …` lines; the output is the letter of the correct answer. 1000 episodes of
20 questions, each a fresh draw from all rows (the release's n_per=1000,
n_iter=20), so questions recur across episodes.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_PASSWORD = "deserted-untie-orchid"
RAW = RawFile(
    path="gpqa/dataset/gpqa_main.csv",
    published_at="https://github.com/idavidrein/gpqa (dataset.zip, "
    "password-protected; file dataset/gpqa_main.csv)",
    # Not pinned to a commit: no stored copy of the repository was found to
    # read one from. The authors ask that GPQA questions are not published
    # in plain text online, hence the password (theirs, from their README).
    download=Download(
        target="gpqa/dataset.zip",
        url="https://github.com/idavidrein/gpqa/raw/main/dataset.zip",
        unpack="zip", unpack_to="gpqa", password=_PASSWORD))
DESCRIPTION = ("You will be given a difficult question. Respond with the "
               "correct answer letter.")
CORRECT = "Correct Answer"
INCORRECT = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every question (answers shuffled) -> the correct letter."""
  (path,) = _common.raw_paths("gpqa", ctx, (RAW,))
  rows = []
  for index, (line, rec) in enumerate(_common.read_csv(
      path, ("Question", CORRECT, *INCORRECT))):
    where = f"line {line}"
    if rec["Question"] in _common.MISSING:
      raise _common.bad_value(path, where, "Question", "the question is empty")
    if rec[CORRECT] in _common.MISSING or not rec[CORRECT].strip():
      raise _common.bad_value(path, where, CORRECT,
                              "the correct answer is empty")
    # As the release: incorrect answers first, then the correct one; cells
    # pandas reads as NaN, and blank ones, are dropped. (The release looks
    # for a Subject/Domain/Topic/Field/Category column to print first; GPQA
    # has none of them, so no such line is ever written.)
    choices = [rec[c].strip() for c in INCORRECT
               if rec[c] not in _common.MISSING and rec[c].strip()]
    correct = rec[CORRECT].strip()
    choices.append(correct)
    # Our own seeded order per question (the release permutes with
    # numpy's default_rng(42) over the rows in turn; parity is not a goal).
    order = list(range(len(choices)))
    _common.seeded_rng(ctx, "gpqa", "choices", index).shuffle(order)
    prompt = f"Question: {rec['Question']}" + "".join(
        f"\n{LETTERS[pos]}. {choices[i]}" for pos, i in enumerate(order))
    rows.append(Row(input=prompt,
                    output=LETTERS[order.index(len(choices) - 1)]))
  yield Instance(id="all", rows=rows)


TASKS = [
    TaskSpec(name="gpqa", suite_split="test", kind="icl", generate=generate,
             fixed_k=20, episodes_per_instance=1000,  # fresh draws
             default_descriptions=(DESCRIPTION,), raw_files=(RAW,),
             about="GPQA (main) questions with shuffled answers, 20 an "
             "episode; the output is the answer letter."),
]
