"""Collective Alignment 1 (OpenAI, 2025): individuals' assessments of responses.

Raw files, from the Hugging Face dataset openai/collective-alignment-1 (JSON
lines; the release reads the configs `comparisons` and
`merged_comparison_annotators`, first 100,000 rows of each):
  collective_alignment/comparisons.jsonl: `prompt_id`, `prompt` ({"messages":
    [{"role", "content"}, ...]}), `responses` ([{"response_index": "A",
    "messages": [{"role", "content"}]}, ...]).
  collective_alignment/merged_comparisons_annotators.jsonl: one assessment
    per (prompt, annotator): `prompt_id`, `annotator_id`, `ranking_blocks`
    ({"personal": [{"ranking", "rationale"}], "world": [...],
    "unacceptable": [{"rating": ["C", ...], "rationale"}]}), `importance`,
    `representativeness`, `subjectivity`, `demographics` (an object).

One train task, collective_alignment_individual
(docs/method.md#collective-alignment): per annotator with at least 3
assessments, {conversation, response_a..d} -> JSON of their 9 answers; the
annotator's demographics (JSON) are in the description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_HF = "openai/collective-alignment-1"


def _raw(name: str) -> RawFile:
  return RawFile(path=f"collective_alignment/{name}",
                 published_at=f"https://huggingface.co/datasets/{_HF}/blob/"
                 f"main/{name}",
                 download=Download(target=f"collective_alignment/{name}",
                                   hf_repo=_HF, hf_filename=name))


COMPARISONS = _raw("comparisons.jsonl")
MERGED = _raw("merged_comparisons_annotators.jsonl")

MAX_ROWS = 100_000  # per file, as the release streams them
MIN_ASSESSMENTS = 3
RESPONSES = ("response_a", "response_b", "response_c", "response_d")
OUTPUTS = ("personal_ranking", "world_ranking", "personal_rationale",
           "world_rationale", "unacceptable_responses",
           "unacceptable_rationale", "importance", "representativeness",
           "subjectivity")
DESCRIPTION = (
    "The following are AI response evaluations from a single individual "
    "with specific demographics and values. They were asked to provide "
    "their own personal ranking of the model responses, a ranking for what "
    "is best for the world, a rationale for each of them, which (if any) "
    "unacceptable responses are unacceptable, and a rationale for why they "
    "are unacceptable. Finally, they were asked to provide the importance of "
    "getting the correct answer, how representative the response is of "
    "something they would write, and whether they feel the evaluation is "
    "subjective.\nAnnotator demographics: ")




def _need(path: str, line: int, obj: dict, key: str, kind: type) -> Any:
  value = obj.get(key)
  if not isinstance(value, kind):
    raise _common.bad_value(path, f"line {line}", key,
                            f"expected {kind.__name__}, got {value!r}")
  return value


def _prompts(path: str) -> dict[Any, dict[str, str]]:
  """prompt_id -> {"conversation", "response_a".."response_d"}.

  The conversation is the user messages' texts joined by newlines (the
  assistant turns of a multi-turn prompt are left out, as in the release).
  The file repeats a prompt once per assessment; the last copy wins.
  """
  lookup = {}
  for line, obj in _common.read_jsonl(path, MAX_ROWS):
    messages = _need(path, line, _need(path, line, obj, "prompt", dict),
                     "messages", list)
    users = [m.get("content") for m in messages
             if isinstance(m, dict) and m.get("role") == "user"]
    if not all(isinstance(u, str) for u in users):
      raise _common.bad_value(path, f"line {line}", "prompt.messages",
                              "a user message has no text content")
    entry = {"conversation": "\n".join(users)}
    for response in _need(path, line, obj, "responses", list):
      try:
        index = response["response_index"]
        content = response["messages"][0]["content"]
      except (KeyError, IndexError, TypeError):
        raise _common.bad_value(
            path, f"line {line}", "responses",
            f"expected response_index and messages[0].content in "
            f"{str(response)[:80]!r}") from None
      entry[f"response_{str(index).lower()}"] = content
    lookup[obj.get("prompt_id")] = entry
  return lookup


def _first_block(path: str, line: int, blocks: dict, name: str) -> dict:
  block = blocks.get(name) or []
  if not isinstance(block, list) or (block and not isinstance(block[0], dict)):
    raise _common.bad_value(path, f"line {line}", f"ranking_blocks.{name}",
                            f"expected a list of objects, got {block!r}")
  return block[0] if block else {}


def generate_individual(ctx: BuildContext) -> Iterator[Instance]:
  """Per annotator (sorted ids): prompt and responses -> their assessment."""
  comparisons_path, merged_path = _common.raw_paths(
      "collective_alignment_individual", ctx, (COMPARISONS, MERGED))
  prompts = _prompts(comparisons_path)
  assessments = list(_common.read_jsonl(merged_path, MAX_ROWS))
  counts: dict[Any, int] = {}
  for _, obj in assessments:
    counts[obj.get("annotator_id")] = counts.get(obj.get("annotator_id"), 0) + 1
  rows: dict[str, list[Row]] = {}
  demographics: dict[str, str] = {}
  for line, obj in assessments:
    annotator = obj.get("annotator_id")
    # The minimum counts every assessment in the file, including ones whose
    # prompt is not in the comparisons (as in the release).
    if annotator is None or counts[annotator] < MIN_ASSESSMENTS:
      continue
    prompt = prompts.get(obj.get("prompt_id"))
    if prompt is None:
      continue
    blocks = obj.get("ranking_blocks") or {}
    if not isinstance(blocks, dict):
      raise _common.bad_value(merged_path, f"line {line}", "ranking_blocks",
                              f"expected an object, got {blocks!r}")
    personal = _first_block(merged_path, line, blocks, "personal")
    world = _first_block(merged_path, line, blocks, "world")
    unacceptable = _first_block(merged_path, line, blocks, "unacceptable")
    rating = unacceptable.get("rating") or []
    if not (isinstance(rating, list) and all(isinstance(r, str)
                                             for r in rating)):
      raise _common.bad_value(merged_path, f"line {line}",
                              "ranking_blocks.unacceptable.rating",
                              f"expected a list of response letters, got "
                              f"{rating!r}")
    answers = {
        "personal_ranking": personal.get("ranking", ""),
        "world_ranking": world.get("ranking", ""),
        "personal_rationale": personal.get("rationale", ""),
        "world_rationale": world.get("rationale", ""),
        "unacceptable_responses": "|".join(rating),
        "unacceptable_rationale": unacceptable.get("rationale", ""),
        "importance": obj.get("importance"),
        "representativeness": obj.get("representativeness"),
        "subjectivity": obj.get("subjectivity"),
    }
    given = {"conversation": prompt["conversation"],
             **{r: prompt.get(r, "") for r in RESPONSES}}
    key = str(annotator)
    rows.setdefault(key, []).append(
        Row(input=serialise_fields(given),
            output=serialise_fields({k: answers[k] for k in OUTPUTS})))
    # The description uses the annotator's first kept assessment.
    demographics.setdefault(key, json.dumps(obj.get("demographics")))
  for annotator in sorted(rows):
    yield Instance(id=annotator, rows=rows[annotator],
                   descriptions=[DESCRIPTION + demographics[annotator]])


TASKS = [
    # No n_per / n_iter in the release: one episode per annotator with all
    # of their assessments.
    TaskSpec(name="collective_alignment_individual", suite_split="train",
             kind="icl", generate=generate_individual,
             raw_files=(COMPARISONS, MERGED),
             about="Collective Alignment 1: one annotator's rankings, "
             "rationales and ratings of 4 responses, with demographics."),
]
