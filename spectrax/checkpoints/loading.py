"""Loads a model for scoring, sampling or evaluation: an HF checkpoint
directory or a spectrax training workdir (its latest or a chosen step)."""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections
from flax import nnx

from spectrax.parallel import sharding
from spectrax.models import ModelConfig, Transformer, load_hf
from spectrax.data.tokenizer import Tokenizer, load_tokenizer


@dataclasses.dataclass
class LoadedModel:
  model: Transformer
  tokenizer: Tokenizer
  template: str | None  # the template the model was trained with, if known
  name: str


def load_model(hf_checkpoint: str | None = None, workdir: str | None = None,
               step: int | None = None, mesh=None,
               rules=sharding.DEFAULT_RULES, **config_overrides) -> LoadedModel:
  """Exactly one of `hf_checkpoint` and `workdir`.

  Args:
    hf_checkpoint: an HF directory (config.json, safetensors, tokenizer).
    workdir: a `python -m spectrax.train` run directory.
    step: the workdir checkpoint to load (default: the newest readable).
    mesh: where to place the parameters (default: every device, FSDP).
    config_overrides: runtime ModelConfig fields, e.g. dtype="bfloat16".
  """
  if (hf_checkpoint is None) == (workdir is None):
    raise ValueError("give exactly one of --hf_checkpoint=DIR and "
                     "--workdir=DIR.")
  mesh = mesh or sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  if hf_checkpoint is not None:
    model = load_hf(hf_checkpoint, mesh=mesh, rules=rules, **config_overrides)
    return LoadedModel(model, load_tokenizer(hf_checkpoint), None,
                       os.path.basename(os.path.normpath(hf_checkpoint)))
  return _from_workdir(workdir, step, mesh, rules, config_overrides)


def _from_workdir(workdir, step, mesh, rules, overrides) -> LoadedModel:
  # Imported here: the trainer's modules are not needed for HF checkpoints.
  from spectrax.training import run_config  # pylint: disable=g-import-not-at-top
  from spectrax.checkpoints.training_state import Checkpointer  # pylint: disable=g-import-not-at-top
  from spectrax.checkpoints.state_tree import flatten_state, unflatten_state  # pylint: disable=g-import-not-at-top
  from spectrax.training.loop import RUN_FILE  # pylint: disable=g-import-not-at-top
  from spectrax.training.step import Trainer, make_optimizer  # pylint: disable=g-import-not-at-top
  run_path = os.path.join(workdir, RUN_FILE)
  if not os.path.exists(run_path):
    raise FileNotFoundError(f"{run_path} not found: {workdir} is not a "
                            "spectrax training workdir.")
  with open(run_path) as f:
    run = json.load(f)
  with open(os.path.join(workdir, "config.json")) as f:
    c = ml_collections.ConfigDict(json.load(f))
  model_cfg = ModelConfig.from_json(json.dumps(run["model_config"]))
  if overrides:
    model_cfg = dataclasses.replace(model_cfg, **overrides)
  optimizer, _ = make_optimizer(run_config.optimizer_config(c), 1)
  trainer = Trainer(model_cfg, optimizer, mesh, rules)
  abstract = {"params": trainer.abstract_state()["params"]}
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), save_every=1,
                      keep=1_000_000)
  # Parameters only: the optimizer state (2x the parameters) is not read.
  flat, restored = ckpt.restore_params(flatten_state(abstract), step=step)
  ckpt.close()
  state = unflatten_state(flat, abstract)
  model = nnx.merge(trainer.graphdef, state["params"])
  # Relative: the run's own copy (moves with the workdir); absolute: older runs.
  tokenizer = os.path.join(workdir, run["tokenizer"])
  return LoadedModel(model, load_tokenizer(tokenizer), run["template"],
                     f"{os.path.basename(os.path.normpath(workdir))}@{restored}")
