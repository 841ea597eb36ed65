"""Polis (compdemocracy/openData): digital town halls and their votes.

Raw files, per conversation NAME in CONVERSATIONS (the 20 the release trains
on), under `polis/NAME/`, from github compdemocracy/openData:
  comments.csv: `comment-id`, `comment-body` (free text, may span lines), ...
  votes.csv: `timestamp`, `comment-id`, `voter-id`, `vote` (-1 / 0 / 1).
  summary.csv: headerless `key,value` lines; `topic` and
    `conversation-description` are used (either may be blank).
The release reads every one of the 20 and stops when one is absent, so all
are required.

Two train tasks (docs/method.md#polis):
  polis_vote: one voter of one conversation; input = a comment, output =
    Agree / Disagree / Pass; all of their votes in one episode.
  polis_comment: the comments of one conversation (outputs only), every
    comment once per pass in chunks of k ~ GP(64).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec)
from data_pipelines.sources import _common

REPO = "compdemocracy/openData"
COMMIT = "0bc2ce0f32c673f68da20b57bce15c457aa787b5"
CONVERSATIONS = (
    "15-per-hour-seattle",
    "american-assembly.bowling-green",
    "austria-climate.2vkxcncppn.2022-07-07",
    "austria-climate.5twd2jsnkf.2022-08-08",
    "austria-climate.5tzfrp5eaa.2022-07-07",
    "austria-climate.7z7ejpbmv5.2022-08-08",
    "austria-climate.9xnndurbfm.2022-07-07",
    "bg2050-volunteers",
    "brexit-consensus",
    "canadian-electoral-reform",
    "football-concussions",
    "london.youth.policing",
    "march-on.operation-marchin-orders",
    "scoop-hivemind.affordable-housing",
    "scoop-hivemind.biodiversity",
    "scoop-hivemind.freshwater",
    "scoop-hivemind.taxes",
    "scoop-hivemind.ubi",
    "ssis.land-bank-farmland.2rumnecbeh.2021-08-01",
    "vtaiwan.uberx",
)
# The release keeps short comments in this conversation (its comments are
# Chinese, where whitespace does not separate words).
KEEP_SHORT = frozenset({"vtaiwan.uberx"})
MIN_WORDS = 4  # comments with fewer whitespace-separated words are dropped
MIN_VOTES = 4  # voters with fewer (kept) votes are dropped
MAX_VOTERS = 500  # per conversation, the first in votes.csv order
VOTES = {-1: "Disagree", 0: "Pass", 1: "Agree"}

VOTE_DESCRIPTORS = (
    "The following are votes, all from the same individual. Options: Agree, "
    "Disagree, Pass",
    "The following are votes from a digital town hall.\nOptions: Agree, "
    "Disagree, Pass",
    "Here are someone's votes on a digital town hall.\nOptions: Agree, "
    "Disagree, Pass",
    "Here are the votes from someone on a digital town hall.\nPossible "
    "responses: Agree, Disagree, Pass",
)
COMMENT_DESCRIPTORS = (
    "The following are proposed comments.",
    "The following are comments from a digital town hall.",
    "The following are proposed statements.",
    "There will be statements for people to vote on.",
    "Comments ranging from a phrase up to a full paragraph.",
    "Opinion statements ranging from a phrase up to a full paragraph.",
    "Inputs from users in a digital town hall.",
)


def _raw(name: str, file: str) -> RawFile:
  url = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/{name}/{file}"
  return RawFile(path=f"polis/{name}/{file}", published_at=url,
                 download=Download(target=f"polis/{name}/{file}", url=url))


COMMENT_FILES = tuple(_raw(n, "comments.csv") for n in CONVERSATIONS)
VOTE_FILES = tuple(_raw(n, "votes.csv") for n in CONVERSATIONS)
SUMMARY_FILES = tuple(_raw(n, "summary.csv") for n in CONVERSATIONS)


def _summary(path: str) -> dict[str, str]:
  """The non-blank `topic` / `conversation-description` of a summary.csv."""
  out = {}
  with open(path, newline="", encoding="utf-8-sig") as f:
    try:
      for fields in csv.reader(f):
        if len(fields) >= 2 and fields[0] in ("topic",
                                              "conversation-description"):
          # The release treats a blank value as absent (pandas NaN).
          if fields[1].strip():
            out[fields[0]] = fields[1]
    except csv.Error as e:
      raise ValueError(f"{path}: cannot parse as CSV: {e}") from e
  return out


def descriptions(summary: dict[str, str],
                 descriptors: tuple[str, ...]) -> list[str]:
  """The release's list: each descriptor with each prefix, in both orders.

  With the empty prefix both orders give the same string; the duplicate is
  kept, as in the release, so the bare descriptors keep their weight in the
  uniform draw.
  """
  topic = summary.get("topic")
  desc = summary.get("conversation-description")
  prefixes = [""]
  if topic is not None:
    prefixes.append(f"Topic: {topic}")
  if desc is not None:
    prefixes.append(f"Description: {desc}")
  if topic is not None and desc is not None:
    prefixes.append(f"Topic: {topic}\nDescription: {desc}")
    prefixes.append(f"Description: {desc}\nTopic: {topic}")
  out = []
  for descriptor in descriptors:
    for prefix in prefixes:
      out.append(f"{prefix}\n{descriptor}".strip())
      out.append(f"{descriptor}\n{prefix}".strip())
  return out


def _comments(name: str, path: str) -> dict[str, str]:
  """comment-id -> text of the comments the release keeps, in file order."""
  out = {}
  for _, rec in _common.read_csv(path, ("comment-id", "comment-body")):
    body = rec["comment-body"]
    words = len(body.split())
    if not body.strip():
      continue
    # As the release: "test" anywhere (any case) in a comment under 3 words
    # marks a test post; under 4 words is too short, except in KEEP_SHORT.
    if "test" in body.lower() and words < 3:
      continue
    if name not in KEEP_SHORT and words < MIN_WORDS:
      continue
    # Deliberate difference (docs/method.md#polis): surrounding whitespace,
    # often a trailing newline, is stripped; the release keeps it.
    out[rec["comment-id"].strip()] = body.strip()
  return out


def _votes(path: str, comments: dict[str, str]) -> dict[str, list[Row]]:
  """voter-id -> Rows (comment -> vote label), voters in first-vote order.

  Deliberate difference (docs/method.md#polis): votes.csv can hold several
  votes by one voter on one comment (re-votes, sometimes contradicting);
  the release keeps them all, we keep only the latest (largest timestamp,
  then the later line), as Polis itself counts them.
  """
  latest: dict[tuple[str, str], tuple[int, int, int]] = {}
  order: dict[str, None] = {}
  for line, rec in _common.read_csv(path, ("timestamp", "comment-id",
                                           "voter-id", "vote")):
    cid = rec["comment-id"].strip()
    if cid not in comments:
      continue
    text = rec["vote"].strip()
    if text in _common.MISSING:
      continue  # the release drops votes without a value
    try:
      number = float(text)
    except ValueError:
      number = None
    vote = int(number) if number is not None and number.is_integer() else None
    if vote not in VOTES:
      raise _common.bad_value(path, f"line {line}", "vote",
                              f"expected -1, 0 or 1, got {text!r}")
    try:
      stamp = int(float(rec["timestamp"]))
    except ValueError:
      raise _common.bad_value(path, f"line {line}", "timestamp",
                              f"not a number: {rec['timestamp']!r}") from None
    voter = rec["voter-id"].strip()
    if not voter:
      continue
    order.setdefault(voter, None)
    key = (voter, cid)
    if key not in latest or (stamp, line) > latest[key][:2]:
      latest[key] = (stamp, line, vote)
  by_voter: dict[str, list[Row]] = {v: [] for v in order}
  for (voter, cid), (_, _, vote) in latest.items():
    by_voter[voter].append(Row(input=comments[cid], output=VOTES[vote]))
  return by_voter


def generate_vote(ctx: BuildContext) -> Iterator[Instance]:
  """Per conversation, up to MAX_VOTERS voters with >= MIN_VOTES votes."""
  n = len(CONVERSATIONS)
  paths = _common.raw_paths("polis_vote", ctx,
                            COMMENT_FILES + VOTE_FILES + SUMMARY_FILES)
  for i, name in enumerate(CONVERSATIONS):
    comments = _comments(name, paths[i])
    descs = descriptions(_summary(paths[2 * n + i]), VOTE_DESCRIPTORS)
    kept = 0
    for voter, rows in _votes(paths[n + i], comments).items():
      if len(rows) < MIN_VOTES:
        continue
      if kept == MAX_VOTERS:
        break
      kept += 1
      yield Instance(id=f"{name}/{voter}", rows=rows, descriptions=descs)


def generate_comment(ctx: BuildContext) -> Iterator[Instance]:
  """One instance per conversation: its kept comments (outputs only)."""
  n = len(CONVERSATIONS)
  paths = _common.raw_paths("polis_comment", ctx,
                            COMMENT_FILES + SUMMARY_FILES)
  for i, name in enumerate(CONVERSATIONS):
    comments = _comments(name, paths[i])
    if comments:
      yield Instance(
          id=name, rows=[Row(output=c) for c in comments.values()],
          descriptions=descriptions(_summary(paths[n + i]),
                                    COMMENT_DESCRIPTORS))


TASKS = [
    TaskSpec(name="polis_vote", suite_split="train", kind="icl",
             generate=generate_vote,
             raw_files=COMMENT_FILES + VOTE_FILES + SUMMARY_FILES,
             about="Polis: one participant's Agree/Disagree/Pass votes on "
             "the comments of a digital town hall."),
    TaskSpec(name="polis_comment", suite_split="train", kind="icl",
             generate=generate_comment, mean_k=64, chunk_all_rows=True,
             raw_files=COMMENT_FILES + SUMMARY_FILES,
             about="Polis: comments proposed in one digital town hall."),
]
