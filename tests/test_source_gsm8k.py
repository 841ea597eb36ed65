"""GSM8K converter (data_pipelines/sources/gsm8k.py)."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import gsm8k

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {s.name: s for s in gsm8k.TASKS}
Q = ("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 "
     "minutes of babysitting. How much did she earn?")
A = ("Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, "
     "she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10")


def _build(name, raw_dir=RAW):
  out = list(SPECS[name].generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(name)
  return out


def test_specs():
  assert sorted(SPECS) == ["gsm8k_answer_from_question", "gsm8k_question",
                           "gsm8k_question_answer",
                           "gsm8k_question_from_answer"]
  for spec in gsm8k.TASKS:
    assert (spec.suite_split, spec.mean_k, spec.fixed_k,
            spec.episodes_per_instance, spec.chunk_all_rows, spec.p_desc) == (
                "train", 64, None, 50, False, 0.6)
    assert len(spec.default_descriptions) == 3
    assert spec.raw_files[0].download.hf_filename == (
        "main/train-00000-of-00001.parquet")
  assert SPECS["gsm8k_question"].default_descriptions[2] == (
      "Math word problems suitable for grade school students.")
  assert SPECS["gsm8k_question_from_answer"].default_descriptions[2] == (
      "Given: answer (step-by-step solution). Generate: question (word "
      "problem that leads to this solution).")


def test_rows():
  rows = {name: _build(name)[0].rows for name in SPECS}
  assert all(len(r) == 5 for r in rows.values())
  assert rows["gsm8k_question"][1] == Row(output=Q)
  assert rows["gsm8k_answer_from_question"][1] == Row(input=Q, output=A)
  assert rows["gsm8k_question_from_answer"][1] == Row(input=A, output=Q)
  assert rows["gsm8k_question_answer"][1] == Row(
      output=json.dumps({"question": Q, "answer": A}))
  # Non-ASCII is \u-escaped in the JSON form only.
  joint = rows["gsm8k_question_answer"][4].output
  assert "20 \\u2212 13" in joint and joint.startswith('{"question": "Bella')
  assert "20 \u2212 13" in rows["gsm8k_answer_from_question"][4].output


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(name, str(tmp_path))
  assert "gsm8k/main/train-00000-of-00001.parquet" in str(e.value)


def test_null_answer_names_file_row_and_column(tmp_path):
  path = tmp_path / "gsm8k" / "main" / "train-00000-of-00001.parquet"
  path.parent.mkdir(parents=True)
  pq.write_table(pa.table({"question": ["q1", "q2"],
                           "answer": pa.array(["a1", None], pa.string())}),
                 path)
  with pytest.raises(ValueError, match=r"train-00000-of-00001\.parquet, row "
                     r"1, column 'answer'"):
    _build("gsm8k_question", str(tmp_path))
