"""Tests of data_pipelines/sources/bare.py on tests/fixtures/raw/bare."""

from __future__ import annotations

import os
import shutil

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError
from data_pipelines.sources import bare

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPECS = {spec.name: spec for spec in bare.TASKS}


def _build(name, raw_dir=FIXTURES):
  instances = list(SPECS[name].generate(BuildContext(seed=0,
                                                     raw_dir=str(raw_dir))))
  for inst in instances:
    inst.validate(name)
  return instances


def test_task_table():
  assert sorted(SPECS) == ["bare_enron", "bare_gsm8k", "bare_hotpot",
                           "bare_lcb", "newsgroups", "pubmed"]
  for spec in bare.TASKS:
    assert (spec.suite_split, spec.kind, spec.mean_k, spec.fixed_k,
            spec.chunk_all_rows, spec.max_episodes, spec.p_desc,
            spec.orderings) == ("train", "icl", 32, None, True, 2000, 0.6, 1)
    assert spec.default_descriptions == ()
    (raw,) = spec.raw_files
    assert raw.download.manual and "pgasawa/BARE" in raw.published_at


def test_gsm8k_four_directions():
  insts = _build("bare_gsm8k")
  assert [i.id for i in insts] == [
      "gsm8k_question_answer", "gsm8k_answer_from_question",
      "gsm8k_question_from_answer", "gsm8k_question"]
  assert all(len(i.rows) == 5 for i in insts)
  joint, answer, question, alone = insts
  q = ("Maria bakes 3 trays of cookies with 12 cookies on each tray. She "
       "gives 15 cookies to her neighbors. How many cookies does she have "
       "left?")
  a = ("Maria bakes 3 * 12 = <<3*12=36>>36 cookies.\nAfter giving away 15, "
       "she has 36 - 15 = <<36-15=21>>21 cookies.\n#### 21")
  assert joint.rows[0].input is None
  assert joint.rows[0].output == (
      '{"question": "' + q + '", "answer": "Maria bakes 3 * 12 = '
      '<<3*12=36>>36 cookies.\\nAfter giving away 15, she has 36 - 15 = '
      '<<36-15=21>>21 cookies.\\n#### 21"}')
  assert (answer.rows[0].input, answer.rows[0].output) == (q, a)
  assert (question.rows[0].input, question.rows[0].output) == (a, q)
  assert (alone.rows[0].input, alone.rows[0].output) == (None, q)
  # json.dumps escapes non-ASCII, as the release does.
  assert "L\\u00e9a" in joint.rows[2].output
  assert "\\u2014" in joint.rows[2].output
  assert alone.rows[2].output.startswith("Léa has 48 stickers")
  assert joint.descriptions[1] == (
      "Synthetic math word problems with worked solutions. Generate both the "
      "question and answer components separately.")
  assert all(len(i.descriptions) == 3 for i in insts)


def test_enron_spam_label_printed_with_str():
  joint, spam_from_email, email_from_spam, alone = _build("bare_enron")
  assert [r.output for r in spam_from_email.rows] == ["0", "1", "0", "1"]
  assert email_from_spam.rows[1].input == "1"
  assert joint.rows[1].output.startswith(
      '{"spam": "1", "email": "Subject: you have been selected !!!\\n\\n')
  assert alone.rows[2].output == (
      "Subject: meeting notes\n\nattached are the notes from thursday ’ s "
      "risk management meeting . please review before monday .")


@pytest.mark.parametrize("name,given", [
    ("bare_hotpot", '{"context": "Lake Baikal is the deepest lake in the '
     'world, located in Siberia.\\nSiberia is a region of Russia.", '
     '"question": "In which country is the world\'s deepest lake?"}'),
    ("pubmed", '{"context": "In a cohort of 1,200 patients, vitamin D '
     'supplementation was not associated with a reduced incidence of upper '
     'respiratory infections (HR 0.97, 95% CI 0.85\\u20131.11).", '
     '"question": "Does vitamin D supplementation reduce upper respiratory '
     'infections?"}'),
])
def test_context_question_answer_sources(name, given):
  insts = _build(name)
  prefix = name.removeprefix("bare_")
  assert [i.id for i in insts] == [
      f"{prefix}_context_question_answer",
      f"{prefix}_answer_from_context_question",
      f"{prefix}_question_from_context_answer", f"{prefix}_context"]
  assert insts[1].rows[1].input == given
  assert insts[0].rows[1].input is None
  assert insts[0].rows[1].output.startswith(given[:-1] + ', "answer": "')
  assert insts[2].rows[1].output == insts[1].rows[1].input.split(
      '"question": "')[1][:-2]


def test_newsgroups_and_lcb():
  joint, group_from_message, message_from_group, alone = _build("newsgroups")
  assert [r.output for r in group_from_message.rows] == [
      "sci.med", "comp.graphics", "rec.sport.hockey", "talk.politics.misc"]
  assert message_from_group.rows[0].input == "sci.med"
  assert joint.rows[0].output.startswith('{"newsgroup": "sci.med", ')
  lcb = _build("bare_lcb")
  assert [r.output for r in lcb[1].rows] == ["4", "4", "30"]
  assert lcb[3].descriptions[2] == (
      "Generate: question (logic/programming problem statement only, without "
      "solution).")


def test_missing_file_says_where_to_get_it(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build("pubmed", tmp_path)
  assert "bare/pubmed/pubmed_gpt_4o_refine_llama_70b_base_n=1000.jsonl" in str(
      e.value)
  assert "pgasawa/BARE" in str(e.value)


def _copy(tmp_path, name):
  spec = SPECS[name]
  (raw,) = spec.raw_files
  dest = tmp_path / raw.path
  dest.parent.mkdir(parents=True)
  shutil.copy(os.path.join(FIXTURES, raw.path), dest)
  return dest


@pytest.mark.parametrize("line,message", [
    ('{"question": "Q?"}\n', "line 6, column 'answer': missing"),
    ('{"question": "Q?", "answer": 4}\n',
     "line 6, column 'answer': expected a string, got 4"),
    ('{"question": "Q?", "answer": null}\n',
     "line 6, column 'answer': missing"),
    ('{"question": "Q?", \n', "line 6: not valid JSON"),
    ('["Q?", "A"]\n', "line 6: expected a JSON object"),
])
def test_malformed_line_names_file_line_and_field(tmp_path, line, message):
  dest = _copy(tmp_path, "bare_gsm8k")
  with open(dest, "a", encoding="utf-8") as f:
    f.write(line)
  with pytest.raises(ValueError) as e:
    _build("bare_gsm8k", tmp_path)
  assert str(dest) in str(e.value) and message in str(e.value)


def test_blank_lines_are_skipped(tmp_path):
  dest = _copy(tmp_path, "bare_lcb")
  with open(dest, "a", encoding="utf-8") as f:
    f.write("\n\n")
  assert [len(i.rows) for i in _build("bare_lcb", tmp_path)] == [3, 3, 3, 3]
