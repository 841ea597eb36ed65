"""WinoGrande converter (data_pipelines/sources/winogrande.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import winogrande

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = winogrande.TASKS[0]
FILE = "winogrande/winogrande_xl/validation-00000-of-00001.parquet"


def _build(raw_dir=RAW):
  out = list(SPEC.generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert [s.name for s in winogrande.TASKS] == ["winogrande"]
  assert (SPEC.suite_split, SPEC.kind, SPEC.fixed_k, SPEC.mean_k,
          SPEC.chunk_all_rows, SPEC.orderings, SPEC.max_episodes,
          SPEC.p_desc) == ("test", "icl", 10, None, True, 1, None, 0.6)
  assert SPEC.default_descriptions == (
      "Given a sentence with a blank and two candidate fillers, respond with "
      "the letter of the correct option.",
      "Return the single uppercase letter corresponding to the correct "
      "choice.")
  assert SPEC.raw_files[0].path == FILE
  assert SPEC.raw_files[0].download.hf_repo == "allenai/winogrande"


def test_rows():
  (inst,) = _build()
  assert [r.output for r in inst.rows] == ["A", "B", "B", "B"]
  assert inst.rows[0] == Row(
      input="Sentence: Sarah was a much better surgeon than Maria so _____ "
      "always got the harder cases.\n"
      "Which option correctly fills in the blank?\nA. Sarah\nB. Maria",
      output="A")
  assert inst.rows[2].input.startswith(
      "Sentence: Zo\u00eb gave Ren\u00e9e her umbrella because _____ was")
  assert inst.rows[2].input.endswith("\nA. Zo\u00eb\nB. Ren\u00e9e")


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert FILE in str(e.value)


def test_bad_answer_names_file_row_and_column(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  pq.write_table(pa.table({"sentence": ["a _ b", "c _ d"],
                           "option1": ["x", "y"], "option2": ["z", "w"],
                           "answer": ["2", ""]}), path)
  with pytest.raises(ValueError, match=r"validation-00000-of-00001\.parquet, "
                     r"row 1, column 'answer'"):
    _build(str(tmp_path))
