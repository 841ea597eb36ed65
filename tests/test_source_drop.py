"""DROP converter (data_pipelines/sources/drop.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import drop

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = drop.TASKS[0]
FILE = "drop/data/validation-00000-of-00001.parquet"
PASSAGE = ("Hoping to rebound from their loss, the Bears played at home. "
           "Chicago scored first with a 38-yard field goal, then a 12-yard "
           "touchdown pass; the visitors answered with two field goals.")


def _build(raw_dir=RAW):
  out = list(SPEC.generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert [s.name for s in drop.TASKS] == ["drop"]
  assert (SPEC.suite_split, SPEC.kind, SPEC.fixed_k, SPEC.mean_k,
          SPEC.chunk_all_rows, SPEC.orderings, SPEC.max_episodes,
          SPEC.p_desc) == ("test", "icl", 10, None, True, 1, None, 0.6)
  assert SPEC.default_descriptions == (
      "Answer the question based on the passage. Respond with just the "
      "answer, usually a short word or phrase, either extracted from the "
      "passage or deduced from the information in the passage.",)
  download = SPEC.raw_files[0].download
  assert (download.hf_repo, download.hf_filename, download.target) == (
      "ucinlp/drop", "data/validation-00000-of-00001.parquet", FILE)


def test_rows():
  (inst,) = _build()
  assert inst.rows == [
      Row(input=f"Passage: {PASSAGE}\nQuestion: How many field goals were "
          "kicked in the game?", output="3"),
      # Passage and question stripped; the first of several spans.
      Row(input=f"Passage: {PASSAGE}\nQuestion: Who scored first?",
          output="Chicago"),
      # A blank first span is skipped; the answer is stripped.
      Row(input="Passage: In 1521 Hern\u00e1n Cort\u00e9s took Tenochtitlan; "
          "Spain ruled until 1821.\nQuestion: Which city was taken?",
          output="Tenochtitlan"),
  ]


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert FILE in str(e.value)


def test_no_answer_names_file_row_and_column(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  spans = pa.struct([("spans", pa.list_(pa.string())),
                     ("types", pa.list_(pa.string()))])
  pq.write_table(pa.table({
      "passage": ["p", "p"], "question": ["q1", "q2"],
      "answers_spans": pa.array([{"spans": ["a"], "types": ["span"]},
                                 {"spans": [" "], "types": ["span"]}],
                                spans)}), path)
  with pytest.raises(ValueError, match=r"validation-00000-of-00001\.parquet, "
                     r"row 1, column 'answers_spans\.spans'"):
    _build(str(tmp_path))
