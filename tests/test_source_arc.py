"""ARC converter (data_pipelines/sources/arc.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import arc

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = arc.TASKS[0]
FILE = "arc/ARC-Challenge/test-00000-of-00001.parquet"


def _build(raw_dir=RAW):
  out = list(SPEC.generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert [s.name for s in arc.TASKS] == ["arc"]
  assert (SPEC.suite_split, SPEC.kind, SPEC.fixed_k, SPEC.mean_k,
          SPEC.chunk_all_rows, SPEC.orderings, SPEC.max_episodes,
          SPEC.p_desc) == ("test", "icl", 10, None, True, 1, None, 0.6)
  assert SPEC.default_descriptions == (
      "Given a question and multiple choice answers, return the correct "
      "answer letter.",
      "Respond with only the uppercase letter corresponding to the correct "
      "option.")
  download = SPEC.raw_files[0].download
  assert (download.hf_repo, download.hf_filename, download.target) == (
      "allenai/ai2_arc", "ARC-Challenge/test-00000-of-00001.parquet", FILE)


def test_rows():
  (inst,) = _build()
  assert [r.output for r in inst.rows] == ["C", "1", "C"]
  assert inst.rows[0] == Row(
      input="Question: An astronomer observes that a planet rotates faster "
      "after a meteorite impact. Which is the most likely effect of this "
      "increase in rotation?\nA. Planetary density will decrease.\n"
      "B. Planetary years will become longer.\n"
      "C. Planetary days will become shorter.\n"
      "D. Planetary gravity will become stronger.", output="C")
  # Numeric labels kept; stem and choice texts stripped.
  assert inst.rows[1] == Row(
      input="Question: Which tool is best for measuring the mass of a rock?\n"
      "1. a balance\n2. a ruler\n3. a thermometer\n4. a graduated cylinder",
      output="1")
  assert inst.rows[2].input.endswith("\nD. a window\nE. a lens")


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert FILE in str(e.value)


def test_answer_not_a_label_names_file_row_and_column(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  choices = pa.struct([("text", pa.list_(pa.string())),
                       ("label", pa.list_(pa.string()))])
  pq.write_table(pa.table({
      "id": ["a", "b"], "question": ["q1", "q2"],
      "choices": pa.array([{"text": ["x", "y"], "label": ["A", "B"]}] * 2,
                          choices),
      "answerKey": ["B", "C"]}), path)
  with pytest.raises(ValueError, match=r"test-00000-of-00001\.parquet, row 1, "
                     r"column 'answerKey': 'C' is not one of the labels"):
    _build(str(tmp_path))
