"""PRISM (Kirk et al., 2024): diverse people's prompts and ratings of LLM replies.

Raw files, JSON lines from the Hugging Face dataset
HannahRoseKirk/prism-alignment (revision REVISION):
  prism/conversations.jsonl: one conversation per line: `user_id`,
    `conversation_type` ("unguided", "values guided", "controversy guided"),
    `opening_prompt`, `conversation_history` (a list of turns: `turn`, `role`
    "user"/"model", `content`, and for model turns `score` (1-100),
    `if_chosen`, `within_turn_id`).
  prism/survey.jsonl: one participant per line: `user_id`, `age`, `gender`,
    `education`, `employment_status` (strings or null), `location` (an object
    with `reside_country`), `religion` (an object with `simplified`).
(The release reads the survey through the `survey` config, which is this file.)

Three train tasks (docs/method.md#prism): prism_prompts (conversation type ->
opening prompt), prism_prompts_individual (one participant's prompts, with a
demographics description), prism_individual_preferences (one participant's
first-turn choice and scores of four replies).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

HF_REPO = "HannahRoseKirk/prism-alignment"
REVISION = "18ab5cfb37456f4ec8cbc00212ce54cf7b1239f6"  # main, "Update README.md"


def _raw(name: str) -> RawFile:
  return RawFile(
      path=f"prism/{name}",
      published_at=f"https://huggingface.co/datasets/{HF_REPO}/blob/"
      f"{REVISION}/{name}",
      download=Download(target=f"prism/{name}", hf_repo=HF_REPO,
                        hf_filename=name, revision=REVISION))


CONVERSATIONS = _raw("conversations.jsonl")
SURVEY = _raw("survey.jsonl")

# The instructions participants saw per conversation type (the PRISM paper's
# wording, as the release writes them; data, copied exactly).
CONVERSATION_TYPES = {
    "unguided": "Ask, request or talk to the model about anything. It is up "
                "to you!",
    "values guided": "Ask, request or talk to the model about something "
                     "important to you or that represents your values. This "
                     "could be related to work, religion, family and "
                     "relationship, politics or culture",
    "controversy guided": "Ask, request or talk to the model about something "
                          "controversial or where people would disagree in "
                          "your community, culture or country.",
}
PROMPTS_DESCRIPTION = ("Generate a request to ask a language model, according "
                       "to the conversation type description.")
INDIVIDUAL_DESCRIPTION = ("Generate opening prompts for conversations (all "
                          "same individual)")
INDIVIDUAL_WITH_DEMOGRAPHICS = (
    "Generate opening prompts for conversations given user demographics:\n\n"
    "{demographics} (all same individual)")
# "a user game" is the release's typo; kept, since descriptions are data.
PREFERENCES_DESCRIPTION = (
    "The following is a prompt a user game to a chatbot, along with 4 "
    "responses. They were asked to choose their preferred response and rate "
    "the responses on a scale of 0 to 100, where 100 is the most preferred. "
    "The responses were labeled A, B, C, D.\nUser demographics: "
    "{demographics}")
N_RESPONSES = 4  # first-turn replies shown, labelled a-d
MIN_PREFERENCE_ROWS = 2  # per participant


class _Line:
  """One JSON-lines record; a bad field names the file, line and key."""

  def __init__(self, path: str, line: int, obj: dict[str, Any]):
    self.path, self.line, self.obj = path, line, obj

  def error(self, key: str, message: str) -> ValueError:
    return _common.bad_value(self.path, f"line {self.line}", key, message)

  def text(self, key: str, nullable: bool = False) -> str | None:
    value = self.obj.get(key)
    if value is None and nullable:
      return None
    if not isinstance(value, str):
      raise self.error(key, f"expected a string, got {value!r:.80}")
    return value


def _conversations(task: str, ctx: BuildContext,
                   with_survey: bool) -> tuple[list[_Line], dict[str, str]]:
  """The conversation records and, if asked, user id -> demographics line."""
  files = (CONVERSATIONS, SURVEY) if with_survey else (CONVERSATIONS,)
  paths = _common.raw_paths(task, ctx, files)
  records = [_Line(paths[0], n, obj) for n, obj in _common.read_jsonl(paths[0])]
  demographics: dict[str, str] = {}
  if with_survey:
    for n, obj in _common.read_jsonl(paths[1]):
      person = _Line(paths[1], n, obj)
      demographics.setdefault(person.text("user_id"), _demographics(person))
  return records, demographics


def _demographics(person: _Line) -> str:
  """`Age: ...; Gender: ...; ...` in the release's order; nulls left out."""
  parts = []
  for key, label in (("age", "Age"), ("gender", "Gender"),
                     ("education", "Education"),
                     ("employment_status", "Employment")):
    value = person.obj.get(key)
    if value is not None:
      parts.append(f"{label}: {value}")
  for key, field, label in (("location", "reside_country", "Country"),
                            ("religion", "simplified", "Religion")):
    value = person.obj.get(key)
    # The release prints a present-but-null field as "None"; we leave it out
    # like any other missing attribute (docs/method.md#prism-rows).
    if isinstance(value, dict) and value.get(field) is not None:
      parts.append(f"{label}: {value[field]}")
  return "; ".join(parts)


def _type_description(rec: _Line) -> str:
  kind = rec.obj.get("conversation_type")
  if kind not in CONVERSATION_TYPES:
    # The release maps an unknown type to NaN and prints "nan"; stop instead
    # (docs/method.md#prism-rows).
    raise rec.error("conversation_type", f"unknown type {kind!r}; expected "
                    f"one of {list(CONVERSATION_TYPES)}")
  return CONVERSATION_TYPES[kind]


def _prompt_row(rec: _Line) -> Row | None:
  """(type instruction, stripped opening prompt); None without a prompt."""
  description = _type_description(rec)
  prompt = rec.text("opening_prompt", nullable=True)
  # The release would print a missing prompt as "nan"; we drop the row
  # (docs/method.md#prism-rows).
  if prompt is None:
    return None
  return Row(input=description, output=prompt.strip())


def generate_prompts(ctx: BuildContext) -> Iterator[Instance]:
  """One instance: every conversation's (type instruction, opening prompt)."""
  records, _ = _conversations("prism_prompts", ctx, with_survey=False)
  rows = [_prompt_row(r) for r in records]
  yield Instance(id="all", rows=[r for r in rows if r is not None])


def generate_prompts_individual(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per surveyed participant, in order of first conversation."""
  records, demographics = _conversations("prism_prompts_individual", ctx,
                                         with_survey=True)
  users: dict[str, list[Row]] = {}
  for rec in records:
    user = rec.text("user_id")
    row = _prompt_row(rec)
    # The release inner-joins the conversations with the survey.
    if user in demographics and row is not None:
      users.setdefault(user, []).append(row)
  # The release's max_total=800 applies per participant (one generate_many
  # call each) and never binds, so no episode cap is set on the task.
  for user, rows in users.items():
    yield Instance(id=user, rows=rows, descriptions=[
        INDIVIDUAL_DESCRIPTION,
        INDIVIDUAL_WITH_DEMOGRAPHICS.format(demographics=demographics[user])])


def _first_turn(rec: _Line) -> dict[str, Any] | None:
  """The given and output fields of one conversation's first turn, or None.

  As the release: model turns of turn 0 that carry `score` and `if_chosen`,
  sorted by `within_turn_id`, the first four labelled a-d; the chosen one is
  the label of a reply with if_chosen. Conversations without four scored
  replies, a chosen one, or a prompt are dropped (the release's dropna).
  """
  history = rec.obj.get("conversation_history")
  if history is None:
    return None
  if not isinstance(history, list):
    raise rec.error("conversation_history",
                    f"expected a list of turns, got {history!r:.80}")
  replies = []
  for turn in history:
    if not isinstance(turn, dict):
      raise rec.error("conversation_history",
                      f"expected turn objects, got {turn!r:.80}")
    if (turn.get("role") == "model" and turn.get("turn", -1) == 0
        and "score" in turn and "if_chosen" in turn):
      replies.append(turn)
  replies.sort(key=lambda t: t.get("within_turn_id") or 0)
  replies = replies[:N_RESPONSES]
  prompt = rec.text("opening_prompt", nullable=True)
  if len(replies) < N_RESPONSES or prompt is None:
    return None
  given: dict[str, Any] = {"opening_prompt": prompt}
  output: dict[str, Any] = {"chosen_response": None}
  for label, reply in zip("abcd", replies):
    content, score = reply.get("content"), reply["score"]
    if content is None or score is None:
      return None
    if (isinstance(score, bool) or not isinstance(score, (int, float))
        or score != score):
      raise rec.error("conversation_history",
                      f"turn-0 reply {label}: score must be a number, got "
                      f"{score!r:.80}")
    given[f"response_{label}"] = content
    output[f"score_{label}"] = int(score)  # the release's astype(int)
    if reply["if_chosen"]:
      output["chosen_response"] = label
  if output["chosen_response"] is None:
    return None
  return {"given": given, "output": output}


def generate_individual_preferences(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per participant (sorted ids) with >= 2 usable first turns."""
  records, demographics = _conversations("prism_individual_preferences", ctx,
                                         with_survey=True)
  users: dict[str, list[Row]] = {}
  for rec in records:
    user = rec.text("user_id")
    if user not in demographics:
      continue
    fields = _first_turn(rec)
    if fields is not None:
      users.setdefault(user, []).append(Row(
          input=serialise_fields(fields["given"]),
          output=serialise_fields(fields["output"])))
  # The release runs one generator per participant, so its max_inds=500
  # never binds: every qualifying participant is kept.
  for user in sorted(users):
    if len(users[user]) < MIN_PREFERENCE_ROWS:
      continue
    # The release leaves "{demographics}" literally in this description
    # (docs/method.md#filled-placeholders); we fill it with the
    # participant's demographics line.
    yield Instance(id=user, rows=users[user], descriptions=[
        PREFERENCES_DESCRIPTION.format(demographics=demographics[user])])


TASKS = [
    TaskSpec(name="prism_prompts", suite_split="train", kind="icl",
             generate=generate_prompts, mean_k=128, chunk_all_rows=True,
             default_descriptions=(PROMPTS_DESCRIPTION,),
             raw_files=(CONVERSATIONS,),
             about="PRISM: an opening prompt for an LLM, given the "
             "conversation type's instruction."),
    TaskSpec(name="prism_prompts_individual", suite_split="train",
             kind="icl", generate=generate_prompts_individual, mean_k=96,
             chunk_all_rows=True,
             default_descriptions=(INDIVIDUAL_DESCRIPTION,),
             raw_files=(CONVERSATIONS, SURVEY),
             about="PRISM: one participant's opening prompts, with their "
             "demographics."),
    TaskSpec(name="prism_individual_preferences", suite_split="train",
             kind="icl", generate=generate_individual_preferences, mean_k=20,
             chunk_all_rows=True, raw_files=(CONVERSATIONS, SURVEY),
             about="PRISM: one participant's chosen reply and 1-100 scores "
             "for four first-turn LLM replies."),
]
