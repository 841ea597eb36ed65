"""Titanic converter (data_pipelines/sources/titanic.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import titanic

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {s.name: s for s in titanic.TASKS}


def _build(name, raw_dir=RAW):
  out = list(SPECS[name].generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(name)
  return out


def test_specs():
  for spec in titanic.TASKS:
    assert (spec.suite_split, spec.mean_k, spec.fixed_k,
            spec.chunk_all_rows, spec.p_desc) == ("train", 64, None, True,
                                                  0.6)
    assert len(spec.default_descriptions) == 3
    download = spec.raw_files[0].download
    assert (download.hf_repo, download.hf_filename, download.revision) == (
        "mstz/titanic", "survival/train/0000.parquet", "refs/convert/parquet")


def test_all_variables():
  (inst,) = _build("titanic_all_variables")
  assert len(inst.rows) == 11
  assert inst.rows[0] == Row(output=(
      '{"has_survived": "0", "passenger_class": 3, "is_male": true, '
      '"age": 22.0, "sibsp": 1.0, "parch": 0.0, "fare": 7.25, '
      '"embarked": "S"}'))
  assert inst.rows[5].output == (
      '{"has_survived": "0", "passenger_class": 3, "is_male": true, '
      '"age": -1.0, "sibsp": 0.0, "parch": 0.0, "fare": 8.4583, '
      '"embarked": "Q"}')
  assert inst.rows[10].output.endswith('"fare": 80.0, "embarked": null}')


def test_survival_prediction():
  (inst,) = _build("titanic_survival_prediction")
  assert inst.rows[1] == Row(
      input='{"passenger_class": 1, "is_male": false, "age": 38.0, '
      '"sibsp": 1.0, "parch": 0.0, "fare": 71.2833, "embarked": "C"}',
      output="1")
  assert [r.output for r in inst.rows] == list("01110000111")
  assert SPECS["titanic_survival_prediction"].default_descriptions[1] == (
      "Predict Titanic passenger survival based on socioeconomic status, "
      "demographics, and family connections.")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(name, str(tmp_path))
  assert "titanic/survival/train/0000.parquet" in str(e.value)


def _write(tmp_path, **changes):
  table = pq.read_table(os.path.join(RAW, titanic.RAW.path)).slice(0, 3)
  for name, values in changes.items():
    table = table.set_column(table.schema.get_field_index(name), name,
                             pa.array(values))
  path = tmp_path / titanic.RAW.path
  path.parent.mkdir(parents=True)
  pq.write_table(table, path)
  return str(tmp_path)


def test_bad_survival_names_file_row_and_column(tmp_path):
  raw = _write(tmp_path, has_survived=[0, 1, 2])
  with pytest.raises(ValueError, match=r"0000\.parquet, row 2, column "
                     r"'has_survived': expected 0 or 1, got 2"):
    _build("titanic_survival_prediction", raw)


def test_missing_column(tmp_path):
  raw = _write(tmp_path)
  table = pq.read_table(raw + "/" + titanic.RAW.path).drop(["fare"])
  pq.write_table(table, raw + "/" + titanic.RAW.path)
  with pytest.raises(ValueError, match=r"missing column\(s\) \['fare'\]"):
    _build("titanic_all_variables", raw)
