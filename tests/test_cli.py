"""spectrax/cli: quiet logs and one-line expected errors, for every command line.

A small program built on `cli.run` shows each rule in a second; then the
checkpoint-loading command lines (score, evaluate, convert) on a real run
directory show them with the library's own errors.
"""

import subprocess
import sys

import pytest

from cli_runs import REPO, assert_one_error_line, error_lines, foreign_info_lines, run_cli

PROGRAM = """
import logging
from absl import flags
from absl import logging as absl_logging
from spectrax import cli

_MODE = flags.DEFINE_enum("mode", "ok", ["ok", "user", "library", "bug"], "What to do.")


class LibraryError(ValueError):
  pass


def main(argv):
  del argv
  if _MODE.value == "user":
    raise cli.UserError("--mode=user: choose another mode")
  if _MODE.value == "library":
    raise LibraryError("no checkpoint 7 in runs/x; it has 4, 8")
  if _MODE.value == "bug":
    raise KeyError("a bug")
  logging.getLogger("orbax.checkpoint").info("orbax info")
  absl_logging.info("absl info")
  logging.getLogger("spectrax.scoring").info("spectrax info")
  print("done")


cli.run(main, expected=(LibraryError,))
"""


def run_program(*flags):
  return subprocess.run([sys.executable, "-c", PROGRAM, *flags], cwd=REPO,
                        capture_output=True, text=True, timeout=120)


def test_third_party_info_is_hidden_unless_verbosity_is_given():
  proc = run_program()
  assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
  assert "spectrax info" in proc.stderr
  assert "orbax info" not in proc.stderr and "absl info" not in proc.stderr
  proc = run_program("--verbosity=0")
  assert proc.returncode == 0, proc.stderr
  for text in ("orbax info", "absl info", "spectrax info"):
    assert text in proc.stderr


@pytest.mark.parametrize("flags, message", [
    (["--mode=user"], "error: --mode=user: choose another mode"),
    (["--mode=library"], "error: no checkpoint 7 in runs/x; it has 4, 8"),
    (["--mode=nope"], "error: flag --mode=nope: value should be one of <ok|user|library|bug> "
                      "(--help lists the flags)."),
    (["--nosuchflag=1"], "error: Unknown command line flag 'nosuchflag' (--help lists the "
                         "flags)."),
    (["extra"], "error: unexpected arguments ['extra']: every option is a --flag=value "
                "(--help lists them)."),
])
def test_expected_errors_are_one_line_and_exit_2(flags, message):
  proc = run_program(*flags)
  assert proc.returncode == 2
  assert proc.stderr.splitlines() == [message]
  assert proc.stdout == ""


def test_an_unexpected_error_keeps_its_traceback():
  proc = run_program("--mode=bug")
  assert proc.returncode == 1
  assert "Traceback" in proc.stderr and "KeyError: 'a bug'" in proc.stderr
  assert not error_lines(proc.stderr)


def test_help_shows_the_program_flags():
  proc = run_cli("spectrax.score", "--help", timeout=300)
  assert "Traceback" not in proc.stderr  # absl exits 1 after --help.
  assert "Scores a JSONL of questions" in proc.stdout and "--skip_bad" in proc.stdout


def _bad_step_commands(workdir, suite_dir, tmp_path):
  requests = tmp_path / "requests.jsonl"
  requests.write_text('{"id": "a", "prompt": "Heads", "options": [" Tails"]}\n')
  return {
      "score": ["spectrax.score", f"--input={requests}", f"--output={tmp_path / 'out.jsonl'}",
                f"--workdir={workdir}", "--step=7"],
      "evaluate": ["spectrax.evaluate", "--suite=steerability", f"--suite_dir={suite_dir}",
                   f"--out={tmp_path / 'eval'}", f"--model=m=workdir:{workdir}@7"],
      "convert": ["spectrax.convert", f"--from_workdir={workdir}", "--step=7",
                  f"--to_hf={tmp_path / 'hf'}"],
  }


@pytest.mark.parametrize("command", ["score", "evaluate", "convert"])
def test_a_missing_step_names_the_run_and_its_steps(command, tiny_run, tiny_suite_dir,
                                                    tmp_path):
  workdir, _ = tiny_run
  module, *flags = _bad_step_commands(workdir, tiny_suite_dir, tmp_path)[command]
  proc = run_cli(module, *flags)
  # The tiny run checkpoints every 2 steps and keeps 3.
  assert_one_error_line(proc, "step 7", workdir, "[4, 6, 8]")
  assert not foreign_info_lines(proc.stderr), proc.stderr[-3000:]


@pytest.mark.parametrize("command", ["score", "convert"])
def test_a_directory_that_is_not_a_run_is_one_error_line(command, tiny_suite_dir, tmp_path):
  module, *flags = _bad_step_commands(str(tmp_path), tiny_suite_dir, tmp_path)[command]
  flags = [f for f in flags if f != "--step=7"]
  proc = run_cli(module, *flags)
  assert_one_error_line(proc, "run.json not found", str(tmp_path))


def _damaged_copy(suite_dir, tmp_path, task):
  """A copy of a built suite with `task`'s record files gone (a partial copy)."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "suite")
  shutil.copytree(suite_dir, out)
  with open(os.path.join(out, "suite.json")) as f:
    directory = os.path.join(out, json.load(f)["tasks"][task]["dir"])
  for name in os.listdir(directory):
    if ".array_record" in name:
      os.remove(os.path.join(directory, name))
  return out


def test_show_batches_on_a_damaged_suite_names_the_task_and_the_rebuild(tiny_suite_dir,
                                                                        tmp_path):
  suite = _damaged_copy(tiny_suite_dir, tmp_path, "coins")
  proc = run_cli("spectrax.show_batches", f"--suite={suite}", "--tasks=coins", "--seq_len=64",
                 "--max_tokens=64", "--batches=1")
  assert_one_error_line(proc, f"task 'coins' of the suite {suite} is damaged",
                        f"python -m data_pipelines.build --out={suite} --tasks=coins --overwrite")


def test_evaluate_on_a_corrupt_manifest_names_the_file(tmp_path):
  (tmp_path / "suite.json").write_text('{"tasks": {')
  proc = run_cli("spectrax.evaluate", f"--suite_dir={tmp_path}", f"--out={tmp_path / 'eval'}",
                 f"--model=m=workdir:{tmp_path}")
  assert_one_error_line(proc, f"{tmp_path / 'suite.json'}, line 1: the suite manifest is not "
                              "valid JSON")
  assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("module, flag", [
    ("spectrax.evaluate", "--max_tokens=0"),
    ("spectrax.evaluate", "--seed=-1"),
    ("spectrax.show_batches", "--batch_size=0"),
    ("spectrax.show_batches", "--workers=-2"),
    ("spectrax.score", "--buckets=0,64"),
    ("spectrax.score", "--num_processes=0"),
])
def test_out_of_range_numeric_flags_are_one_error_line(module, flag, tmp_path):
  required = {"spectrax.score": [f"--input={tmp_path}/in.jsonl",
                                 f"--output={tmp_path}/out.jsonl"]}.get(module, [])
  proc = run_cli(module, *required, flag, timeout=300)
  assert_one_error_line(proc, flag.split("=")[0])
  assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_an_unsupported_hf_model_type_is_one_error_line(command, tiny_suite_dir, tmp_path):
  ckpt = tmp_path / "gpt2"
  ckpt.mkdir()
  (ckpt / "config.json").write_text('{"model_type": "gpt2", "n_layer": 2}')
  requests = tmp_path / "requests.jsonl"
  requests.write_text('{"id": "a", "prompt": "x", "options": ["y", "z"]}\n')
  flags = {
      "score": ["spectrax.score", f"--input={requests}", f"--output={tmp_path / 'out.jsonl'}",
                f"--hf_checkpoint={ckpt}"],
      "evaluate": ["spectrax.evaluate", "--suite=steerability", f"--suite_dir={tiny_suite_dir}",
                   f"--out={tmp_path / 'eval'}", f"--model=m=hf:{ckpt}"],
  }[command]
  proc = run_cli(*flags)
  assert_one_error_line(proc, "model_type='gpt2' is not supported", str(ckpt / "config.json"))


def test_a_backend_the_device_cannot_run_is_one_error_line(tiny_suite_dir, tmp_path):
  from conftest import tiny_train_flags  # pylint: disable=g-import-not-at-top
  proc = run_cli("spectrax.train", "--config=configs/tiny.py", f"--workdir={tmp_path / 'run'}",
                 *tiny_train_flags(tiny_suite_dir, num_steps=1),
                 "--config.model.attention_backend=cudnn", "--config.model.dtype=bfloat16")
  assert_one_error_line(proc, "cudnn", "attention_backend")


def test_a_bucket_workdir_without_its_storage_package_is_one_error_line(tiny_suite_dir):
  """gs:// needs gcsfs (etils.epath's backend without TensorFlow); a
  Python without it is told what to install before anything is written."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec("gcsfs") or importlib.util.find_spec("tensorflow"):
    pytest.skip("this Python can open gs:// paths")
  from conftest import tiny_train_flags  # pylint: disable=g-import-not-at-top
  proc = run_cli("spectrax.train", "--config=configs/tiny.py", "--workdir=gs://bucket/run",
                 *tiny_train_flags(tiny_suite_dir, num_steps=1))
  assert_one_error_line(proc, "gs://bucket/run", "pip install gcsfs")
