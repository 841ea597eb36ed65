"""Tests of data_pipelines/sources/changemyview.py on tests/fixtures/raw."""

from __future__ import annotations

import json
import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import changemyview as cmv

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in cmv.TASKS}

TIPPING = "CMV: Tipping culture in the US should be abolished"
TIPPING_BODY = ("Restaurants should pay a living wage instead of relying on "
                "customers.\n\nWorkers would get stable income.  \n\n_____")
LATIN = "CMV: Learning Latin is a waste of time for most students"
LATIN_BODY = ("Most students forget it.\nModern languages like español or "
              "中文 are more useful.")
TIPS_BODY = ("Tips make prices dishonest: the menu price is not the real "
             "price.")
REMOTE = "CMV: Remote work is better for most office jobs"
REMOTE_BODY = 'No commute, more focus, and "quiet" time.'


def _build(name, raw_dir=FIXTURES, seed=0):
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_task_table():
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.chunk_all_rows,
                  s.max_episodes, s.p_desc, s.default_descriptions)
         for s in cmv.TASKS}
  assert got == {
      "changemyview_categories": ("train", "icl", 16, True, None, 0.6, ()),
      "changemyview_posts": ("train", "icl", 16, True, 1500, 0.6, ()),
  }
  raw = cmv.RAW
  assert (raw.download.target, raw.download.unpack,
          raw.download.unpack_to) == ("changemyview/threads.jsonl.bz2", "bz2",
                                      "changemyview/threads.jsonl")
  assert raw.download.url.startswith("https://zenodo.org/records/3778298/")


def test_categories_posts_and_titles():
  posts, titles = _build("changemyview_categories")
  assert (posts.id, posts.descriptions) == (
      "cmv_questions",
      ["Posts about which one might want to change their view"])
  assert (titles.id, titles.descriptions) == (
      "cmv_title",
      ["Post titles about which one might want to change their view"])
  # Kept: four threads; deleted/removed posts, too few comments, no usable
  # comment and `comments: null` are dropped; the footnotes are removed.
  assert [r.output for r in posts.rows] == [
      TIPPING + "\n\n" + TIPPING_BODY,
      # The post is joined before the title is stripped, as in the release.
      LATIN + " \n\n" + LATIN_BODY,
      TIPPING + "\n\n" + TIPS_BODY,
      REMOTE + "\n\n" + REMOTE_BODY]
  # Distinct titles only.
  assert [r.output for r in titles.rows] == [TIPPING, LATIN, REMOTE]
  assert all(r.input is None for r in posts.rows + titles.rows)


def test_posts_three_directions():
  body, title, score = _build("changemyview_posts")
  assert [i.id for i in (body, title, score)] == [
      "cmv_post_from_title", "cmv_title_from_post", "cmv_score_from_post"]
  assert [(r.input, r.output) for r in body.rows][:2] == [
      (TIPPING, TIPPING_BODY), (LATIN, LATIN_BODY)]
  assert title.rows[3].input == REMOTE_BODY and title.rows[3].output == REMOTE
  assert [r.output for r in score.rows] == ["154", "0", "41", "233"]
  assert score.rows[1].input == (
      '{"title": "' + LATIN + '", "selftext": "Most students forget it.\\n'
      'Modern languages like espa\\u00f1ol or \\u4e2d\\u6587 are more '
      'useful."}')
  assert body.descriptions == ["The post that matches the title"]
  assert score.descriptions == ["The score (upvotes - downvotes) on the post"]


def test_reservoir_sample_is_seeded(monkeypatch):
  monkeypatch.setattr(cmv, "SAMPLE_SIZE", 4)
  def titles(seed):
    return tuple(r.output for r in _build("changemyview_categories",
                                          seed=seed)[1].rows)
  assert titles(0) == titles(0)
  # Nine threads, four sampled: different seeds keep different threads.
  assert len({titles(s) for s in range(10)}) > 1


def test_missing_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build("changemyview_posts", tmp_path)
  assert "changemyview/threads.jsonl" in str(e.value)
  assert "zenodo.org/records/3778298" in str(e.value)


GOOD = {"title": "CMV: x", "selftext": "y", "score": 1, "num_comments": 9,
        "comments": [{"body": "z", "score": 1}]}


@pytest.mark.parametrize("record,message", [
    ({**GOOD, "score": "12"}, "line 2, column 'score': expected an integer, "
     "got '12'"),
    ({**GOOD, "score": 1.5}, "line 2, column 'score': expected an integer"),
    ({**GOOD, "title": 7}, "line 2, column 'title': expected a string, got 7"),
    ({**GOOD, "num_comments": "many"},
     "line 2, column 'num_comments': expected a number, got 'many'"),
    ({**GOOD, "comments": "none"},
     "line 2, column 'comments': expected a list of objects"),
    ([1, 2], "line 2: expected a JSON object, got list"),
])
def test_malformed_record_names_file_line_and_field(tmp_path, record,
                                                     message):
  path = tmp_path / "changemyview" / "threads.jsonl"
  path.parent.mkdir(parents=True)
  path.write_text(json.dumps(GOOD) + "\n" + json.dumps(record) + "\n",
                  encoding="utf-8")
  with pytest.raises(ValueError) as e:
    _build("changemyview_posts", tmp_path)
  assert f"{path}, {message}" in str(e.value)
