"""Tests of users' own JSONL tasks (data_pipelines/user_tasks.py)."""

from __future__ import annotations

import json
import os
import re

import pytest

from data_pipelines.schema import BuildContext, Instance, Row
from data_pipelines.user_tasks import load_user_tasks

CTX = BuildContext(seed=0, raw_dir=None)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(directory, name, lines):
  """Writes `lines` (objects are JSON-encoded, strings written as is)."""
  text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                 for line in lines)
  (directory / name).write_text(text, encoding="utf-8")
  return directory / name


def _instances(spec) -> list[Instance]:
  return list(spec.generate(CTX))


def test_row_per_line(tmp_path):
  _write(tmp_path, "capitals.jsonl", [
      {"input": "France", "output": "Paris"},
      "",  # blank lines are ignored
      {"input": {"country": "Peru", "continent": "South America"},
       "output": "Lima"},
      {"input": {"country": "Chad"}, "output": 7},
      {"input": "Mali", "output": {"city": "Bamako", "big": True}},
  ])
  (spec,) = load_user_tasks(str(tmp_path))
  assert (spec.name, spec.suite_split, spec.kind, spec.mean_k, spec.fixed_k,
          spec.p_desc, spec.default_descriptions) == (
      "capitals", "train", "icl", None, None, 0.6, ())
  assert _instances(spec) == [Instance(id="0", rows=[
      Row(input="France", output="Paris"),
      Row(input='{"country": "Peru", "continent": "South America"}',
          output="Lima"),
      Row(input="Chad", output="7"),
      Row(input="Mali", output='{"city": "Bamako", "big": true}'),
  ])]


def test_instance_per_line(tmp_path):
  _write(tmp_path, "ratings.jsonl", [
      {"id": "alice", "description": "Alice's film ratings.",
       "rows": [{"input": "Up", "output": "5"},
                {"input": "Heat", "output": 3}]},
      {"rows": [{"output": "heads"}, {"output": "tails"}],
       "descriptions": ["A coin.", "Coin flips."]},
      {"id": 7, "rows": [{"output": "x"}]},
  ])
  (spec,) = load_user_tasks(str(tmp_path))
  assert _instances(spec) == [
      Instance(id="alice", descriptions=["Alice's film ratings."],
               rows=[Row(input="Up", output="5"),
                     Row(input="Heat", output="3")]),
      Instance(id="1", descriptions=["A coin.", "Coin flips."],
               rows=[Row(output="heads"), Row(output="tails")]),
      Instance(id="7", rows=[Row(output="x")]),
  ]


def test_first_line_meta(tmp_path):
  _write(tmp_path, "coin.jsonl", [
      {"meta": {"split": "test", "mean_k": 64, "p_desc": 0.25,
                "descriptions": "Flips of one coin.",
                "about": "My coin."}},
      {"output": "H"}, {"output": "T"},
  ])
  (spec,) = load_user_tasks(str(tmp_path))
  assert (spec.suite_split, spec.mean_k, spec.fixed_k, spec.p_desc,
          spec.default_descriptions, spec.about) == (
      "test", 64.0, None, 0.25, ("Flips of one coin.",), "My coin.")
  assert _instances(spec) == [Instance(id="0", rows=[Row(output="H"),
                                                     Row(output="T")])]


def test_sidecar_meta_and_sorted_tasks(tmp_path):
  _write(tmp_path, "b_task.jsonl", [{"output": "1"}])
  _write(tmp_path, "a_task.jsonl", [{"output": "2"}])
  (tmp_path / "b_task.meta.json").write_text(json.dumps(
      {"fixed_k": 10, "descriptions": ["One.", "Two."]}))
  (tmp_path / "notes.txt").write_text("not a task")
  a, b = load_user_tasks(str(tmp_path))
  assert (a.name, a.fixed_k, a.default_descriptions) == ("a_task", None, ())
  assert (b.name, b.fixed_k, b.mean_k, b.default_descriptions) == (
      "b_task", 10, None, ("One.", "Two."))
  assert b.metadata()["fixed_k"] == 10


def _error(tmp_path, lines, name="t.jsonl") -> str:
  _write(tmp_path, name, lines)
  with pytest.raises(ValueError) as e:
    load_user_tasks(str(tmp_path))
  return str(e.value)


def test_malformed_json_names_file_and_line(tmp_path):
  msg = _error(tmp_path, [{"output": "a"}, '{"output": "b",}'])
  assert msg.startswith(f"{tmp_path / 't.jsonl'}, line 2: not valid JSON (")


def test_not_an_object(tmp_path):
  msg = _error(tmp_path, [{"output": "a"}, '["b"]'])
  assert msg == (f"{tmp_path / 't.jsonl'}, line 2: expected a JSON object "
                 "{...}, got list.")


def test_row_without_output(tmp_path):
  msg = _error(tmp_path, [{"output": "a"}, {"input": "q", "answer": "b"}])
  assert msg == (
      f"{tmp_path / 't.jsonl'}, line 2: the row has no \"output\" (found keys "
      "['answer', 'input']); add \"output\": \"<what to predict>\" (and "
      "\"input\": \"<what is given>\" if anything is).")


def test_row_without_output_in_an_instance(tmp_path):
  msg = _error(tmp_path, [{"rows": [{"output": "a"}, {"output": None}]}])
  assert msg.startswith(f"{tmp_path / 't.jsonl'}, line 1, rows[1]: the row "
                        "has no \"output\"")


def test_unknown_row_key(tmp_path):
  msg = _error(tmp_path, [{"inputs": "q", "output": "a"}])
  assert msg.startswith(f"{tmp_path / 't.jsonl'}, line 1: unknown key(s) "
                        "['inputs']; a row has \"output\" and optionally "
                        "\"input\"")


def test_no_outputs_at_all(tmp_path):
  msg = _error(tmp_path, [{"meta": {"split": "test"}}, ""])
  assert msg == (f"{tmp_path / 't.jsonl'}: the task has no rows with an "
                 "output; add lines like {\"input\": \"...\", \"output\": "
                 "\"...\"} (or just {\"output\": \"...\"} when nothing is "
                 "given).")


def test_empty_instance(tmp_path):
  msg = _error(tmp_path, [{"rows": []}])
  assert msg.startswith(f"{tmp_path / 't.jsonl'}, line 1: \"rows\" must be a "
                        "non-empty list")


def test_mixed_inputs_in_row_file(tmp_path):
  msg = _error(tmp_path, [{"input": "q", "output": "a"}, {"output": "b"},
                          {"input": "r", "output": "c"}])
  assert msg == (f"{tmp_path / 't.jsonl'}: some rows have an \"input\" and "
                 "some do not (with: line 1, line 3; without: line 2); give "
                 "every row an input or none.")


def test_mixed_inputs_in_instance(tmp_path):
  msg = _error(tmp_path, [{"rows": [{"output": "a"},
                                    {"input": "q", "output": "b"}]}])
  assert msg == (f"{tmp_path / 't.jsonl'}, line 1: some rows have an "
                 "\"input\" and some do not (with: rows[1]; without: "
                 "rows[0]); give every row an input or none.")


def test_mixed_layouts(tmp_path):
  msg = _error(tmp_path, [{"rows": [{"output": "a"}]}, {"output": "b"}])
  assert msg.startswith(f"{tmp_path / 't.jsonl'}, line 2: expected an "
                        "instance {\"rows\": [...]} like the file's first "
                        "line")


def test_duplicate_ids(tmp_path):
  msg = _error(tmp_path, [{"id": "x", "rows": [{"output": "a"}]},
                          {"id": "x", "rows": [{"output": "b"}]}])
  assert msg == (f"{tmp_path / 't.jsonl'}, line 2: id 'x' is already used on "
                 "line 1; ids must be unique.")


def test_meta_not_first(tmp_path):
  msg = _error(tmp_path, [{"output": "a"}, {"meta": {}}])
  assert msg == (f"{tmp_path / 't.jsonl'}, line 2: {{\"meta\": ...}} must be "
                 "the first line of the file.")


@pytest.mark.parametrize("meta,message", [
    ({"split": "dev"}, "\"split\" must be one of ('train', 'test'), got "
     "'dev'."),
    ({"mean_k": 1}, "\"mean_k\" must be a number >= 2, got 1."),
    ({"fixed_k": 2.5}, "\"fixed_k\" must be a whole number >= 1, got 2.5."),
    ({"mean_k": 8, "fixed_k": 8}, "give \"mean_k\" or \"fixed_k\", not both."),
    ({"p_desc": 1.5}, "\"p_desc\" must be a number in [0, 1], got 1.5."),
    # json reads NaN / Infinity; they must not slip past the comparisons.
    ('{"mean_k": NaN}', "\"mean_k\" must be a number >= 2, got nan."),
    ('{"mean_k": Infinity}', "\"mean_k\" must be a number >= 2, got inf."),
    ('{"fixed_k": Infinity}', "\"fixed_k\" must be a whole number >= 1, got inf."),
    ('{"fixed_k": NaN}', "\"fixed_k\" must be a whole number >= 1, got nan."),
    ({"fixed_k": 0}, "\"fixed_k\" must be a whole number >= 1, got 0."),
    ({"fixed_k": -3}, "\"fixed_k\" must be a whole number >= 1, got -3."),
    ({"mean_k": -4}, "\"mean_k\" must be a number >= 2, got -4."),
    ('{"p_desc": NaN}', "\"p_desc\" must be a number in [0, 1], got nan."),
    ({"p_desc": -0.1}, "\"p_desc\" must be a number in [0, 1], got -0.1."),
    ({"descriptions": ["ok", 3]}, "\"descriptions\" must be a non-empty "
     "string or a list of them."),
    ({"kind": "icl"}, "unknown setting(s) ['kind']; allowed: ['split', "
     "'mean_k', 'fixed_k', 'episodes_per_instance', 'orderings', "
     "'max_episodes', 'p_desc', 'descriptions', 'about']."),
    ({"orderings": 0}, "\"orderings\" must be a whole number >= 1, got 0."),
    ({"episodes_per_instance": 1.5}, "\"episodes_per_instance\" must be "
     "a whole number >= 1, got 1.5."),
])
def test_bad_settings(tmp_path, meta, message):
  meta_line = f'{{"meta": {meta}}}' if isinstance(meta, str) else {"meta": meta}
  msg = _error(tmp_path, [meta_line, {"output": "a"}])
  assert msg == f"{tmp_path / 't.jsonl'}, line 1: {message}"


def test_bad_sidecar(tmp_path):
  _write(tmp_path, "t.jsonl", [{"output": "a"}])
  (tmp_path / "t.meta.json").write_text('{"split": "test",}')
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 't.meta.json'}: not valid JSON")):
    load_user_tasks(str(tmp_path))
  (tmp_path / "t.meta.json").write_text('{"split": "dev"}')
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 't.meta.json'}: \"split\" must be one of")):
    load_user_tasks(str(tmp_path))


def test_meta_in_both_places(tmp_path):
  _write(tmp_path, "t.jsonl", [{"meta": {"split": "test"}}, {"output": "a"}])
  (tmp_path / "t.meta.json").write_text('{"split": "test"}')
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 't.jsonl'}, line 1: settings are both on this line and "
      f"in {tmp_path / 't.meta.json'}; keep one.")):
    load_user_tasks(str(tmp_path))


def test_orphan_sidecar(tmp_path):
  _write(tmp_path, "t.jsonl", [{"output": "a"}])
  (tmp_path / "u.meta.json").write_text("{}")
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 'u.meta.json'}: settings for a task with no data file; "
      "add u.jsonl")):
    load_user_tasks(str(tmp_path))


def test_bad_task_name(tmp_path):
  msg = _error(tmp_path, [{"output": "a"}], name="my task.jsonl")
  assert "the task name 'my task' must use only letters" in msg


def test_empty_or_missing_directory(tmp_path):
  with pytest.raises(ValueError, match="no \\*.jsonl files"):
    load_user_tasks(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    load_user_tasks(str(tmp_path / "nope"))


def test_not_utf8(tmp_path):
  (tmp_path / "t.jsonl").write_bytes(b'{"output": "a"}\n{"output": "\xff"}\n')
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 't.jsonl'}, line 2: not UTF-8 text")):
    load_user_tasks(str(tmp_path))


def test_byte_order_mark_is_ignored(tmp_path):
  (tmp_path / "t.jsonl").write_bytes(b'\xef\xbb\xbf{"output": "a"}\n')
  (spec,) = load_user_tasks(str(tmp_path))
  assert _instances(spec) == [Instance(id="0", rows=[Row(output="a")])]


def test_sidecar_with_nan_names_the_file_and_field(tmp_path):
  _write(tmp_path, "t.jsonl", [{"output": "a"}])
  (tmp_path / "t.meta.json").write_text('{"fixed_k": Infinity}')
  with pytest.raises(ValueError, match=re.escape(
      f"{tmp_path / 't.meta.json'}: \"fixed_k\" must be a whole number >= 1, "
      "got inf.")):
    load_user_tasks(str(tmp_path))


@pytest.mark.parametrize("field, value, message", [
    ("mean_k", float("nan"), "mean_k must be a finite number >= 2"),
    ("mean_k", 1, "mean_k must be a finite number >= 2"),
    ("fixed_k", float("inf"), "fixed_k must be a whole number >= 1, got inf"),
    ("fixed_k", 0, "fixed_k must be a whole number >= 1, got 0"),
    ("p_desc", 2.0, "p_desc must be a number in [0, 1], got 2.0"),
    ("test_fraction", float("nan"), "test_fraction must be a number in [0, 1], got nan"),
])
def test_task_spec_refuses_bad_numbers(field, value, message):
  from data_pipelines.schema import TaskSpec  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=re.escape(f"task 't': {message}")):
    TaskSpec(name="t", suite_split="train", kind="icl", generate=lambda ctx: [],
             **{field: value})


def test_build_cli_refuses_a_nan_setting_with_one_line(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  tasks = tmp_path / "tasks"
  tasks.mkdir()
  _write(tasks, "t.jsonl", ['{"meta": {"mean_k": NaN}}', {"output": "a"}])
  out = tmp_path / "suite"
  proc = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", f"--out={out}",
       f"--user_tasks={tasks}", "--tasks=t"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert proc.stderr.strip().splitlines() == [
      f"error: {tasks / 't.jsonl'}, line 1: \"mean_k\" must be a number >= 2, "
      "got nan."]
  assert not out.exists()  # Nothing written.


def test_build_cli_names_a_corrupt_manifest(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  out = tmp_path / "suite"
  out.mkdir()
  (out / "suite.json").write_bytes(b'{"tasks": {"cards": \xff')
  proc = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", f"--out={out}", "--tasks=cards"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  (line,) = proc.stderr.strip().splitlines()
  assert line.startswith(f"error: {out / 'suite.json'}: not a suite manifest")
  assert (out / "suite.json").read_bytes() == b'{"tasks": {"cards": \xff'
