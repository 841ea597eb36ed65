"""The run directory: one layout for the trainer and the loaders; run.json."""

import json
import os

import pytest

from spectrax.checkpoints import run_dir as run_dir_lib
from spectrax.checkpoints.run_dir import RunDir, RunDirError, RunInfo
from spectrax.models import preset


def _info(tokenizer=os.path.join("tokenizer", "tokenizer.model")):
  return RunInfo(template="gemma", tokenizer=tokenizer,
                 tokenizer_source="/data/suite/tokenizer.model",
                 model_config=preset("qwen3-0.6b"))


def test_paths():
  run = RunDir(os.path.join("runs", "tiny"))
  assert run.name == "tiny"
  assert run.checkpoints == os.path.join("runs", "tiny", "checkpoints")
  assert run.run_file == os.path.join("runs", "tiny", "run.json")
  assert run.config_file == os.path.join("runs", "tiny", "config.json")
  assert run.tokenizer_dir == os.path.join("runs", "tiny", "tokenizer")
  assert run.metrics_file == os.path.join("runs", "tiny", "metrics.jsonl")
  assert run.first_eval_file == os.path.join("runs", "tiny", "first_eval.json")
  assert run.final_eval_file == os.path.join("runs", "tiny", "final_eval.json")
  assert RunDir("runs/tiny/").name == "tiny"


def test_run_info_round_trips(tmp_path):
  run = RunDir(str(tmp_path))
  run.write_run_info(_info())
  assert run.read_run_info() == _info()
  with open(run.run_file) as f:
    raw = json.load(f)
  assert sorted(raw) == ["model_config", "template", "tokenizer", "tokenizer_source"]
  assert raw["model_config"]["hidden_size"] == preset("qwen3-0.6b").hidden_size


def test_tokenizer_path_relative_to_the_run_or_absolute(tmp_path):
  run = RunDir(str(tmp_path))
  assert run.tokenizer_path(_info()) == os.path.join(str(tmp_path), "tokenizer",
                                                     "tokenizer.model")
  assert run.tokenizer_path(_info("/old/run/tok.model")) == "/old/run/tok.model"


def test_missing_run_json_names_the_file_and_the_fix(tmp_path):
  with pytest.raises(RunDirError) as e:
    RunDir(str(tmp_path)).read_run_info()
  assert str(e.value) == (
      f"{tmp_path}/run.json not found: {tmp_path} is not a spectrax training run "
      "directory. Pass the --workdir of a `python -m spectrax.train` run, or an HF "
      "model directory as --hf_checkpoint.")


@pytest.mark.parametrize("content,problem", [
    ('{"template": "gemma", ', "is not valid JSON (Expecting property name"),
    ('{"template": "gemma", "tokenizer": "t"}',
     "lacks the field(s) tokenizer_source, model_config"),
    ("[1, 2]", "lacks the field(s) template, tokenizer, tokenizer_source, model_config"),
    ('{"template": "gemma", "tokenizer": "t", "tokenizer_source": "s", '
     '"model_config": {"family": "llama"}}',
     "has a model_config spectrax cannot read (KeyError: 'rope_global')"),
])
def test_damaged_run_json_names_the_file_and_the_fix(tmp_path, content, problem):
  run = RunDir(str(tmp_path))
  with open(run.run_file, "w") as f:
    f.write(content)
  with pytest.raises(RunDirError) as e:
    run.read_run_info()
  assert str(e.value).startswith(f"{run.run_file} {problem}")
  assert str(e.value).endswith(
      f": restarting the run (`python -m spectrax.train --config=... "
      f"--workdir={tmp_path}`) rewrites it.")


def test_the_trainer_writes_this_layout(tiny_run):
  workdir, _ = tiny_run
  run = RunDir(workdir)
  for path in (run.checkpoints, run.tokenizer_dir):
    assert os.path.isdir(path), path
  for path in (run.run_file, run.config_file, run.metrics_file, run.first_eval_file,
               run.final_eval_file):
    assert os.path.isfile(path), path
  info = run.read_run_info()
  assert info.template == "gemma" and info.model_config.num_layers == 2
  assert os.path.isfile(run.tokenizer_path(info))
  with open(run.final_eval_file) as f:
    assert json.load(f) == tiny_run[1]
  expected = {run_dir_lib.CHECKPOINTS_DIR, run_dir_lib.RUN_FILE, run_dir_lib.CONFIG_FILE,
              run_dir_lib.TOKENIZER_DIR, run_dir_lib.METRICS_FILE, run_dir_lib.FIRST_EVAL_FILE,
              run_dir_lib.FINAL_EVAL_FILE, run_dir_lib.COMPILATION_CACHE_DIR}
  others = set(os.listdir(workdir)) - expected
  assert all(name.startswith("events.out.tfevents") for name in others), others


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
  run = RunDir(str(tmp_path))
  run.write_run_info(_info())
  run.write_config('{"a": 1}')
  assert sorted(os.listdir(tmp_path)) == ["config.json", "run.json"]
  assert open(run.config_file).read() == '{"a": 1}'


def _with_checkpoint(tmp_path, info):
  run = RunDir(str(tmp_path))
  run.write_run_info(info)
  os.makedirs(os.path.join(run.checkpoints, "5.orbax-checkpoint-tmp-1"))
  return run


def test_restart_may_change_only_runtime_fields(tmp_path):
  import dataclasses  # pylint: disable=g-import-not-at-top
  run = _with_checkpoint(tmp_path, _info())
  cfg = _info().model_config
  other = dataclasses.replace(cfg, hidden_size=cfg.hidden_size * 2)
  run.check_resumable(other)  # Only an unfinished save: nothing to protect.
  os.makedirs(os.path.join(run.checkpoints, "4"))
  run.check_resumable(dataclasses.replace(cfg, dtype="bfloat16",
                                          remat_policy="full"))
  with pytest.raises(RunDirError, match=rf"{tmp_path} holds checkpoints of another "
                     rf"model \(hidden_size: {cfg.hidden_size} in the run, "
                     rf"{cfg.hidden_size * 2} now; .*Nothing was changed"):
    run.check_resumable(other)


def test_an_epath_run_directory_and_write_atomic(tmp_path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  run = RunDir(epath.Path(tmp_path) / "run")
  assert run.path == str(tmp_path / "run") and run.name == "run"
  os.makedirs(run.path)
  run.write_run_info(_info())
  assert run.read_run_info() == _info()
  run_dir_lib.write_atomic(epath.Path(run.config_file), "{}")
  assert sorted(os.listdir(run.path)) == ["config.json", "run.json"]
  assert run.relative(os.path.join(run.tokenizer_dir, "x.model")) == os.path.join(
      "tokenizer", "x.model")
  assert RunDir("runs/r/").relative("runs/r/tokenizer") == "tokenizer"


def test_a_run_directory_in_a_bucket(memory_bucket):
  """gs:// through etils.epath (no gcsfuse): one object write per file."""
  from etils import epath  # pylint: disable=g-import-not-at-top
  run = RunDir(f"{memory_bucket}/runs/x")
  assert run.run_file == f"{memory_bucket}/runs/x/run.json" and run.name == "x"
  assert not run_dir_lib.is_local(run.path) and run_dir_lib.is_local("runs/x")
  with pytest.raises(RunDirError, match="run.json not found"):
    run.read_run_info()
  run.write_run_info(_info())
  assert run.read_run_info() == _info()
  assert json.loads(epath.Path(run.run_file).read_text())["template"] == "gemma"
  assert not run.has_checkpoints()
  (epath.Path(run.checkpoints) / "8").mkdir(parents=True)
  (epath.Path(run.checkpoints) / "8" / "state").write_text("x")
  assert run.has_checkpoints()
  assert run.relative(f"{run.tokenizer_dir}/t.model") == "tokenizer/t.model"


def test_require_storage_names_the_package_a_bucket_needs(memory_bucket, monkeypatch):
  """Local paths and reachable buckets pass; an unknown scheme and a
  missing backend package are a RunDirError naming the fix."""
  import fsspec  # pylint: disable=g-import-not-at-top
  run_dir_lib.require_storage("runs/x")
  run_dir_lib.require_storage(f"{memory_bucket}/runs/x")  # gs:// served from memory
  monkeypatch.setattr(run_dir_lib.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(RunDirError, match=r"nope://x/y: .*use a local path"):
    run_dir_lib.require_storage("nope://x/y")

  def missing(protocol):
    raise ImportError(f"Please install s3fs to access {protocol}")
  monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
  with pytest.raises(RunDirError, match=r"s3://b/r: .*pip install s3fs"):
    run_dir_lib.require_storage("s3://b/r")
