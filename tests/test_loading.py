"""load_model: an HF directory or a training workdir -> model, tokenizer, template."""

import json
import os
import re
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_train_config
from spectrax.checkpoints.loading import load_model
from spectrax.checkpoints.run_dir import RunDirError
from spectrax.checkpoints.state_tree import flatten_state
from spectrax.checkpoints.training_state import CheckpointRestoreError, Checkpointer
from spectrax.data.tokenizer import load_tokenizer
from spectrax.models import save_hf
from spectrax.parallel import sharding
from spectrax.training import loop as train_lib
from spectrax.training.step import OptimizerConfig, Trainer, make_optimizer


def test_workdir_reproduces_final_eval(tiny_suite_dir, tiny_run):
  workdir, summary = tiny_run
  loaded = load_model(workdir=workdir)
  assert loaded.template == "gemma" and loaded.name.endswith("@8")
  c = tiny_train_config(tiny_suite_dir)
  mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  trainer = Trainer(loaded.model.config, make_optimizer(OptimizerConfig(), 1)[0],
                    mesh, sharding.DEFAULT_RULES)
  loss = train_lib.evaluate(trainer.eval_fn(),
                            nnx.state(loaded.model, nnx.Param), c, None,
                            trainer.batch_sharding, c.train.eval_batches)
  assert loss == pytest.approx(summary["final_eval_loss"], rel=1e-6)


def test_workdir_step_reads_that_checkpoints_params(tiny_run):
  workdir = tiny_run[0]
  loaded = load_model(workdir=workdir, step=4)
  assert loaded.name == f"{os.path.basename(workdir)}@4"
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), save_every=1, keep=1_000_000)
  like = flatten_state({"params": nnx.state(loaded.model, nnx.Param)})
  saved, step = ckpt.restore_params(like, step=4)
  ckpt.close()
  assert step == 4
  ours = flatten_state({"params": nnx.state(loaded.model, nnx.Param)})
  assert sorted(ours) == sorted(saved)
  for name, value in saved.items():
    np.testing.assert_array_equal(jax.device_get(ours[name]), jax.device_get(value), err_msg=name)
  newest = load_model(workdir=workdir)
  assert not np.array_equal(jax.device_get(nnx.state(newest.model, nnx.Param)["embed"][...]),
                            jax.device_get(nnx.state(loaded.model, nnx.Param)["embed"][...]))


def test_a_moved_workdir_loads_with_its_own_tokenizer(tiny_run, tmp_path):
  moved = shutil.copytree(tiny_run[0], tmp_path / "moved")
  with open(moved / "run.json") as f:
    run = json.load(f)
  assert run["tokenizer"] == os.path.join("tokenizer", "tokenizer.model")
  loaded = load_model(workdir=str(moved))
  text = "Heads Tails 0 1 <start_of_turn>output\n"
  assert loaded.tokenizer.encode(text) == load_tokenizer(run["tokenizer_source"]).encode(text)
  assert loaded.name == "moved@8"


def test_runtime_overrides_apply_to_a_workdir(tiny_run):
  loaded = load_model(workdir=tiny_run[0], dtype="bfloat16")
  assert loaded.model.config.dtype == "bfloat16"


def test_workdir_without_run_json_says_so(tmp_path):
  with pytest.raises(RunDirError, match=rf"{tmp_path}/run.json not found: .* is not a "
                                        "spectrax training run directory"):
    load_model(workdir=str(tmp_path))


def test_hf_directory_loads_as_hf_not_as_workdir(tiny_run, tmp_path):
  trained = load_model(workdir=tiny_run[0])
  hf_dir = str(tmp_path / "tiny-hf")
  save_hf(trained.model, trained.model.config, hf_dir,
          tokenizer_dir=os.path.join(tiny_run[0], "tokenizer"))
  loaded = load_model(hf_checkpoint=hf_dir)
  assert loaded.template is None and loaded.name == "tiny-hf"
  for (name, ours), theirs in zip(flatten_state(nnx.state(trained.model, nnx.Param)).items(),
                                  jax.tree.leaves(nnx.state(loaded.model, nnx.Param))):
    np.testing.assert_array_equal(jax.device_get(ours), jax.device_get(theirs), err_msg=name)
  with pytest.raises(RunDirError, match="or an HF model directory as --hf_checkpoint"):
    load_model(workdir=hf_dir)


@pytest.mark.parametrize("given", [{}, {"hf_checkpoint": "a", "workdir": "b"}])
def test_exactly_one_source(given):
  with pytest.raises(ValueError, match="give exactly one of --hf_checkpoint=DIR and --workdir=DIR"):
    load_model(**given)


def test_reader_skips_a_corrupt_newest_step_and_changes_nothing(tiny_run, tmp_path, caplog):
  """Scoring a copy of a run whose newest step has flipped bytes, while a save
  is in progress: the reader uses step 6, warns once, and leaves every file
  (the bad step, the unfinished save) exactly as it was."""
  import logging  # pylint: disable=g-import-not-at-top
  from test_training_state import _tree_listing, flip_bytes  # pylint: disable=g-import-not-at-top
  run = shutil.copytree(tiny_run[0], tmp_path / "run")
  flip_bytes(run / "checkpoints" / "8", every_file=True, spread=32)
  # What `spectrax.train` leaves while it writes step 10.
  shutil.copytree(run / "checkpoints" / "6",
                  run / "checkpoints" / "10.orbax-checkpoint-tmp-1764")
  before = _tree_listing(run)
  with caplog.at_level(logging.WARNING):
    loaded = load_model(workdir=str(run))
  assert loaded.name == "run@6"
  assert _tree_listing(run) == before
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert len(warnings) == 1, warnings
  assert f"{run / 'checkpoints' / '8'} is unreadable" in warnings[0]
  # Flipped bytes read either as wrong values (the checksums' IntegrityError)
  # or, where they hit a compressed chunk's framing, as a decode error.
  assert re.search(r"IntegrityError|TensorStore|DATA_LOSS|decod", warnings[0])
  assert "left in place" in warnings[0]
  good = load_model(workdir=tiny_run[0], step=6)
  for (name, a), b in zip(flatten_state(nnx.state(loaded.model, nnx.Param)).items(),
                          jax.tree.leaves(nnx.state(good.model, nnx.Param))):
    np.testing.assert_array_equal(jax.device_get(a), jax.device_get(b), err_msg=name)


def test_reader_with_only_corrupt_steps_fails_naming_them(tiny_run, tmp_path):
  from test_training_state import flip_bytes  # pylint: disable=g-import-not-at-top
  run = shutil.copytree(tiny_run[0], tmp_path / "run")
  for s in ("4", "6", "8"):
    flip_bytes(run / "checkpoints" / s, every_file=True, spread=32)
  with pytest.raises(CheckpointRestoreError,
                     match=r"step 8 \(.*(IntegrityError|TensorStore|DATA_LOSS|decod)"):
    load_model(workdir=str(run))
  assert sorted(os.listdir(run / "checkpoints")) == ["4", "6", "8"]
