"""Reading a built suite: the manifest, task filters, records and metadata."""

import json
import os
import pickle
import re

import pytest

from data_pipelines import build
from data_pipelines.schema import Instance, Row, TaskSpec
from spectrax.data.episode_sampling import SamplingSpec
from spectrax.data.suite_reader import (InstanceRecord, Suite, SuiteError,
                                        TaskSource, decode_record)


def _sums(ctx):
  del ctx
  for i in range(4):
    yield Instance(id=f"sum{i}", descriptions=[f"Add {i}."],
                   rows=[Row(input=f"{j} + {i}", output=str(i + j))
                         for j in range(i + 2)])


def _urns(ctx):
  del ctx
  yield Instance(id="urn0", question="Colour?", options=["red", "blue"],
                 target=[0.75, 0.25], rows=[Row("red"), Row("blue")],
                 extra={"max_new_tokens": 4})


SPECS = [
    TaskSpec(name="sums", suite_split="train", kind="icl", generate=_sums,
             mean_k=8, test_fraction=0.25,
             default_descriptions=("Add the numbers.",)),
    TaskSpec(name="urns", suite_split="test", kind="distributional",
             generate=_urns, fixed_k=2, p_desc=0.4),
]


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("suite"))
  assert build.build(out, SPECS, seed=5, raw_dir=None) == []
  return out


def _write_manifest(path, manifest):
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "suite.json"), "w") as f:
    json.dump(manifest, f)
  return Suite(str(path))


def test_manifest(suite_dir):
  suite = Suite(suite_dir)
  assert suite.path == suite_dir and suite.seed == 5
  assert suite.tasks == {
      "sums": {"dir": "spectrum_suite/sums/1.0.0", "suite_split": "train",
               "kind": "icl"},
      "urns": {"dir": "spectrum_suite/urns/1.0.0", "suite_split": "test",
               "kind": "distributional"}}


def test_task_names_filter_by_split_and_kind(tmp_path):
  tasks = {"b": {"dir": "b", "suite_split": "train", "kind": "icl"},
           "a": {"dir": "a", "suite_split": "train", "kind": "icl"},
           "c": {"dir": "c", "suite_split": "test", "kind": "icl"},
           "d": {"dir": "d", "suite_split": "test", "kind": "diversity"}}
  suite = _write_manifest(tmp_path, {"tasks": tasks})
  assert suite.seed == 0  # Not recorded: the builder's default.
  assert suite.task_names() == ["a", "b", "c"]  # Every split, kind icl.
  assert suite.task_names("train") == ["a", "b"]
  assert suite.task_names("test") == ["c"]
  assert suite.task_names("test", kind="diversity") == ["d"]
  assert suite.task_names("test", kind=None) == ["c", "d"]
  assert suite.task_names(None, kind=None) == ["a", "b", "c", "d"]
  assert suite.task_names("train", kind="distributional") == []


def test_tokenizer_path(tmp_path):
  suite = _write_manifest(tmp_path, {"tasks": {}})
  assert suite.tokenizer_path is None  # Not trained yet.
  (tmp_path / "tokenizer.model").write_bytes(b"model")
  assert suite.tokenizer_path == str(tmp_path / "tokenizer.model")
  # Suites written before the tokenizer moved to spectrax name it.
  old = _write_manifest(tmp_path / "old", {"tasks": {}, "tokenizer": "sp.model"})
  assert old.tokenizer_path is None
  (tmp_path / "old" / "sp.model").write_bytes(b"model")
  assert old.tokenizer_path == str(tmp_path / "old" / "sp.model")


def test_missing_suite_and_missing_task_say_how_to_build(tmp_path, suite_dir):
  with pytest.raises(FileNotFoundError) as e:
    Suite(str(tmp_path))
  assert str(e.value) == (
      f"{tmp_path / 'suite.json'} not found: build the suite first with "
      f"`python -m data_pipelines.build --out={tmp_path}`.")
  with pytest.raises(ValueError) as e:
    Suite(suite_dir).source("coinflip", "train")
  assert str(e.value) == (
      f"task 'coinflip' is not in the suite at {suite_dir}; it has ['sums', "
      "'urns']. Build it with `python -m data_pipelines.build "
      f"--out={suite_dir} --tasks=coinflip`.")


def test_source_records_and_metadata(suite_dir):
  suite = Suite(suite_dir)
  train, test = suite.source("sums", "train"), suite.source("sums", "test")
  assert (train.name, train.split) == ("sums", "train")
  # One of the four instances (0.25) is held out; rows are i + 2 per sum{i}.
  assert len(train) == 3 and len(test) == 1
  by_id = {r.id: r for r in list(train) + list(test)}
  assert sorted(by_id) == ["sum0", "sum1", "sum2", "sum3"]
  assert sorted(train.num_rows + test.num_rows) == [2, 3, 4, 5]
  assert train.num_rows == [len(r.outputs) for r in train]
  assert by_id["sum1"] == InstanceRecord(
      id="sum1", descriptions=["Add 1."], inputs=["0 + 1", "1 + 1", "2 + 1"],
      outputs=["1", "2", "3"], question="", options=[], target=[], extra={})
  assert train.sampling == SamplingSpec(mean_k=8, fixed_k=None, p_desc=0.6)
  assert train.default_descriptions == ["Add the numbers."]


def test_distributional_source(suite_dir):
  urns = Suite(suite_dir).source("urns", "test")
  assert urns.sampling == SamplingSpec(mean_k=None, fixed_k=2, p_desc=0.4)
  assert urns.default_descriptions == []
  assert urns[0] == InstanceRecord(
      id="urn0", descriptions=[], inputs=[], outputs=["red", "blue"],
      question="Colour?", options=["red", "blue"], target=[0.75, 0.25],
      extra={"max_new_tokens": 4})
  # A test-suite task has no train split.
  assert len(Suite(suite_dir).source("urns", "train")) == 0
  with pytest.raises(IndexError) as e:
    urns[1]  # pylint: disable=pointless-statement
  assert str(e.value) == ("instance 1 is out of range: the test split of "
                          f"{urns.directory} has 1.")


def test_source_pickles_without_its_open_files(suite_dir):
  src = Suite(suite_dir).source("urns", "test")
  first = src[0]
  assert src._source is not None  # pylint: disable=protected-access
  copy = pickle.loads(pickle.dumps(src))
  assert copy._source is None  # pylint: disable=protected-access
  assert copy[0] == first and copy.num_rows == src.num_rows == [2]
  assert isinstance(copy, TaskSource)


def test_decode_record():
  raw = {"id": b"x", "descriptions": [b"d\xc3\xa9"], "inputs": [],
         "outputs": [b"a", "b"], "question": b"", "options": [],
         "target": [0.5], "extra": b""}
  assert decode_record(raw) == InstanceRecord(
      id="x", descriptions=["d\u00e9"], inputs=[], outputs=["a", "b"],
      question="", options=[], target=[0.5], extra={})


@pytest.mark.parametrize("text, part", [
    (b'{"tasks": {"sums": \n', "suite.json, line 2: the suite manifest is not valid JSON"),
    (b'{"tasks": "\xff"}', "suite.json: the suite manifest is not UTF-8 text"),
    (b'[1, 2]', 'suite.json: not a suite manifest (no "tasks" object)'),
])
def test_a_corrupt_manifest_names_the_file_and_the_rebuild(tmp_path, text, part):
  (tmp_path / "suite.json").write_bytes(text)
  with pytest.raises(SuiteError) as e:
    Suite(str(tmp_path))
  assert str(e.value).startswith(str(tmp_path / part))
  assert f"python -m data_pipelines.build --out={tmp_path} --overwrite" in str(e.value)


def _copy_suite(suite_dir, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "copy")
  shutil.copytree(suite_dir, out)
  return out


def test_a_corrupt_task_metadata_names_the_file_and_task(suite_dir, tmp_path):
  out = _copy_suite(suite_dir, tmp_path)
  suite = Suite(out)
  path = os.path.join(out, suite.tasks["sums"]["dir"], "metadata.json")
  with open(path, "r+b") as f:
    f.truncate(20)
  with pytest.raises(SuiteError, match=re.escape(
      f"{path}, line 1: the metadata of task 'sums' is not valid JSON")) as e:
    suite.source("sums", "train")
  assert f"--out={out} --tasks=sums --overwrite" in str(e.value)
  os.remove(path)
  with pytest.raises(SuiteError, match=re.escape(f"{path} is missing: task 'sums'")):
    suite.source("sums", "train")


def _record_files(directory):
  return [os.path.join(directory, n) for n in os.listdir(directory) if ".array_record" in n]


def test_a_missing_or_cut_record_file_says_which_task_and_how_to_rebuild(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from data_pipelines.synthetic import urn  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "suite")
  assert build.build(out, [urn.SPEC], seed=0, raw_dir=None) == []
  suite = Suite(out)
  directory = os.path.join(out, suite.tasks["urn"]["dir"])
  want = suite.source("urn", "test")[0]
  (record_file,) = _record_files(directory)
  with open(record_file, "r+b") as f:
    f.truncate(100)  # A partial copy.
  command = f"python -m data_pipelines.build --out={out} --tasks=urn --overwrite"
  with pytest.raises(SuiteError, match=re.escape(
      f"task 'urn' of the suite {out} is damaged (reading instance 0 of its test split")) as e:
    Suite(out).source("urn", "test")[0]
  assert command in str(e.value)
  os.remove(record_file)
  with pytest.raises(SuiteError, match=re.escape(
      f"task 'urn' of the suite {out} is damaged ({record_file} is missing); "
      f"rebuild the task with `{command}`")):
    Suite(out).source("urn", "test")[0]
  # The command the message gives repairs the suite.
  proc = subprocess.run([sys.executable, "-m", *command.split()[2:]],
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert Suite(out).source("urn", "test")[0] == want
