"""Tests of data_pipelines/sources/chatbotarena.py.

Fixture: tests/fixtures/raw/chatbotarena/data/train-00000-of-00001-cced8514c7ed782a.parquet,
written by make_fixture.py next to it in the real nested schema. Its judges:
arena_user_1 (5 battles) and arena_user_2 (4) are kept; arena_user_3 (3) and
arena_user_4 (1) fall under the 4-battle minimum.
"""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import chatbotarena

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
FIXTURE = os.path.join(FIXTURES, "chatbotarena", chatbotarena.HF_FILENAME)
SPECS = {spec.name: spec for spec in chatbotarena.TASKS}
ASSISTANT = chatbotarena.ASSISTANT_DESCRIPTION


def _build(name, raw_dir=FIXTURES, seed=0):
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_specs_match_the_release():
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.fixed_k,
                  s.episodes_per_instance, s.chunk_all_rows, s.orderings,
                  s.max_episodes, s.p_desc) for s in chatbotarena.TASKS}
  assert got == {
      "chatbotarena_prompts": ("test", "icl", None, 100, 1, False, 1, None,
                               0.6),
      "chatbotarena_individual_prefs": ("test", "icl", 16, None, 1, True, 1,
                                        None, 0.6),
      "chatbotarena_assistant": ("test", "icl", 32, None, 1, True, 1, None,
                                 0.6),
  }
  assert SPECS["chatbotarena_prompts"].default_descriptions == (
      "Language model prompt",)
  assert chatbotarena.MIN_BATTLES == 4 and chatbotarena.MAX_JUDGES == 1000
  for spec in chatbotarena.TASKS:
    assert spec.about
    (raw,) = spec.raw_files
    assert raw.download.hf_repo == "lmsys/chatbot_arena_conversations"
    assert raw.download.hf_filename == (
        "data/train-00000-of-00001-cced8514c7ed782a.parquet")
    assert raw.path == "chatbotarena/" + raw.download.hf_filename
    assert "gated" in raw.published_at


def test_prompts_per_kept_judge():
  got = _build("chatbotarena_prompts")
  assert [(i.id, i.descriptions) for i in got] == [("arena_user_1", []),
                                                   ("arena_user_2", [])]
  assert got[0].rows == [
      Row(output="What is the capital of France?"),
      Row(output="Explain quantum computing in one sentence."),
      Row(output="\u00bfCu\u00e1l es la capital de Espa\u00f1a?"),
      Row(output='Name a "prime" number'),
      Row(output="What is 7 * 6?"),
  ]
  # Stripped: the raw prompt is "  Write a haiku about snow\n".
  assert got[1].rows == [Row(output="Write a haiku about snow"),
                         Row(output="Tell me a joke"),
                         Row(output="Translate 'cat' to German"),
                         Row(output="\u4f60\u597d")]


def test_individual_prefs():
  got = _build("chatbotarena_individual_prefs")
  assert [i.id for i in got] == ["arena_user_1", "arena_user_2"]
  # Verdicts in order of first appearance among kept battles, numpy-style.
  description = (
      "The following are preferences for a single individual. They will "
      "prompt a language model (opening_prompt), and then will compare the "
      "two responses (model_a_response and model_b_response). The user will "
      "then rate the winner, with one of the following options: "
      "['b' 'a' 'bothbad' 'tie']")
  assert all(i.descriptions == [description] for i in got)
  assert [r.output for r in got[0].rows] == ["b", "bothbad", "b", "a", "b"]
  assert [r.output for r in got[1].rows] == ["a", "tie", "a", "bothbad"]
  assert got[0].rows[0].input == (
      '{"opening_prompt": "What is the capital of France?", '
      '"model_a_response": "Paris is the capital.", '
      '"model_b_response": "The capital is Paris."}')
  # Two-turn battle: only the first exchange is used.
  assert json.loads(got[0].rows[1].input) == {
      "opening_prompt": "Explain quantum computing in one sentence.",
      "model_a_response": "It is computing with quantum bits.",
      "model_b_response": "Quantum computers use superposition."}
  # ASCII-escaped JSON, as the release's json.dumps.
  assert got[0].rows[2].input == (
      '{"opening_prompt": "\\u00bfCu\\u00e1l es la capital de '
      'Espa\\u00f1a?", "model_a_response": "La capital de Espa\\u00f1a es '
      'Madrid.", "model_b_response": "Madrid \\u2014 desde 1561."}')
  assert got[1].rows[0].input == (
      '{"opening_prompt": "Write a haiku about snow", "model_a_response": '
      '"White flakes drift and fall\\nsilence settles on the pines\\nthe '
      'world holds its breath", "model_b_response": "Snow falls on the '
      'ground."}')


def test_assistant_per_model_a():
  got = _build("chatbotarena_assistant")
  # Models in order of first appearance as model A among kept battles;
  # dolly-v2-12b is only ever model B, alpaca-13b and claude-v1 only appear
  # in dropped judges' battles.
  assert [i.id for i in got] == ["vicuna-13b", "gpt-4", "koala-13b"]
  assert got[1].descriptions == [ASSISTANT, ASSISTANT + "\nModel: gpt-4"]
  assert ASSISTANT.startswith("You will be given opening_prompts to a "
                              "language model (could be anywhere from pretty "
                              "good to really good).")
  # vicuna-13b: as A in rows 0, 4, 9; then as B in rows 1, 11, 12.
  assert got[0].rows == [
      Row(input="What is the capital of France?",
          output="Paris is the capital."),
      Row(input="\u00bfCu\u00e1l es la capital de Espa\u00f1a?",
          output="La capital de Espa\u00f1a es Madrid."),
      Row(input="Translate 'cat' to German", output="Katze"),
      Row(input="Write a haiku about snow", output="Snow falls on the ground."),
      Row(input="What is 7 * 6?", output="7 * 6 = 42"),
      Row(input="\u4f60\u597d", output="Hello! (\u4f60\u597d)"),
  ]
  # gpt-4: A in rows 1, 5, 11, B in 4, 7 (row 3 is a dropped judge's).
  assert [len(i.rows) for i in got] == [6, 5, 5]


def test_judge_caps(monkeypatch):
  monkeypatch.setattr(chatbotarena, "MAX_JUDGES", 1)
  prefs = _build("chatbotarena_individual_prefs")
  assert [i.id for i in prefs] == ["arena_user_1"]  # first by appearance.
  picked = {_build("chatbotarena_prompts", seed=s)[0].id for s in range(20)}
  assert picked == {"arena_user_1", "arena_user_2"}  # a seeded sample.
  assert ([i.id for i in _build("chatbotarena_prompts", seed=3)]
          == [i.id for i in _build("chatbotarena_prompts", seed=3)])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_file(name, tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(name, tmp_path)
  (raw,) = SPECS[name].raw_files
  assert raw.path in str(e.value) and raw.published_at in str(e.value)


def _rewrite(tmp_path, row, column, value):
  table = pq.read_table(FIXTURE)
  rows = table.to_pylist()
  rows[row][column] = value
  path = tmp_path / "chatbotarena" / chatbotarena.HF_FILENAME
  os.makedirs(path.parent)
  pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_one_message_conversation_names_file_row_column(name, tmp_path):
  _rewrite(tmp_path, 5, "conversation_b",
           [{"content": "Tell me a joke", "role": "user"}])
  with pytest.raises(ValueError,
                     match=r"cced8514c7ed782a\.parquet, row 5, column "
                     r"'conversation_b': expected a list of at least 2 "
                     r"messages"):
    _build(name, tmp_path)


def test_unknown_verdict_names_file_row_column(tmp_path):
  _rewrite(tmp_path, 7, "winner", "model_c")
  with pytest.raises(ValueError,
                     match=r"row 7, column 'winner': unknown verdict "
                     r"'model_c'"):
    _build("chatbotarena_individual_prefs", tmp_path)


def test_dropped_judges_rows_are_not_checked(tmp_path):
  # Row 3 belongs to arena_user_3 (3 battles, dropped), as in the release,
  # whose loader never reads those rows' messages.
  _rewrite(tmp_path, 3, "conversation_a", [])
  assert len(_build("chatbotarena_assistant", tmp_path)) == 3
