"""Tests of data_pipelines/sources/hatespeech.py on tests/fixtures/raw."""

from __future__ import annotations

import json
import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import hatespeech

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
(SPEC,) = hatespeech.TASKS


def _build(raw_dir=FIXTURES):
  instances = list(SPEC.generate(BuildContext(seed=0, raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(SPEC.name)
  return instances


def test_task_spec():
  assert (SPEC.name, SPEC.suite_split, SPEC.kind, SPEC.mean_k, SPEC.fixed_k,
          SPEC.episodes_per_instance, SPEC.chunk_all_rows, SPEC.p_desc) == (
              "hatespeech_individual", "train", "icl", 128, None, 1, False,
              0.6)
  assert SPEC.default_descriptions == (
      "Given a comment, predict the toxicity score from 0 to 4 (0 is not "
      "toxic, 4 is very toxic).",)
  assert SPEC.raw_files[0].download.manual


def test_one_instance_per_rater_in_order_of_appearance():
  insts = _build()
  # Raters a, b, c (first comment), then b's worker hash with other
  # demographics, which the release also counts as another rater.
  assert [len(i.rows) for i in insts] == [5, 4, 4, 1]
  a, b, c, b2 = insts
  assert [r.output for r in a.rows] == ["3", "0", "4", "1", "0"]
  assert a.rows[0].input == "You are an absolute idiot and everyone knows it."
  assert a.rows[2].input == ("Go back to where you came from. Nobody wants "
                             "you here.\nSeriously.")
  assert a.rows[3].input == "This café's coffee tastes like burnt garbage 🤮"
  assert [r.output for r in b.rows] == ["2", "0", "1", "0"]
  # Rater c carries a NaN field in every rating and stays one rater; its
  # rating with a null score is skipped.
  assert [r.output for r in c.rows] == ["4", "0", "4", "0"]
  assert [r.output for r in b2.rows] == ["3"]
  assert len({i.id for i in insts}) == 4
  assert insts[0].descriptions == []


def test_ids_are_stable_and_ignore_the_judgements():
  ids = [i.id for i in _build()]
  assert [i.id for i in _build()] == ids
  rating = {"toxic_score": 1, "is_insult": True, "gender": "Female"}
  other = {"toxic_score": 4, "is_insult": False, "gender": "Female"}
  assert hatespeech._rater_key(rating) == hatespeech._rater_key(other)
  assert hatespeech._rater_key(rating) != hatespeech._rater_key(
      {**rating, "gender": "Male"})


def test_rater_cap_keeps_the_first(monkeypatch):
  monkeypatch.setattr(hatespeech, "MAX_RATERS", 2)
  assert [len(i.rows) for i in _build()] == [5, 4]


def test_missing_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(tmp_path)
  assert "hatespeech/classified_data_final_w_worker_hash.json" in str(e.value)
  assert "Kumar" in str(e.value)


def _write(tmp_path, records):
  path = tmp_path / "hatespeech" / "classified_data_final_w_worker_hash.json"
  path.parent.mkdir(parents=True)
  path.write_text("".join(json.dumps(r) + "\n" for r in records),
                  encoding="utf-8")
  return path


GOOD = {"comment_id": "x", "comment": "ok", "ratings": [
    {"toxic_score": 0, "gender": "Female"}]}


@pytest.mark.parametrize("record,message", [
    ({"comment_id": "y", "comment": "bad", "ratings": [
        {"toxic_score": 0, "gender": "Male"},
        {"toxic_score": 7, "gender": "Male"}]},
     "line 2, column 'ratings[1].toxic_score': expected an integer 0-4, got 7"),
    ({"comment_id": "y", "comment": "bad", "ratings": [
        {"toxic_score": "2", "gender": "Male"}]},
     "line 2, column 'ratings[0].toxic_score': expected an integer 0-4, got "
     "'2'"),
    ({"comment_id": "y", "comment": None, "ratings": []},
     "line 2, column 'comment': expected a string, got None"),
    ({"comment_id": "y", "comment": "bad", "ratings": {"toxic_score": 1}},
     "line 2, column 'ratings': expected a list of objects"),
])
def test_malformed_record_names_file_line_and_field(tmp_path, record,
                                                     message):
  path = _write(tmp_path, [GOOD, record])
  with pytest.raises(ValueError) as e:
    _build(tmp_path)
  assert f"{path}, {message}" in str(e.value)


def test_not_json_names_the_line(tmp_path):
  path = _write(tmp_path, [GOOD])
  with open(path, "a", encoding="utf-8") as f:
    f.write('{"comment": "cut off\n')
  with pytest.raises(ValueError, match=f"{path}, line 2: not valid JSON"):
    _build(tmp_path)
