"""Jeopardy! clues and answers (a J! Archive scrape, JEOPARDY_CSV.csv).

Raw file: `misc/JEOPARDY_CSV.csv`, a CSV whose header is `Show Number, Air
Date, Round, Category, Value, Question, Answer` (the names after the first
carry a leading space, which the converter strips). `Question` is the clue
(clues shown with a picture or sound hold an `<a href=...>` link), `Answer`
the response, `Round` one of `Jeopardy!`, `Double
Jeopardy!`, `Final Jeopardy!`, `Tiebreaker`.

Two train tasks (docs/method.md#task-list), each one instance over the
regular-round clues without links: jeopardy_question_generation (clues,
outputs only) and jeopardy_answer_prediction (clue -> answer). Release: every
row once per pass in chunks of GP(64), at most 1000 episodes.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_DRIVE = ("https://drive.google.com/file/d/0BwT5wj_P7BKXUl9tOUJWYzVvUjA/view"
          "?resourcekey=0-uFrn8bQkUfSCvJlmtKGCdQ")
RAW = RawFile(
    path="misc/JEOPARDY_CSV.csv",
    published_at=_DRIVE + " (JEOPARDY_CSV.csv)",
    download=Download(
        target="misc/JEOPARDY_CSV.csv",
        manual=f"Open {_DRIVE} in a browser, download JEOPARDY_CSV.csv "
        "(Google Drive asks to confirm a large file) and save it as "
        "<raw_dir>/misc/JEOPARDY_CSV.csv."))
ROUNDS = ("Jeopardy!", "Double Jeopardy!")  # Final and Tiebreaker are left out
COLUMNS = ("Round", "Category", "Question", "Answer")

QUESTION_DESCRIPTIONS = (
    "Generate Jeopardy-style questions (clues). These are factual statements "
    "that describe something, and contestants must identify what is being "
    "described.",
    "Create trivia clues in the style of Jeopardy. The clues should be "
    "informative statements about people, places, things, or concepts.",
    "Generate: Question (Jeopardy clue as a factual statement).",
)
ANSWER_DESCRIPTIONS = (
    "Given a Jeopardy question (clue), predict the correct answer. The answer "
    "should be the specific person, place, thing, or concept that the clue "
    "describes.",
    "Solve Jeopardy clues by providing the answer that fits the given "
    "statement. Use only the information provided in the clue.",
    "Given: Question (Jeopardy clue statement). Generate: Answer (correct "
    "response to the clue).",
)


def _clues(task: str, ctx: BuildContext) -> list[tuple[str, str]]:
  """(clue, answer) of the regular rounds, without picture clues or blanks."""
  (path,) = _common.raw_paths(task, ctx, (RAW,))
  clues = []
  # No required columns here: the header's names are checked once stripped.
  for line, raw in _common.read_csv(path, ()):
    rec = {name.strip(): value for name, value in raw.items()}
    missing = [c for c in COLUMNS if c not in rec]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing}; the header has "
                       f"{list(raw)}.")
    if rec["Round"] not in ROUNDS:
      continue
    if "href" in rec["Question"].lower():
      continue
    # Blank and NaN-like cells are what the release's dropna removes.
    if any(rec[c] in _common.MISSING for c in ("Question", "Answer",
                                                "Category")):
      continue
    clues.append((rec["Question"], rec["Answer"]))
  return clues


def generate_question_generation(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every clue (outputs only)."""
  clues = _clues("jeopardy_question_generation", ctx)
  yield Instance(id="all", rows=[Row(output=q) for q, _ in clues])


def generate_answer_prediction(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: clue -> answer."""
  clues = _clues("jeopardy_answer_prediction", ctx)
  yield Instance(id="all", rows=[Row(input=q, output=a) for q, a in clues])


TASKS = [
    TaskSpec(name="jeopardy_question_generation", suite_split="train",
             kind="icl", generate=generate_question_generation, mean_k=64,
             chunk_all_rows=True, max_episodes=1000,
             default_descriptions=QUESTION_DESCRIPTIONS, raw_files=(RAW,),
             about="Jeopardy!: generate clues of the regular rounds."),
    TaskSpec(name="jeopardy_answer_prediction", suite_split="train",
             kind="icl", generate=generate_answer_prediction, mean_k=64,
             chunk_all_rows=True, max_episodes=1000,
             default_descriptions=ANSWER_DESCRIPTIONS, raw_files=(RAW,),
             about="Jeopardy!: the answer to a regular-round clue."),
]
