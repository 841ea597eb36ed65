"""IMDB converter (data_pipelines/sources/imdb.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import imdb

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
(SPEC,) = imdb.TASKS


def _build(raw_dir=RAW):
  out = list(SPEC.generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert (SPEC.name, SPEC.suite_split, SPEC.mean_k, SPEC.fixed_k,
          SPEC.episodes_per_instance, SPEC.chunk_all_rows, SPEC.p_desc) == (
              "imdb", "train", 128, None, 200, False, 0.6)
  assert SPEC.default_descriptions == (
      "Classify whether the following movie reviews as negative or "
      "positive.",)
  assert SPEC.raw_files[0].download.hf_repo == "stanfordnlp/imdb"


def test_rows():
  (inst,) = _build()
  assert len(inst.rows) == 5
  assert inst.rows[1] == Row(input="Too long, too loud, too dull. 2/10.",
                             output="negative")
  assert inst.rows[3] == Row(
      input="Amélie-like charm, but set in Tokyo \u2014 I loved every frame.",
      output="positive")
  assert [r.output for r in inst.rows] == ["negative", "negative",
                                           "positive", "positive",
                                           "positive"]


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert "imdb/plain_text/train-00000-of-00001.parquet" in str(e.value)


def _write(tmp_path, columns):
  path = tmp_path / "imdb" / "plain_text" / "train-00000-of-00001.parquet"
  path.parent.mkdir(parents=True)
  pq.write_table(pa.table(columns), path)
  return str(tmp_path)


def test_unknown_label_names_file_row_and_column(tmp_path):
  raw = _write(tmp_path, {"text": ["good", "unlabelled"], "label": [1, -1]})
  with pytest.raises(ValueError, match=r"train-00000-of-00001\.parquet, row "
                     r"1, column 'label': expected 0 or 1, got -1"):
    _build(raw)


def test_missing_text_column(tmp_path):
  raw = _write(tmp_path, {"review": ["good"], "label": [1]})
  with pytest.raises(ValueError, match=r"missing column\(s\) \['text'\]"):
    _build(raw)
