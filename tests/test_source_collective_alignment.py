"""Collective Alignment 1 converter on invented JSON lines in the real layout
(tests/fixtures/raw/collective_alignment; see PROVENANCE.md there)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import collective_alignment as ca

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
TASK = "collective_alignment_individual"
(SPEC,) = ca.TASKS


def _build(raw_dir=RAW):
  instances = list(SPEC.generate(BuildContext(seed=0, raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(TASK)
  return instances


def test_sampling_fields_match_the_release():
  assert (SPEC.name, SPEC.suite_split, SPEC.kind, SPEC.mean_k, SPEC.fixed_k,
          SPEC.episodes_per_instance, SPEC.chunk_all_rows, SPEC.orderings,
          SPEC.max_episodes, SPEC.p_desc, SPEC.default_descriptions) == (
              TASK, "train", "icl", None, None, 1, False, 1, None, 0.6, ())
  assert [(f.path, f.download.hf_repo, f.download.hf_filename)
          for f in SPEC.raw_files] == [
              ("collective_alignment/comparisons.jsonl",
               "openai/collective-alignment-1", "comparisons.jsonl"),
              ("collective_alignment/merged_comparisons_annotators.jsonl",
               "openai/collective-alignment-1",
               "merged_comparisons_annotators.jsonl")]


def test_annotators_sorted_with_minimum_and_known_prompts():
  instances = _build()
  # ann-c has 2 assessments (< 3); ann-b's p9 has no prompt, so 3 rows.
  assert [(i.id, len(i.rows)) for i in instances] == [("ann-a", 3),
                                                      ("ann-b", 3)]


def test_row_formatting():
  ann_a, ann_b = _build()
  row = ann_b.rows[0]
  assert row.input == (
      '{"conversation": "Is it ever ok to break a promise?\\nI promised a '
      'friend to keep a secret that could hurt someone.", "response_a": '
      '"Keep the promise; trust matters.", "response_b": "Weigh the harm.'
      '\\n\\nIf someone could get hurt, tell.", "response_c": "Just tell '
      'everyone.", "response_d": "I can\'t help with that."}')
  assert row.output == (
      '{"personal_ranking": "B>A>D>C", "world_ranking": "B>A>C>D", '
      '"personal_rationale": "B weighs the harm.", "world_rationale": '
      '"Safety first.", "unacceptable_responses": "C", '
      '"unacceptable_rationale": "Spreading secrets is cruel.", '
      '"importance": "Very important", "representativeness": "Somewhat '
      'representative", "subjectivity": "Subjective"}')
  # Several unacceptable letters are joined with "|".
  assert json.loads(ann_a.rows[1].output)["unacceptable_responses"] == "B|D"
  # A prompt with three candidates: response_d is empty; non-ASCII escaped.
  poem = json.loads(ann_b.rows[1].input)
  assert poem["response_d"] == ""
  assert ann_b.rows[1].input.startswith(
      '{"conversation": "\\u00c9cris un po\\u00e8me')
  # No blocks and null ratings.
  assert json.loads(ann_a.rows[2].output) == {
      "personal_ranking": "", "world_ranking": "", "personal_rationale": "",
      "world_rationale": "", "unacceptable_responses": "",
      "unacceptable_rationale": "", "importance": None,
      "representativeness": None, "subjectivity": None}


def test_descriptions_carry_demographics_json():
  ann_a, ann_b = _build()
  assert ann_a.descriptions == [
      ca.DESCRIPTION + '{"age": "25-34", "gender": "Female", "country": '
      '"Brasil", "education": "Bachelor\'s", "religion": null}']
  assert ann_b.descriptions[0].endswith(
      '"country": "C\\u00f4te d\'Ivoire", "education": "Master\'s", '
      '"religion": "Christian"}')
  assert ca.DESCRIPTION.startswith("The following are AI response "
                                   "evaluations from a single individual")
  assert ca.DESCRIPTION.endswith("subjective.\nAnnotator demographics: ")


def test_only_the_first_rows_are_read(monkeypatch):
  monkeypatch.setattr(ca, "MAX_ROWS", 6)
  # Merged rows 7-9 are not read: ann-b keeps 2 (p1, p2) + p9 (unknown) = 3
  # assessments counted, ann-a 2 -> out.
  assert [(i.id, len(i.rows)) for i in _build()] == [("ann-b", 2)]


def test_missing_raw_files(tmp_path):
  with pytest.raises(MissingRawFileError) as err:
    _build(tmp_path)
  assert "collective_alignment/comparisons.jsonl" in str(err.value)
  assert "merged_comparisons_annotators.jsonl" in str(err.value)


def _copy(tmp_path):
  shutil.copytree(os.path.join(RAW, "collective_alignment"),
                  tmp_path / "collective_alignment")
  return tmp_path / "collective_alignment"


def test_malformed_cells_name_file_line_and_field(tmp_path):
  folder = _copy(tmp_path)
  merged = folder / "merged_comparisons_annotators.jsonl"
  lines = merged.read_text(encoding="utf-8").splitlines()
  record = json.loads(lines[5])
  record["ranking_blocks"]["unacceptable"][0]["rating"] = "B,D"
  lines[5] = json.dumps(record)
  merged.write_text("\n".join(lines) + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"merged_comparisons_annotators\.jsonl"
                     r", line 6, column 'ranking_blocks\.unacceptable\.rating'"):
    _build(tmp_path)
  lines[5] = "{not json"
  merged.write_text("\n".join(lines) + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"annotators\.jsonl, line 6: not valid"):
    _build(tmp_path)
  comparisons = folder / "comparisons.jsonl"
  lines = comparisons.read_text(encoding="utf-8").splitlines()
  record = json.loads(lines[2])
  del record["responses"][1]["messages"]
  lines[2] = json.dumps(record)
  comparisons.write_text("\n".join(lines) + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"comparisons\.jsonl, line 3, column "
                     r"'responses'"):
    _build(tmp_path)
