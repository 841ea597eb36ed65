"""polis_vote / polis_comment built from the real-row fixtures (tests/fixtures/raw/polis)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import polis

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in polis.TASKS}
SEATTLE = "15-per-hour-seattle"


def _build(name, raw_dir=RAW):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


@pytest.fixture
def raw_copy(tmp_path):
  shutil.copytree(os.path.join(RAW, "polis"), tmp_path / "polis")
  return tmp_path


def test_specs_follow_the_release():
  vote, comment = SPECS["polis_vote"], SPECS["polis_comment"]
  # polis_vote: n_per=1, no n_iter -> one episode with all of a voter's votes.
  assert (vote.mean_k, vote.fixed_k, vote.episodes_per_instance,
          vote.chunk_all_rows, vote.orderings, vote.max_episodes,
          vote.p_desc) == (None, None, 1, False, 1, None, 0.6)
  # polis_comment: n_per=-1, n_iter=GP(64) -> every comment once, chunked.
  assert (comment.mean_k, comment.fixed_k, comment.chunk_all_rows,
          comment.orderings, comment.max_episodes) == (64, None, True, 1, None)
  assert vote.suite_split == comment.suite_split == "train"
  assert len(polis.CONVERSATIONS) == 20
  assert len(vote.raw_files) == 60 and len(comment.raw_files) == 40
  for f in vote.raw_files:
    assert re.fullmatch(
        r"https://raw\.githubusercontent\.com/compdemocracy/openData/"
        r"[0-9a-f]{40}/[^/]+/(comments|votes|summary)\.csv", f.download.url)
    assert f.download.target == f.path and f.path.startswith("polis/")
  assert {f.path.split("/")[1] for f in comment.raw_files} == set(
      polis.CONVERSATIONS)


def test_comment_filters_and_text():
  by_id = {inst.id: inst for inst in _build("polis_comment")}
  assert list(by_id) == list(polis.CONVERSATIONS)
  seattle = [row.output for row in by_id[SEATTLE].rows]
  # 54 comments; 14 have fewer than 4 words ("Hello.", "Awesome!", "I am
  # yours", ...) and are dropped.
  assert len(seattle) == 40
  assert all(row.input is None for row in by_id[SEATTLE].rows)
  assert "Hello." not in seattle and "I am yours" not in seattle
  assert "Did I write something?" in seattle  # exactly 4 words: kept
  # Surrounding whitespace (here a trailing newline) is stripped.
  assert "This will lead to robots." in seattle
  assert seattle[0] == "Not sure I believe any of this..."
  # vtaiwan.uberx keeps comments of fewer than 4 (whitespace) words.
  taiwan = [row.output for row in by_id["vtaiwan.uberx"].rows]
  assert "uber就是叫派計程車，談不上運用閒置資源或是共乘" in taiwan
  assert len(taiwan) == 15


def test_test_posts_are_dropped_even_where_short_comments_stay(raw_copy):
  path = raw_copy / "polis" / "vtaiwan.uberx" / "comments.csv"
  with open(path, "a", encoding="utf-8") as f:
    f.write("1,x,900,1,0,0,0,Test post\n1,x,901,1,0,0,0,testing this one\n")
  taiwan = {i.id: i for i in _build("polis_comment", raw_copy)}[
      "vtaiwan.uberx"]
  outputs = [row.output for row in taiwan.rows]
  assert "Test post" not in outputs  # "test" and under 3 words
  assert "testing this one" in outputs  # 3 words


def test_descriptions():
  by_id = {inst.id: inst for inst in _build("polis_comment")}
  seattle = by_id[SEATTLE].descriptions
  # 7 descriptors x 5 prefixes (none, topic, description, both orders) x 2.
  assert len(seattle) == 70
  assert seattle[:3] == ["The following are proposed comments.",
                         "The following are proposed comments.",
                         "Topic: $15/hour\nThe following are proposed "
                         "comments."]
  assert ("Inputs from users in a digital town hall.\nDescription: How do you "
          "think the new minimum wage law will affect Seattle? Will it be for "
          "the better or for the worse? Why?\nTopic: $15/hour") in seattle
  # A blank conversation-description counts as absent: 2 prefixes only.
  canada = by_id["canadian-electoral-reform"].descriptions
  assert len(canada) == 28
  assert not any("Description:" in d for d in canada)
  vote = {i.id: i for i in _build("polis_vote")}[f"{SEATTLE}/0"]
  assert len(vote.descriptions) == 40
  assert ("Here are the votes from someone on a digital town hall.\nPossible "
          "responses: Agree, Disagree, Pass\nTopic: $15/hour"
          in vote.descriptions)


def test_votes():
  instances = _build("polis_vote")
  by_id = {inst.id: inst for inst in instances}
  # Voters in order of their first vote in votes.csv.
  assert [i.id for i in instances[:3]] == [f"{SEATTLE}/0", f"{SEATTLE}/1",
                                           f"{SEATTLE}/3"]
  voter0 = by_id[f"{SEATTLE}/0"].rows
  assert len(voter0) == 5
  assert voter0[0] == Row(
      input="I imagine new businesses opening will run counter operations "
      "where guests grab their own silverware and bus their own tables.",
      output="Pass")
  assert {row.output for row in voter0} == {"Pass"}
  # Voter 83 voted five times on comment 0; one row per comment remains.
  voter83 = by_id[f"{SEATTLE}/83"].rows
  assert len(voter83) == len({row.input for row in voter83}) == 5
  assert {row.output for row in voter83} == {"Agree"}
  # Voter 68 voted on 3 kept comments only; voter 82 has 4 vote lines but 3
  # distinct comments: both are under the 4-vote minimum.
  assert f"{SEATTLE}/68" not in by_id and f"{SEATTLE}/82" not in by_id
  # Votes on dropped comments ("Hello.", id 13) never appear.
  assert not any(row.input == "Hello." for i in instances for row in i.rows)
  for inst in instances:
    assert len(inst.rows) >= 4
    assert {row.output for row in inst.rows} <= {"Agree", "Disagree", "Pass"}
  # Conversations whose fixture has no (qualifying) votes give no voters.
  assert not any(i.id.startswith("march-on.") for i in instances)


def test_latest_vote_wins(raw_copy):
  path = raw_copy / "polis" / SEATTLE / "votes.csv"
  with open(path, "a", encoding="utf-8") as f:
    # Voter 0 changes their vote on comment 0 (Pass) to Disagree, later.
    f.write("1403054214999,x,0,0,-1\n")
  voter0 = {i.id: i for i in _build("polis_vote", raw_copy)}[f"{SEATTLE}/0"]
  assert voter0.rows[0].output == "Disagree" and len(voter0.rows) == 5


def test_voter_cap(monkeypatch):
  monkeypatch.setattr(polis, "MAX_VOTERS", 2)
  ids = [i.id for i in _build("polis_vote")]
  assert ids[:2] == [f"{SEATTLE}/0", f"{SEATTLE}/1"]
  assert sum(i.startswith(SEATTLE + "/") for i in ids) == 2


def test_missing_raw_file(raw_copy):
  os.remove(raw_copy / "polis" / "brexit-consensus" / "votes.csv")
  with pytest.raises(MissingRawFileError, match="brexit-consensus/votes.csv"):
    _build("polis_vote", raw_copy)
  _build("polis_comment", raw_copy)  # comments need no votes
  with pytest.raises(MissingRawFileError):
    _build("polis_vote", raw_copy / "nowhere")


def test_malformed_vote_names_file_line_and_column(raw_copy):
  path = raw_copy / "polis" / SEATTLE / "votes.csv"
  with open(path, "a", encoding="utf-8") as f:
    f.write("1403054214999,x,0,0,2\n")
  with pytest.raises(ValueError, match=r"votes\.csv, line 252, column 'vote'"):
    _build("polis_vote", raw_copy)
