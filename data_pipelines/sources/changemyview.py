"""r/ChangeMyView threads (the Zenodo record 3778298 dump).

Raw file: `changemyview/threads.jsonl`, the decompressed `threads.jsonl.bz2`:
JSON lines, one thread each, with (among others) `title`, `selftext` (the
post body; `[deleted]`/`[removed]` when gone), `score`, `num_comments` and
`comments` (a list of objects with `body` and `score`).

Posts are read as the release reads them: a seeded reservoir sample of
SAMPLE_SIZE threads (only the sampled lines are parsed); the moderators'
footnote lines are removed from `selftext`; threads are kept when title and
body are present and not deleted, `num_comments` > 4, and at least one
comment has a body and a score. Post = title + blank line + body.

Two train tasks (docs/method.md#task-list), GP(16) examples an episode,
every row once per pass:
  changemyview_categories: two instances, the distinct posts and the
    distinct titles (outputs only);
  changemyview_posts: three instances, title -> body, body -> title and
    {title, body} -> score; the release caps each at 500 episodes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from data_pipelines.schema import (BuildContext, Download, Instance, RawFile,
                                   Row, TaskSpec, serialise_fields)
from data_pipelines.sources import _common

_ZENODO = "https://zenodo.org/records/3778298"
RAW = RawFile(
    path="changemyview/threads.jsonl",
    published_at=f"{_ZENODO} (threads.jsonl.bz2, decompressed)",
    download=Download(
        target="changemyview/threads.jsonl.bz2",
        url=f"{_ZENODO}/files/threads.jsonl.bz2?download=1",
        unpack="bz2", unpack_to="changemyview/threads.jsonl"))
SAMPLE_SIZE = 10_000
FEW_COMMENTS = 4  # threads need more comments than this
MEAN_K = 16
MAX_EPISODES_PER_VARIANT = 500  # changemyview_posts, as the release's max_total
GONE = frozenset({"", "[deleted]", "[removed]"})
# The moderators' "> *Hello, users of CMV! This is a footnote ...*" line.
FOOTNOTE = re.compile(r"^(?:>|&gt;)\s*\*.*?This is a footnote.*?$\n?",
                      re.MULTILINE | re.IGNORECASE)

POSTS = "Posts about which one might want to change their view"
TITLES = "Post titles about which one might want to change their view"
POST_FROM_TITLE = "The post that matches the title"
TITLE_FROM_POST = "The title that matches the post"
SCORE_FROM_POST = "The score (upvotes - downvotes) on the post"


def _sample_lines(ctx: BuildContext, path: str) -> list[int]:
  """A reservoir sample of SAMPLE_SIZE non-blank line numbers.

  One seeded draw shared by both tasks, so they see the same threads. Only
  line numbers are kept: threads with their comments can be large.
  """
  rng = _common.seeded_rng(ctx, "changemyview", "reservoir")
  reservoir: list[int] = []
  seen = 0
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      if not raw.strip():
        continue
      seen += 1
      if seen <= SAMPLE_SIZE:
        reservoir.append(n)
      else:
        j = rng.randrange(seen)
        if j < SAMPLE_SIZE:
          reservoir[j] = n
  return reservoir


def _records(path: str, lines: list[int]) -> Iterator[tuple[int, dict]]:
  """The JSON objects on `lines`, read in a second pass, in `lines` order."""
  wanted = set(lines)
  found: dict[int, dict[str, Any]] = {}
  with open(path, "rb") as f:
    for n, raw in enumerate(f, 1):
      if n not in wanted:
        continue
      rec = _common.parse_json_line(path, n, raw)
      if not isinstance(rec, dict):
        raise ValueError(f"{path}, line {n}: expected a JSON object, got "
                         f"{type(rec).__name__}.")
      # Only what the filters and rows read; comments reduced to a flag.
      comments = rec.get("comments") or []
      if not isinstance(comments, list) or not all(isinstance(c, dict)
                                                   for c in comments):
        raise _common.bad_value(path, f"line {n}", "comments",
                                f"expected a list of objects, got "
                                f"{comments!r:.80}")
      found[n] = {
          "title": rec.get("title"), "selftext": rec.get("selftext"),
          "score": rec.get("score"), "num_comments": rec.get("num_comments"),
          "commented": any(c.get("body") and c.get("body") not in GONE
                           and c.get("score") is not None
                           for c in comments)}
  for n in lines:
    yield n, found[n]


def _threads(task: str, ctx: BuildContext) -> list[dict[str, Any]]:
  """The kept threads: title, selftext, post (all stripped) and score."""
  (path,) = _common.raw_paths(task, ctx, (RAW,))
  threads = []
  for n, rec in _records(path, _sample_lines(ctx, path)):
    where = f"line {n}"
    title, body = rec["title"], rec["selftext"]
    for column, value in (("title", title), ("selftext", body)):
      if value is not None and not isinstance(value, str):
        raise _common.bad_value(path, where, column,
                                f"expected a string, got {value!r:.80}")
    if title is None or body is None:
      continue
    body = FOOTNOTE.sub("", body)
    if title in GONE or body in GONE:
      continue
    num_comments = rec["num_comments"]
    if _missing(num_comments):
      continue
    if isinstance(num_comments, bool) or not isinstance(num_comments,
                                                        (int, float)):
      raise _common.bad_value(path, where, "num_comments",
                              f"expected a number, got {num_comments!r:.80}")
    if not num_comments > FEW_COMMENTS:
      continue
    if not rec["commented"]:  # no comment with a body and a score
      continue
    score = rec["score"]
    if isinstance(score, bool) or not isinstance(score, int):
      raise _common.bad_value(path, where, "score",
                              f"expected an integer, got {score!r:.80}")
    threads.append({"title": title.strip(), "selftext": body.strip(),
                    "post": (title + "\n\n" + body).strip(), "score": score})
  return threads


def _missing(value: Any) -> bool:
  return value is None or (isinstance(value, float) and math.isnan(value))


def generate_categories(ctx: BuildContext) -> Iterator[Instance]:
  """Two instances: the distinct posts and the distinct titles."""
  threads = _threads("changemyview_categories", ctx)
  posts = dict.fromkeys(t["post"] for t in threads)
  titles = dict.fromkeys(t["title"] for t in threads)
  yield Instance(id="cmv_questions", rows=[Row(output=p) for p in posts],
                 descriptions=[POSTS])
  yield Instance(id="cmv_title", rows=[Row(output=t) for t in titles],
                 descriptions=[TITLES])


def generate_posts(ctx: BuildContext) -> Iterator[Instance]:
  """Three instances: title -> body, body -> title, {title, body} -> score."""
  threads = _threads("changemyview_posts", ctx)
  yield Instance(id="cmv_post_from_title",
                 rows=[Row(input=t["title"], output=t["selftext"])
                       for t in threads],
                 descriptions=[POST_FROM_TITLE])
  yield Instance(id="cmv_title_from_post",
                 rows=[Row(input=t["selftext"], output=t["title"])
                       for t in threads],
                 descriptions=[TITLE_FROM_POST])
  yield Instance(id="cmv_score_from_post",
                 rows=[Row(input=serialise_fields({"title": t["title"],
                                                   "selftext": t["selftext"]}),
                           output=str(t["score"]))
                       for t in threads],
                 descriptions=[SCORE_FROM_POST])


TASKS = [
    TaskSpec(name="changemyview_categories", suite_split="train", kind="icl",
             generate=generate_categories, mean_k=MEAN_K, chunk_all_rows=True,
             raw_files=(RAW,),
             about="ChangeMyView: generate posts, or post titles."),
    TaskSpec(name="changemyview_posts", suite_split="train", kind="icl",
             generate=generate_posts, mean_k=MEAN_K, chunk_all_rows=True,
             # The release caps each of the three directions at 500
             # episodes; the cap here is task-wide
             # (docs/method.md#changemyview-caps).
             max_episodes=3 * MAX_EPISODES_PER_VARIANT, raw_files=(RAW,),
             about="ChangeMyView: a post's body from its title, its title "
             "from its body, or its score."),
]
