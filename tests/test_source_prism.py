"""PRISM converters, built from schema-shaped fixtures (tests/fixtures/raw/prism)."""

import json
import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import prism

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {t.name: t for t in prism.TASKS}

UNGUIDED = "Ask, request or talk to the model about anything. It is up to you!"
VALUES = ("Ask, request or talk to the model about something important to "
          "you or that represents your values. This could be related to work, "
          "religion, family and relationship, politics or culture")
USER0 = ("Age: 25-34 years old; Gender: Female; Education: University "
         "Bachelors Degree; Employment: Working full-time; Country: United "
         "Kingdom; Religion: No religion")
USER1 = ("Age: 45-54 years old; Gender: Male; Education: Vocational; "
         "Country: México; Religion: Muslim")
USER2 = ("Age: 18-24 years old; Gender: Non-binary / third gender; "
         "Employment: Student; Country: United States")


def _build(name, raw_dir=FIXTURES):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def _copy(tmp_path):
  shutil.copytree(os.path.join(FIXTURES, "prism"), tmp_path / "prism")
  return tmp_path


def test_sampling_fields_follow_the_release():
  expect = {"prism_prompts": 128, "prism_prompts_individual": 96,
            "prism_individual_preferences": 20}
  assert sorted(SPECS) == sorted(expect)
  for name, spec in SPECS.items():
    assert spec.suite_split == "train" and spec.kind == "icl"
    assert spec.mean_k == expect[name] and spec.chunk_all_rows  # n_per=-1
    assert spec.episodes_per_instance == 1 and spec.orderings == 1
    assert spec.max_episodes is None and spec.p_desc == 0.6
  assert SPECS["prism_prompts"].default_descriptions == (
      "Generate a request to ask a language model, according to the "
      "conversation type description.",)
  assert SPECS["prism_prompts"].raw_files == (prism.CONVERSATIONS,)


def test_download_entries():
  for raw, name in ((prism.CONVERSATIONS, "conversations.jsonl"),
                    (prism.SURVEY, "survey.jsonl")):
    d = raw.download
    assert (d.hf_repo, d.hf_filename, d.target) == (
        "HannahRoseKirk/prism-alignment", name, f"prism/{name}")
    assert len(d.revision) == 40


def test_prompts():
  (inst,) = _build("prism_prompts")
  assert len(inst.rows) == 9  # every conversation, surveyed or not
  assert (inst.rows[0].input, inst.rows[0].output) == (
      UNGUIDED, "What should I cook tonight?")  # stripped
  assert (inst.rows[1].input, inst.rows[1].output) == (
      VALUES, "Is it wrong to lie to protect a friend?")
  assert inst.rows[2].input.startswith(
      "Ask, request or talk to the model about something controversial")
  assert inst.rows[3].output == "¿Qué opinas del fútbol?"  # raw, one field
  assert inst.rows[6].output == "Write a haiku\nabout rain"
  assert inst.rows[8].output == "What is a good life?"


def test_prompts_individual():
  instances = _build("prism_prompts_individual")
  # user9 has no survey row (inner join); user3 never talked to a model.
  assert [i.id for i in instances] == ["user0", "user1", "user2"]
  assert [len(i.rows) for i in instances] == [3, 2, 3]
  assert instances[0].descriptions == [
      "Generate opening prompts for conversations (all same individual)",
      "Generate opening prompts for conversations given user demographics:"
      "\n\n" + USER0 + " (all same individual)"]
  assert instances[1].descriptions[1].endswith(USER1 + " (all same individual)")
  # Null education and null religion are left out.
  assert instances[2].descriptions[1].endswith(USER2 + " (all same individual)")
  assert instances[2].rows[2].output == "What is a good life?"


def test_individual_preferences():
  instances = _build("prism_individual_preferences")
  # user1 keeps only one usable first turn (the other has a null score);
  # user0's third conversation has two replies; user2's third has none.
  assert [i.id for i in instances] == ["user0", "user2"]
  assert [len(i.rows) for i in instances] == [2, 2]
  first = instances[0].rows[0]
  assert first.input == (
      '{"opening_prompt": " What should I cook tonight?\\n", '
      '"response_a": "Try a stir-fry.", "response_b": "Pasta is quick.", '
      '"response_c": "Soup, if it is cold.", "response_d": "How about tacos?"}')
  assert first.output == ('{"chosen_response": "a", "score_a": 80, '
                          '"score_b": 65, "score_c": 40, "score_d": 72}')
  # Replies stored out of order are labelled by within_turn_id.
  nuclear = instances[1].rows[0]
  assert json.loads(nuclear.input)["response_a"] == "Mostly, yes."
  assert json.loads(nuclear.input)["response_d"] == "Chernobyl says no."
  assert nuclear.output == ('{"chosen_response": "c", "score_a": 77, '
                            '"score_b": 64, "score_c": 91, "score_d": 12}')
  # The release leaves "{demographics}" unformatted; we fill it.
  assert instances[0].descriptions == [
      "The following is a prompt a user game to a chatbot, along with 4 "
      "responses. They were asked to choose their preferred response and "
      "rate the responses on a scale of 0 to 100, where 100 is the most "
      "preferred. The responses were labeled A, B, C, D.\nUser demographics: "
      + USER0]
  assert "{demographics}" not in instances[1].descriptions[0]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError, match="prism/conversations.jsonl"):
    _build(name, tmp_path)


def test_missing_survey_is_named(tmp_path):
  raw = _copy(tmp_path)
  os.remove(raw / "prism" / "survey.jsonl")
  with pytest.raises(MissingRawFileError, match="prism/survey.jsonl"):
    _build("prism_prompts_individual", raw)
  _build("prism_prompts", raw)  # needs only the conversations


def _rewrite_line(path, line, edit):
  lines = path.read_text(encoding="utf-8").splitlines(True)
  obj = json.loads(lines[line - 1])
  edit(obj)
  lines[line - 1] = json.dumps(obj) + "\n"
  path.write_text("".join(lines), encoding="utf-8")


def test_unknown_conversation_type(tmp_path):
  raw = _copy(tmp_path)
  _rewrite_line(raw / "prism" / "conversations.jsonl", 2,
                lambda o: o.update(conversation_type="guided"))
  with pytest.raises(ValueError, match=r"conversations\.jsonl, line 2, column "
                     r"'conversation_type': unknown type 'guided'"):
    _build("prism_prompts", raw)


def test_score_that_is_not_a_number(tmp_path):
  raw = _copy(tmp_path)
  _rewrite_line(raw / "prism" / "conversations.jsonl", 6,
                lambda o: o["conversation_history"][2].update(score="high"))
  with pytest.raises(ValueError, match=r"line 6, column 'conversation_history'"
                     r": turn-0 reply [a-d]: score must be a number"):
    _build("prism_individual_preferences", raw)


def test_survey_user_id_must_be_text(tmp_path):
  raw = _copy(tmp_path)
  _rewrite_line(raw / "prism" / "survey.jsonl", 3,
                lambda o: o.update(user_id=None))
  with pytest.raises(ValueError, match=r"survey\.jsonl, line 3, column "
                     r"'user_id': expected a string"):
    _build("prism_prompts_individual", raw)


def test_null_opening_prompt_is_dropped(tmp_path):
  raw = _copy(tmp_path)
  _rewrite_line(raw / "prism" / "conversations.jsonl", 1,
                lambda o: o.update(opening_prompt=None))
  (inst,) = _build("prism_prompts", raw)
  assert len(inst.rows) == 8
  assert inst.rows[0].output == "Is it wrong to lie to protect a friend?"
  assert [len(i.rows) for i in _build("prism_prompts_individual", raw)] == [
      2, 2, 3]
  # Not a string at all is an error, naming the line and field.
  _rewrite_line(raw / "prism" / "conversations.jsonl", 1,
                lambda o: o.update(opening_prompt=["hi"]))
  with pytest.raises(ValueError, match=r"line 1, column 'opening_prompt': "
                     "expected a string"):
    _build("prism_prompts", raw)
