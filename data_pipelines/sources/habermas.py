"""Habermas Machine (Tessler et al., 2024): UK residents on political questions.

Raw files, from the public bucket
https://storage.googleapis.com/habermas_machine/datasets/ :
  habermas_data/hm_all_position_statement_ratings.parquet: one row per rating;
    columns `question.id`, `question.text`, `question.affirming_statement`,
    `question.negating_statement`, `ratings.agreement` (a one-element list,
    e.g. ['AGREE']), `worker_id`, `metadata.provenance`,
    `ratings.metadata.participant_id`.
  habermas_data/hm_all_round_survey_responses.parquet: `worker_id`,
    `question.id`, `opinion.text` (the participant's written opinion).
Nested struct columns are read as their dotted names.

Four tasks (docs/method.md#habermas-machine, docs/method.md#distributional-tasks): habermas_question (generate questions),
habermas_individual (one worker's rating and opinion), _categorical (rating
only), and habermas_distributional (Likert shares per question, for docs/method.md#distributional-alignment).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_BUCKET = "https://storage.googleapis.com/habermas_machine/datasets/"


def _bucket_file(name: str) -> RawFile:
  return RawFile(path=f"habermas_data/{name}", published_at=_BUCKET + name,
                 download=Download(target=f"habermas_data/{name}",
                                   url=_BUCKET + name))


RATINGS = _bucket_file("hm_all_position_statement_ratings.parquet")
SURVEY = _bucket_file("hm_all_round_survey_responses.parquet")

# Raw label -> text, in Likert order from agreeing to disagreeing with the
# affirming statement.
LABELS = {
    "STRONGLY_AGREE": "Strongly Agree",
    "AGREE": "Agree",
    "SOMEWHAT_AGREE": "Somewhat Agree",
    "NEUTRAL": "Neutral",
    "SOMEWHAT_DISAGREE": "Somewhat Disagree",
    "DISAGREE": "Disagree",
    "STRONGLY_DISAGREE": "Strongly Disagree",
}
MOCK = "MOCK"  # placeholder ratings from test runs, not people
MAX_WORKERS = 2000
MIN_RATINGS = 6  # per question for the distributional task

QUESTION_DESCRIPTIONS = (
    "Generate a question.",
    "Questions",
    "Generate a list of diverse questions.",
    "Generate questions that could be posed to UK residents.",
    "Questions about UK politics",
)
_OPTIONS = "; ".join(LABELS.values())
INDIVIDUAL_DESCRIPTIONS = (
    "UK resident responses. They were given a question and a statement, "
    "asked to express their opinion in 2-3 sentences (opinion.text) and their "
    "level of agreement with it on a 7-point scale (ratings.agreement).",
    "UK resident responses.\nGiven:\n-question.text: A question to respond "
    "to.\n-statement: A statement to respond to.\nOutputs:\n-opinion.text: "
    "2-3 sentences\n-ratings.agreement: " + _OPTIONS,
)
CATEGORICAL_DESCRIPTIONS = (
    "Given a question and a statement, predict the level of agreement with "
    "it on a 7-point scale.\nOptions: " + _OPTIONS,)
LIKERT_DESCRIPTION = (
    "You are a randomly selected UK resident. You will be given a question "
    "and two statements, A and B. Rate which statement you most agree with "
    "on a likert scale from 1 to 7:\n1: Strongly Agree with A\n2: Agree with "
    "A\n3: Somewhat Agree with A\n4: Neutral\n5: Somewhat Agree with B\n6: "
    "Agree with B\n7: Strongly Agree with B")

_QUESTION_COLUMNS = ("question.id", "question.text",
                     "question.affirming_statement",
                     "question.negating_statement")


def _label(path: str, index: int, value: Any) -> str | None:
  """The text label of a `ratings.agreement` cell; None for no/MOCK rating."""
  cell = value
  if isinstance(value, (list, tuple)):
    if not value:
      return None
    if len(value) > 1:
      raise _common.bad_value(path, f"row {index}", "ratings.agreement",
                              f"expected one label, got {value!r}")
    value = value[0]
  if value is None:
    return None
  # Files written from a DataFrame may hold the list's repr, "['AGREE']".
  token = str(value).strip().strip("[]").strip("'\"")
  if token == MOCK:
    return None
  if token not in LABELS:
    raise _common.bad_value(path, f"row {index}", "ratings.agreement",
                            f"unknown label {cell!r}; expected one of "
                            f"{[MOCK, *LABELS]}")
  return LABELS[token]


def _ratings(path: str, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
  """Rating rows by real workers with a label, each with `row` and `label`."""
  columns = (*_QUESTION_COLUMNS, "ratings.agreement", "worker_id", *extra)
  rows = []
  for index, rec in enumerate(_common.read_parquet(path, columns)):
    if rec["worker_id"] is None:
      continue
    label = _label(path, index, rec["ratings.agreement"])
    if label is None:
      continue
    rows.append({**rec, "row": index, "label": label})
  return rows


def _individual_rows(ctx: BuildContext, task: str) -> list[dict[str, Any]]:
  """The ICL loaders' table: rating rows joined with the worker's opinion.

  One row per (worker, question), the first in file order; rows missing any
  field (including an opinion) are dropped, as in the release.
  """
  ratings_path, survey_path = _common.raw_paths(task, ctx, (RATINGS, SURVEY))
  opinions: dict[tuple[Any, Any], str] = {}
  for rec in _common.read_parquet(survey_path,
                                  ("worker_id", "question.id",
                                   "opinion.text")):
    # The first written opinion of the pair. The release joins on every
    # survey row and keeps the first, even when that one has no text; we
    # skip empty ones so a later round's opinion is not lost.
    if rec["opinion.text"] is not None:
      opinions.setdefault((rec["worker_id"], rec["question.id"]),
                          rec["opinion.text"])
  seen = set()
  rows = []
  for rec in _ratings(ratings_path):
    key = (rec["worker_id"], rec["question.id"])
    if key in seen:
      continue
    seen.add(key)
    rec["opinion.text"] = opinions.get(key)
    if all(rec[c] is not None for c in (*_QUESTION_COLUMNS, "opinion.text")):
      rows.append(rec)
  return rows


def generate_question(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: the distinct question texts (outputs only)."""
  rows = _individual_rows(ctx, "habermas_question")
  questions = dict.fromkeys(r["question.text"] for r in rows)
  yield Instance(id="all", rows=[Row(output=q) for q in questions])


def _by_worker(ctx: BuildContext, task: str,
               output: Any) -> Iterator[Instance]:
  """One instance per worker, at most MAX_WORKERS of them, seeded."""
  workers: dict[Any, list[Row]] = {}
  for r in _individual_rows(ctx, task):
    given = serialise_fields({"question.text": r["question.text"],
                              "statement": r["question.affirming_statement"]})
    workers.setdefault(r["worker_id"], []).append(
        Row(input=given, output=output(r)))
  chosen = list(workers)
  if len(chosen) > MAX_WORKERS:
    # The release takes the first workers of a seeded row shuffle; a seeded
    # sample of workers, kept in file order, is the same draw made simply.
    keep = set(_common.seeded_rng(ctx, task).sample(chosen, MAX_WORKERS))
    chosen = [w for w in chosen if w in keep]
  for worker in chosen:
    yield Instance(id=str(worker), rows=workers[worker])


def generate_individual(ctx: BuildContext) -> Iterator[Instance]:
  """One worker's (question, statement) -> {rating, opinion}."""
  return _by_worker(ctx, "habermas_individual", lambda r: serialise_fields(
      {"ratings.agreement": r["label"], "opinion.text": r["opinion.text"]}))


def generate_individual_categorical(ctx: BuildContext) -> Iterator[Instance]:
  """One worker's (question, statement) -> rating label."""
  return _by_worker(ctx, "habermas_individual_categorical",
                    lambda r: r["label"])


def generate_distributional(ctx: BuildContext) -> Iterator[Instance]:
  """Per question, the Likert shares of human citizens' ratings."""
  (path,) = _common.raw_paths("habermas_distributional", ctx, (RATINGS,))
  # The ICL tasks keep every provenance and the distributional one only
  # HUMAN_CITIZEN (docs/method.md#release-quirks-kept-on-purpose); we keep the release's split, since each
  # matches what the paper evaluated.
  groups: dict[tuple[Any, ...], list[str]] = {}
  seen = set()
  for rec in _ratings(path, ("metadata.provenance",
                             "ratings.metadata.participant_id")):
    if rec["metadata.provenance"] != "HUMAN_CITIZEN":
      continue
    key = (rec["question.id"], rec["ratings.metadata.participant_id"])
    if key in seen:
      continue
    seen.add(key)
    question = tuple(rec[c] for c in _QUESTION_COLUMNS)
    if None not in question:
      groups.setdefault(question, []).append(rec["label"])
  ids: dict[str, int] = {}
  for (qid, text, affirming, negating), labels in groups.items():
    if len(labels) < MIN_RATINGS:
      continue
    # One question id may carry several statement pairs; number repeats so
    # instance ids stay unique.
    n = ids[str(qid)] = ids.get(str(qid), 0) + 1
    yield Instance(
        id=str(qid) if n == 1 else f"{qid}#{n}",
        descriptions=[LIKERT_DESCRIPTION],
        question=f"Question: {text}\nA: {affirming}\nB: {negating}",
        options=[str(i) for i in range(1, len(LABELS) + 1)],
        target=[labels.count(label) / len(labels)
                for label in LABELS.values()],
        extra={"output_name": "Answer (Likert 1-7)"})


TASKS = [
    TaskSpec(name="habermas_question", suite_split="test", kind="icl",
             generate=generate_question, mean_k=32, chunk_all_rows=True,
             default_descriptions=QUESTION_DESCRIPTIONS,
             raw_files=(RATINGS, SURVEY),
             about="Habermas Machine: questions posed to UK residents."),
    TaskSpec(name="habermas_individual", suite_split="test", kind="icl",
             generate=generate_individual, mean_k=32,
             default_descriptions=INDIVIDUAL_DESCRIPTIONS,
             raw_files=(RATINGS, SURVEY),
             about="Habermas Machine: one UK resident's agreement and "
             "written opinion per question."),
    TaskSpec(name="habermas_individual_categorical", suite_split="test",
             kind="icl", generate=generate_individual_categorical, mean_k=32,
             default_descriptions=CATEGORICAL_DESCRIPTIONS,
             raw_files=(RATINGS, SURVEY),
             about="Habermas Machine: one UK resident's 7-point agreement "
             "per question."),
    TaskSpec(name="habermas_distributional", suite_split="test",
             kind="distributional", generate=generate_distributional,
             raw_files=(RATINGS,),
             about="Habermas Machine: score Likert 1-7 against the shares of "
             "human citizens' ratings of a question."),
]
