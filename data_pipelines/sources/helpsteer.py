"""HelpSteer2 (Wang et al., 2024) as simulated users' pairwise preferences.

Raw file: `helpsteer/train.jsonl.gz`, the file `train.jsonl.gz` of the
Hugging Face dataset `nvidia/HelpSteer2`. Gzipped JSON lines, one per
(prompt, response): `prompt`, `response` and five integer ratings 0-4,
`helpfulness`, `correctness`, `coherence`, `complexity`, `verbosity`. Each
prompt appears with two responses.

One train task, `helpsteer` (docs/method.md#helpsteer): NUM_USERS simulated
users, each with random weights on the five attributes; a user's instance is
PAIRS_PER_USER random prompts, each {prompt, response1, response2} -> `1` or
`2`, the response with the higher weighted score (ties -> `2`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

RAW = RawFile(
    path="helpsteer/train.jsonl.gz",
    published_at="https://huggingface.co/datasets/nvidia/HelpSteer2 (file "
    "train.jsonl.gz)",
    download=Download(target="helpsteer/train.jsonl.gz",
                      hf_repo="nvidia/HelpSteer2",
                      hf_filename="train.jsonl.gz"))
ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity",
              "verbosity")
# Weights are U(0, 1) minus these: the first three lean positive, complexity
# and verbosity are as likely to count against a response as for it.
SHIFTS = (0.05, 0.05, 0.05, 0.5, 0.5)
NUM_USERS = 500
PAIRS_PER_USER = 40
_JUDGE = ("The following are ratings from the same individual, who was asked "
          "to judge two language model outputs written by someone else. "
          "Generate the winner.")
DESCRIPTIONS = (
    "The following are given: prompt, response1, response2. You must "
    "generate the winner.",
    _JUDGE,
    # The release's label reads "User descriptionities"; it is kept as
    # written, since descriptions are data the models were trained on
    # (docs/method.md#helpsteer).
    _JUDGE + "\nUser descriptionities: {}",
)


def _pairs(path: str) -> list[tuple[str, str, str, tuple[float, ...],
                                    tuple[float, ...]]]:
  """(prompt, response1, response2, ratings1, ratings2) per prompt.

  The first two responses of each prompt, in order of first appearance. A
  prompt with one response is left out (the release would stop with an
  IndexError; docs/method.md#helpsteer).
  """
  responses: dict[str, list[tuple[str, tuple[float, ...]]]] = {}
  with gzip.open(path, "rt", encoding="utf-8") as f:
    try:
      for line, text in enumerate(f, 1):
        if not text.strip():
          continue
        rec = _record(path, line, text)
        responses.setdefault(rec["prompt"], []).append(
            (rec["response"], tuple(rec[a] for a in ATTRIBUTES)))
    except (OSError, EOFError) as e:  # not gzip, or cut short
      raise ValueError(f"{path}: cannot read as gzip: {e}") from e
  return [(prompt, r[0][0], r[1][0], r[0][1], r[1][1])
          for prompt, r in responses.items() if len(r) >= 2]


def _record(path: str, line: int, text: str) -> dict[str, Any]:
  where = f"line {line}"
  try:
    rec = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}, {where}: not JSON ({e})") from e
  if not isinstance(rec, dict):
    raise ValueError(f"{path}, {where}: expected a JSON object")
  for key in ("prompt", "response"):
    if not isinstance(rec.get(key), str):
      raise _common.bad_value(path, where, key,
                              f"expected a string, got {rec.get(key)!r}")
  for key in ATTRIBUTES:
    value = rec.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      raise _common.bad_value(path, where, key,
                              f"expected a number, got {value!r}")
  return rec


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """NUM_USERS instances of PAIRS_PER_USER judged pairs each."""
  task = "helpsteer"
  (path,) = _common.raw_paths(task, ctx, (RAW,))
  pairs = _pairs(path)
  for user in range(NUM_USERS):
    rng = _common.seeded_rng(ctx, task, user)
    weights = [rng.random() - shift for shift in SHIFTS]
    chosen = rng.sample(pairs, min(PAIRS_PER_USER, len(pairs)))
    rows = []
    for prompt, response1, response2, ratings1, ratings2 in chosen:
      score1 = sum(w * r for w, r in zip(weights, ratings1))
      score2 = sum(w * r for w, r in zip(weights, ratings2))
      rows.append(Row(
          input=serialise_fields({"prompt": prompt, "response1": response1,
                                  "response2": response2}),
          output="1" if score1 > score2 else "2"))
    shown = {a: round(w, 2) for a, w in zip(ATTRIBUTES, weights)}
    yield Instance(id=f"user{user}", rows=rows,
                   descriptions=[*DESCRIPTIONS[:2],
                                 DESCRIPTIONS[2].format(shown)],
                   extra={"weights": weights})


TASKS = [
    TaskSpec(name="helpsteer", suite_split="train", kind="icl",
             generate=generate, fixed_k=PAIRS_PER_USER, raw_files=(RAW,),
             about="HelpSteer2: which of two responses a simulated user "
             "with random attribute weights prefers."),
]
