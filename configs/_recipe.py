"""The paper's fine-tuning recipe for a real checkpoint, on TPU or GPU."""

import ml_collections

from configs import base

# Meshes: a TPU v5p pod slice shards parameters and optimizer state fully
# (FSDP over every chip); an 8-GPU node does the same over its 8 GPUs and
# accumulates micro-batches to keep activations small. On several nodes or
# slices the launch scripts add mesh.dcn_data (one data row per node / slice),
# so these sizes stay per node / slice and FSDP never crosses the slow network.
HARDWARE = {
    "tpu": dict(mesh=dict(data=1, fsdp=-1, tensor=1, dcn_data=1), microbatches=1,
                attention_backend="splash"),
    "gpu": dict(mesh=dict(data=1, fsdp=8, tensor=1, dcn_data=1), microbatches=16,
                attention_backend="cudnn"),
}


def recipe(preset: str, template: str, instruct_hint: str, hardware: str
           ) -> ml_collections.ConfigDict:
  if hardware not in HARDWARE:
    raise ValueError(f"config argument {hardware!r}: use one of "
                     f"{sorted(HARDWARE)} (e.g. --config=configs/x.py:gpu).")
  hw = HARDWARE[hardware]
  c = base.get_config()
  c.require_init_from_hf = True
  c.instruct_hint = instruct_hint  # printed when init_from_hf is missing
  c.model.preset = preset  # the architecture, for plan and validation
  c.data.template = template
  c.mesh = ml_collections.ConfigDict(hw["mesh"])
  c.train.microbatches = hw["microbatches"]
  c.model.attention_backend = hw["attention_backend"]
  return c
