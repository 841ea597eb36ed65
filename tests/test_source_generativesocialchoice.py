"""generativesocialchoice_* built from real survey rows (tests/fixtures/raw/generativesocialchoice)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import generativesocialchoice as gsc

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in gsc.TASKS}
CHATBOT = "chatbot_personalization_survey"


def _build(name, raw_dir=RAW):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


@pytest.fixture
def raw_copy(tmp_path):
  shutil.copytree(os.path.join(RAW, "generativesocialchoice"),
                  tmp_path / "generativesocialchoice")
  return tmp_path


def test_specs_follow_the_release():
  for spec in gsc.TASKS:
    # IndividualMultivariate, n_per=1, no n_iter: all of a participant's rows.
    assert (spec.suite_split, spec.mean_k, spec.fixed_k,
            spec.episodes_per_instance, spec.chunk_all_rows, spec.orderings,
            spec.max_episodes, spec.p_desc) == ("train", None, None, 1, False,
                                                1, None, 0.6)
    assert [f.path for f in spec.raw_files] == [
        "generativesocialchoice/abortion_survey.csv",
        f"generativesocialchoice/{CHATBOT}.csv"]
    for f in spec.raw_files:
      assert re.fullmatch(
          r"https://raw\.githubusercontent\.com/generative-social-choice/"
          r"survey_data/[0-9a-f]{40}/data/[a-z_]+\.csv", f.download.url)
  assert SPECS["generativesocialchoice_validation"].default_descriptions == (
      "The following are given: question_text, json_choices. You must "
      "generate choice, response_text.",
      "Given: question_text, json_choices. Generate: choice, response_text.",
      "Inputs: question_text, json_choices. Outputs: choice, response_text.")
  assert SPECS["generativesocialchoice_freetext"].default_descriptions[1] == (
      "Given: question_text. Generate: response_text.")


def test_validation():
  instances = _build("generativesocialchoice_validation")
  assert [(i.id, len(i.rows)) for i in instances] == [
      ("abortion_survey/generation1", 3), ("abortion_survey/validation1", 4),
      (f"{CHATBOT}/validation1", 4)]
  row = instances[2].rows[0]
  assert row.output == (
      '{"choice": "perfectly", "response_text": "Most people would want a '
      'clean slate when returning to a chatbot in order to get a fresh '
      'perspective."}')
  given = json.loads(row.input)
  assert list(given) == ["question_text", "json_choices"]
  # json_choices stays the file's text, a string inside the JSON input.
  assert given["json_choices"] == (
      '["not at all", "poorly", "somewhat", "mostly", "perfectly"]')
  assert given["question_text"].startswith(
      "Rating Summary Statements\nConsider the following statement:")
  # ensure_ascii: the curly quotes of the abortion survey are escaped.
  abortion = instances[0].rows[0]
  assert abortion.input.startswith(
      '{"question_text": "<h3>Candidate Summaries</h3>\\n<p>Here is a '
      'possible summary:</p>\\n<blockquote>\\n<p><em>\\u201cI believe')
  assert json.loads(abortion.input)["json_choices"] == (
      "['very poorly', 'poorly', 'moderately', 'well', 'very well', "
      "'excellently', 'exceptionally']")
  assert json.loads(abortion.output)["choice"] == "moderately"
  assert all(i.descriptions == [] for i in instances)


def test_freetext():
  instances = _build("generativesocialchoice_freetext")
  by_id = {i.id: i for i in instances}
  assert [(i.id, len(i.rows)) for i in instances] == [
      ("abortion_survey/generation1", 5), ("abortion_survey/generation2", 3),
      (f"{CHATBOT}/generation1", 8), (f"{CHATBOT}/generation2", 3),
      # generation45 left step 12 blank: dropped, as in the release.
      (f"{CHATBOT}/generation45", 3)]
  first = by_id[f"{CHATBOT}/generation2"].rows[0]
  # Question and answer stripped (the answer ends in a space in the file).
  assert first == Row(
      input="Example Scenarios\nA user asks a chatbot: “Tell me about World "
      "War 2.” \nBased on previous conversations, it appears that the user "
      "suffers from depression. To avoid distressing the user, should the "
      "chatbot approach the topic in a more gentle manner than it usually "
      "would?\nPlease give us your thoughts in a sentence or two.",
      output="I don't think that the chatbot should use a gentler manner. "
      "While World War 2 is looked at positively by some, it still caused "
      "irreparable harm to others. Those truths should not be shied away "
      "from and depression should not be used as a cover to do so.")
  # "reading" steps (consent forms, section headers) never appear.
  assert not any("Informed Consent" in r.input for i in instances
                 for r in i.rows)


def test_missing_raw_file(raw_copy):
  os.remove(raw_copy / "generativesocialchoice" / f"{CHATBOT}.csv")
  for name in SPECS:
    with pytest.raises(MissingRawFileError, match=f"{CHATBOT}.csv"):
      _build(name, raw_copy)


def test_malformed_record_names_file_and_line(raw_copy):
  path = raw_copy / "generativesocialchoice" / "abortion_survey.csv"
  with open(path, "a", encoding="utf-8") as f:
    f.write("generation9,3,text\n")
  with pytest.raises(ValueError, match=r"abortion_survey\.csv, line \d+: 3 "
                     r"fields but the header has 11"):
    _build("generativesocialchoice_freetext", raw_copy)


def test_missing_column_is_named(raw_copy):
  path = raw_copy / "generativesocialchoice" / "abortion_survey.csv"
  text = path.read_text(encoding="utf-8")
  path.write_text(text.replace("json_choices", "choices", 1), encoding="utf-8")
  with pytest.raises(ValueError,
                     match=r"missing column\(s\) \['json_choices'\]"):
    _build("generativesocialchoice_validation", raw_copy)
