"""Tests of data_pipelines/sources/novacomet.py.

Fixture: tests/fixtures/raw/novacomet/data/train-00000-of-00001.parquet,
written by make_fixture.py next to it (rows in the dataset's schema).
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import novacomet

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in novacomet.TASKS}


def _build(name, raw_dir=FIXTURES):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_specs_match_the_release():
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.fixed_k,
                  s.episodes_per_instance, s.chunk_all_rows, s.orderings,
                  s.max_episodes, s.p_desc) for s in novacomet.TASKS}
  assert got == {
      "novacomet_premise": ("test", "icl", 64, None, 1, True, 1, None, 0.6),
      "novacomet_hypothesis": ("test", "icl", 32, None, 1, True, 1, None,
                               0.6),
  }
  assert SPECS["novacomet_premise"].default_descriptions == (
      "Generate an event.", "Events", "Generate a list of diverse events.",
      "Situations about which commonsense reasoning could be required.",
      "Single sentence events")
  # The release's wording, "semicolons" and all (docs/method.md#novacomet).
  assert SPECS["novacomet_hypothesis"].default_descriptions == (
      "Given a premise (or situation), generate a list of commonsense "
      "hypotheses separated by semicolons.",
      "You will be given a premise. Generate a list of around 8-10 "
      "hypotheses (or inferences) separated by semicolons.")
  for spec in novacomet.TASKS:
    assert spec.about
    (raw,) = spec.raw_files
    assert raw.download.hf_repo == "tsor13/novacomet"
    assert raw.path == "novacomet/" + raw.download.hf_filename


def test_premises_distinct_in_first_appearance_order():
  (inst,) = _build("novacomet_premise")
  assert inst.id == "all"
  assert inst.rows == [
      Row(output="PersonX bakes bread for the neighbours"),
      Row(output="A storm knocks out the power"),
      Row(output="PersonX orders a caf\u00e9 cr\u00e8me"),
      Row(output='PersonX says "no" to the offer'),
      Row(output="A child drops an ice cream"),
  ]


def test_hypotheses_json_lists():
  (inst,) = _build("novacomet_hypothesis")
  assert inst.rows == [
      Row(input="PersonX bakes bread for the neighbours",
          output=('["PersonX wants to be kind", "The kitchen smells of '
                  'bread", "PersonX owns an oven"]')),
      # Repeated inferences stay repeated, as in the release's list.
      Row(input="A storm knocks out the power",
          output=('["People light candles", "The fridge stops humming", '
                  '"People light candles"]')),
      # The input is the raw premise; the JSON output is ASCII-escaped; the
      # null hypothesis is left out.
      Row(input="PersonX orders a caf\u00e9 cr\u00e8me",
          output='["PersonX is in a caf\\u00e9"]'),
      Row(input='PersonX says "no" to the offer',
          output='["PersonX was not interested"]'),
      Row(input="A child drops an ice cream",
          output='["The child cries \\u2014 loudly"]'),
  ]


def test_premise_with_only_null_hypotheses_dropped(tmp_path):
  path = tmp_path / "novacomet" / novacomet.HF_FILENAME
  os.makedirs(path.parent)
  pq.write_table(pa.table({
      "premise": pa.array(["A", "B", None, "A"], pa.string()),
      "hypothesis": pa.array([None, "b1", "x", "a1"], pa.string()),
  }), path)
  (premises,) = _build("novacomet_premise", tmp_path)
  assert [r.output for r in premises.rows] == ["A", "B"]
  (hyps,) = _build("novacomet_hypothesis", tmp_path)
  assert hyps.rows == [Row(input="A", output='["a1"]'),
                       Row(input="B", output='["b1"]')]
  pq.write_table(pa.table({
      "premise": pa.array(["A"], pa.string()),
      "hypothesis": pa.array([None], pa.string()),
  }), path)
  (hyps,) = _build("novacomet_hypothesis", tmp_path)
  assert hyps.rows == []


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(name, tmp_path)
  (raw,) = SPECS[name].raw_files
  assert raw.path in str(e.value) and raw.published_at in str(e.value)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_non_text_cell_names_file_row_column(name, tmp_path):
  path = tmp_path / "novacomet" / novacomet.HF_FILENAME
  os.makedirs(path.parent)
  pq.write_table(pa.table({
      "premise": pa.array(["A", "B"], pa.string()),
      "hypothesis": pa.array([1, 7], pa.int64()),
  }), path)
  with pytest.raises(ValueError,
                     match=r"train-00000-of-00001\.parquet, row 0, column "
                     r"'hypothesis': expected text, got int 1"):
    _build(name, tmp_path)


def test_missing_column(tmp_path):
  path = tmp_path / "novacomet" / novacomet.HF_FILENAME
  os.makedirs(path.parent)
  pq.write_table(pa.table({"premise": ["A"], "inference": ["a"]}), path)
  with pytest.raises(ValueError, match=r"missing column\(s\) \['hypothesis'\]"):
    _build("novacomet_hypothesis", tmp_path)
