"""Tests of the real-source converters (data_pipelines/sources).

Each fixture is written here, in the real file's column layout, so the tests
need no downloads.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipelines.schema import (BuildContext, Instance, MissingRawFileError,
                                   Row)
from data_pipelines.sources import (TASKS, globaloqa, habermas, mmlu,
                                    numbergame, opinionqa)

SPECS = {spec.name: spec for spec in TASKS}
# docs/method.md#splits-and-task-kinds: a key is test iff it starts with one of these.
TEST_PREFIXES = ("wvs", "globaloqa", "habermas", "numbergame", "flight",
                 "chatbotarena", "novacomet", "mmlu", "hellaswag",
                 "winogrande", "arc", "drop", "truthful_qa", "gpqa",
                 "chemistry_esol", "chemistry_oxidative")


def _write_csv(path, header, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def _write_parquet(path, columns: dict):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pq.write_table(pa.table(columns), path)


def _build(name, raw_dir, seed=0) -> list[Instance]:
  instances = list(SPECS[name].generate(BuildContext(seed=seed,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


# ---------------------------------------------------------------- registry


def test_task_table():
  """The sources this file tests in depth; the others have their own
  tests/test_source_<module>.py."""
  got = {s.name: (s.suite_split, s.kind, s.mean_k, s.fixed_k, s.p_desc,
                  s.episodes_per_instance, s.chunk_all_rows, s.shuffle_rows)
         for s in TASKS if s.name.startswith(("globaloqa", "numbergame",
                                              "habermas", "opinionqa", "mmlu"))}
  assert got == {
      "globaloqa": ("test", "icl", None, None, 0.6, 2, False, True),
      "globaloqa_distributional": ("test", "distributional", None, None, 0.6,
                                   1, False, True),
      "numbergame_individual": ("test", "icl", None, None, 0.6, 1, False, True),
      "numbergame_perc": ("test", "icl", 128, None, 0.6, 1, True, True),
      "numbergame_distributional": ("test", "distributional", None, None,
                                    0.6, 1, False, True),
      "habermas_question": ("test", "icl", 32, None, 0.6, 1, True, True),
      "habermas_individual": ("test", "icl", 32, None, 0.6, 1, False, True),
      "habermas_individual_categorical": ("test", "icl", 32, None, 0.6, 1,
                                          False, True),
      "habermas_distributional": ("test", "distributional", None, None, 0.6,
                                  1, False, True),
      "opinionqa_individual": ("train", "icl", None, None, 0.6, 1, False,
                               False),
      "opinionqa_questions": ("train", "icl", None, None, 0.6, 1, False, True),
      "mmlu": ("test", "icl", None, 20, 0.6, 1000, False, True),
  }
  for spec in TASKS:
    # docs/method.md#splits-and-task-kinds: ICL keys by prefix; every
    # distributional task is evaluation-only.
    test = spec.name.startswith(TEST_PREFIXES) or spec.kind != "icl"
    assert spec.suite_split == ("test" if test else "train"), spec.name
    assert spec.about and spec.raw_files


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_raw_files_say_where_to_get_them(name, tmp_path):
  spec = SPECS[name]
  with pytest.raises(MissingRawFileError) as e:
    list(spec.generate(BuildContext(seed=0, raw_dir=str(tmp_path))))
  for f in spec.raw_files:
    assert f.path in str(e.value)
    assert f.published_at in str(e.value)
  with pytest.raises(MissingRawFileError):
    list(spec.generate(BuildContext(seed=0, raw_dir=None)))


# ---------------------------------------------------------------- GlobalOQA

GOQA_HEADER = ["question", "selections", "options", "source"]
GOQA_ROWS = [
    ["Is the economy good?",
     "defaultdict(<class 'list'>, {'Belgium': [0.29, 0.71], "
     "'France': [0.57, 0.43]})", "['Yes', 'No']", "GAS"],
    ["How much influence does Germany have? ",
     "defaultdict(<class 'list'>, {'France': [0.2, 0.3, 0.1], "
     "'Belgium': [0.125, 0.375, 0.5]})",
     "['Too much', 'Too little', \"Don't know\"]", "GAS"],
    ["", "defaultdict(<class 'list'>, {'Belgium': [1.0]})", "['Skipped']",
     "WVS"],
    ["Is it Très bien?", "defaultdict(<class 'list'>, {'Belgium': [0.0, 0.0]})",
     "['Oui', 'Non']", "WVS"],
]


@pytest.fixture
def goqa_dir(tmp_path):
  _write_csv(tmp_path / "globaloqa" / "global_opinions.csv", GOQA_HEADER,
             GOQA_ROWS)
  return tmp_path


def test_globaloqa_icl(goqa_dir):
  got = _build("globaloqa", goqa_dir)
  q1 = ('{"question": "Is the economy good?", '
        '"options": "[\'Yes\', \'No\']"}')
  q2 = ('{"question": "How much influence does Germany have? ", '
        '"options": "[\'Too much\', \'Too little\', \\"Don\'t know\\"]"}')
  q4 = ('{"question": "Is it Tr\\u00e8s bien?", '
        '"options": "[\'Oui\', \'Non\']"}')
  unknown = globaloqa.UNKNOWN_LOCATION
  assert got == [
      Instance(id="Belgium", rows=[
          Row(input=q1, output="[{'Yes': 29}, {'No': 71}]"),
          Row(input=q2, output=("[{'Too much': 12}, {'Too little': 38}, "
                                "{\"Don't know\": 50}]")),
          Row(input=q4, output="[{'Oui': 0}, {'Non': 0}]"),
      ], descriptions=[unknown, (
          "Country: Belgium\nFor each question, predict the percentage of "
          "people from the country who chose each option. (list of dicts)")]),
      Instance(id="France", rows=[
          Row(input=q1, output="[{'Yes': 57}, {'No': 43}]"),
          Row(input=q2, output=("[{'Too much': 20}, {'Too little': 30}, "
                                "{\"Don't know\": 10}]")),
      ], descriptions=[unknown, (
          "Country: France\nFor each question, predict the percentage of "
          "people from the country who chose each option. (list of dicts)")]),
  ]


def test_globaloqa_distributional(goqa_dir):
  got = _build("globaloqa_distributional", goqa_dir)
  assert [(i.id, i.descriptions, i.question, i.options, i.extra)
          for i in got] == [
      ("q0:Belgium", ["Responses from a person from this country: Belgium"],
       "Is the economy good?\nOptions:\nA. Yes\nB. No", ["A", "B"],
       {"output_name": "Response (letter)"}),
      ("q0:France", ["Responses from a person from this country: France"],
       "Is the economy good?\nOptions:\nA. Yes\nB. No", ["A", "B"],
       {"output_name": "Response (letter)"}),
      ("q1:France", ["Responses from a person from this country: France"],
       "How much influence does Germany have?\nOptions:\nA. Too much\n"
       "B. Too little\nC. Don't know", ["A", "B", "C"],
       {"output_name": "Response (letter)"}),
      ("q1:Belgium", ["Responses from a person from this country: Belgium"],
       "How much influence does Germany have?\nOptions:\nA. Too much\n"
       "B. Too little\nC. Don't know", ["A", "B", "C"],
       {"output_name": "Response (letter)"}),
  ]  # q2 (all-zero shares) is left out.
  assert [i.rows for i in got] == [[]] * 4
  assert got[0].target == pytest.approx([0.29, 0.71])
  assert got[2].target == pytest.approx([1 / 3, 1 / 2, 1 / 6])
  assert got[3].target == pytest.approx([0.125, 0.375, 0.5])


@pytest.mark.parametrize("line,column,cell,message", [
    (3, "options", "['Yes', 'No'", "not a Python literal"),
    (2, "selections", "Belgium: 0.29, 0.71", "defaultdict"),
    (2, "selections", "defaultdict(<class 'list'>, {'Belgium': [0.29]})",
     "'Belgium' has 1 shares for 2 options"),
])
def test_globaloqa_malformed_cell(tmp_path, line, column, cell, message):
  rows = [list(r) for r in GOQA_ROWS]
  rows[line - 2][GOQA_HEADER.index(column)] = cell
  path = tmp_path / "globaloqa" / "global_opinions.csv"
  _write_csv(path, GOQA_HEADER, rows)
  with pytest.raises(ValueError, match=re.escape(
      f"{path}, line {line}, column {column!r}: ")) as e:
    _build("globaloqa", tmp_path)
  assert message in str(e.value)


def test_globaloqa_missing_column(tmp_path):
  path = tmp_path / "globaloqa" / "global_opinions.csv"
  _write_csv(path, ["question", "options"], [["Q?", "['Yes']"]])
  with pytest.raises(ValueError, match=re.escape(
      f"{path}: missing column(s) ['selections']")):
    _build("globaloqa_distributional", tmp_path)


def test_csv_record_with_wrong_field_count(tmp_path):
  path = tmp_path / "globaloqa" / "global_opinions.csv"
  _write_csv(path, GOQA_HEADER, [GOQA_ROWS[0], ["only", "three", "fields"]])
  with pytest.raises(ValueError, match=re.escape(
      f"{path}, line 3: 3 fields but the header has 4.")):
    _build("globaloqa", tmp_path)


# ---------------------------------------------------------------- NumberGame

NG_HEADER = ["id", "set", "target", "rating"]
NG_ROWS = ([["a", "16_8_2_64", "32", "1"], ["a", "16_8_2_64", "5", "0"],
            ["a", "10_20_", "30", "1"], ["b", "16_8_2_64", "32", "0"],
            ["b", "10_20_", "30", ""]]  # b's second answer is missing
           + [[f"p{i}", "16_8_2_64", "32", "1" if i < 5 else "0"]
              for i in range(7)])
Q32 = '{"given_numbers": "16, 8, 2, 64", "target_number": "32"}'
Q5 = '{"given_numbers": "16, 8, 2, 64", "target_number": "5"}'
Q30 = '{"given_numbers": "10, 20", "target_number": "30"}'


@pytest.fixture
def ng_dir(tmp_path):
  _write_csv(tmp_path / "numbergame" / "numbergame_data.csv", NG_HEADER,
             NG_ROWS)
  return tmp_path


def test_numbergame_individual(ng_dir):
  got = _build("numbergame_individual", ng_dir)
  assert got[:2] == [
      Instance(id="a", rows=[Row(input=Q32, output="Yes"),
                             Row(input=Q5, output="No"),
                             Row(input=Q30, output="Yes")]),
      Instance(id="b", rows=[Row(input=Q32, output="No")]),
  ]
  assert [i.id for i in got[2:]] == [f"p{i}" for i in range(7)]
  assert got[-1].rows == [Row(input=Q32, output="No")]
  assert SPECS["numbergame_individual"].default_descriptions == (
      "The following are given: given_numbers, target_number. You must "
      "generate target_belongs_to_set.",
      "Given: given_numbers, target_number. Generate: target_belongs_to_set.",
      "Inputs: given_numbers, target_number. Outputs: target_belongs_to_set.")


def test_numbergame_perc_derives_p_from_ratings(ng_dir):
  # (16_8_2_64, 32): 6 yes of 9 -> 67%.
  assert _build("numbergame_perc", ng_dir) == [Instance(id="all", rows=[
      Row(input=Q32, output="67%"), Row(input=Q5, output="0%"),
      Row(input=Q30, output="100%")])]


def test_numbergame_perc_uses_p_column(tmp_path):
  rows = [r + [p] for r, p in zip(NG_ROWS[:4],
                                  ["0.571", "0.125", "", "0.571"])]
  _write_csv(tmp_path / "numbergame" / "numbergame_data.csv",
             NG_HEADER + ["p"], rows)
  # An empty p falls back to the observed share (1 of 1 for target 30).
  assert _build("numbergame_perc", tmp_path) == [Instance(id="all", rows=[
      Row(input=Q32, output="57%"), Row(input=Q5, output="12%"),
      Row(input=Q30, output="100%")])]


def test_numbergame_distributional(ng_dir):
  got = _build("numbergame_distributional", ng_dir)
  assert len(got) == 1  # only (16_8_2_64, 32) has >= 9 responses
  (inst,) = got
  assert (inst.id, inst.descriptions, inst.question, inst.options,
          inst.rows, inst.extra) == (
      "16, 8, 2, 64|32", [numbergame.PARTICIPANT],
      "Example set: 16, 8, 2, 64\nTarget number: 32", ["Yes", "No"], [],
      {"output_name": "Target Number Membership (Yes/No)"})
  assert inst.target == pytest.approx([6 / 9, 3 / 9])


@pytest.mark.parametrize("column,cell,message", [
    ("rating", "maybe", "not a number: 'maybe'"),
    ("rating", "2", "expected 0 or 1, got '2'"),
    ("target", "3.5", "expected an integer, got '3.5'"),
    ("set", "_", "expected numbers joined by '_'"),
])
def test_numbergame_malformed_cell(tmp_path, column, cell, message):
  rows = [list(r) for r in NG_ROWS]
  rows[2][NG_HEADER.index(column)] = cell  # line 4
  path = tmp_path / "numbergame" / "numbergame_data.csv"
  _write_csv(path, NG_HEADER, rows)
  with pytest.raises(ValueError, match=re.escape(
      f"{path}, line 4, column {column!r}: {message}")):
    _build("numbergame_individual", tmp_path)


# ---------------------------------------------------------------- Habermas

def _habermas_ratings(overrides=None):
  rows = [  # (qid, label, worker, provenance, participant)
      ("q1", ["AGREE"], "w1", "HUMAN_CITIZEN", "p1"),
      ("q1", ["MOCK"], "w2", "HUMAN_CITIZEN", "p2"),
      ("q2", ["STRONGLY_DISAGREE"], "w1", "HUMAN_CITIZEN", "p1"),
      ("q1", ["NEUTRAL"], "w1", "HUMAN_CITIZEN", "p1"),  # repeat of row 0
      ("q2", ["SOMEWHAT_AGREE"], None, "HUMAN_CITIZEN", "p9"),  # no worker
      ("q1", ["DISAGREE"], "w3", "HUMAN_CITIZEN", "p3"),  # no opinion
      ("q2", ["SOMEWHAT_AGREE"], "w4", "HUMAN_CITIZEN", "p4"),
      ("q1", ["STRONGLY_AGREE"], "c1", "HUMAN_CITIZEN", "c1"),
      ("q1", ["STRONGLY_AGREE"], "c2", "HUMAN_CITIZEN", "c2"),
      ("q1", ["AGREE"], "c3", "HUMAN_CITIZEN", "c3"),
      ("q1", ["SOMEWHAT_DISAGREE"], "c4", "HUMAN_CITIZEN", "c4"),
      ("q1", ["STRONGLY_DISAGREE"], "c5", "HUMAN_CITIZEN", "c5"),
      ("q1", ["AGREE"], "c6", "AI_MOCK", "c6"),  # not a citizen
  ]
  text = {"q1": ("Should X?", "X is good.", "X is bad."),
          "q2": ("Should Y?", "Y is good.", "Y is bad.")}
  columns = {
      "question.id": [r[0] for r in rows],
      "question.text": [text[r[0]][0] for r in rows],
      "question.affirming_statement": [text[r[0]][1] for r in rows],
      "question.negating_statement": [text[r[0]][2] for r in rows],
      "ratings.agreement": [r[1] for r in rows],
      "worker_id": [r[2] for r in rows],
      "metadata.provenance": [r[3] for r in rows],
      "ratings.metadata.participant_id": [r[4] for r in rows],
      "timestamp": list(range(len(rows))),
  }
  for (column, index), value in (overrides or {}).items():
    columns[column][index] = value
  return columns


def _write_habermas(root, overrides=None):
  _write_parquet(str(root / "habermas_data" /
                     "hm_all_position_statement_ratings.parquet"),
                 _habermas_ratings(overrides))
  # The survey file uses nested structs, which must read as dotted names.
  survey = [("w1", "q1", "I agree with X."), ("w1", "q2", None),
            ("w1", "q2", "Y is bad."), ("w2", "q1", "A mock opinion."),
            ("w4", "q2", "Maybe Y.")]
  _write_parquet(str(root / "habermas_data" /
                     "hm_all_round_survey_responses.parquet"), {
                         "worker_id": [s[0] for s in survey],
                         "question": [{"id": s[1], "topic": "t"}
                                      for s in survey],
                         "opinion": [{"text": s[2]} for s in survey],
                     })


@pytest.fixture
def hab_dir(tmp_path):
  _write_habermas(tmp_path)
  return tmp_path


HX = '{"question.text": "Should X?", "statement": "X is good."}'
HY = '{"question.text": "Should Y?", "statement": "Y is good."}'


def test_habermas_question(hab_dir):
  assert _build("habermas_question", hab_dir) == [Instance(
      id="all", rows=[Row(output="Should X?"), Row(output="Should Y?")])]


def test_habermas_individual(hab_dir):
  assert _build("habermas_individual", hab_dir) == [
      Instance(id="w1", rows=[
          Row(input=HX, output=('{"ratings.agreement": "Agree", '
                                '"opinion.text": "I agree with X."}')),
          Row(input=HY, output=('{"ratings.agreement": "Strongly Disagree", '
                                '"opinion.text": "Y is bad."}'))]),
      Instance(id="w4", rows=[
          Row(input=HY, output=('{"ratings.agreement": "Somewhat Agree", '
                                '"opinion.text": "Maybe Y."}'))]),
  ]


def test_habermas_individual_categorical(hab_dir):
  assert _build("habermas_individual_categorical", hab_dir) == [
      Instance(id="w1", rows=[Row(input=HX, output="Agree"),
                              Row(input=HY, output="Strongly Disagree")]),
      Instance(id="w4", rows=[Row(input=HY, output="Somewhat Agree")]),
  ]


def test_habermas_worker_cap_is_seeded(hab_dir, monkeypatch):
  monkeypatch.setattr(habermas, "MAX_WORKERS", 1)
  picks = {seed: [i.id for i in _build("habermas_individual", hab_dir, seed)]
           for seed in range(8)}
  assert all(len(p) == 1 for p in picks.values())
  assert {p[0] for p in picks.values()} == {"w1", "w4"}
  assert picks[3] == [i.id for i in _build("habermas_individual", hab_dir, 3)]


def test_habermas_distributional(hab_dir):
  (inst,) = _build("habermas_distributional", hab_dir)  # q2 has < 6 ratings
  assert (inst.id, inst.descriptions, inst.question, inst.options,
          inst.extra) == (
      "q1", [
          "You are a randomly selected UK resident. You will be given a "
          "question and two statements, A and B. Rate which statement you "
          "most agree with on a likert scale from 1 to 7:\n"
          "1: Strongly Agree with A\n2: Agree with A\n3: Somewhat Agree with "
          "A\n4: Neutral\n5: Somewhat Agree with B\n6: Agree with B\n"
          "7: Strongly Agree with B"],
      "Question: Should X?\nA: X is good.\nB: X is bad.",
      ["1", "2", "3", "4", "5", "6", "7"],
      {"output_name": "Answer (Likert 1-7)"})
  # p1 Agree, p3 Disagree, c1..c5; MOCK, the repeat and AI_MOCK left out.
  assert inst.target == pytest.approx([2 / 7, 2 / 7, 0, 0, 1 / 7, 1 / 7,
                                       1 / 7])


def test_habermas_label_as_string_repr(tmp_path):
  _write_habermas(tmp_path)
  # A column of strings like "['AGREE']" (a DataFrame saved after astype).
  columns = _habermas_ratings()
  columns["ratings.agreement"] = [str(v) for v in
                                  columns["ratings.agreement"]]
  _write_parquet(str(tmp_path / "habermas_data" /
                     "hm_all_position_statement_ratings.parquet"), columns)
  got = _build("habermas_individual_categorical", tmp_path)
  assert got[0].rows[0] == Row(input=HX, output="Agree")


def test_habermas_unknown_label(tmp_path):
  _write_habermas(tmp_path, {("ratings.agreement", 2): ["AGREEISH"]})
  with pytest.raises(ValueError, match=re.escape(
      "hm_all_position_statement_ratings.parquet, row 2, column "
      "'ratings.agreement': unknown label ['AGREEISH']")):
    _build("habermas_individual", tmp_path)


def test_habermas_missing_column(tmp_path):
  _write_habermas(tmp_path)
  _write_parquet(str(tmp_path / "habermas_data" /
                     "hm_all_round_survey_responses.parquet"),
                 {"worker_id": ["w1"], "question.id": ["q1"]})
  with pytest.raises(ValueError, match=re.escape(
      "hm_all_round_survey_responses.parquet: missing column(s) "
      "['opinion.text']")):
    _build("habermas_question", tmp_path)


# ---------------------------------------------------------------- OpinionQA

OQA_SAFE = ("How safe is your community from crime? Would you say it is\n"
            "A: Very safe\nB: Somewhat safe\nC: Refused")
OQA_GUN = "Do you own a gun?\nA: Yes\nB: No\nC: Refused"
DEMO_VALUES = ["Northeast", "30-49", "Female", "College graduate/some postgrad",
               "", "Married", "Protestant", "Never", "Democrat",
               "$100,000 or more", "Liberal", "White"]


def _write_opinionqa(root, info_override=None):
  for wave in opinionqa.WAVES:
    folder = root / "opinionqa" / "human_resp" / (
        f"American_Trends_Panel_W{wave}")
    info = [["0", f"SAFECRIME_W{wave}",
             "How safe is your community from crime? Would you say it is",
             "{1.0: 'Very safe', 2.0: 'Somewhat safe', 99.0: 'Refused'}",
             "['Very safe', 'Somewhat safe', 'Refused']", "[1.0, 2.0, 99.0]"],
            ["1", f"GUNS_W{wave}", "Do you own a gun?",
             "{1.0: 'Yes', 2.0: 'No', 99.0: 'Refused'}",
             "['Yes', 'No', 'Refused']", "[1.0, 2.0, 99.0]"]]
    if info_override:
      info[1][4] = info_override
    _write_csv(str(folder / "info.csv"),
               ["Unnamed: 0", "key", "question", "option_mapping",
                "references", "option_ordinal"], info)
    _write_csv(str(folder / "responses.csv"),
               ["QKEY", f"SAFECRIME_W{wave}", f"GUNS_W{wave}",
                *opinionqa.DEMOGRAPHICS, "WEIGHT"],
               [["1", "Very safe", "No", *DEMO_VALUES, "1.2"],
                ["2", "", "Refused", *DEMO_VALUES, "0.8"],
                ["3", "", "", *DEMO_VALUES, "1.0"],  # nothing usable
                ["4", "Not sure", "Yes", *DEMO_VALUES, "1.0"]])


@pytest.fixture
def oqa_dir(tmp_path):
  _write_opinionqa(tmp_path)
  return tmp_path


def test_opinionqa_individual(oqa_dir, monkeypatch):
  monkeypatch.setattr(opinionqa, "P_DROP_DEMOGRAPHIC", 0.0)
  got = _build("opinionqa_individual", oqa_dir)
  assert len(got) == 3 * len(opinionqa.WAVES)
  demographics = (
      "Survey responses from the following individual: {'CREGION': "
      "'Northeast', 'AGE': '30-49', 'SEX': 'Female', 'EDUCATION': "
      "'College graduate/some postgrad', 'MARITAL': 'Married', 'RELIG': "
      "'Protestant', 'RELIGATTEND': 'Never', 'POLPARTY': 'Democrat', "
      "'INCOME': '$100,000 or more', 'POLIDEOLOGY': 'Liberal', 'RACE': "
      "'White'}")  # CITIZEN is blank, so left out
  descriptions = [opinionqa.INDIVIDUAL, demographics]
  assert got[:3] == [
      Instance(id="W26_2", descriptions=descriptions, rows=[
          Row(input=OQA_SAFE, output="A"), Row(input=OQA_GUN, output="B")]),
      Instance(id="W26_3", descriptions=descriptions,
               rows=[Row(input=OQA_GUN, output="C")]),
      Instance(id="W26_5", descriptions=descriptions,
               rows=[Row(input=OQA_GUN, output="A")]),
  ]
  assert got[-1].id == "W92_5"


def test_opinionqa_demographics_dropped_at_random(oqa_dir):
  got = _build("opinionqa_individual", oqa_dir)
  assert got == _build("opinionqa_individual", oqa_dir)  # seeded
  shown = [ast.literal_eval(i.descriptions[1].split(": ", 1)[1])
           for i in got]
  sizes = [len(s) for s in shown]
  assert all(set(s) <= set(opinionqa.DEMOGRAPHICS) - {"CITIZEN"}
             for s in shown)
  # 45 respondents x 11 attributes, each kept with probability 0.7.
  assert 0.55 < sum(sizes) / (11 * len(got)) < 0.85
  assert len(set(map(str, shown))) > 10


def test_opinionqa_respondent_cap_is_seeded(oqa_dir, monkeypatch):
  monkeypatch.setattr(opinionqa, "MAX_RESPONDENTS", 2)
  got = {seed: [i.id for i in _build("opinionqa_individual", oqa_dir, seed)
                if i.id.startswith("W26_")] for seed in range(6)}
  assert all(len(ids) == 2 and ids == sorted(ids, key=lambda s: int(s[4:]))
             for ids in got.values())
  assert len({tuple(ids) for ids in got.values()}) > 1


def test_opinionqa_questions(oqa_dir):
  got = _build("opinionqa_questions", oqa_dir)
  assert [i.id for i in got] == [f"W{w}" for w in opinionqa.WAVES]
  assert got[0] == Instance(id="W26", rows=[Row(output=OQA_SAFE),
                                            Row(output=OQA_GUN)])
  assert SPECS["opinionqa_questions"].default_descriptions == (
      "The following are survey questions.",)


def test_opinionqa_malformed_references(tmp_path):
  _write_opinionqa(tmp_path, info_override="['Yes', 'No'")
  path = (tmp_path / "opinionqa" / "human_resp" /
          "American_Trends_Panel_W26" / "info.csv")
  with pytest.raises(ValueError, match=re.escape(
      f"{path}, line 3, column 'references': not a Python literal")):
    _build("opinionqa_questions", tmp_path)


def test_opinionqa_missing_demographic_column(oqa_dir):
  path = (oqa_dir / "opinionqa" / "human_resp" / "American_Trends_Panel_W27" /
          "responses.csv")
  _write_csv(str(path), ["QKEY", "SAFECRIME_W27", "GUNS_W27"],
             [["1", "Very safe", "No"]])
  with pytest.raises(ValueError, match=re.escape(
      f"{path}: missing column(s) {list(opinionqa.DEMOGRAPHICS)}")):
    _build("opinionqa_individual", oqa_dir)


# ---------------------------------------------------------------- MMLU

def _write_mmlu(root, answers=(1, 3)):
  _write_parquet(str(root / "mmlu" / "all" / "test-00000-of-00001.parquet"), {
      "question": ["What is 2 + 2?", "Which is a prime?"],
      "subject": ["elementary_mathematics", "college_mathematics"],
      "choices": [["3", "4", "5", "22"], ["4", "6", "8", "7"]],
      "answer": list(answers),
  })


def test_mmlu(tmp_path):
  _write_mmlu(tmp_path)
  assert _build("mmlu", tmp_path) == [Instance(id="all", rows=[
      Row(input="Question: What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 22",
          output="B"),
      Row(input="Question: Which is a prime?\nA. 4\nB. 6\nC. 8\nD. 7",
          output="D")])]
  assert mmlu.TASKS[0].default_descriptions == (
      "Given a question and a list of choices, return the correct answer "
      "choice.",)


def test_mmlu_answer_out_of_range(tmp_path):
  _write_mmlu(tmp_path, answers=(1, 4))
  with pytest.raises(ValueError, match=re.escape(
      "test-00000-of-00001.parquet, row 1, column 'answer': expected a "
      "choice index in 0..3, got 4")):
    _build("mmlu", tmp_path)


def test_not_a_parquet_file(tmp_path):
  path = tmp_path / "mmlu" / "all" / "test-00000-of-00001.parquet"
  os.makedirs(path.parent)
  path.write_text(json.dumps({"question": "not parquet"}))
  with pytest.raises(ValueError, match=re.escape(
      f"{path}: cannot read as parquet")):
    _build("mmlu", tmp_path)


def test_csv_that_is_not_utf8_names_the_line_of_the_bad_byte(tmp_path):
  path = tmp_path / "globaloqa" / "global_opinions.csv"
  _write_csv(path, GOQA_HEADER, GOQA_ROWS * 200)  # Past the text reader's first block.
  lines = path.read_bytes().splitlines(keepends=True)
  lines[300] = b"\xc7a" + lines[300]  # "Ç" saved as Latin-1.
  path.write_bytes(b"".join(lines))
  with pytest.raises(ValueError, match=re.escape(
      f"{path}, line 301: not UTF-8 text (invalid continuation byte at byte")):
    _build("globaloqa", tmp_path)
