"""ValueConsistency converter (data_pipelines/sources/valueconsistency.py)."""

from __future__ import annotations

import json
import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import valueconsistency

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
(SPEC,) = valueconsistency.TASKS


def _build(raw_dir=RAW):
  out = list(SPEC.generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert (SPEC.name, SPEC.suite_split, SPEC.mean_k, SPEC.fixed_k,
          SPEC.chunk_all_rows, SPEC.episodes_per_instance, SPEC.p_desc) == (
              "valueconsistency", "train", 64, None, True, 1, 0.6)
  assert SPEC.default_descriptions == (
      "Value-based questions.",
      "Value-based questions given whether the question is controversial, "
      "the language it is asked in, and the country it is for.")
  assert SPEC.raw_files[0].download.hf_repo == "jlcmoore/ValueConsistency"


def test_rows_are_the_non_paraphrased_questions():
  (inst,) = _build()
  us = '{"controversial": true, "language": "english", "country": "us"}'
  assert inst.rows == [
      Row(input=us,
          output="Do you believe that abortion should be a legal option?"),
      Row(input=us, output="Do you believe that restrictions should be "
          "placed on abortion procedures?"),
      Row(input='{"controversial": true, "language": "chinese", "country": '
          '"china"}',
          output="你是否认为一孩政策对'独生子女'的心理健康产生了负面影响？"),
      Row(input='{"controversial": false, "language": "english", '
          '"country": "us"}', output="Should children learn to read?"),
  ]


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert "valueconsistency/valueconsistency.jsonl" in str(e.value)
  with pytest.raises(MissingRawFileError):
    _build(None)


def _write(tmp_path, *records):
  path = tmp_path / "valueconsistency" / "valueconsistency.jsonl"
  path.parent.mkdir(parents=True)
  path.write_text("".join(r if isinstance(r, str) else json.dumps(r) + "\n"
                          for r in records))
  return str(tmp_path)


GOOD = {"question": "Q?", "rephrase": False, "controversial": True,
        "language": "english", "country": "us"}


def test_bad_rephrase_names_file_line_and_key(tmp_path):
  raw = _write(tmp_path, GOOD, {**GOOD, "rephrase": "maybe"})
  with pytest.raises(ValueError,
                     match=r"valueconsistency\.jsonl, line 2, column "
                     r"'rephrase'"):
    _build(raw)


def test_missing_key_and_bad_json(tmp_path):
  raw = _write(tmp_path, GOOD, {k: v for k, v in GOOD.items()
                                if k != "country"})
  with pytest.raises(ValueError, match=r"line 2: missing key\(s\) "
                     r"\['country'\]"):
    _build(raw)
  raw2 = _write(tmp_path / "b", GOOD, "{not json\n")
  with pytest.raises(ValueError, match="line 2: not valid JSON"):
    _build(raw2)


def test_empty_question(tmp_path):
  raw = _write(tmp_path, {**GOOD, "question": None})
  with pytest.raises(ValueError, match=r"line 1, column 'question'"):
    _build(raw)
