"""LeWiDi 2025 converters (data_pipelines/sources/lewidi.py) on real rows.

The fixtures under tests/fixtures/raw/lewidi are real items of the
organisers' release (PROVENANCE.md there); expected strings below are
copied from those files by hand.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import lewidi

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in lewidi.TASKS}


def _build(name, raw_dir=RAW):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def _by_id(instances):
  return {inst.id: inst for inst in instances}


def test_sampling_fields_match_the_release():
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.fixed_k,
                  s.episodes_per_instance, s.chunk_all_rows, s.orderings,
                  s.max_episodes, s.p_desc, s.default_descriptions)
         for s in lewidi.TASKS}
  all_rows_once = ("train", "icl", None, 1000, 1, False, 1, None, 0.6, ())
  assert got == {
      "lewidi_csc_sarcasm_detection_individual": all_rows_once,
      "lewidi_mp_irony_detection_individual": all_rows_once,
      "lewidi_par_paraphrase_detection_individual":
          ("train", "icl", None, 20, 1, True, 1, None, 0.6, ()),
      "lewidi_par_paraphrase_detection_individual_categorical":
          ("train", "icl", None, 20, 1, True, 1, None, 0.6, ()),
      "lewidi_varierrnli_nli_detection_individual":
          ("train", "icl", None, 30, 1, True, 1, None, 0.6, ()),
      "lewidi_varierrnli_nli_detection_individual_categorical":
          ("train", "icl", None, 30, 1, True, 1, None, 0.6, ()),
  }
  for spec in lewidi.TASKS:
    assert len(spec.raw_files) == 2
    for f in spec.raw_files:
      assert f.download.url.startswith(
          "https://raw.githubusercontent.com/Le-Wi-Di/le-wi-di.github.io/"
          "45d7b06e4c36b59472d6bdf9281f7f1e395eb0e0/LeWiDi_3-2025/")
      assert f.download.target == f.path


def test_csc_rows_and_demographics():
  instances = _build("lewidi_csc_sarcasm_detection_individual")
  # Annotators in order of first appearance: the 4 of the first item first.
  assert [i.id for i in instances[:5]] == ["Ann704", "Ann705", "Ann706",
                                           "Ann707", "Ann672"]
  assert len(instances) == 18
  ann706 = _by_id(instances)["Ann706"]
  assert len(ann706.rows) == 5
  row = ann706.rows[0]
  assert row.output == "3"
  assert row.input == json.dumps({
      "context": "You did something that upset Steve the other day. You "
                 "wanted to apologize to him, so you went to Steve's office. "
                 "Steve opens the door, does a funny dance for two seconds, "
                 "and smiles pointing his finger at his hair.",
      "response": "i need to speak to you is now an ok time",
      "lang": "en"})
  assert row.input.startswith('{"context": "You did something')
  assert ann706.descriptions == [
      "Given a conversational context and response, rate how sarcastic the "
      "response is on a 1-6 scale.\nAnnotator demographics: Gender: Male; "
      "Age: 47; annotator_id: Ann706"]
  # nan / DATA_EXPIRED metadata are "no value": only the id is left.
  by_id = _by_id(instances)
  for annotator in ("Ann675", "Ann533", "Ann124"):
    assert by_id[annotator].descriptions[0].endswith(
        f"\nAnnotator demographics: annotator_id: {annotator}")


def test_mp_context_fields_and_bare_number_metadata():
  instances = _build("lewidi_mp_irony_detection_individual")
  by_id = _by_id(instances)
  assert instances[0].id == "Ann0"
  assert len(by_id["Ann63"].rows) == 5
  ann0 = by_id["Ann0"]
  assert ann0.rows[0].output == "0"
  assert ann0.rows[0].input == (
      '{"post": "Guy is my longtime fb friend. Very measured and rational '
      "person. Goes to show what happens to you if you criticize the PM or "
      "his riotous followers if you don't have any political backing and "
      'you live in BJP ruled state.", "reply": "Lately Barak Valley has '
      'become a lot more intolerant", "source": "reddit", "level": "1.0", '
      '"language_variety": "in", "lang": "en"}')
  assert ann0.descriptions == [
      lewidi.MP_DESCRIPTION + "\nAnnotator demographics: Age: 19.0; Gender: "
      "Female; Country of birth: United States; Country of residence: "
      "United States; Nationality: United States; Student status: Yes; "
      "annotator_id: 0"]
  langs = {json.loads(r.input)["lang"] for i in instances for r in i.rows}
  assert {"en", "de", "it", "fr"} <= langs
  # Non-ASCII text is escaped in the JSON input (ensure_ascii).
  assert all(r.input.isascii() for i in instances for r in i.rows)


def test_paraphrase_rating_explanation_and_categorical():
  full = _by_id(_build("lewidi_par_paraphrase_detection_individual"))
  cat = _by_id(_build(
      "lewidi_par_paraphrase_detection_individual_categorical"))
  assert list(full) == ["Ann1", "Ann2", "Ann3", "Ann4"]
  assert [len(i.rows) for i in full.values()] == [10, 10, 10, 10]
  # Item 218948: Ann2 rated -4 and explained " different topics" (stripped).
  assert full["Ann2"].rows[0].output == (
      '{"paraphrase_rating": -4, "explanation": "different topics"}')
  assert cat["Ann2"].rows[0].output == "-4"
  assert cat["Ann3"].rows[0].output == "0"
  assert full["Ann2"].rows[0].input == json.dumps({
      "question1": "What are the chances for a high-school student who "
                   "didn't do any extracurricular activities until his last "
                   "year to get accepted to a top US school?",
      "question2": "Is a student who sucked in High School but ended up "
                   "being a top PhD student in a top school a misunderstood "
                   "genius?",
      "lang": "en"})
  # The file's trailing commas are tolerated; the id comes once, first.
  assert full["Ann1"].descriptions == [
      lewidi.PAR_DESCRIPTION + "\nAnnotator demographics: annotator_id: "
      "Ann1; Gender: Male; Age: 26; Nationality: Chinese; Education: master "
      "student"]
  assert cat["Ann4"].descriptions[0].startswith(
      lewidi.PAR_CATEGORICAL_DESCRIPTION + "\nAnnotator demographics: ")


def test_varierrnli_multi_label_answers():
  full = _by_id(_build("lewidi_varierrnli_nli_detection_individual"))
  cat = _by_id(_build(
      "lewidi_varierrnli_nli_detection_individual_categorical"))
  # Item 54811 lists Ann2 twice ("contradiction,neutral"): two rows with the
  # 2nd and 3rd explanations in the explanation task, one in the label task.
  ann2 = [r for r in full["Ann2"].rows if "Monte" in r.input]
  assert [json.loads(r.output) for r in ann2] == [
      {"nli_label": "contradiction,neutral",
       "explanation": "The phrase \"makes a good playground\" suggests that "
                      "the park is not a designated playground and thus is "
                      "open for all age groups. Also, even if the park would "
                      "be a designated playground, these can typically be "
                      "also used by adults (at least the parents)."},
      {"nli_label": "contradiction,neutral",
       "explanation": "Only because the park makes a good playground it "
                      "doesn't necessarily have to be only for kids."}]
  assert [r.output for r in cat["Ann2"].rows if "Monte" in r.input] == [
      "contradiction,neutral"]
  # Ann3 (listed third in that item) gets the 4th explanation.
  ann3 = [r for r in full["Ann3"].rows if "Monte" in r.input]
  assert json.loads(ann3[0].output)["explanation"] == (
      "No proof that the park can not be for adults.")
  assert full["Ann1"].rows[0].output == json.dumps({
      "nli_label": "contradiction",
      "explanation": "The reason for the diffenrence in pieces per possible "
                     "delivery mentioned in the context is that the "
                     "difference percentage of businesses deliveries on "
                     "residential and rural routes. But the reason in the "
                     "statement only include the percentage of residential "
                     "deliveries, not the diffenrence of deliveries."})
  assert sum(len(i.rows) for i in full.values()) == 39
  assert sum(len(i.rows) for i in cat.values()) == 35
  assert full["Ann1"].descriptions == [
      lewidi.NLI_DESCRIPTION + "\nAnnotator demographics: Gender: Female; "
      "Age: 22; Nationality: Chinese; Education: master student; "
      "annotator_id: Ann1"]
  assert "{entailment, neutral, contradiction}" in cat["Ann1"].descriptions[0]


def test_strip_trailing_commas_keeps_commas_in_strings():
  text = '{"a": ", }", "b": [1, 2,],\n}'
  assert json.loads(lewidi._strip_trailing_commas(text)) == {"a": ", }",
                                                             "b": [1, 2]}


@pytest.mark.parametrize("spec", lewidi.TASKS, ids=lambda s: s.name)
def test_missing_raw_files(spec, tmp_path):
  with pytest.raises(MissingRawFileError) as err:
    list(spec.generate(BuildContext(seed=0, raw_dir=str(tmp_path))))
  assert spec.raw_files[0].path in str(err.value)


def _copy(tmp_path, dataset):
  shutil.copytree(os.path.join(RAW, "lewidi", dataset),
                  tmp_path / "lewidi" / dataset)
  return tmp_path / "lewidi" / dataset


def test_bad_rating_names_file_item_and_annotator(tmp_path):
  folder = _copy(tmp_path, "Paraphrase")
  path = folder / "Paraphrase_train.json"
  data = json.loads(path.read_text())
  data["218948"]["annotations"]["Ann2"] = "very"
  path.write_text(json.dumps(data))
  with pytest.raises(ValueError, match=r"Paraphrase_train\.json, item "
                     r"'218948', column 'annotations\.Ann2'.*'very'"):
    _build("lewidi_par_paraphrase_detection_individual", tmp_path)


def test_missing_text_field_and_broken_json(tmp_path):
  folder = _copy(tmp_path, "CSC")
  path = folder / "CSC_train.json"
  data = json.loads(path.read_text())
  del data["4573"]["text"]["response"]
  path.write_text(json.dumps(data))
  with pytest.raises(ValueError, match=r"CSC_train\.json, item '4573', "
                     r"column 'text\.response': missing"):
    _build("lewidi_csc_sarcasm_detection_individual", tmp_path)
  path.write_text('{\n  "1": {\n    "text": {"context": "x" "response": 1}\n}')
  with pytest.raises(ValueError, match=r"CSC_train\.json, line 3: not valid"):
    _build("lewidi_csc_sarcasm_detection_individual", tmp_path)
