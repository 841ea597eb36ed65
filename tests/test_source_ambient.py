"""AmbiEnt converters, built from real rows (tests/fixtures/raw/ambient)."""

import json
import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import ambient

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {t.name: t for t in ambient.TASKS}


def _build(name, raw_dir=FIXTURES):
  spec = SPECS[name]
  instances = list(spec.generate(BuildContext(seed=0, raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def _copy(tmp_path):
  shutil.copytree(os.path.join(FIXTURES, "ambient"), tmp_path / "ambient")
  return tmp_path


def test_six_tasks_sampled_as_the_release():
  assert sorted(SPECS) == sorted([
      "ambient_premise_hypothesis", "ambient_ambiguity_detection",
      "ambient_disambiguation", "ambient_linguist_annotations",
      "ambient_interpretation_labels", "ambient_annotation_distributions"])
  for name, spec in SPECS.items():
    assert spec.suite_split == "train" and spec.kind == "icl"
    assert spec.mean_k == 64 and spec.fixed_k is None
    assert not spec.chunk_all_rows and spec.orderings == 1
    assert spec.max_episodes is None and spec.p_desc == 0.6
    assert spec.episodes_per_instance == (
        2 if name == "ambient_linguist_annotations" else 50)
    assert len(spec.default_descriptions) == 3
  assert SPECS["ambient_linguist_annotations"].default_descriptions[0] == (
      "Given a premise-hypothesis pair, predict the entailment annotation "
      "that this specific linguist would provide (entailment, neutral, "
      "contradiction, or combinations like 'entailment|neutral').")


def test_download_entries_pin_a_commit():
  for raw in (ambient.FULL, ambient.LINGUISTS, ambient.CROWD):
    assert raw.download.url == (
        "https://raw.githubusercontent.com/alisawuffles/ambient/"
        "d8d2dcdb566db50878d41304bd769f055f823056/" + raw.path[len("ambient/"):])
    assert raw.download.target == raw.path
    assert len(raw.download.sha256) == 64 and raw.download.size > 500_000


def test_premise_hypothesis():
  (inst,) = _build("ambient_premise_hypothesis")
  assert len(inst.rows) == 14
  assert inst.rows[0].input is None
  assert inst.rows[0].output == (
      '{"premise": "I might go to the pool that my neighbor goes to.", '
      '"hypothesis": "I go to a pool."}')
  # Non-ASCII is escaped, as json.dumps does by default.
  assert inst.rows[12].output.startswith(
      '{"premise": "No bathroom bill made it to Abbott\\u2019s desk')


def test_ambiguity_detection_writes_json_booleans():
  (inst,) = _build("ambient_ambiguity_detection")
  assert len(inst.rows) == 14
  assert inst.rows[0].input == (
      '{"premise": "I might go to the pool that my neighbor goes to.", '
      '"hypothesis": "I go to a pool."}')
  assert inst.rows[0].output == (
      '{"premise_ambiguous": true, "hypothesis_ambiguous": false}')
  assert inst.rows[9].output == (  # line 10: both ambiguous
      '{"premise_ambiguous": true, "hypothesis_ambiguous": true}')


def test_disambiguation_one_row_per_rewrite():
  (inst,) = _build("ambient_disambiguation")
  assert len(inst.rows) == 34  # disambiguations across the 14 pairs
  assert inst.rows[0].input == (
      '{"original_premise": "I might go to the pool that my neighbor goes '
      'to.", "original_hypothesis": "I go to a pool.", "target_label": '
      '"neutral"}')
  assert inst.rows[0].output == (
      '{"disambiguated_premise": "I might, in the future, go to the pool that '
      'my neighbor goes to.", "disambiguated_hypothesis": "I go to a pool."}')


def test_linguist_annotations_one_instance_per_linguist():
  instances = _build("ambient_linguist_annotations")
  assert [i.id for i in instances] == [
      "ABS", "GFH", "QCN", "KVG", "BVU", "HYK", "XPO", "PHO", "KWI", "KEP",
      "KPL", "BSJ", "DQX", "MVY"]
  by_id = {i.id: i for i in instances}
  assert len(by_id["GFH"].rows) == 18 and len(by_id["ABS"].rows) == 10
  first = by_id["ABS"].rows[0]
  assert first.input == (
      '{"premise": "We cannot be sure that the meeting will be productive.", '
      '"hypothesis": "We cannot be sure that the meeting will not be '
      'productive."}')
  assert first.output == "entailment|neutral"
  assert by_id["GFH"].rows[0].output == "entailment"


def test_interpretation_labels_skip_null_labels():
  (inst,) = _build("ambient_interpretation_labels")
  assert len(inst.rows) == 26  # 13 pairs x 3 interpretations, 13 unlabelled
  first = inst.rows[0]
  assert json.loads(first.input) == {
      "premise": "The most likely explanation for the decline in support for "
                 "the war is that the American public has lost faith in the "
                 "government's ability to win the war.",
      "hypothesis": "The American public has lost faith in the government's "
                    "ability to win the war.",
      "ambiguous_sent": "premise",
      "interpretation": "The American public has lost faith in the "
                        "government's ability to win the war, which is the "
                        "most likely explanation for the decline in support "
                        "for the war."}
  assert list(json.loads(first.input)) == [
      "premise", "hypothesis", "ambiguous_sent", "interpretation"]
  assert first.output == "entailment"
  # The second interpretation (label null) is skipped; the third is next.
  assert inst.rows[1].output == "neutral"


def test_annotation_distribution_is_a_python_repr():
  (inst,) = _build("ambient_annotation_distributions")
  assert len(inst.rows) == 13
  assert inst.rows[0].output == (
      "{'entailment_fraction': '16/36', 'entailment_percentage': 44.4444, "
      "'neutral_fraction': '20/36', 'neutral_percentage': 55.5556, "
      "'contradiction_fraction': '0/36', 'contradiction_percentage': 0.0}")
  assert inst.rows[12].input == (
      '{"premise": "I\'m not going to sugarcoat this: you need to shape up or '
      'you\'re going to get fired.", "hypothesis": "You\'re going to get fired '
      'if you don\'t shape up.", "ambiguous_sent": "premise"}')


def test_percent_rounds_like_numpy():
  assert ambient._percent(1, 3) == 33.3333
  assert ambient._percent(2, 3) == 66.6667
  assert ambient._percent(1, 8) == 12.5


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError, match="ambient/AmbiEnt/"):
    _build(name, tmp_path)


def _rewrite_line(path, line, edit):
  lines = path.read_text(encoding="utf-8").splitlines(True)
  obj = json.loads(lines[line - 1])
  edit(obj)
  lines[line - 1] = json.dumps(obj) + "\n"
  path.write_text("".join(lines), encoding="utf-8")


def test_malformed_flag_names_file_line_and_column(tmp_path):
  raw = _copy(tmp_path)
  path = raw / "ambient" / "AmbiEnt" / "ambient_full.jsonl"
  _rewrite_line(path, 3, lambda o: o.update(premise_ambiguous="yes"))
  with pytest.raises(ValueError, match=r"ambient_full\.jsonl, line 3, column "
                     r"'premise_ambiguous': expected true or false"):
    _build("ambient_ambiguity_detection", raw)


def test_unknown_crowd_label(tmp_path):
  raw = _copy(tmp_path)
  path = raw / "ambient" / "AmbiEnt" / "analysis" / "crowdworker_annotations.jsonl"
  _rewrite_line(path, 2, lambda o: o["q2_gold"].__setitem__(0, "maybe"))
  with pytest.raises(ValueError, match=r"line 2, column 'q2_gold': unknown "
                     r"label 'maybe'"):
    _build("ambient_annotation_distributions", raw)


def test_mismatched_linguist_lists(tmp_path):
  raw = _copy(tmp_path)
  path = raw / "ambient" / "AmbiEnt" / "linguist_annotations.jsonl"
  _rewrite_line(path, 5, lambda o: o["annotations"].pop())
  with pytest.raises(ValueError, match=r"line 5, column 'annotations': 1 "
                     r"annotations for 2 worker_ids"):
    _build("ambient_linguist_annotations", raw)


def test_line_that_is_not_json(tmp_path):
  raw = _copy(tmp_path)
  path = raw / "ambient" / "AmbiEnt" / "ambient_full.jsonl"
  with open(path, "a", encoding="utf-8") as f:
    f.write('{"premise": "cut off\n')
  with pytest.raises(ValueError, match=r"ambient_full\.jsonl, line 15: not valid "
                     "JSON"):
    _build("ambient_premise_hypothesis", raw)
