"""Toxicity ratings from many perspectives (Kumar et al., 2021), per rater.

Raw file: `hatespeech/classified_data_final_w_worker_hash.json`, JSON lines,
one comment per line: `comment_id`, `comment`, and `ratings`, a list of
objects, one per rater: `toxic_score` (0-4), the rater's other judgements
of the comment (LABEL_FIELDS) and the rater's own fields (demographics,
media use, a worker hash...). The file is the version *with worker hashes*,
which the authors send on request; the public download lacks them.

One train task (docs/method.md#task-list), hatespeech_individual: one
instance per rater (at most MAX_RATERS, in order of first appearance),
comment -> toxic score, GP(128) rows an episode. A rater is identified, as
in the release, by all of a rating's non-judgement fields together (some
worker hashes come with several sets of demographics).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

_STUDY = "https://data.esrg.stanford.edu/study/toxicity-perspectives"
RAW = RawFile(
    path="hatespeech/classified_data_final_w_worker_hash.json",
    published_at=f"request from Deepak Kumar et al. ({_STUDY}); the version "
    "with worker hashes",
    download=Download(
        target="hatespeech/classified_data_final_w_worker_hash.json",
        manual=f"Request the ratings file with worker hashes from Deepak "
        f"Kumar (see {_STUDY}; the public download has no annotator ids), "
        "describing your use, and save it as "
        "<raw_dir>/hatespeech/classified_data_final_w_worker_hash.json."))
# A rating's judgements of the comment; every other field describes the rater.
LABEL_FIELDS = frozenset({
    "toxic_score", "is_profane", "is_threat", "is_identity_attack",
    "is_insult", "is_sexual_harassment", "fine_to_see_online",
    "remove_from_online"})
SCORES = range(5)
MAX_RATERS = 1000
DESCRIPTION = ("Given a comment, predict the toxicity score from 0 to 4 (0 is "
               "not toxic, 4 is very toxic).")


def _missing(value: Any) -> bool:
  return value is None or (isinstance(value, float) and math.isnan(value))


def _rater_key(rating: dict[str, Any]) -> str:
  """A stable id for the rater fields of one rating.

  The release hashes a frozenset of the fields with Python's hash(); a NaN
  field then hashes by object identity, so every rating carrying one
  becomes its own rater. Canonical JSON (NaN printed as NaN) groups them
  (docs/method.md#hate-speech-raters).
  """
  fields = {k: v for k, v in rating.items() if k not in LABEL_FIELDS}
  text = json.dumps(fields, sort_keys=True)
  return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def generate(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per rater, the first MAX_RATERS in order of appearance."""
  (path,) = _common.raw_paths("hatespeech_individual", ctx, (RAW,))
  raters: dict[str, list[Row]] = {}
  for line, rec in _common.read_jsonl(path):
    where = f"line {line}"
    if not isinstance(rec, dict):
      raise ValueError(f"{path}, {where}: expected a JSON object, got "
                       f"{type(rec).__name__}.")
    comment = rec.get("comment")
    if not isinstance(comment, str):
      raise _common.bad_value(path, where, "comment",
                              f"expected a string, got {comment!r:.80}")
    ratings = rec.get("ratings")
    if not isinstance(ratings, list) or not all(isinstance(r, dict)
                                                for r in ratings):
      raise _common.bad_value(path, where, "ratings",
                              f"expected a list of objects, got "
                              f"{ratings!r:.80}")
    for i, rating in enumerate(ratings):
      score = rating.get("toxic_score")
      # A rating without a score is skipped; the release would print `nan`.
      if _missing(score):
        continue
      if (isinstance(score, bool) or not isinstance(score, (int, float))
          or score not in SCORES):
        raise _common.bad_value(path, where, f"ratings[{i}].toxic_score",
                                f"expected an integer 0-4, got {score!r}")
      raters.setdefault(_rater_key(rating), []).append(
          Row(input=comment, output=str(int(score))))
  for rater in list(raters)[:MAX_RATERS]:
    yield Instance(id=rater, rows=raters[rater])


TASKS = [
    TaskSpec(name="hatespeech_individual", suite_split="train", kind="icl",
             generate=generate, mean_k=128, episodes_per_instance=1,
             default_descriptions=(DESCRIPTION,), raw_files=(RAW,),
             about="Toxicity perspectives: one rater's 0-4 toxicity score "
             "per comment."),
]
