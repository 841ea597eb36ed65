"""The TFDS builder of one task: records, the hold-out split, and builds that
are byte-identical across processes."""

import glob
import hashlib
import os
import subprocess
import sys

import numpy as np

from data_pipelines import suite
from data_pipelines.schema import Instance, Row, TaskSpec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Builds two small tasks (one with inputs, one distributional with `extra`)
# into sys.argv[1].
_BUILD = r"""
import sys
from data_pipelines import build
from data_pipelines.schema import Instance, Row, TaskSpec

def sums(ctx):
  for i in range(6):
    yield Instance(id=f"sum{i}", descriptions=[f"Add {i}."],
                   rows=[Row(input=f"{j} + {i}", output=str(i + j))
                         for j in range(5)])

def urns(ctx):
  for i in range(3):
    yield Instance(id=f"urn{i}", question="Colour?", options=["red", "blue"],
                   target=[0.25 * (i + 1), 1 - 0.25 * (i + 1)],
                   rows=[Row("red")], extra={"b": i, "a": [1, 2]})

specs = [TaskSpec(name="sums", suite_split="train", kind="icl", generate=sums,
                  mean_k=4, test_fraction=0.4),
         TaskSpec(name="urns", suite_split="test", kind="distributional",
                  generate=urns)]
assert build.build(sys.argv[1], specs, seed=3, raw_dir=None) == []
"""


def _build_in_subprocess(out, hash_seed):
  env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
  proc = subprocess.run([sys.executable, "-c", _BUILD, out], cwd=REPO, env=env,
                        capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-2000:]


def _sha256_by_file(out):
  files = sorted(glob.glob(os.path.join(out, "**", "*"), recursive=True))
  return {os.path.relpath(f, out): hashlib.sha256(open(f, "rb").read()
                                                  ).hexdigest()
          for f in files if os.path.isfile(f)}


def test_builds_in_two_processes_are_byte_identical(tmp_path):
  # Protobuf writes a tf.train.Example's feature map in hash-table order,
  # which differs between processes unless the builder sorts it.
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  _build_in_subprocess(a, 1)
  _build_in_subprocess(b, 2)
  hashes_a, hashes_b = _sha256_by_file(a), _sha256_by_file(b)
  prefix = "spectrum_suite/{}/1.0.0/spectrum_suite-{}.array_record-00000-of-00001"
  records = [prefix.format("sums", "test"), prefix.format("sums", "train"),
             prefix.format("urns", "test")]
  assert sorted(f for f in hashes_a if ".array_record" in f) == records
  assert set(hashes_a) == set(hashes_b)
  # Every file, the metadata JSON (dataset_info, features, metadata, the
  # manifest) included, is the same.
  assert {f: h for f, h in hashes_a.items() if hashes_b[f] != h} == {}


def test_instance_to_record():
  inst = Instance(id="u1", rows=[Row("red", input="draw 1"),
                                 Row("blue", input="draw 2")],
                  descriptions=["An urn."], question="Colour?",
                  options=["red", "blue"], target=[0.75, 0.25],
                  extra={"z": 1, "a": "x"})
  record = suite.instance_to_record(inst)
  target = record.pop("target")
  assert target.dtype == np.float32 and target.tolist() == [0.75, 0.25]
  assert record == {
      "id": "u1", "descriptions": ["An urn."], "inputs": ["draw 1", "draw 2"],
      "outputs": ["red", "blue"], "question": "Colour?",
      "options": ["red", "blue"], "extra": '{"a": "x", "z": 1}'}
  # No inputs and no question: empty list and empty string.
  bare = suite.instance_to_record(Instance(id="c", rows=[Row("Heads")]))
  assert (bare["inputs"], bare["question"], bare["extra"]) == ([], "", "{}")


def _spec(split, test_fraction=0.05):
  return TaskSpec(name="t", suite_split=split, kind="icl",
                  generate=lambda ctx: [], test_fraction=test_fraction)


def test_split_instances():
  insts = [Instance(id=str(i)) for i in range(40)]
  assert suite.split_instances(_spec("test"), insts, seed=0) == {"test": insts}
  # round(0.05 * 40) = 2 held out, the rest in order for training.
  out = suite.split_instances(_spec("train"), insts, seed=0)
  assert len(out["test"]) == 2 and len(out["train"]) == 38
  assert sorted(out["train"] + out["test"], key=lambda x: int(x.id)) == insts
  assert [int(x.id) for x in out["train"]] == sorted(
      int(x.id) for x in out["train"])
  assert suite.split_instances(_spec("train"), insts, seed=0) == out
  assert suite.split_instances(_spec("train"), insts, seed=1) != out
  # Two instances: round(0.1) = 0, but a train task keeps at least one back.
  two = suite.split_instances(_spec("train"), insts[:2], seed=0)
  assert (len(two["train"]), len(two["test"])) == (1, 1)
  # test_fraction 0: no test split at all.
  assert suite.split_instances(_spec("train", 0.0), insts[:2], seed=0) == {
      "train": insts[:2]}


def test_task_dir():
  assert suite.task_dir("/s", "urn") == "/s/spectrum_suite/urn/1.0.0"
