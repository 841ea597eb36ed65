"""haikus built from real haikus.csv rows (tests/fixtures/raw/haikus)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import haikus

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = haikus.TASKS[0]
FIRST = "Memorial Day --\na shadow for each\nwhite cross"


def _build(raw_dir=RAW, seed=0):
  instances = list(SPEC.generate(BuildContext(seed=seed,
                                              raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(SPEC.name)
  return instances


@pytest.fixture
def raw_copy(tmp_path):
  shutil.copytree(os.path.join(RAW, "haikus"), tmp_path / "haikus")
  return tmp_path


def test_spec_follows_the_release():
  # n_per=-1, n_iter=64: every row once, in chunks of 64.
  assert (SPEC.suite_split, SPEC.mean_k, SPEC.fixed_k, SPEC.chunk_all_rows,
          SPEC.orderings, SPEC.p_desc) == ("train", None, 64, True, 1, 0.6)
  # max_total=200 is per generator: applied by the converter, not the task.
  assert SPEC.max_episodes is None and haikus.MAX_EPISODES == 200
  (raw,) = SPEC.raw_files
  assert raw.path == raw.download.target == "haikus/haikus.csv"
  assert re.fullmatch(r"https://raw\.githubusercontent\.com/docmarionum1/"
                      r"haikurnn/[0-9a-f]{40}/input/poems/haikus\.csv",
                      raw.download.url)


def test_instances_and_rows():
  instances = _build()
  assert [(i.id, len(i.rows)) for i in instances] == [
      ("syllables/tempslibres", 25), ("syllables/haikuzao", 12),
      ("include_word/tempslibres", 25), ("include_word/haikuzao", 12),
      ("poems", 37)]
  by_id = {i.id: i for i in instances}
  syl = by_id["syllables/tempslibres"].rows
  assert syl[0] == Row(input="5, 5, 2", output=FIRST)
  # Several alternative counts: the first one ("2,3" -> 2).
  assert syl[1] == Row(input="2, 5, 5", output="spring rain -\nas the doctor "
                       "speaks\ni think of lilacs")
  # Lines as written: the indentation stays.
  assert syl[11].output == ("mountain stream\n   two well placed rocks\n"
                            "the path home")
  assert syl[23] == Row(input="1, 9, 4",
                        output="doves\non the TV antenna\nwar on TV")
  assert by_id["syllables/haikuzao"].rows[6].output == (
      'A "Juliet"\nin without glass headlights\nIt has of a grass clump')
  for inst, desc in (("syllables/haikuzao", "haikus.\npoem ~ syllables"),
                     ("include_word/haikuzao",
                      "haikus.\npoem ~ include_word, syllables"),
                     ("poems", "haikus.")):
    assert by_id[inst].descriptions == [desc]
  assert by_id["poems"].rows[0] == Row(output=FIRST)


def test_include_word_is_a_word_of_the_poem():
  for seed in (0, 1):
    by_id = {i.id: i for i in _build(seed=seed)}
    for src in ("tempslibres", "haikuzao"):
      plain = by_id[f"syllables/{src}"].rows
      words = by_id[f"include_word/{src}"].rows
      for p, w in zip(plain, words):
        given = json.loads(w.input)
        assert list(given) == ["include_word", "syllables"]
        assert given["syllables"] == p.input and w.output == p.output
        assert given["include_word"] in p.output.split()
  picks = [tuple(json.loads(r.input)["include_word"] for r in
                 {i.id: i for i in _build(seed=s)}[
                     "include_word/tempslibres"].rows) for s in (0, 1, 2)]
  assert len(set(picks)) > 1  # seeded, not constant


def test_episode_cap_per_group(monkeypatch):
  # 4 rows per chunk, 5 chunks per group: tempslibres (25 rows = 7 chunks)
  # is cut to 20 of its rows and haikuzao gets nothing.
  full = {r.output for r in _build()[0].rows}
  monkeypatch.setattr(haikus, "CHUNK", 4)
  monkeypatch.setattr(haikus, "MAX_EPISODES", 5)
  instances = _build()
  assert [(i.id, len(i.rows)) for i in instances] == [
      ("syllables/tempslibres", 20), ("include_word/tempslibres", 20),
      ("poems", 20)]
  assert {r.output for r in instances[0].rows} < full
  monkeypatch.setattr(haikus, "MAX_EPISODES", 8)
  ids = [(i.id, len(i.rows)) for i in _build()]
  # 7 chunks for tempslibres, then one chunk (4 rows) of haikuzao.
  assert ids[:2] == [("syllables/tempslibres", 25), ("syllables/haikuzao", 4)]


def test_duplicate_poems_once_in_the_poems_instance(raw_copy):
  path = raw_copy / "haikus" / "haikus.csv"
  with open(path, "a", encoding="utf-8") as f:
    f.write("Memorial Day --,a shadow for each,white cross,tempslibres,5,5,2\n"
            ",no first line,here,tempslibres,1,3,1\n")
  by_id = {i.id: i for i in _build(raw_copy)}
  assert len(by_id["syllables/tempslibres"].rows) == 26  # blank line skipped
  assert len(by_id["poems"].rows) == 37


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError, match="haikus/haikus.csv"):
    _build(tmp_path)


def test_malformed_syllables_name_file_line_and_column(raw_copy):
  path = raw_copy / "haikus" / "haikus.csv"
  with open(path, "a", encoding="utf-8") as f:
    f.write("a,b,c,tempslibres,1,five,1\n")
  with pytest.raises(ValueError, match=r"haikus\.csv, line 39, column "
                     r"'1_syllables'"):
    _build(raw_copy)
