"""Community Alignment converters on an invented CSV in the real layout
(tests/fixtures/raw/community_alignment; see PROVENANCE.md there)."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import community_alignment as ca

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in ca.TASKS}
A1_DEMOGRAPHICS = ('{"age": "35-44", "gender": "Man", "education_level": '
                   '"Bachelor\'s degree", "annotator_political": "Liberal", '
                   '"ethnicity": "White", "country": "United States"}')


def _build(name, raw_dir=RAW, seed=0):
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_sampling_fields_match_the_release():
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.fixed_k,
                  s.episodes_per_instance, s.chunk_all_rows, s.orderings,
                  s.max_episodes, s.p_desc, s.default_descriptions)
         for s in ca.TASKS}
  assert got == {
      "community_alignment_initial_prompt":
          ("train", "icl", 32, None, 1, True, 1, None, 0.6, ()),
      "community_alignment_individual_reply":
          ("train", "icl", 25, None, 1, True, 1, None, 0.6, ()),
      "community_alignment_individual_preferences":
          ("train", "icl", 25, None, 1, True, 1, None, 0.6, ()),
      "community_alignment_response":
          ("train", "icl", None, 5, 1, True, 1, None, 0.6, ()),
  }
  (raw,) = {f for s in ca.TASKS for f in s.raw_files}
  assert raw.download.hf_repo == "facebook/community-alignment-dataset"
  assert raw.download.hf_filename == "data/filtered_community_alignment.csv"


def test_initial_prompts_per_language():
  instances = _build("community_alignment_initial_prompt")
  assert [(i.id, len(i.rows)) for i in instances] == [("en", 5), ("fr", 4),
                                                      ("hi", 1)]
  en, fr, hi = instances
  assert all(r.input is None for r in en.rows)
  assert en.rows[1].output == "Write a haiku about rain\nin the city."
  assert fr.rows[2].output == "Donne-moi un proverbe « drôle »."
  # The Hindi annotator's copy of an English prompt is a duplicate; the row
  # without a prompt is dropped.
  assert [r.output for r in hi.rows] == ["मुझे एक कविता सुनाइए।"]
  assert hi.descriptions == ["Generate a prompt for a language model in the "
                             "following language: hi."]


def test_individual_reply():
  instances = _build("community_alignment_individual_reply")
  # a1: 5 usable rows, one without a reply -> 4 (kept); a2: 4 -> 3 (out).
  assert [(i.id, len(i.rows)) for i in instances] == [("a1", 4)]
  (a1,) = instances
  assert a1.rows[0].input == ('{"prompt": "What should I cook for a '
                              'picnic?", "model_response": "Try a pasta '
                              'salad."}')
  assert a1.rows[0].output == "Can you give me a recipe for it?"
  # The preferred response is looked up per row (response_a, end-of-text
  # marker removed).
  assert json.loads(a1.rows[2].input)["model_response"] == "Patch the tube."
  assert a1.descriptions == [
      "The following are user replies to a language model.\nUser "
      "demographics: " + A1_DEMOGRAPHICS]


def test_individual_preferences():
  instances = _build("community_alignment_individual_preferences")
  assert [(i.id, len(i.rows)) for i in instances] == [("a1", 5), ("a2", 4)]
  a1, a2 = instances
  assert a1.rows[0].input == (
      '{"prompt": "What should I cook for a picnic?", "response_a": '
      '"Sandwiches travel well.", "response_b": "Try a pasta salad.", '
      '"response_c": "Fruit skewers are fun.", "response_d": "Cold fried '
      'chicken."}')
  assert a1.rows[0].output == ('{"preferred_response": "response_b", '
                               '"justification": "It was the most '
                               'practical."}')
  assert a1.rows[1].output == ('{"preferred_response": "response_c", '
                               '"justification": null}')
  assert json.loads(a2.rows[0].input)["response_b"] == "L'automne, sans doute."
  assert "\\u00e9" in a2.rows[0].input  # ensure_ascii escapes, as released
  assert a2.descriptions[0].endswith(
      '{"age": "25-34", "gender": "Woman", "education_level": "Master\'s '
      'degree", "annotator_political": "Moderate", "ethnicity": null, '
      '"country": "France"}')
  assert a2.descriptions[1] == ca.PREFERENCE_DESCRIPTION


def test_response_lists_are_seeded_permutations():
  instances = _build("community_alignment_response")
  assert [(i.id, len(i.rows)) for i in instances] == [("en", 5), ("fr", 4),
                                                      ("hi", 1)]
  first = instances[0].rows[0]
  assert first.input == "What should I cook for a picnic?"
  assert sorted(json.loads(first.output)) == sorted([
      "Sandwiches travel well.", "Try a pasta salad.",
      "Fruit skewers are fun.", "Cold fried chicken."])
  assert instances[0].descriptions == [ca.RESPONSE_DESCRIPTION]
  again = _build("community_alignment_response")
  assert [r.output for i in again for r in i.rows] == [
      r.output for i in instances for r in i.rows]
  outputs = {seed: [r.output for i in _build("community_alignment_response",
                                             seed=seed) for r in i.rows]
             for seed in range(4)}
  assert len({tuple(o) for o in outputs.values()}) > 1


def test_only_the_first_rows_are_read(monkeypatch):
  monkeypatch.setattr(ca, "MAX_ROWS", 6)
  instances = _build("community_alignment_initial_prompt")
  assert [(i.id, len(i.rows)) for i in instances] == [("en", 5)]


@pytest.mark.parametrize("spec", ca.TASKS, ids=lambda s: s.name)
def test_missing_raw_file(spec, tmp_path):
  with pytest.raises(MissingRawFileError) as err:
    list(spec.generate(BuildContext(seed=0, raw_dir=str(tmp_path))))
  assert "community_alignment/filtered_community_alignment.csv" in str(
      err.value)


def test_bad_preferred_response_names_file_line_and_column(tmp_path):
  src = os.path.join(RAW, ca.FILTERED.path)
  dst = tmp_path / ca.FILTERED.path
  dst.parent.mkdir(parents=True)
  with open(src, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
  rows[4][rows[0].index("first_turn_preferred_response")] = "B"
  with open(dst, "w", newline="", encoding="utf-8") as f:
    csv.writer(f).writerows(rows)
  # Record 4 starts on line 6: record 2 spans two lines.
  with pytest.raises(ValueError, match=r"filtered_community_alignment\.csv, "
                     r"line 6, column 'first_turn_preferred_response'.*'B'"):
    _build("community_alignment_individual_preferences", tmp_path)
  shutil.rmtree(tmp_path / "community_alignment")
