"""Tests of data_pipelines/sources/jeopardy.py on tests/fixtures/raw/misc."""

from __future__ import annotations

import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import jeopardy

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in jeopardy.TASKS}
HEADER = ("Show Number, Air Date, Round, Category, Value, Question, "
          "Answer\n")


def _build(name, raw_dir=FIXTURES):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_task_table():
  for name in ("jeopardy_question_generation", "jeopardy_answer_prediction"):
    spec = SPECS[name]
    assert (spec.suite_split, spec.kind, spec.mean_k, spec.fixed_k,
            spec.chunk_all_rows, spec.max_episodes, spec.p_desc) == (
                "train", "icl", 64, None, True, 1000, 0.6)
    assert len(spec.default_descriptions) == 3
    assert spec.raw_files[0].download.manual
  assert SPECS["jeopardy_answer_prediction"].default_descriptions[2] == (
      "Given: Question (Jeopardy clue statement). Generate: Answer (correct "
      "response to the clue).")


def test_answer_prediction_keeps_regular_rounds_without_links_or_blanks():
  (inst,) = _build("jeopardy_answer_prediction")
  assert inst.id == "all"
  # 20 records: links (2), a blank answer, a blank clue, an `NA` answer,
  # Final Jeopardy! and Tiebreaker are dropped.
  assert len(inst.rows) == 13
  assert inst.rows[0].input == (
      "For the last 8 years of his life, Galileo was under house arrest for "
      "espousing this man's theory")
  assert inst.rows[0].output == "Copernicus"
  assert inst.rows[3].input == (
      'In 1963, live on "The Art Linkletter Show", this company served its '
      "billionth burger")
  assert inst.rows[3].output == "McDonald's"
  answers = [r.output for r in inst.rows]
  assert answers[-6:] == ["Nixon", "a kennel", "a sophomore", "coconut", "80",
                          "a tornado"]
  assert inst.rows[-5].input == (
      "It can be a place to leave your puppy when you take a trip, or a "
      "carrier for him\nthat fits under an airplane seat")
  assert inst.rows[-4].input == "Second-year student,\na Café regular"
  assert not any("href" in r.input.lower() for r in inst.rows)


def test_question_generation_is_the_same_clues_as_outputs():
  (clues,) = _build("jeopardy_question_generation")
  (pairs,) = _build("jeopardy_answer_prediction")
  assert all(r.input is None for r in clues.rows)
  assert [r.output for r in clues.rows] == [r.input for r in pairs.rows]


def test_missing_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build("jeopardy_question_generation", tmp_path)
  assert "misc/JEOPARDY_CSV.csv" in str(e.value)
  assert "drive.google.com" in str(e.value)


def _write(tmp_path, text):
  path = tmp_path / "misc" / "JEOPARDY_CSV.csv"
  path.parent.mkdir(parents=True)
  path.write_text(text, encoding="utf-8")
  return path


def test_missing_column(tmp_path):
  path = _write(tmp_path, "Show Number, Air Date, Round, Category, Value, "
                "Question\n1,2004-12-31,Jeopardy!,X,$200,Clue\n")
  with pytest.raises(ValueError, match=r"missing column\(s\) \['Answer'\]"):
    _build("jeopardy_answer_prediction", tmp_path)
  assert path.exists()


def test_record_with_wrong_field_count_names_line(tmp_path):
  path = _write(tmp_path, HEADER + "1,2004-12-31,Jeopardy!,X,$200,A clue,An "
                "answer\n2,2004-12-31,Jeopardy!,X,$200,A clue with, a comma,"
                "An answer\n")
  with pytest.raises(ValueError) as e:
    _build("jeopardy_answer_prediction", tmp_path)
  assert f"{path}, line 3: 8 fields but the header has 7" in str(e.value)
