"""Loads a model for scoring, sampling or evaluation: an HF checkpoint
directory or a spectrax training workdir (its latest or a chosen step)."""

from __future__ import annotations

import dataclasses
import os

from flax import nnx

import jax

from spectrax.checkpoints import lora_base
from spectrax.checkpoints.params_dir import sharded_abstract_params
from spectrax.checkpoints.run_dir import RunDir, RunInfo
from spectrax.checkpoints.state_tree import flatten_state, unflatten_state
from spectrax.checkpoints.training_state import Checkpointer
from spectrax.data.tokenizer import Tokenizer, load_tokenizer
from spectrax.models import Transformer, load_hf
from spectrax.models import lora as lora_lib
from spectrax.parallel import sharding


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

  Raises:
    RunDirError: `workdir` has no readable run.json (the message says why).
    FileNotFoundError: no checkpoint (or not `step`) in the workdir.
    CheckpointRestoreError: no checkpoint (or not `step`) could be read, or
      its bytes no longer match their checksums; a newer bad step is skipped
      with one warning (and left in place) when `step` is None.
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
  run = RunDir(workdir)
  info = run.read_run_info()
  if info.lora is not None:
    model, restored = load_lora_run(run, info, step, mesh, rules, overrides)
    return LoadedModel(model, load_tokenizer(run.tokenizer_path(info)), info.template,
                       f"{run.name}@{restored}")
  model_cfg = dataclasses.replace(info.model_config, **overrides)
  graphdef, abstract_params = sharded_abstract_params(model_cfg, mesh, rules)
  # Named as the trainer saved them (`params.…`); the optimizer state (twice
  # the parameters) is not read.
  abstract = {"params": abstract_params}
  # Read-only: the run may be training right now; a reader that cleaned up
  # "leftover" tmp directories or renamed a bad step would break its saves.
  with Checkpointer(run.checkpoints, read_only=True) as ckpt:
    flat, restored = ckpt.restore_params(flatten_state(abstract), step=step)
  params = unflatten_state(flat, abstract)["params"]
  return LoadedModel(nnx.merge(graphdef, params),
                     load_tokenizer(run.tokenizer_path(info)), info.template,
                     f"{run.name}@{restored}")


def restore_adapters(run: RunDir, info: RunInfo, step: int | None, mesh, rules
                     ) -> tuple[lora_lib.LoraConfig, dict, int]:
  """`(lora config, adapters, step)` of a LoRA run's checkpoint (newest readable by default)."""
  lora = lora_lib.LoraConfig.from_json(info.lora["config"])
  cfg = info.model_config
  shardings = lora_lib.adapter_shardings(cfg, lora, mesh, rules)
  abstract = {"params": jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
      lora_lib.abstract_adapters(cfg, lora), shardings)}
  with Checkpointer(run.checkpoints, read_only=True) as ckpt:
    flat, restored = ckpt.restore_params(flatten_state(abstract), step=step)
  return lora, unflatten_state(flat, abstract)["params"], restored


def load_lora_run(run: RunDir, info: RunInfo, step: int | None, mesh, rules, overrides
                  ) -> tuple[Transformer, int]:
  """A LoRA run's model, merged on load: the base rebuilt as the run recorded it
  (and checked against its fingerprint), plus ``scale * A @ B`` on every target.

  The base is built in the run's parameter dtype (its fingerprint's); the
  merge is computed in float32 and stored in ``overrides["param_dtype"]``
  when given, else in the base's dtype.
  """
  identity = lora_base.BaseIdentity.from_json(info.lora["base"])
  runtime = {k: v for k, v in overrides.items() if k != "param_dtype"}
  base_cfg = dataclasses.replace(info.model_config, **runtime)
  base = lora_base.build_base(identity, base_cfg, mesh=mesh, rules=rules)
  lora_base.check_same(identity, lora_base.with_fingerprint(identity, base),
                       f"the LoRA run {run.path}")
  lora, adapters, restored = restore_adapters(run, info, step, mesh, rules)
  model_cfg = dataclasses.replace(base_cfg, **overrides)
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: Transformer(model_cfg, rngs=nnx.Rngs(0))))
  state = nnx.state(base, nnx.Param)
  if model_cfg.param_dtype != base_cfg.param_dtype:
    state = jax.tree.map(lambda x: x.astype(model_cfg.param_dtype), state)
  state = lora_lib.merge_into(state, adapters, lora)
  return nnx.merge(graphdef, state), restored
