"""Community Alignment (Meta, 2025): multilingual preferences of individuals.

Raw file, from the Hugging Face dataset facebook/community-alignment-dataset
(split `filtered`):
  community_alignment/filtered_community_alignment.csv: one row per
    conversation; the columns used are `first_turn_prompt`,
    `first_turn_response_a` .. `_d`, `first_turn_preferred_response`
    (`response_a` .. `response_d`), `first_turn_feedback` (the optional
    justification), `second_turn_prompt` (the annotator's reply),
    `assigned_lang`, `annotator_id` and the demographics `annotator_age`,
    `annotator_gender`, `annotator_education_level`, `annotator_political`,
    `annotator_ethnicity`, `annotator_country`.
Only the first 10,000 records are read, as the release streams them.

Four train tasks (docs/method.md#community-alignment):
  community_alignment_initial_prompt: per language, opening prompts.
  community_alignment_individual_reply: per annotator, {prompt, preferred
    model response} -> the annotator's next message.
  community_alignment_individual_preferences: per annotator, {prompt,
    response_a..d} -> {preferred_response, justification}.
  community_alignment_response: per language, prompt -> JSON list of its 4
    candidate responses in a shuffled order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_HF = "facebook/community-alignment-dataset"
_FILE = "data/filtered_community_alignment.csv"
FILTERED = RawFile(
    path="community_alignment/filtered_community_alignment.csv",
    published_at=f"https://huggingface.co/datasets/{_HF}/blob/main/{_FILE}",
    download=Download(target="community_alignment/"
                      "filtered_community_alignment.csv",
                      hf_repo=_HF, hf_filename=_FILE))

MAX_ROWS = 10_000  # the release streams the first 10k rows of the split
MIN_ROWS_PER_ANNOTATOR = 4
END_OF_TEXT = "<|end_of_text|>"
RESPONSES = ("response_a", "response_b", "response_c", "response_d")
_DEMOGRAPHICS = (("age", "annotator_age"), ("gender", "annotator_gender"),
                 ("education_level", "annotator_education_level"),
                 ("annotator_political", "annotator_political"),
                 ("ethnicity", "annotator_ethnicity"),
                 ("country", "annotator_country"))
COLUMNS = ("first_turn_prompt", *(f"first_turn_{r}" for r in RESPONSES),
           "first_turn_preferred_response", "first_turn_feedback",
           "second_turn_prompt", "assigned_lang", "annotator_id",
           *(c for _, c in _DEMOGRAPHICS))

REPLY_DESCRIPTION = ("The following are user replies to a language model.\n"
                     "User demographics: ")
PREFERENCE_DESCRIPTION = (
    "Given a prompt and a set of model responses, the user was tasked with "
    "selecting their most preferred response and an optional justification.")
RESPONSE_DESCRIPTION = (
    "You are a helpful assistant designed to help generate a list of 4 "
    "diverse responses for a user to consider.")


def _rows(ctx: BuildContext, task: str) -> list[dict[str, Any]]:
  """The release's table: the first MAX_ROWS records that have a prompt and
  a preferred response; empty cells are None; END_OF_TEXT removed from the
  four responses."""
  (path,) = _common.raw_paths(task, ctx, (FILTERED,))
  rows = []
  for n, (line, record) in enumerate(_common.read_csv(path, COLUMNS)):
    if n >= MAX_ROWS:
      break
    rec = {c: (None if record[c] in _common.MISSING else record[c])
           for c in COLUMNS}
    if not rec["first_turn_prompt"] or not rec["first_turn_preferred_response"]:
      continue
    for r in RESPONSES:
      if rec[f"first_turn_{r}"] is not None:
        rec[f"first_turn_{r}"] = rec[f"first_turn_{r}"].replace(END_OF_TEXT,
                                                                "")
    preferred = rec["first_turn_preferred_response"]
    if preferred not in RESPONSES:
      raise _common.bad_value(path, f"line {line}",
                              "first_turn_preferred_response",
                              f"expected one of {list(RESPONSES)}, got "
                              f"{preferred!r}")
    rec["line"] = line
    rows.append(rec)
  return rows


def _by_language(rows: list[dict[str, Any]]) -> dict[str, list[dict]]:
  """Rows with distinct prompts (first kept), grouped by assigned language in
  order of first appearance. Rows without a language are left out (the
  release would group them under NaN and then match none)."""
  seen: set[str] = set()
  groups: dict[str, list[dict]] = {}
  for rec in rows:
    if rec["first_turn_prompt"] in seen:
      continue
    seen.add(rec["first_turn_prompt"])
    if rec["assigned_lang"] is not None:
      groups.setdefault(rec["assigned_lang"], []).append(rec)
  return groups


def _by_annotator(rows: list[dict[str, Any]]) -> dict[str, list[dict]]:
  """Rows per annotator (order of first appearance), annotators with at
  least MIN_ROWS_PER_ANNOTATOR rows. No cap on annotators: the release
  passes max_inds=1000 to a one-instance class, where it does nothing
  (docs/method.md#community-alignment)."""
  groups: dict[str, list[dict]] = {}
  for rec in rows:
    if rec["annotator_id"] is not None:
      groups.setdefault(rec["annotator_id"], []).append(rec)
  return {a: g for a, g in groups.items()
          if len(g) >= MIN_ROWS_PER_ANNOTATOR}


def _demographics(rec: dict[str, Any]) -> str:
  return json.dumps({key: rec[column] for key, column in _DEMOGRAPHICS})


def generate_initial_prompt(ctx: BuildContext) -> Iterator[Instance]:
  """Per language: the distinct opening prompts, stripped (outputs only)."""
  rows = _rows(ctx, "community_alignment_initial_prompt")
  for lang, group in _by_language(rows).items():
    yield Instance(
        id=lang, rows=[Row(output=r["first_turn_prompt"].strip())
                       for r in group],
        descriptions=["Generate a prompt for a language model in the "
                      f"following language: {lang}."])


def generate_individual_reply(ctx: BuildContext) -> Iterator[Instance]:
  """Per annotator: {prompt, preferred response} -> their second message."""
  # Conversations without a second turn are dropped before counting an
  # annotator's rows; the release keeps them and prints the missing reply
  # as the text "None" (docs/method.md#community-alignment).
  rows = [r for r in _rows(ctx, "community_alignment_individual_reply")
          if r["second_turn_prompt"] is not None]
  for annotator, group in _by_annotator(rows).items():
    yield Instance(
        id=annotator,
        rows=[Row(input=serialise_fields({
            "prompt": r["first_turn_prompt"],
            "model_response":
                r["first_turn_" + r["first_turn_preferred_response"]]}),
                  output=r["second_turn_prompt"]) for r in group],
        descriptions=[REPLY_DESCRIPTION + _demographics(group[0])])


def generate_individual_preferences(ctx: BuildContext) -> Iterator[Instance]:
  """Per annotator: prompt and 4 responses -> choice and justification."""
  rows = _rows(ctx, "community_alignment_individual_preferences")
  for annotator, group in _by_annotator(rows).items():
    yield Instance(
        id=annotator,
        rows=[Row(input=serialise_fields(
            {"prompt": r["first_turn_prompt"],
             **{resp: r[f"first_turn_{resp}"] for resp in RESPONSES}}),
                  output=serialise_fields(
                      {"preferred_response": r["first_turn_preferred_response"],
                       "justification": r["first_turn_feedback"]}))
              for r in group],
        descriptions=[
            PREFERENCE_DESCRIPTION + "\nUser demographics: "
            + _demographics(group[0]), PREFERENCE_DESCRIPTION])


def generate_response(ctx: BuildContext) -> Iterator[Instance]:
  """Per language: prompt -> its 4 candidate responses, shuffled, as JSON."""
  task = "community_alignment_response"
  rows = _rows(ctx, task)
  # One seeded shuffle per distinct prompt, in file order (the release
  # shuffles with Python's random seeded 42 in the same order).
  rng = _common.seeded_rng(ctx, task)
  for lang, group in _by_language(rows).items():
    out = []
    for r in group:
      responses = [r[f"first_turn_{resp}"] for resp in RESPONSES]
      rng.shuffle(responses)
      out.append(Row(input=r["first_turn_prompt"],
                     output=json.dumps(responses)))
    yield Instance(id=lang, rows=out, descriptions=[RESPONSE_DESCRIPTION])


TASKS = [
    TaskSpec(name="community_alignment_initial_prompt", suite_split="train",
             kind="icl", generate=generate_initial_prompt, mean_k=32,
             chunk_all_rows=True, raw_files=(FILTERED,),
             about="Community Alignment: opening prompts per language."),
    TaskSpec(name="community_alignment_individual_reply",
             suite_split="train", kind="icl",
             generate=generate_individual_reply, mean_k=25,
             chunk_all_rows=True, raw_files=(FILTERED,),
             about="Community Alignment: one annotator's reply to the "
             "response they preferred."),
    TaskSpec(name="community_alignment_individual_preferences",
             suite_split="train", kind="icl",
             generate=generate_individual_preferences, mean_k=25,
             chunk_all_rows=True, raw_files=(FILTERED,),
             about="Community Alignment: one annotator's choice among 4 "
             "responses and its justification."),
    TaskSpec(name="community_alignment_response", suite_split="train",
             kind="icl", generate=generate_response, fixed_k=5,
             chunk_all_rows=True, raw_files=(FILTERED,),
             about="Community Alignment: the 4 candidate responses to a "
             "prompt, per language."),
]
