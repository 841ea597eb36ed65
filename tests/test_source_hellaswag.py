"""HellaSwag converter (data_pipelines/sources/hellaswag.py)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import hellaswag

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = hellaswag.TASKS[0]
HEAD = "Choose the option that best completes the description:"


def _build(raw_dir=RAW):
  out = list(SPEC.generate(BuildContext(seed=0, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def test_spec():
  assert [s.name for s in hellaswag.TASKS] == ["hellaswag"]
  assert (SPEC.suite_split, SPEC.kind, SPEC.fixed_k, SPEC.mean_k,
          SPEC.chunk_all_rows, SPEC.episodes_per_instance, SPEC.orderings,
          SPEC.max_episodes, SPEC.p_desc) == (
              "test", "icl", 20, None, True, 1, 1, None, 0.6)
  assert SPEC.default_descriptions == (
      "Given a context and four possible endings, output the letter of the "
      "ending that best completes the context.",
      "Respond with the single uppercase letter for the correct choice.")
  download = SPEC.raw_files[0].download
  assert (download.hf_repo, download.hf_filename) == (
      "Rowan/hellaswag", "data/validation-00000-of-00001.parquet")
  assert download.target == SPEC.raw_files[0].path


def test_rows():
  (inst,) = _build()
  assert inst.id == "all" and inst.descriptions == []
  assert [r.output for r in inst.rows] == ["D", "D", "A", "B", "A"]
  assert inst.rows[0] == Row(
      input="Activity: Roof shingle removal\n"
      "Context: A man is sitting on a roof. he\n" + HEAD + "\n"
      "A. is using wrap to wrap a pair of skis.\n"
      "B. is ripping level tiles off.\n"
      "C. is holding a rubik's cube.\n"
      "D. starts pulling up roofing on a roof.", output="D")
  # Non-ASCII kept as is (one given variable: the raw string).
  assert inst.rows[2].input.startswith("Activity: Caf\u00e9 work\n")
  # An empty activity label / context leaves its line out.
  assert inst.rows[3].input.startswith(
      "Context: Two people are dancing on a stage. they\n" + HEAD)
  assert inst.rows[4].input == (
      "Activity: Home and Garden\n" + HEAD + "\n"
      "A. [header] How to water a plant [title] Fill a can.\nPour slowly.\n"
      "B. Shout at it.\nC. Leave it in the dark.\nD. Paint it.")


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert "hellaswag/data/validation-00000-of-00001.parquet" in str(e.value)


def _write(tmp_path, labels):
  path = tmp_path / "hellaswag" / "data" / "validation-00000-of-00001.parquet"
  path.parent.mkdir(parents=True)
  n = len(labels)
  pq.write_table(pa.table({
      "activity_label": ["a"] * n, "ctx": ["c"] * n,
      "endings": pa.array([["w", "x", "y", "z"]] * n, pa.list_(pa.string())),
      "label": pa.array(labels, pa.string())}), path)


def test_label_out_of_range_names_file_row_and_column(tmp_path):
  _write(tmp_path, ["1", "4"])
  with pytest.raises(ValueError, match=r"validation-00000-of-00001\.parquet, "
                     r"row 1, column 'label'.*'4'"):
    _build(str(tmp_path))


def test_unlabelled_row_is_an_error(tmp_path):
  _write(tmp_path, ["", "2"])  # the test split's labels are empty
  with pytest.raises(ValueError, match=r"row 0, column 'label'"):
    _build(str(tmp_path))
