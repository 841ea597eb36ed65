"""GPQA converter (data_pipelines/sources/gpqa.py)."""

from __future__ import annotations

import collections
import os

import pytest

from data_pipelines.schema import BuildContext, MissingRawFileError, Row
from data_pipelines.sources import gpqa

RAW = os.path.join(os.path.dirname(__file__), "fixtures", "raw")
SPEC = gpqa.TASKS[0]
FILE = "gpqa/dataset/gpqa_main.csv"


def _build(raw_dir=RAW, seed=0):
  out = list(SPEC.generate(BuildContext(seed=seed, raw_dir=raw_dir)))
  for inst in out:
    inst.validate(SPEC.name)
  return out


def _options(row, question):
  """letter -> text of each option of a prompt (continuation lines joined)."""
  head = f"Question: {question}\n"
  assert row.input.startswith(head)
  options, letter = collections.OrderedDict(), None
  for line in row.input[len(head):].split("\n"):
    if line[:1] in "ABCD" and line[1:3] == ". ":
      letter = line[0]
      options[letter] = line[3:]
    else:
      options[letter] += "\n" + line
  return options


def test_spec():
  assert [s.name for s in gpqa.TASKS] == ["gpqa"]
  assert (SPEC.suite_split, SPEC.kind, SPEC.fixed_k, SPEC.mean_k,
          SPEC.chunk_all_rows, SPEC.episodes_per_instance, SPEC.orderings,
          SPEC.max_episodes, SPEC.p_desc) == (
              "test", "icl", 20, None, False, 1000, 1, None, 0.6)
  assert SPEC.default_descriptions == (
      "You will be given a difficult question. Respond with the correct "
      "answer letter.",)
  raw = SPEC.raw_files[0]
  assert raw.path == FILE
  # The authors' password-protected zip, unpacked into gpqa/.
  d = raw.download
  assert (d.target, d.unpack, d.unpack_to, d.password) == (
      "gpqa/dataset.zip", "zip", "gpqa", "deserted-untie-orchid")
  assert d.url.endswith("/idavidrein/gpqa/raw/main/dataset.zip")


def test_rows():
  (inst,) = _build()
  assert inst.id == "all" and len(inst.rows) == 4
  # Exact prompts for seed 0 (our seeded answer order).
  assert inst.rows[0] == Row(
      input="Question: What is 2 + 2 in base 3?\nA. 12\nB. 4\nC. 22\nD. 11",
      output="D")
  expected = [
      ("What is 2 + 2 in base 3?", "11", {"4", "22", "12"}),
      ("A compound shows a singlet at 2.1 ppm.\nWhich group is most likely "
       "present?", "A methyl ketone",  # stripped
       {"An aldehyde", "A carboxylic acid,\nprotonated",
        'An "aromatic" ring'}),
      # A blank and an `NA` incorrect answer are dropped: three options.
      ("Which enzyme unwinds the DNA double helix?", "Helicase",
       {"Ligase", "Primase"}),
      ("The \u0394G of a spontaneous reaction at constant T and p is:",
       "negative", {"positive", "zero"}),
  ]
  for row, (question, correct, incorrect) in zip(inst.rows, expected):
    assert row.input.startswith(f"Question: {question}\nA. ")
    options = _options(row, question)
    assert list(options) == list("ABCD")[:len(incorrect) + 1]
    assert options[row.output] == correct
    assert set(options.values()) == incorrect | {correct}


def test_answer_order_is_seeded():
  positions = lambda rows: [r.output for r in rows]
  assert positions(_build(seed=0)[0].rows) == positions(
      _build(seed=0)[0].rows)
  orders = {tuple(r.input for r in _build(seed=s)[0].rows) for s in range(6)}
  assert len(orders) > 1
  # Not always the file's order (correct answer last).
  outputs = [r.output for s in range(6) for r in _build(seed=s)[0].rows]
  assert set(outputs) >= {"A", "B", "C"}


def test_missing_raw_file(tmp_path):
  with pytest.raises(MissingRawFileError) as e:
    _build(str(tmp_path))
  assert FILE in str(e.value)


def test_empty_correct_answer_names_file_line_and_column(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  path.write_text(
      "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,"
      "Incorrect Answer 3\n"
      '"two\nlines",a,b,c,d\n'
      "q,,b,c,d\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"gpqa_main\.csv, line 4, column "
                     r"'Correct Answer'"):
    _build(str(tmp_path))


def test_missing_column(tmp_path):
  path = tmp_path / FILE
  path.parent.mkdir(parents=True)
  path.write_text("Question,Correct Answer\nq,a\n", encoding="utf-8")
  with pytest.raises(ValueError, match=r"missing column\(s\) \['Incorrect "
                     r"Answer 1'"):
    _build(str(tmp_path))
