"""What a LoRA run adds to a training run: its frozen base, built and checked.

`prepare_base` builds the base the config names (an HF checkpoint, or the
seeded random init of a from-scratch config), in the compute dtype,
fingerprints it, refuses it when the run's checkpoints were trained on
another one, and hands it to the trainer as its frozen parameters. The
identity goes into every checkpoint's config item and into run.json.
"""

from __future__ import annotations

import jax
from flax import nnx

from spectrax.checkpoints import lora_base
from spectrax.checkpoints.training_state import Checkpointer
from spectrax.training import run_config
from spectrax.training.run_setup import RunSetup, say
from spectrax.training.step import Trainer

CONFIG_KEY = "lora_base"  # in each checkpoint's config item


def prepare_base(c, setup: RunSetup, trainer: Trainer, ckpt: Checkpointer
                 ) -> lora_base.BaseIdentity:
  """Builds, fingerprints, checks and installs the frozen base; returns its identity."""
  identity = run_config.lora_base(c)
  model = lora_base.build_base(identity, setup.model_cfg, mesh=setup.mesh, rules=setup.rules)
  identity = lora_base.with_fingerprint(identity, model)
  if ckpt.latest_step() is not None:
    saved = ckpt.restore_config().get(CONFIG_KEY)
    if saved is None:
      raise lora_base.BaseMismatchError(
          f"{setup.run_dir.path} holds full fine-tuning checkpoints; a LoRA run "
          "(config.lora.rank > 0) cannot resume them: pass a new --workdir, or "
          "--config.lora.rank=0 to continue the full fine-tune. Nothing was changed.")
    lora_base.check_same(lora_base.BaseIdentity.from_json(saved), identity,
                         f"the LoRA run {setup.run_dir.path}")
  trainer.set_frozen(nnx.state(model, nnx.Param))
  n = sum(x.size for x in jax.tree.leaves(trainer.abstract_params))
  say(f"LoRA rank {trainer.lora.rank} on {','.join(trainer.lora.targets)}: {n:,} trainable "
      f"parameters; frozen base: {identity.describe()} in {setup.model_cfg.param_dtype}")
  return identity


def run_info(trainer: Trainer, identity: lora_base.BaseIdentity | None) -> dict | None:
  """run.json's `lora` entry (None for full fine-tuning)."""
  if trainer.lora is None:
    return None
  return {"config": trainer.lora.to_json(), "base": identity.to_json()}
