"""The suite builder: TFDS/ArrayRecord output, determinism, missing files."""

import glob
import os
import subprocess
import sys

import pytest

from data_pipelines import build, registry
from spectrax.data.suite_reader import Suite

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _record_bytes(out):
  files = sorted(glob.glob(os.path.join(out, "spectrum_suite", "*", "*",
                                        "*.array_record-*")))
  assert files
  return {os.path.relpath(f, out): open(f, "rb").read() for f in files}


@pytest.fixture(scope="module")
def specs():
  return registry.select(registry.all_tasks(), ["coinflip", "urn", "cards"])


def test_same_seed_gives_byte_identical_records(tmp_path, specs):
  a, b, c = (str(tmp_path / n) for n in "abc")
  for out, seed in ((a, 0), (b, 0), (c, 1)):
    assert build.build(out, specs, seed=seed, raw_dir=None) == []
  assert _record_bytes(a) == _record_bytes(b)
  assert _record_bytes(a) != _record_bytes(c)


def test_suite_reads_back(tmp_path, specs):
  out = str(tmp_path)
  build.build(out, specs, seed=0, raw_dir=None)
  suite = Suite(out)
  assert suite.task_names("train") == ["cards", "coinflip"]
  assert suite.task_names("test", kind="distributional") == ["urn"]
  coins = suite.source("coinflip", "train")
  held_out = suite.source("coinflip", "test")
  assert len(coins) + len(held_out) == 1000 and len(held_out) == 50
  rec = coins[0]
  assert set(rec.outputs) <= {"Heads", "Tails"} and rec.inputs == []
  assert coins.sampling.mean_k == 128 and coins.sampling.p_desc == 0.6
  assert coins.num_rows[0] == len(rec.outputs)
  urn = suite.source("urn", "test")[0]
  assert urn.question and abs(sum(urn.target) - 1) < 1e-6
  assert len(urn.options) == len(urn.target)
  with pytest.raises(ValueError, match="task 'mmlu' is not in the suite"):
    suite.source("mmlu", "test")


def test_missing_raw_files_name_the_file_and_synthetic_still_builds(tmp_path):
  specs = registry.select(registry.all_tasks(), ["cards", "globaloqa"])
  errors = build.build(str(tmp_path), specs, seed=0, raw_dir=str(tmp_path),
                       explicit=True)
  assert len(errors) == 1
  assert "globaloqa/global_opinions.csv" in errors[0]
  assert "huggingface.co/datasets/Anthropic/llm_global_opinions" in errors[0]
  assert Suite(str(tmp_path)).task_names("train") == ["cards"]


def test_unknown_task_is_an_error():
  with pytest.raises(ValueError, match=r"unknown task\(s\) \['coinflips'\]"):
    registry.select(registry.all_tasks(), ["coinflips"])


def test_cli_builds_then_default_tokenizer_trains_and_goes_stale(tmp_path):
  out = str(tmp_path / "suite")
  proc = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", f"--out={out}",
       "--tasks=cards,urn"],
      cwd=REPO, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-2000:]
  suite = Suite(out)
  assert suite.tokenizer_path is None
  from spectrax.data import tokenizer_training
  path = tokenizer_training.ensure_default_tokenizer(out, vocab_size=600)
  assert Suite(out).tokenizer_path == path and os.path.exists(path)
  assert tokenizer_training.ensure_default_tokenizer(out) == path  # kept
  from spectrax.data.tokenizer import load_tokenizer
  from spectrax.data import templates
  tok = load_tokenizer(path)
  for t in templates.TEMPLATES.values():
    tok.require_single_tokens(t.special_tokens, t.name)
  proc = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", f"--out={out}",
       "--tasks=globaloqa"],
      cwd=REPO, capture_output=True, text=True)
  assert proc.returncode == 1
  assert "globaloqa/global_opinions.csv" in proc.stderr
  assert Suite(out).tokenizer_path == path  # nothing rebuilt: still current
  proc = subprocess.run(
      [sys.executable, "-m", "data_pipelines.build", f"--out={out}",
       "--tasks=coinflip"], cwd=REPO, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert Suite(out).tokenizer_path is None and not os.path.exists(path)
