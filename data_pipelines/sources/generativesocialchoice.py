"""Generative Social Choice (Fish et al., 2024): survey answers on two topics.

Raw files, from github generative-social-choice/survey_data (data/):
  generativesocialchoice/abortion_survey.csv
  generativesocialchoice/chatbot_personalization_survey.csv
One row per (participant, survey step); columns used: `user_id`,
`question_type` ("reading", "text" or "multiple choice + text"),
`question_text`, `json_choices` (the options as a list literal, kept as
text), `choice`, `text` (the participant's written answer).

Two train tasks (docs/method.md#generative-social-choice), one instance per
participant of each survey, all of their rows in one episode, the generic
default descriptions:
  generativesocialchoice_validation: multiple-choice-plus-text steps;
    input {question_text, json_choices} -> output {choice, response_text}.
  generativesocialchoice_freetext: free-text steps; question_text ->
    response_text.
"""

from __future__ import annotations

from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

REPO = "generative-social-choice/survey_data"
COMMIT = "3129df3d0f83a598bd5c59c25419b463078d763f"
SURVEYS = ("abortion_survey", "chatbot_personalization_survey")
MULTIPLE_CHOICE = "multiple choice + text"
FREE_TEXT = "text"


def _raw(survey: str) -> RawFile:
  url = (f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/data/"
         f"{survey}.csv")
  return RawFile(path=f"generativesocialchoice/{survey}.csv",
                 published_at=url,
                 download=Download(
                     target=f"generativesocialchoice/{survey}.csv", url=url))


SURVEY_FILES = tuple(_raw(s) for s in SURVEYS)


def default_descriptions(given: tuple[str, ...],
                         gen: tuple[str, ...]) -> tuple[str, ...]:
  """The release's three generic descriptions (docs/method.md#descriptions)."""
  i, o = ", ".join(given), ", ".join(gen)
  return (f"The following are given: {i}. You must generate {o}.",
          f"Given: {i}. Generate: {o}.",
          f"Inputs: {i}. Outputs: {o}.")


VALIDATION_GIVEN = ("question_text", "json_choices")
VALIDATION_GEN = ("choice", "response_text")
FREETEXT_GIVEN = ("question_text",)
FREETEXT_GEN = ("response_text",)


def _by_user(task: str, ctx: BuildContext, question_type: str,
             row) -> Iterator[Instance]:
  paths = _common.raw_paths(task, ctx, SURVEY_FILES)
  for survey, path in zip(SURVEYS, paths):
    users: dict[str, list[Row]] = {}
    for line, rec in _common.read_csv(
        path, ("user_id", "question_type", "question_text", "json_choices",
               "choice", "text")):
      if rec["question_type"] != question_type:
        continue
      user = rec["user_id"].strip()
      made = row(rec)
      # Rows without a participant or without an answer are dropped. The
      # release drops free-text rows without an answer; in its multiple-choice
      # task a blank cell would print as NaN, which no row of the pinned
      # files has (docs/method.md#generative-social-choice).
      if user and made is not None:
        users.setdefault(user, []).append(made)
    for user, rows in users.items():
      yield Instance(id=f"{survey}/{user}", rows=rows)


def _validation_row(rec: dict[str, str]) -> Row | None:
  question = rec["question_text"].strip()
  choices = rec["json_choices"]
  choice = rec["choice"].strip()
  response = rec["text"].strip()
  if not (question and choices.strip() and choice and response):
    return None
  return Row(input=serialise_fields({"question_text": question,
                                     "json_choices": choices}),
             output=serialise_fields({"choice": choice,
                                      "response_text": response}))


def _freetext_row(rec: dict[str, str]) -> Row | None:
  question = rec["question_text"].strip()
  response = rec["text"].strip()
  if not (question and response):
    return None
  return Row(input=question, output=response)


def generate_validation(ctx: BuildContext) -> Iterator[Instance]:
  return _by_user("generativesocialchoice_validation", ctx, MULTIPLE_CHOICE,
                  _validation_row)


def generate_freetext(ctx: BuildContext) -> Iterator[Instance]:
  return _by_user("generativesocialchoice_freetext", ctx, FREE_TEXT,
                  _freetext_row)


TASKS = [
    TaskSpec(name="generativesocialchoice_validation", suite_split="train",
             kind="icl", generate=generate_validation,
             default_descriptions=default_descriptions(VALIDATION_GIVEN,
                                                       VALIDATION_GEN),
             raw_files=SURVEY_FILES,
             about="Generative Social Choice: one participant's rating and "
             "explanation of candidate statements."),
    TaskSpec(name="generativesocialchoice_freetext", suite_split="train",
             kind="icl", generate=generate_freetext,
             default_descriptions=default_descriptions(FREETEXT_GIVEN,
                                                       FREETEXT_GEN),
             raw_files=SURVEY_FILES,
             about="Generative Social Choice: one participant's written "
             "answers to open survey questions."),
]
