"""Chatbot Arena conversations (Zheng et al., 2023): three test tasks.

Raw file: HF lmsys/chatbot_arena_conversations (gated: accept its conditions
on the dataset page while logged in; downloading needs your Hugging Face
token), data/train-00000-of-00001-cced8514c7ed782a.parquet. One row per
battle; the converter reads `judge` (anonymised user), `model_a`, `model_b`,
`winner` (model_a / model_b / tie / tie (bothbad)) and `conversation_a` /
`conversation_b` (lists of {content, role} messages).

As in the release (docs/method.md#chatbot-arena), only judges with at least 4
battles are kept; a battle's opening prompt is the first message of
conversation_a and each model's response the second message of its
conversation (later turns are unused), all stripped.

  chatbotarena_prompts: per judge, the prompts they wrote (1000 judges).
  chatbotarena_individual_prefs: per judge, (prompt, response A, response B)
    -> their verdict a / b / tie / bothbad (the first 1000 judges).
  chatbotarena_assistant: per model, prompt -> that model's response.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

HF_REPO = "lmsys/chatbot_arena_conversations"
HF_FILENAME = "data/train-00000-of-00001-cced8514c7ed782a.parquet"
TRAIN = RawFile(
    path="chatbotarena/" + HF_FILENAME,
    published_at=(f"https://huggingface.co/datasets/{HF_REPO} ({HF_FILENAME}; "
                  "gated: accept the dataset's conditions on that page while "
                  "logged in, then download with your Hugging Face token, "
                  "e.g. after `huggingface-cli login` or with HF_TOKEN set)"),
    download=Download(target="chatbotarena/" + HF_FILENAME, hf_repo=HF_REPO,
                      hf_filename=HF_FILENAME))

MIN_BATTLES = 4  # per judge, as the release's loader keeps.
MAX_JUDGES = 1000  # instances of _prompts and _individual_prefs.
WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie",
           "tie (bothbad)": "bothbad"}

PROMPT_DESCRIPTIONS = ("Language model prompt",)
PREFS_DESCRIPTION = (
    "The following are preferences for a single individual. They will prompt "
    "a language model (opening_prompt), and then will compare the two "
    "responses (model_a_response and model_b_response). The user will then "
    "rate the winner, with one of the following options: {options}")
ASSISTANT_DESCRIPTION = (
    "You will be given opening_prompts to a language model (could be "
    "anywhere from pretty good to really good). Your job is to predict what "
    "the language model will say in response to the opening prompt. All "
    "responses are from the same model.")


@dataclasses.dataclass(frozen=True)
class Battle:
  judge: str
  model_a: str
  model_b: str
  prompt: str
  response_a: str
  response_b: str
  winner: str  # a, b, tie or bothbad


def _text(path: str, index: int, column: str, value: Any) -> str:
  if not isinstance(value, str):
    raise _common.bad_value(path, f"row {index}", column,
                            f"expected text, got {value!r}")
  return value


def _message(path: str, index: int, column: str, conversation: Any,
             position: int) -> str:
  """The stripped content of message `position` of a conversation cell."""
  if (not isinstance(conversation, list) or len(conversation) <= position
      or not isinstance(conversation[position], dict)
      or not isinstance(conversation[position].get("content"), str)):
    raise _common.bad_value(
        path, f"row {index}", column,
        f"expected a list of at least {position + 1} messages with text "
        f"`content`, got {str(conversation)[:120]}")
  return conversation[position]["content"].strip()


def _battles(task: str, ctx: BuildContext) -> list[Battle]:
  """The battles of judges with >= MIN_BATTLES battles, in file order."""
  (path,) = _common.raw_paths(task, ctx, (TRAIN,))
  records = _common.read_parquet(path, ("judge", "model_a", "model_b",
                                        "winner", "conversation_a",
                                        "conversation_b"))
  counts = collections.Counter(r["judge"] for r in records
                               if r["judge"] is not None)
  battles = []
  for index, rec in enumerate(records):
    if rec["judge"] is None or counts[rec["judge"]] < MIN_BATTLES:
      continue
    if rec["winner"] not in WINNERS:
      raise _common.bad_value(path, f"row {index}", "winner",
                              f"unknown verdict {rec['winner']!r}; expected "
                              f"one of {list(WINNERS)}")
    battles.append(Battle(
        judge=_text(path, index, "judge", rec["judge"]),
        model_a=_text(path, index, "model_a", rec["model_a"]),
        model_b=_text(path, index, "model_b", rec["model_b"]),
        prompt=_message(path, index, "conversation_a", rec["conversation_a"],
                        0),
        response_a=_message(path, index, "conversation_a",
                            rec["conversation_a"], 1),
        response_b=_message(path, index, "conversation_b",
                            rec["conversation_b"], 1),
        winner=WINNERS[rec["winner"]]))
  return battles


def _by_judge(battles: list[Battle]) -> dict[str, list[Battle]]:
  judges: dict[str, list[Battle]] = {}
  for b in battles:
    judges.setdefault(b.judge, []).append(b)
  return judges


def generate_prompts(ctx: BuildContext) -> Iterator[Instance]:
  """Per judge (a seeded sample of MAX_JUDGES), their opening prompts."""
  judges = _by_judge(_battles("chatbotarena_prompts", ctx))
  chosen = list(judges)
  if len(chosen) > MAX_JUDGES:
    # The release shuffles the judges (seed 42) and keeps the first 1000: a
    # random sample, made here with our own seeded stream, kept in file order.
    keep = set(_common.seeded_rng(ctx, "chatbotarena_prompts").sample(
        chosen, MAX_JUDGES))
    chosen = [j for j in chosen if j in keep]
  for judge in chosen:
    yield Instance(id=judge, rows=[Row(output=b.prompt) for b in judges[judge]])


def winner_options(battles: list[Battle]) -> str:
  """The verdicts in order of first appearance, printed as the release does.

  The release formats pandas' `unique()` array into the description, so it
  reads like numpy's repr without commas: `['a' 'b' 'tie' 'bothbad']`.
  """
  seen = dict.fromkeys(b.winner for b in battles)
  return "[" + " ".join(repr(w) for w in seen) + "]"


def generate_individual_prefs(ctx: BuildContext) -> Iterator[Instance]:
  """Per judge (the first MAX_JUDGES), prompt + 2 responses -> verdict."""
  battles = _battles("chatbotarena_individual_prefs", ctx)
  description = PREFS_DESCRIPTION.format(options=winner_options(battles))
  judges = _by_judge(battles)
  # The release caps with max_inds, which keeps the first judges in order of
  # appearance (unlike _prompts, which samples them).
  for judge in list(judges)[:MAX_JUDGES]:
    yield Instance(
        id=judge, descriptions=[description],
        rows=[Row(input=serialise_fields({
            "opening_prompt": b.prompt,
            "model_a_response": b.response_a,
            "model_b_response": b.response_b}), output=b.winner)
              for b in judges[judge]])


def generate_assistant(ctx: BuildContext) -> Iterator[Instance]:
  """Per model that is ever model A, prompt -> its response (as A, then as B).

  As in the release, a model seen only as model B gets no instance.
  """
  battles = _battles("chatbotarena_assistant", ctx)
  for model in dict.fromkeys(b.model_a for b in battles):
    rows = ([Row(input=b.prompt, output=b.response_a)
             for b in battles if b.model_a == model]
            + [Row(input=b.prompt, output=b.response_b)
               for b in battles if b.model_b == model])
    yield Instance(id=model, rows=rows, descriptions=[
        ASSISTANT_DESCRIPTION, f"{ASSISTANT_DESCRIPTION}\nModel: {model}"])


TASKS = [
    # Release: SingleVariableIID per judge, n_iter=100 (n_per=1): one
    # episode of up to 100 of the judge's prompts; max_inds=1000.
    TaskSpec(name="chatbotarena_prompts", suite_split="test", kind="icl",
             generate=generate_prompts, fixed_k=100,
             default_descriptions=PROMPT_DESCRIPTIONS, raw_files=(TRAIN,),
             about="Chatbot Arena: the opening prompts one user wrote."),
    # Release: IndividualMultivariate by judge, n_per=-1, GP(16).
    TaskSpec(name="chatbotarena_individual_prefs", suite_split="test",
             kind="icl", generate=generate_individual_prefs, mean_k=16,
             chunk_all_rows=True, raw_files=(TRAIN,),
             about="Chatbot Arena: one user's verdicts (a/b/tie/bothbad) "
             "on pairs of model responses."),
    # Release: GenericMultivariate per model, n_per=-1, GP(32).
    TaskSpec(name="chatbotarena_assistant", suite_split="test", kind="icl",
             generate=generate_assistant, mean_k=32, chunk_all_rows=True,
             raw_files=(TRAIN,),
             about="Chatbot Arena: one model's responses to users' opening "
             "prompts."),
]
