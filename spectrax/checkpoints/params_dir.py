"""The spectrax parameter checkpoint: an orbax directory of params + model config.

Layout of ``directory``::

    params/   orbax StandardSave of the nnx.Param state as a pure dict
    config/   orbax JsonSave of ModelConfig (architecture + runtime fields)

``load_params_dir`` restores straight into the target shardings (each process
reads only its shards), so it scales like ``load_hf``. The trainer's own
checkpoints (optimizer, data iterator) live in a run directory instead
(``spectrax.checkpoints.run_dir``); ``sharded_abstract_params`` serves both.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import Mesh

from spectrax.parallel import sharding
from spectrax.models.config import ModelConfig
from spectrax.models.transformer import Transformer, abstract_model, param_shardings


def save_params_dir(directory: str, model_or_state, cfg: ModelConfig) -> None:
  """Writes params and config to ``directory`` (must not exist yet; blocks until written)."""
  state = nnx.state(model_or_state, nnx.Param) if isinstance(model_or_state, nnx.Module) else model_or_state
  pure = nnx.to_pure_dict(state)
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    ckptr.save(os.path.abspath(directory),
               args=ocp.args.Composite(params=ocp.args.StandardSave(pure),
                                       config=ocp.args.JsonSave(json.loads(cfg.to_json()))))


def restore_config(directory: str, **overrides) -> ModelConfig:
  """The ModelConfig saved with the params (``overrides`` replace runtime fields, e.g. ``dtype``)."""
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    meta = ckptr.restore(os.path.abspath(directory),
                         args=ocp.args.Composite(config=ocp.args.JsonRestore()))
  return dataclasses.replace(ModelConfig.from_json(json.dumps(meta["config"])), **overrides)


def sharded_abstract_params(cfg: ModelConfig, mesh: Mesh | None, rules
                            ) -> tuple[nnx.GraphDef, nnx.State]:
  """The model's GraphDef and its params as sharded ShapeDtypeStructs.

  Built from the config alone (nothing allocated): the restore target that
  makes orbax read each shard straight onto its devices.
  """
  graphdef, abstract = abstract_model(cfg)
  targets = param_shardings(abstract, mesh, rules)
  return graphdef, jax.tree.map(
      lambda var, sh: var.replace(jax.ShapeDtypeStruct(var.shape, var.dtype,
                                                       sharding=sh.get_value())),
      abstract, targets, is_leaf=lambda x: isinstance(x, nnx.Variable))


def load_params_dir(directory: str, *, mesh: Mesh | None = None, rules=sharding.DEFAULT_RULES,
                    **overrides) -> Transformer:
  """Restores a ``Transformer`` saved by ``save_params_dir``, placed per ``mesh``/``rules``.

  ``overrides`` change config fields before restoring, e.g.
  ``param_dtype="bfloat16"`` (orbax casts on read) or ``dtype="bfloat16"``.
  """
  cfg = restore_config(directory, **overrides)
  graphdef, abstract = sharded_abstract_params(cfg, mesh, rules)
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    restored = ckptr.restore(os.path.abspath(directory),
                             args=ocp.args.Composite(params=ocp.args.StandardRestore(
                                 nnx.to_pure_dict(abstract))))
  nnx.replace_by_pure_dict(abstract, restored["params"])
  return nnx.merge(graphdef, abstract)
